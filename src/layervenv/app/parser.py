"""The command line's parser, assembled from each command's own ``add_arguments``.

A command module defines its options and help (and, for ``kernel``, its nested
actions); what every leaf sub-command has -- ``-q``/``-v``, its runner, the parser an
unknown option is reported with -- is added here, by walking the assembled tree, so
that a nested sub-command gets them as a top-level one does.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from layervenv import __version__

DESCRIPTION = ("A writable Python layer (a venv) on top of a read-only software stack: "
               "your packages win, the stack stays importable and untouched.")


#: The commands, in the order ``layervenv --help`` and completion list them, and the
#: module under :mod:`layervenv.commands` that defines each one's options.
COMMANDS = {"create": "create", "lock": "lock", "rebase": "rebase", "run": "run",
            "pack": "pack", "shell": "shell", "list": "list", "install": "install",
            "check": "check", "demo": "demo", "completion": "completion", "kernel": "kernel"}


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when it names one before any top-level option (which
    are ``-h`` and ``-V`` only, and need every command's one-line help)."""
    for word in argv:
        if word.startswith("-"):
            return None
        return word if word in COMMANDS else None
    return None


def _command_modules(only: str | None) -> list:
    """The modules of the commands a parser is built for: the one command a command line
    names (a run pays for importing its own command only), else all of them.

    Imported here, when a parser is built (after the interrupt handling is in place),
    not when :mod:`layervenv.app.main` is.
    """
    names = [only] if only else list(COMMANDS)
    return [importlib.import_module(f"layervenv.commands.{COMMANDS[name]}") for name in names]


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q``/``-v``, which every leaf sub-command takes (read by :mod:`layervenv.infra.output`)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true",
                       help="print nothing but errors and warnings (and --format json)")
    group.add_argument("-v", "--verbose", action="store_true",
                       help="say which tool runs, and show progress even when not on a "
                            "terminal (on standard error)")


def sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-parsers of ``parser`` by name (none for a leaf)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walk(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every sub-parser under ``parser``, parents before their children, with its words."""
    for name, child in sub_commands(parser).items():
        yield (*words, name), child
        yield from walk(child, (*words, name))


def build_parser(runners: Mapping[tuple[str, ...], Callable[[argparse.Namespace], Any]],
                 argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line: the commands' own options, then what every leaf has.

    With ``argv``, only the command it names (when it names one) is in the parser.
    ``runners``: what each leaf runs, by its words (:data:`layervenv.app.runners.RUNNERS`;
    given, not imported, so that the runners may build a parser: ``completion``)."""
    parser = argparse.ArgumentParser(prog="layervenv", description=DESCRIPTION)
    parser.add_argument("-V", "--version", action="version", version=f"layervenv {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in _command_modules(chosen_command(argv) if argv is not None else None):
        module.add_arguments(commands)
    for words, command in walk(parser):
        command.set_defaults(command_parser=command)
        if not sub_commands(command):
            add_verbosity(command)
            command.set_defaults(func=runners[words])
    return parser
