"""The tool's entry: parse (:mod:`layervenv.app.parser`), run (:mod:`layervenv.app.runners`),
and the exit policy: user errors, interrupts, a closed pipe, paths that are not UTF-8."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from layervenv import __version__
from layervenv.app.parser import build_parser
from layervenv.app.runners import RUNNERS
from layervenv.infra.errors import UserError
from layervenv.infra.interrupts import Interrupted, handle_interrupts, ignore_interrupts

if TYPE_CHECKING:
    from collections.abc import Sequence


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; an unknown option is reported with its command's usage.

    (argparse reports it with the top-level usage, which does not show the options
    the command has.)
    """
    words = sys.argv[1:] if argv is None else list(argv)
    args, unknown = build_parser(RUNNERS, words).parse_known_args(words)
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
