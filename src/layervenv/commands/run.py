"""``layervenv run DIR -- COMMAND``: the stack plus the layer, without a shell.

For batch jobs, cron and CI: the environment is computed in Python from the same
model the activation scripts are rendered from, then COMMAND replaces this
process (``exec``), so its exit status, signals and standard streams are its own.
"""

from __future__ import annotations

import os
import shlex

from layervenv.activation import (
    check_stack,
    layer_changes,
    stack_changes,
    without_active_environment,
)
from layervenv.envchange import apply_to
from layervenv.errors import CommandNotExecutable, CommandNotFound, UserError
from layervenv.layer import Layer


def run_environment(layer: Layer, environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with the layer activated (and its stack, where it is not set up).

    A layer or venv active in ``environ`` is left out first, as activating this layer
    in that shell would deactivate it.
    """
    environ = without_active_environment(environ)
    check_stack(layer, environ)
    changes = list(stack_changes(layer, environ)) + list(layer_changes(layer))
    return apply_to(changes, environ)


def run(directory: str, command: list[str]) -> int:
    if not command:
        raise UserError("no command given: layervenv run DIR -- COMMAND [ARGS...]")
    layer = Layer.from_argument(directory)
    # Always the recorded environment, also for --rerun-setup layers: shell functions
    # a setup defines are of no use to a command started with exec.
    env = run_environment(layer, dict(os.environ))
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        raise CommandNotFound(f"command not found: {shlex.quote(command[0])}") from None
    except PermissionError:
        raise CommandNotExecutable(f"permission denied: {shlex.quote(command[0])}") from None
    return 127  # not reached
