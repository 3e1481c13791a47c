"""POSIX shell quoting, on its own: shared by the ``sh`` activation renderer, the kernel
launcher, kernelspecs and tool shims, so that what only needs to quote a path does not
load the shell renderers (``check`` reads kernelspecs; it renders no script)."""

from __future__ import annotations


def quote(value: str) -> str:
    """Single-quote ``value`` for any POSIX shell (a ``'`` becomes ``'\\''``)."""
    return "'" + value.replace("'", "'\\''") + "'"
