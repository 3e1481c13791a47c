"""A layer inspected: the effective view and every problem found without importing.

``inspect_layer`` runs the layer's interpreter once, in the environment the layer runs
with (:func:`~layervenv.runtime.environment.layer_environment`), and builds its effective view
(``effective_view``); :meth:`Inspection.problems` runs every check that needs no more
than that view, PYTHONPATH as the interpreter saw it, and the stack recorded in
``layervenv.toml``:

``layer_problems``    moved (``leftover`` needs no interpreter: ``checks`` adds it);
``stack_problems``    stack-missing, unreadable, python-mismatch, stack-not-set-up,
                      cwd-on-path;
``package_problems``  conflict, metadata, user-site;
``breakage``          dependents, abi;
``shadows_stdlib``    shadows-stdlib.

The registry of :mod:`layervenv.inspection.checks` adds ``leftover``,
``kernel-broken`` (``kernel_check``) and, with ``--imports``, ``import`` (``importcheck``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from layervenv.infra.errors import UserError
from layervenv.inspection.breakage import dependents_problems
from layervenv.inspection.effective_view import (
    Distribution,
    Origins,
    Unreadable,
    copies_in_path_order,
    effective_view,
    run_probe,
    unreadable_paths,
)
from layervenv.inspection.layer_problems import moved_problems
from layervenv.inspection.package_problems import (
    requirement_problems,
    side_by_side_problems,
    user_site_problems,
)
from layervenv.inspection.problems import Problem, sort_problems
from layervenv.inspection.shadows_stdlib import shadows_stdlib_problems
from layervenv.inspection.stack_problems import (
    cwd_problems,
    python_mismatch_problems,
    stack_missing_problems,
    stack_not_set_up_problems,
    unreadable_problems,
)
from layervenv.model.layer import Layer
from layervenv.model.stack import StackRecord
from layervenv.runtime.activation import describe_stack
from layervenv.runtime.environment import layer_environment


@dataclass
class Inspection:
    """A layer inspected: its effective view (when its interpreter runs) and problems."""

    layer: Layer
    record: StackRecord
    environ: dict[str, str]
    report: dict[str, Any] | None
    view: list[Distribution]
    missing: list[Problem]

    @property
    def unreadable(self) -> list[Unreadable]:
        return unreadable_paths(self.report) if self.report else []

    @property
    def python_version(self) -> str:
        return self.report["version"] if self.report else self.record.python_version

    def problems(self) -> list[Problem]:
        problems = moved_problems(self.layer) + list(self.missing)
        if self.report is None:
            pythonpath = self.environ.get("PYTHONPATH")
            user_roots: list[str] = []
        else:
            pythonpath = self.report.get("pythonpath")
            user_roots = Origins(self.layer, self.report).user_roots
        problems += python_mismatch_problems(
            self.record, describe_stack(self.layer),
            self.report["version"] if self.report else None, pythonpath, self.environ,
            user_roots)
        problems += stack_not_set_up_problems(self.record, self.environ)
        problems += cwd_problems(pythonpath)
        if self.report is not None:
            conflicts, edges = requirement_problems(self.view, self.report["markers"])
            problems += conflicts
            problems += dependents_problems(self.view, edges, self.report["markers"])
            problems += user_site_problems(self.view)
            problems += unreadable_problems(self.unreadable, self.record)
            problems += side_by_side_problems(self.view)
            problems += shadows_stdlib_problems(self.view, self.report)
        return sort_problems(problems)


def inspect_layer(layer: Layer, environ: dict[str, str] | None = None,
                  need_interpreter: bool = False) -> Inspection:
    """Inspect ``layer`` as it runs in ``environ`` (default: this process's environment).

    When the interpreter is gone, there is nothing to probe: the inspection holds the
    ``stack-missing`` problems only, or, with ``need_interpreter``, raises a UserError.
    """
    environ = dict(os.environ if environ is None else environ)
    record = layer.config.stack
    missing = stack_missing_problems(record, layer)
    env = layer_environment(layer, environ, "inspect")
    if not layer.python.exists():
        if need_interpreter:
            raise UserError(missing[0].message if missing else
                            f"the interpreter of this layer is gone: {layer.python}")
        return Inspection(layer, record, env, None, [], missing)
    report = run_probe(layer, env)
    view = effective_view(copies_in_path_order(layer, report))
    return Inspection(layer, record, env, report, view, missing)
