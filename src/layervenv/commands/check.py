"""``layervenv check [DIR]``: what will break, before anything is imported.

Problems come from the layer's effective view (see ``inspection``), PYTHONPATH as
the layer's interpreter sees it, and the stack recorded in ``layervenv.toml``; with
``--imports``, also from importing what the layer's changes reach (``importcheck``).
The checks are the one registry of :mod:`layervenv.inspection.checks`, which
``rebase``, ``create --from`` and ``demo`` run too.
Exit status 0 when there is no error (warnings allowed), 1 when there is one.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from layervenv.infra.arguments import add_active_dir, add_format, positive_seconds
from layervenv.inspection.checks import CheckResult, run_checks
from layervenv.model.layer import Layer

if TYPE_CHECKING:
    from layervenv.inspection.explain import Explanation

__all__ = ["CheckResult", "check_layer", "explain_name"]


def check_layer(directory: str | None, environ: dict[str, str] | None = None,
                imports: bool = False, import_timeout: float | None = None) -> CheckResult:
    """The layer's problems as it runs in ``environ`` (default: this process's); with
    ``imports``, also what fails to import (which runs the packages' code)."""
    return run_checks(Layer.from_argument(directory), environ, imports, import_timeout)


def explain_name(directory: str | None, name: str) -> Explanation:
    """Every copy of ``name`` on the layer's sys.path, which one wins and why (imported
    here: a plain ``check`` does without it)."""
    from layervenv.inspection.explain import explain

    return explain(Layer.from_argument(directory), name)


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv check``'s options and help."""
    parser = commands.add_parser(
        "check", help="what will break: conflicts, ABI, leaks, stack",
        description="Check the layer before anything is imported: requirement conflicts, "
                    "compiled stack packages whose dependency the layer shadows, ~/.local "
                    "leaks, the current directory on PYTHONPATH, another Python's or a "
                    "missing stack. Exit 1 when there is an error.")
    add_active_dir(parser)
    parser.add_argument("--imports", action="store_true",
                        help="also import the modules of every distribution the layer's "
                             "changes reach, in the layer's interpreter (this runs their code)")
    parser.add_argument("--import-timeout", metavar="SECONDS", type=positive_seconds,
                        default=60.0, help="time limit of one distribution's imports "
                                           "(default: 60)")
    parser.add_argument("--explain", metavar="NAME",
                        help="say instead where NAME (a distribution or a top-level module) "
                             "is on the layer's sys.path: every copy in order, which one "
                             "wins and why (the layer's boot hook, PYTHONPATH, the "
                             "interpreter's site-packages, a .pth file, an editable finder, "
                             "the user site), and what pip list sees; exit 1 when nothing "
                             "is found")
    add_format(parser)
    return parser
