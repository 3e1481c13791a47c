"""The command line's parser, assembled from each command's own ``add_arguments``.

A command module defines its options and help (and, for ``kernel``, its nested
actions); what every leaf sub-command has -- ``-q``/``-v``, its runner, the parser an
unknown option is reported with -- is added here, by walking the assembled tree, so
that a nested sub-command gets them as a top-level one does.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from layervenv import __version__

DESCRIPTION = ("A writable Python layer (a venv) on top of a read-only software stack: "
               "your packages win, the stack stays importable and untouched.")


def _command_modules() -> tuple:
    """The command modules, in the order ``layervenv --help`` and completion list them.

    Imported here, when a parser is built (after the interrupt handling is in place),
    not when :mod:`layervenv.app.main` is.
    """
    from layervenv.commands import (
        check,
        completion,
        create,
        demo,
        install,
        kernel,
        lock,
        pack,
        rebase,
        run,
        shell,
    )
    from layervenv.commands import list as listing

    return (create, lock, rebase, run, pack, shell, listing, install, check, demo, completion,
            kernel)


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


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the commands' own options, then what every leaf has."""
    from layervenv.app.runners import RUNNERS

    parser = argparse.ArgumentParser(prog="layervenv", description=DESCRIPTION)
    parser.add_argument("-V", "--version", action="version", version=f"layervenv {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in _command_modules():
        module.add_arguments(commands)
    for words, command in walk(parser):
        command.set_defaults(command_parser=command)
        if not sub_commands(command):
            add_verbosity(command)
            command.set_defaults(func=RUNNERS[words])
    return parser
