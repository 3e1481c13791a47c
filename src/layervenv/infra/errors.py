"""Errors that are the user's to fix: shown as one line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can act on; ``str(error)`` is the whole message."""

    exit_code = 2


class LayerNotFound(UserError):
    """The directory given (or ``VIRTUAL_ENV``) is not a layer."""


class CommandNotFound(UserError):
    """``layervenv run``: the command does not exist (the shell's exit status)."""

    exit_code = 127


class CommandNotExecutable(UserError):
    """``layervenv run``: the command exists but cannot be run."""

    exit_code = 126
