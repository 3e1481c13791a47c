"""Command-line options that several commands share, defined once.

Each command module defines its own options in ``add_arguments``; the ones several
of them offer (the layer's directory, ``--format``, where pip looks) live here so that
their names, defaults and help read the same everywhere, and so that shell completion,
which reads kinds of values from metavars, sees the same metavar for the same thing.
The options every command has (``-q``/``-v``) are added by the parser's assembly in
:mod:`layervenv.app`, not by the commands.
"""

from __future__ import annotations

import argparse


def add_active_dir(parser: argparse.ArgumentParser) -> None:
    """``[DIR]``: the layer, or the active one when left out."""
    parser.add_argument("dir", metavar="DIR", nargs="?",
                        help="the layer (default: the active one, $VIRTUAL_ENV)")


def add_format(parser: argparse.ArgumentParser) -> None:
    """``--format human|json``, for a command whose result programs read."""
    parser.add_argument("--format", choices=("human", "json"), default="human",
                        help="output for people (default) or for programs")


def add_sources(parser: argparse.ArgumentParser) -> None:
    """Where pip looks: ``--find-links`` (repeatable) and ``--index-url``."""
    parser.add_argument("--find-links", metavar="DIR_OR_URL", action="append", default=[],
                        help="where pip also looks for wheels (repeatable; passed to pip)")
    parser.add_argument("--index-url", metavar="URL", help="package index for pip")


def positive_seconds(text: str) -> float:
    """A time limit: a number of seconds above 0 (argparse reports anything else)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0: {text!r}")
    return value
