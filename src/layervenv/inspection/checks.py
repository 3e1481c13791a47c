"""The one registry of checks: what ``check``, ``rebase``, ``create --from`` and ``demo`` run.

Every check takes the layer inspected once (:func:`inspect_layer`) and gives problems:

``view``      what needs the layer's interpreter and its effective view (see ``pipeline``);
``leftover``  what interrupted runs left beside or inside the layer (``layer_problems``);
``kernels``   the layer's Jupyter kernels that will not start (``kernel_check``);
``index``     the import index switched off or stale (``import_index``);
``bytecode``  packages without bytecode for the layer's interpreter (``layer_problems``);
``path``      PYTHONPATH entries that cost lookups and hold nothing (``path_hygiene``);
``imports``   with ``imports``: what fails to import (``importcheck``; runs packages' code).

A layer checked while it is staged (``rebase``) is checked for the path it will have
(``shown_as``): its leftovers and kernels are those of that path, and its problems are
written with it, so that they compare with the old layer's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from layervenv.infra.output import count
from layervenv.inspection.import_index import import_index_problems
from layervenv.inspection.kernel_check import kernel_problems
from layervenv.inspection.layer_problems import bytecode_problems, leftover_problems
from layervenv.inspection.path_hygiene import path_problems
from layervenv.inspection.pipeline import Inspection, inspect_layer
from layervenv.inspection.problems import Problem, sort_problems
from layervenv.model.layer import Layer


@dataclass
class CheckResult:
    layer: str
    python_version: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": [p.to_json() for p in self.problems]}

    def human(self) -> str:
        if not self.problems:
            return f"no problems in layer {self.layer} (Python {self.python_version})"
        width = max(len(p.kind) for p in self.problems)
        lines = [f"{p.severity:<7}  {p.kind:<{width}}  {p.message}" for p in self.problems]
        errors = sum(p.severity == "error" for p in self.problems)
        warnings = len(self.problems) - errors
        lines.append(f"{count(errors, 'error')}, {count(warnings, 'warning')} "
                     f"in layer {self.layer}")
        return "\n".join(lines)

    def lines(self) -> list[str]:
        """One line a problem, as ``rebase`` and ``create --from`` report them."""
        return [f"{p.severity}: {p.kind}: {p.message}" for p in self.problems]


@dataclass
class Checked:
    """What a check sees: the layer inspected, and the layer as it will be found."""

    inspection: Inspection
    #: the layer at the path it has for the user (``shown_as``, else where it is)
    located: Layer
    environ: dict[str, str]


def _view(checked: Checked) -> list[Problem]:
    return checked.inspection.problems()


def _leftovers(checked: Checked) -> list[Problem]:
    return leftover_problems(checked.located)


def _kernels(checked: Checked) -> list[Problem]:
    inspection = checked.inspection
    return kernel_problems(checked.located, inspection.view if inspection.report else None,
                           checked.environ)


def _index(checked: Checked) -> list[Problem]:
    return import_index_problems(checked.located, checked.environ)


def _bytecode(checked: Checked) -> list[Problem]:
    report = checked.inspection.report
    return bytecode_problems(checked.inspection.layer, report.get("cache_tag") if report else None)


def _path(checked: Checked) -> list[Problem]:
    inspection = checked.inspection  # its environ: the one the layer's processes run in
    return path_problems(inspection.layer, inspection.record, inspection.environ)


#: every check that runs without importing the layer's packages, in this order
CHECKS: tuple[Callable[[Checked], list[Problem]], ...] = (_view, _leftovers, _kernels, _index,
                                                          _bytecode, _path)


def run_checks(layer: Layer, environ: dict[str, str] | None = None, imports: bool = False,
               import_timeout: float | None = None,
               shown_as: Path | None = None) -> CheckResult:
    """The problems of ``layer`` as it runs in ``environ`` (default: this process's): every
    check of :data:`CHECKS` and, with ``imports``, what fails to import (each
    distribution's imports limited to ``import_timeout`` seconds, default
    :data:`~layervenv.inspection.importcheck.IMPORT_TIMEOUT`).  ``shown_as``: see the
    module's text."""
    environ = dict(os.environ if environ is None else environ)
    inspection = inspect_layer(layer, environ)
    located = layer if shown_as is None else Layer(
        root=shown_as, config=replace(layer.config, path=str(shown_as)))
    checked = Checked(inspection, located, environ)
    problems = [p for check in CHECKS for p in check(checked)]
    if imports:  # imported here: a check without --imports does without it
        from layervenv.inspection.importcheck import IMPORT_TIMEOUT, import_problems

        problems += import_problems(inspection, import_timeout or IMPORT_TIMEOUT)
    if shown_as is not None:
        problems = [replace(p, message=p.message.replace(str(layer.root), str(shown_as)))
                    for p in problems]
    return CheckResult(layer=str(located.root), python_version=inspection.python_version,
                       problems=sort_problems(problems))


def problems_line(problems: list[str] | None) -> str:
    """What ``create --from`` and ``rebase`` say of the problems the checks found."""
    if problems is None:
        return "check: not available (layervenv check is not installed)"
    if not problems:
        return "check: no problems"
    return "check found problems:\n" + "\n".join("  " + p for p in problems)
