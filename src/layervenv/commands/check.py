"""``layervenv check [DIR]``: what will break, before anything is imported.

Problems come from the layer's effective view (see ``inspection``), PYTHONPATH as
the layer's interpreter sees it, and the stack recorded in ``layervenv.toml``; with
``--imports``, also from importing what the layer's changes reach (``importcheck``).
The checks are the one registry of :mod:`layervenv.inspection.checks`, which
``rebase``, ``create --from`` and ``demo`` run too.
Exit status 0 when there is no error (warnings allowed), 1 when there is one.
"""

from __future__ import annotations

from layervenv.inspection.checks import CheckResult, run_checks
from layervenv.inspection.importcheck import IMPORT_TIMEOUT
from layervenv.model.layer import Layer

__all__ = ["CheckResult", "check_layer"]


def check_layer(directory: str | None, environ: dict[str, str] | None = None,
                imports: bool = False, import_timeout: float = IMPORT_TIMEOUT) -> CheckResult:
    """The layer's problems as it runs in ``environ`` (default: this process's); with
    ``imports``, also what fails to import (which runs the packages' code)."""
    return run_checks(Layer.from_argument(directory), environ, imports, import_timeout)
