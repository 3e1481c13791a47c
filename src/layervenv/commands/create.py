"""``layervenv create DIR``: a new layer over the stack, all or nothing.

The engine (staging, the swap, carrying the user's files over) is
:mod:`layervenv.services.staging`, which ``create --from``, ``rebase`` and ``demo`` use
too; this command is its entry.
"""

from __future__ import annotations

from layervenv.services.staging import CreateOptions, CreateResult, create

__all__ = ["CreateOptions", "CreateResult", "create"]
