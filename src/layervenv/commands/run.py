"""``layervenv run DIR -- COMMAND``: the stack plus the layer, without a shell.

For batch jobs, cron and CI: the environment is computed in Python from the same
model the activation scripts are rendered from, then COMMAND replaces this
process (``exec``), so its exit status, signals and standard streams are its own.
It is found and started as ``env`` (``execvp``) does it: along the new PATH, and an
executable file without ``#!`` is run by ``/bin/sh``; but a file whose ``#!``
interpreter is missing ends the search, as in a shell, rather than letting another
command of that name run.
"""

from __future__ import annotations

import errno
import os
import shlex
import signal

from layervenv.infra.errors import CommandNotExecutable, CommandNotFound, UserError
from layervenv.model.layer import Layer
from layervenv.runtime.activation import (
    layer_changes,
    require_layer_stack,
    stack_changes,
    without_active_environment,
)
from layervenv.runtime.envchange import apply_to


def run_environment(layer: Layer, environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with the layer activated (and its stack, where it is not set up).

    A layer or venv active in ``environ`` is left out first, as activating this layer
    in that shell would deactivate it.
    """
    environ = without_active_environment(environ)
    require_layer_stack(layer, environ)
    changes = list(stack_changes(layer, environ)) + list(layer_changes(layer))
    return apply_to(changes, environ)


#: Signals Python ignores at start-up; an ignored signal stays ignored across exec, so
#: COMMAND would get them ignored too (``yes | head`` would print "Broken pipe" and exit 1
#: instead of ending quietly on SIGPIPE).  ``subprocess`` resets the same ones.
RESET_SIGNALS = ("SIGPIPE", "SIGXFSZ")


def restore_default_signals() -> None:
    """Give COMMAND the signal dispositions it would have been started with by a shell."""
    for name in RESET_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_DFL)


def candidates(name: str, path: str) -> list[str]:
    """Where ``execvp`` looks for ``name``: itself if it has a ``/``, else along ``path``.

    An empty PATH entry is the current directory, as for a shell.
    """
    if "/" in name:
        return [name]
    return [os.path.join(entry or ".", name) for entry in path.split(os.pathsep)]


def exec_command(command: list[str], env: dict[str, str]) -> None:
    """Replace this process with ``command``; return only by raising a UserError.

    Like ``execvp``: the first candidate that can be executed wins; one that exists
    but cannot be run (no permission, a directory) is remembered (exit 126) while
    the search goes on; a file the kernel cannot execute (no ``#!``) is a shell script.
    """
    quoted = shlex.quote(command[0])
    denied: OSError | None = None
    for candidate in candidates(command[0], env.get("PATH", os.defpath)):
        try:
            os.execve(candidate, command, env)
        except OSError as error:
            if error.errno == errno.ENOEXEC:
                _exec_with_sh(candidate, command, env)
            if error.errno == errno.ENOENT and os.path.isfile(candidate):
                _refuse_missing_interpreter(candidate, command[0])
            if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
                continue
            denied = denied or error
    if denied is None:
        raise CommandNotFound(f"command not found: {quoted}")
    raise CommandNotExecutable(f"cannot run {quoted}: {denied.strerror}")


def _refuse_missing_interpreter(path: str, name: str) -> None:
    """``path`` is there but its ``#!`` interpreter is not: stop, as a shell does (126).

    ``execvp`` would go on along PATH and run another ``name`` -- for a layer's
    console script whose Python is gone, the stack's or the system's pip, installing
    into the wrong place without a word.
    """
    try:
        with open(path, "rb") as handle:
            first = handle.readline(4096)
    except OSError:
        first = b""
    interpreter = first[2:].split()[0].decode(errors="replace") if first.startswith(
        b"#!") and first[2:].split() else "its interpreter"
    raise CommandNotExecutable(f"cannot run {shlex.quote(name)} ({path}): {interpreter} "
                               f"is missing (was the layer moved?)")


def _exec_with_sh(path: str, command: list[str], env: dict[str, str]) -> None:
    try:
        os.execve("/bin/sh", ["sh", path, *command[1:]], env)
    except OSError as error:
        raise CommandNotExecutable(f"cannot run {shlex.quote(command[0])} with /bin/sh: "
                                   f"{error.strerror}") from None


def run(directory: str, command: list[str]) -> int:
    if not command:
        raise UserError("no command given: layervenv run DIR -- COMMAND [ARGS...]")
    layer = Layer.from_argument(directory)
    moved_from = layer.moved_from()
    if moved_from is not None:
        # its console scripts name the old path: "pip" would be another Python's pip
        raise UserError(f"the layer {layer.root} was made in {moved_from} and cannot be used "
                        f"where it is now: re-create it (layervenv check {layer.root} says how)")
    # Always the recorded environment, also for --rerun-setup layers: shell functions
    # a setup defines are of no use to a command started with exec.
    env = run_environment(layer, dict(os.environ))
    restore_default_signals()
    exec_command(command, env)
    return 127  # not reached
