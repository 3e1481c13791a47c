"""From parsed arguments to a command's call and its printed result, one runner per leaf.

The options themselves are each command's (``add_arguments`` in ``commands/``); what is
here reads them, refuses combinations argparse cannot express, calls the command and
prints its result.  The runners are looked up by the words of the command line
(:data:`RUNNERS`), so that a command module keeps to its options and its work.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from layervenv.app.parser import build_parser
from layervenv.infra.errors import UserError

if TYPE_CHECKING:
    from layervenv.services.packages import Sources

#: What a leaf sub-command runs: its exit status (None is 0).
Runner = Callable[[argparse.Namespace], "int | None"]


def emit(result: Any, fmt: str) -> None:
    """Print a command's result (imported late: see :mod:`layervenv.app.main`)."""
    from layervenv.infra.output import emit as render

    render(result, fmt)


def _sources(args: argparse.Namespace) -> Sources:
    from layervenv.services.packages import Sources

    return Sources(find_links=tuple(args.find_links), index_url=args.index_url)


def _create(args: argparse.Namespace) -> int:
    from layervenv.commands.create import CreateOptions, create

    if args.system_site_packages and not args.quiet:
        print("layervenv: note: --system-site-packages changes nothing: a layer always sees "
              "the stack's packages", file=sys.stderr)
    if args.prompt == ".":
        args.prompt = os.path.basename(os.getcwd())
    options = CreateOptions(
        directory=args.dir, python=args.python, prompt=args.prompt, clear=args.clear,
        without_pip=args.without_pip, export_pythonpath=args.export_pythonpath,
        setup=args.setup, rerun_setup=args.rerun_setup, prompt_hook=not args.no_prompt_hook,
        over=args.over,
    )
    if args.from_file:
        from layervenv.commands.create_from import create_from

        result = create_from(options, args.from_file, args.allow_stack_drift, _sources(args),
                             args.trust_setup, args.trust_build)
    else:
        _refuse_without_from(args)
        result = create(options)
    emit(result, args.format)
    return 0


def _refuse_without_from(args: argparse.Namespace) -> None:
    """Options that only ``--from`` reads: given alone, they would be ignored silently."""
    if args.allow_stack_drift or args.trust_setup or args.trust_build:
        flag = ("--allow-stack-drift" if args.allow_stack_drift else
                "--trust-setup" if args.trust_setup else "--trust-build")
        raise UserError(f"{flag} needs --from FILE")
    if args.find_links or args.index_url:
        raise UserError("--find-links and --index-url are for --from FILE: create alone "
                        "installs only pip, from the interpreter's bundled wheel")


def _lock(args: argparse.Namespace) -> int:
    from layervenv.commands.lock import STDOUT, lock

    if args.output == STDOUT and args.format == "json":
        raise UserError("-o - writes the lock to standard output; --format json cannot "
                        "share it (write the lock to a file)")
    result = lock(args.dir, args.output, _sources(args))
    if args.output == STDOUT:
        print(result.human(), file=sys.stderr)  # standard output is the lock alone
    else:
        emit(result, args.format)
    return 0


def _rebase(args: argparse.Namespace) -> int:
    from layervenv.commands.rebase import rebase

    emit(rebase(args.dir, args.setup, args.python, _sources(args), over=args.over),
         args.format)
    return 0


def _run(args: argparse.Namespace) -> int:
    from layervenv.commands.run import run

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return run(args.dir, command)


def _pack(args: argparse.Namespace) -> int:
    from layervenv.commands.pack import pack

    emit(pack(args.dir, args.output, args.find_links), args.format)
    return 0


def _shell(args: argparse.Namespace) -> int:
    from layervenv.commands.shell import shell

    return shell(args.dir)


def _list(args: argparse.Namespace) -> int:
    from layervenv.commands.list import list_layer

    result = list_layer(args.dir, shadowed_only=args.shadowed)
    emit(result, args.format)
    for warning in result.warnings:
        print(f"layervenv: warning: {warning}", file=sys.stderr)
    return 0


def _install(args: argparse.Namespace) -> int:
    from layervenv.commands.install import install

    directory, packages = split_install_args(args.args)
    emit(install(directory, packages, args.installer, _sources(args)), args.format)
    return 0


def split_install_args(words: list[str]) -> tuple[str | None, list[str]]:
    """``[DIR] PKG...``: the first word is DIR when it is a path (a requirement has no
    ``/``) or a layer's directory; otherwise the layer is the active one."""
    from pathlib import Path

    from layervenv.model.layer import is_layer

    first = words[0]
    if os.sep in first or first in (".", "..") or is_layer(Path(first)):
        return first, words[1:]
    return None, list(words)


def _check(args: argparse.Namespace) -> int:
    from layervenv.commands.check import check_layer, explain_name

    if args.explain is not None:
        if args.imports:
            raise UserError("--explain reads the layer's sys.path and imports nothing: "
                            "it does not go with --imports")
        explained = explain_name(args.dir, args.explain)
        emit(explained, args.format)
        return 0 if explained.found else 1
    result = check_layer(args.dir, imports=args.imports, import_timeout=args.import_timeout)
    emit(result, args.format)
    return 0 if result.ok else 1


def _demo(args: argparse.Namespace) -> int:
    from layervenv.commands.demo import demo

    return demo(workdir=args.workdir, keep=args.keep, python=args.python)


def _completion(args: argparse.Namespace) -> int:
    """The completion code, read from the whole parser (built again: it is cheap)."""
    from layervenv.commands.completion import GENERATORS

    print(GENERATORS[args.shell](build_parser(RUNNERS)), end="")
    return 0


def _kernel_install(args: argparse.Namespace) -> int:
    from layervenv.commands.kernel import InstallOptions, install

    location = ("sys-prefix" if args.sys_prefix else
                "prefix" if args.prefix is not None else "user")
    emit(install(InstallOptions(
        directory=args.dir, name=args.name, display_name=args.display_name, location=location,
        prefix=args.prefix, install_ipykernel=args.install_ipykernel, sources=_sources(args),
    )), args.format)
    return 0


def _kernel_list(args: argparse.Namespace) -> int:
    from layervenv.commands.kernel import list_kernels

    emit(list_kernels(), args.format)
    return 0


def _kernel_remove(args: argparse.Namespace) -> int:
    from layervenv.commands.kernel import remove

    emit(remove(args.name), args.format)
    return 0


#: The runner of every leaf sub-command, by its words on the command line.
RUNNERS: dict[tuple[str, ...], Runner] = {
    ("create",): _create, ("lock",): _lock, ("rebase",): _rebase, ("run",): _run,
    ("pack",): _pack, ("shell",): _shell, ("list",): _list, ("install",): _install,
    ("check",): _check, ("demo",): _demo, ("completion",): _completion,
    ("kernel", "install"): _kernel_install, ("kernel", "list"): _kernel_list,
    ("kernel", "remove"): _kernel_remove,
}
