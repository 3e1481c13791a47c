"""The tool's own process, isolated from the stack it serves.

The tool runs in shells where a stack is set up: PYTHONPATH may hold old copies of
its own dependencies (``packaging`` 21, an old ``tomli``) and a ``sitecustomize``
that prints.  None of that may reach the tool: the console entry point starts the
tool again with ``-I`` (ignore PYTHON* variables and the user site) before it
imports any dependency, when the environment has something to ignore.  The
interpreter's *environment* is not changed: the layers and commands the tool runs
get PYTHONPATH and every other variable exactly as the user's shell has them.

What a ``sitecustomize`` printed before the tool got control, and did not flush, is
dropped: ``exec`` replaces the process without flushing Python's buffers.  Output
it flushed (or wrote to a terminal, which is line-buffered) has been written and
stays written; ``layervenv.pyz`` run as ``./layervenv.pyz`` never starts Python
without ``-I -S``, so there nothing of the stack's runs at all.

This module imports nothing but the standard library: it runs before the tool's
dependencies are safe to import.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from layervenv.infra.toolhome import tool_argv

#: Variables that change what the tool's own interpreter imports.
STACK_VARIABLES = ("PYTHONPATH", "PYTHONHOME")

def needs_isolation(environ: Mapping[str, str] | None = None) -> bool:
    """True when the interpreter may have read something of the stack's."""
    if sys.flags.isolated or not sys.executable:
        return False
    environ = os.environ if environ is None else environ
    return any(environ.get(name) for name in STACK_VARIABLES)


def isolate(argv: Sequence[str] | None = None) -> None:
    """Start the tool again with ``-I`` if this interpreter may have read the stack's
    PYTHONPATH; return only when it did not (nothing to ignore, or already isolated)."""
    if not needs_isolation():
        return
    args = list(sys.argv[1:] if argv is None else argv)
    command = tool_argv()
    try:
        os.execv(command[0], [*command, *args])
    except OSError:  # no usable interpreter path: run as we are (demote_pythonpath helps)
        return


def console() -> None:
    """The ``layervenv`` console script and ``python -m layervenv``."""
    isolate()
    from layervenv.app.main import main

    raise SystemExit(main())
