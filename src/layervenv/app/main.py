"""Command-line parsing only: each sub-command maps to one module in ``commands/``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from layervenv import __version__
from layervenv.infra.errors import UserError
from layervenv.infra.interrupts import Interrupted, handle_interrupts, ignore_interrupts

if TYPE_CHECKING:
    from collections.abc import Sequence


def emit(result: Any, fmt: str) -> None:
    """Print a command's result (imported late: see :func:`main`)."""
    from layervenv.infra.output import emit as render

    render(result, fmt)


def _add_active_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", nargs="?",
                        help="the layer (default: the active one, $VIRTUAL_ENV)")


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("human", "json"), default="human",
                        help="output for people (default) or for programs")


#: ``create`` without DIR, as ``uv venv``
DEFAULT_DIR = ".venv"


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true",
                       help="print nothing but errors and warnings (and --format json)")
    group.add_argument("-v", "--verbose", action="store_true",
                       help="say which tool runs, and show progress even when not on a "
                            "terminal (on standard error)")


def _cmd_create(args: argparse.Namespace) -> int:
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
    )
    if args.from_file:
        from layervenv.commands.create_from import create_from

        result = create_from(options, args.from_file, args.allow_stack_drift, _sources(args),
                             args.trust_setup)
    else:
        _refuse_without_from(args)
        result = create(options)
    emit(result, args.format)
    return 0


def _refuse_without_from(args: argparse.Namespace) -> None:
    """Options that only ``--from`` reads: given alone, they would be ignored silently."""
    if args.allow_stack_drift or args.trust_setup:
        flag = "--allow-stack-drift" if args.allow_stack_drift else "--trust-setup"
        raise UserError(f"{flag} needs --from FILE")
    if args.find_links or args.index_url:
        raise UserError("--find-links and --index-url are for --from FILE: create alone "
                        "installs only pip, from the interpreter's bundled wheel")


def _add_sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--find-links", metavar="DIR_OR_URL", action="append", default=[],
                        help="where pip also looks for wheels (repeatable; passed to pip)")
    parser.add_argument("--index-url", metavar="URL", help="package index for pip")


def _sources(args: argparse.Namespace):
    from layervenv.services.packages import Sources

    return Sources(find_links=tuple(args.find_links), index_url=args.index_url)


def _cmd_lock(args: argparse.Namespace) -> int:
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


def _cmd_rebase(args: argparse.Namespace) -> int:
    from layervenv.commands.rebase import rebase

    emit(rebase(args.dir, args.setup, args.python, _sources(args)), args.format)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from layervenv.commands.run import run

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return run(args.dir, command)


def _cmd_pack(args: argparse.Namespace) -> int:
    from layervenv.commands.pack import pack

    emit(pack(args.dir, args.output), args.format)
    return 0


def _cmd_shell(args: argparse.Namespace) -> int:
    from layervenv.commands.shell import shell

    return shell(args.dir)


def _cmd_list(args: argparse.Namespace) -> int:
    from layervenv.commands.list import list_layer

    result = list_layer(args.dir, shadowed_only=args.shadowed)
    emit(result, args.format)
    for warning in result.warnings:
        print(f"layervenv: warning: {warning}", file=sys.stderr)
    return 0


def _cmd_install(args: argparse.Namespace) -> int:
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


def _positive_seconds(text: str) -> float:
    """A time limit: a number of seconds above 0 (argparse reports anything else)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0: {text!r}")
    return value


def _cmd_check(args: argparse.Namespace) -> int:
    from layervenv.commands.check import check_layer

    result = check_layer(args.dir, imports=args.imports, import_timeout=args.import_timeout)
    emit(result, args.format)
    return 0 if result.ok else 1


def _cmd_kernel_install(args: argparse.Namespace) -> int:
    from layervenv.commands.kernel import InstallOptions, install

    location = "sys-prefix" if args.sys_prefix else "prefix" if args.prefix else "user"
    emit(install(InstallOptions(
        directory=args.dir, name=args.name, display_name=args.display_name, location=location,
        prefix=args.prefix, install_ipykernel=args.install_ipykernel, sources=_sources(args),
    )), args.format)
    return 0


def _cmd_kernel_list(args: argparse.Namespace) -> int:
    from layervenv.commands.kernel import list_kernels

    emit(list_kernels(), args.format)
    return 0


def _cmd_kernel_remove(args: argparse.Namespace) -> int:
    from layervenv.commands.kernel import remove

    emit(remove(args.name), args.format)
    return 0


def _add_kernel(sub: Any) -> None:
    """``kernel install|list|remove``."""
    kernel = sub.add_parser("kernel", help="the layer as a Jupyter kernel (install, list, remove)",
                            description="Jupyter kernels that start the layer over its stack, "
                                        "whatever environment the Jupyter server has.")
    verbs = kernel.add_subparsers(dest="kernel_command", metavar="ACTION")
    verbs.required = True
    install = verbs.add_parser(
        "install", help="write a kernelspec for the layer",
        description="Write a kernelspec whose launcher (DIR/bin/layervenv-kernel) leaves the "
                    "server's stacks, re-establishes the layer's own as activation does and "
                    "starts the layer's Python with ipykernel.")
    _add_active_dir(install)
    install.add_argument("--name", metavar="NAME",
                         help="kernel name (default: the layer's name, lowercase)")
    install.add_argument("--display-name", metavar="TEXT",
                         help="name shown by Jupyter (default: 'Python (layer NAME)')")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true",
                       help="in the user's Jupyter data directory (the default): "
                            "$JUPYTER_DATA_DIR/kernels or ~/.local/share/jupyter/kernels")
    where.add_argument("--sys-prefix", action="store_true",
                       help="in the layer's own prefix: DIR/share/jupyter/kernels")
    where.add_argument("--prefix", metavar="PATH", help="in PATH/share/jupyter/kernels")
    install.add_argument("--install-ipykernel", action="store_true",
                         help="install ipykernel into the layer when neither the layer nor "
                              "its stack has it")
    _add_sources(install)
    _add_format(install)
    install.set_defaults(func=_cmd_kernel_install)
    listing = verbs.add_parser("list", help="the layervenv kernels Jupyter finds, and whether "
                                            "they start",
                               description="List the layervenv kernelspecs where Jupyter looks "
                                           "($JUPYTER_PATH, the user directory, "
                                           "$VIRTUAL_ENV, /usr/local and /usr share/jupyter).")
    _add_format(listing)
    listing.set_defaults(func=_cmd_kernel_list)
    remove = verbs.add_parser("remove", help="remove a layervenv kernelspec",
                              description="Remove the layervenv kernelspec NAME (the first "
                                          "one where Jupyter looks); the layer is untouched.")
    remove.add_argument("name", metavar="NAME")
    _add_format(remove)
    remove.set_defaults(func=_cmd_kernel_remove)
    for parser in (kernel, install, listing, remove):
        parser.set_defaults(command_parser=parser)


def _cmd_demo(args: argparse.Namespace) -> int:
    from layervenv.commands.demo import demo

    return demo(workdir=args.workdir, keep=args.keep, python=args.python)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layervenv",
        description="A writable Python layer (a venv) on top of a read-only software stack: "
                    "your packages win, the stack stays importable and untouched.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"layervenv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    create = sub.add_parser("create", help="create a layer over the stack set up in this shell",
                            description="Create a layer DIR with the stack's python3 "
                                        "(the first on PATH) or --python.")
    create.add_argument("dir", metavar="DIR", nargs="?", default=DEFAULT_DIR,
                        help=f"directory of the new layer (default: {DEFAULT_DIR}, as uv)")
    create.add_argument("--python", metavar="PYTHON", help="interpreter to use: a path, a "
                        "command (python3.12) or a version (3.12: python3.12 on PATH); "
                        "default: the python3 first on PATH, i.e. the stack's")
    create.add_argument("--prompt", metavar="NAME",
                        help="prompt prefix when activated (default: DIR's name; "
                             "'.': the current directory's name, as venv)")
    create.add_argument("--system-site-packages", action="store_true",
                        help="accepted for habit's sake: a layer always sees the stack")
    create.add_argument("--clear", action="store_true", help="replace DIR if it is a layer")
    create.add_argument("--without-pip", action="store_true", help="do not install pip")
    create.add_argument("--export-pythonpath", action="store_true",
                        help="also put the layer's site-packages first on PYTHONPATH when "
                             "activated (for Pythons embedded in C++ programs)")
    create.add_argument("--no-prompt-hook", action="store_true",
                        help="no prompt hook: interactive shells do not move the layer's bin "
                             "back in front of PATH when something put other entries there")
    create.add_argument("--setup", metavar="CMD",
                        help="command that sets the stack up (e.g. 'asetup AnalysisBase,25.2.15'); "
                             "run once in a clean bash, its environment is recorded so that "
                             "activation and 'layervenv run' re-establish the stack")
    create.add_argument("--rerun-setup", action="store_true",
                        help="with --setup: activation re-runs CMD instead of replaying the "
                             "recorded environment (for stacks that define shell functions)")
    create.add_argument("--from", dest="from_file", metavar="FILE",
                        help="re-create the layer from a lock (layervenv lock): exactly the "
                             "locked versions, after checking the stack against the lock")
    create.add_argument("--allow-stack-drift", action="store_true",
                        help="with --from: proceed when the stack differs from the lock's")
    create.add_argument("--trust-setup", action="store_true",
                        help="with --from: run the lock's setup command (shown when refused); "
                             "needed unless a layer of yours beside DIR already uses it")
    _add_sources(create)
    _add_format(create)
    create.set_defaults(func=_cmd_create)

    lock = sub.add_parser("lock", help="write a PEP 751 pylock.toml of what the layer adds",
                          description="Lock the packages in the layer's own site-packages "
                                      "(not the stack's), with the stack's identity.")
    _add_active_dir(lock)
    lock.add_argument("-o", "--output", metavar="FILE",
                      help="the lock file (default: pylock.toml here; - for standard output)")
    _add_sources(lock)
    _add_format(lock)
    lock.set_defaults(func=_cmd_lock)

    rebase = sub.add_parser("rebase", help="move a layer onto another stack (new release)",
                            description="Re-create the layer's requested packages on another "
                                        "stack beside it, and swap it in only when complete.")
    _add_active_dir(rebase)
    rebase.add_argument("--setup", metavar="CMD", help="command that sets the new stack up")
    rebase.add_argument("--python", metavar="PYTHON",
                        help="the new stack's interpreter (a path, command or version)")
    _add_sources(rebase)
    _add_format(rebase)
    rebase.set_defaults(func=_cmd_rebase)

    run = sub.add_parser("run", help="run a command in the stack plus the layer, no activation",
                         usage="layervenv run [-h] DIR -- COMMAND [ARGS...]",
                         description="Run COMMAND with the layer (and its recorded stack, when "
                                     "not set up) in the environment. Exit status and signals "
                                     "pass through.")
    run.add_argument("dir", metavar="DIR", help="the layer")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]",
                     help="the command to run")
    run.set_defaults(func=_cmd_run)

    packing = sub.add_parser("pack",
                             help="one archive of the layer for batch jobs (Slurm, HTCondor)",
                             description="Pack the layer into a .tar.gz that a job unpacks "
                                         "anywhere: tar -xzf FILE -C DEST, then "
                                         "DEST/NAME/bin/layervenv-run COMMAND [ARGS...]. "
                                         "Editable projects are packed as a snapshot of "
                                         "their current code.")
    _add_active_dir(packing)
    packing.add_argument("-o", "--output", metavar="FILE",
                         help="the archive (default: NAME.tar.gz in the current directory)")
    _add_format(packing)
    packing.set_defaults(func=_cmd_pack)

    shell_ = sub.add_parser("shell", help="start your shell with the layer activated",
                            description="Start your shell ($SHELL: bash, zsh, fish, tcsh, "
                                        "csh, ksh or sh) interactively, after its own start-up "
                                        "files, with the layer activated; exit returns here. "
                                        "Exit status: the shell's.")
    _add_active_dir(shell_)
    shell_.set_defaults(func=_cmd_shell)

    listing = sub.add_parser("list", help="every distribution the layer sees, and where from",
                             description="List every distribution the layer's interpreter "
                                         "sees: the copy that wins, its origin (layer, "
                                         "editable, user-site, stack), its location and the "
                                         "copies it shadows.")
    _add_active_dir(listing)
    listing.add_argument("--shadowed", action="store_true",
                         help="only names with more than one copy")
    _add_format(listing)
    listing.set_defaults(func=_cmd_list)

    installing = sub.add_parser(
        "install", help="install packages into the layer, only what the stack lacks",
        usage="layervenv install [-h] [DIR] PKG... [--installer pip|uv] [options]",
        description="Install PKG... into the layer: only what the layer and its stack do not "
                    "already provide at an acceptable version; dependencies are not marked "
                    "as requested. The first word is DIR when it is a directory or a path "
                    "(default: the active layer).")
    installing.add_argument("args", metavar="[DIR] PKG", nargs="+",
                            help="the layer (optional), then requirements (NAME, "
                                 "'NAME>=VERSION', ...)")
    installing.add_argument("--installer", choices=("pip", "uv"), default="pip",
                            help="pip (default: the layer's own) or uv (on PATH), which is "
                                 "made to see the stack")
    _add_sources(installing)
    _add_format(installing)
    installing.set_defaults(func=_cmd_install)

    check = sub.add_parser("check", help="what will break: conflicts, ABI, leaks, stack",
                           description="Check the layer before anything is imported: "
                                       "requirement conflicts, compiled stack packages whose "
                                       "dependency the layer shadows, ~/.local leaks, the "
                                       "current directory on PYTHONPATH, another Python's or "
                                       "a missing stack. Exit 1 when there is an error.")
    _add_active_dir(check)
    check.add_argument("--imports", action="store_true",
                       help="also import the modules of every distribution the layer's "
                            "changes reach, in the layer's interpreter (this runs their code)")
    check.add_argument("--import-timeout", metavar="SECONDS", type=_positive_seconds,
                       default=60.0, help="time limit of one distribution's imports "
                                          "(default: 60)")
    _add_format(check)
    check.set_defaults(func=_cmd_check)

    demo = sub.add_parser("demo",
                          help="show the problem and the fix on a simulated stack (offline)",
                          description="Build a simulated read-only stack, show a plain venv "
                                      "failing on it, then a layer succeeding.")
    demo.add_argument("--workdir", metavar="DIR", help="where to build (default: a temp dir)")
    demo.add_argument("--keep", action="store_true", help="keep the demo directory")
    demo.add_argument("--python", metavar="PATH", help="interpreter of the simulated stack")
    demo.set_defaults(func=_cmd_demo)
    from layervenv.commands.completion import add_completion_parser

    add_completion_parser(sub, build_parser)
    for command in sub.choices.values():
        _add_verbosity(command)
        command.set_defaults(command_parser=command)
    _add_kernel(sub)
    return parser


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; an unknown option is reported with its command's usage.

    (argparse reports it with the top-level usage, which does not show the options
    the command has.)
    """
    args, unknown = build_parser().parse_known_args(argv)
    if args.command == "install":  # PKG... after an option: argparse leaves them over
        args.args += [word for word in unknown if not word.startswith("-")]
        unknown = [word for word in unknown if word.startswith("-")]
    if unknown:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def set_verbosity(args: argparse.Namespace) -> None:
    """``-q``/``-v`` for the output module; ``-v`` names the tool on standard error."""
    from layervenv.infra.output import VERBOSITY

    VERBOSITY.quiet = bool(getattr(args, "quiet", False))
    VERBOSITY.verbose = bool(getattr(args, "verbose", False))
    if VERBOSITY.verbose:
        from layervenv.infra.toolhome import package_home

        print(f"layervenv: layervenv {__version__} from {package_home()}, Python "
              f"{sys.version.split()[0]} ({sys.executable})", file=sys.stderr)


def demote_pythonpath() -> None:
    """Put this process's PYTHONPATH entries behind its own site-packages.

    The tool runs in shells where a stack is set up, and a stack's PYTHONPATH may
    hold old or broken copies of the tool's own dependencies (``packaging``,
    ``tomli``).  The tool never needs the stack's packages itself -- it inspects
    the stack through the stack's interpreter -- so they go to the back.
    """
    value = os.environ.get("PYTHONPATH")
    if not value or sys.flags.ignore_environment:
        return
    entries = {os.path.abspath(e) for e in value.split(os.pathsep)}
    front = [p for p in sys.path if os.path.abspath(p) not in entries]
    back = [p for p in sys.path if os.path.abspath(p) in entries]
    sys.path[:] = front + back


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user errors are one line on stderr and exit code 2.

    Ctrl-C is one line and exit status 130 (SIGTERM 143, SIGHUP 129) from the moment
    this function runs; this module imports as little as possible so that that moment
    comes early (an interrupt while the interpreter itself starts up is Python's to
    report).
    """
    try:
        handle_interrupts()
        demote_pythonpath()
        args = parse_arguments(argv)
        set_verbosity(args)
        status = int(args.func(args) or 0)
        ignore_interrupts()
        return status
    except UserError as error:
        print(f"layervenv: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        return interrupted(interrupt)
    except RuntimeError as error:
        # Python <= 3.11 wraps what __set_name__ raises while a class is made (dataclass
        # fields, when a command's module is imported): an interrupt landing then
        cause = error.__cause__
        if isinstance(cause, KeyboardInterrupt):
            return interrupted(cause)
        raise
    except BrokenPipeError:
        return reader_went_away()
    except UnicodeError as error:  # a path in another encoding (bytes that are not UTF-8)
        text = error.object[error.start:error.end] if isinstance(
            error, (UnicodeEncodeError, UnicodeDecodeError)) else ""
        print(f"layervenv: error: a path or name that is not valid UTF-8 ({text!r}); "
              f"layers, their scripts and their records name paths in UTF-8: rename it",
              file=sys.stderr)
        return 2


def interrupted(interrupt: KeyboardInterrupt) -> int:
    """Ctrl-C, SIGTERM or SIGHUP: one line, and the status a shell shows for it."""
    ignore_interrupts()  # a second Ctrl-C: no traceback
    stop = interrupt if isinstance(interrupt, Interrupted) else Interrupted()
    print(f"layervenv: {stop.message()}", file=sys.stderr)
    return stop.status


#: The status of a command killed by SIGPIPE, as a shell shows it (128 + 13).
SIGPIPE_STATUS = 141


def reader_went_away() -> int:
    """Standard output's reader closed it (``layervenv list | head``): end quietly.

    Python ignores SIGPIPE, so the write raised instead of ending the process as it
    would end ``cat``; without this, a traceback, and another when Python flushes
    standard output at exit.  What has been done stays done; the status is the one a
    shell shows for a command the pipe ended.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return SIGPIPE_STATUS


if __name__ == "__main__":
    raise SystemExit(main())
