"""``layervenv check [DIR]``: what will break, before anything is imported.

Problems come from the layer's effective view (see ``inspection``), PYTHONPATH as
the layer's interpreter sees it, and the stack recorded in ``layervenv.toml``; with
``--imports``, also from importing what the layer's changes reach (``importcheck``).
Exit status 0 when there is no error (warnings allowed), 1 when there is one.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

from layervenv.infra.arguments import add_active_dir, add_format, positive_seconds
from layervenv.infra.output import count
from layervenv.inspection.importcheck import IMPORT_TIMEOUT, import_problems
from layervenv.inspection.kernel_check import kernel_problems
from layervenv.inspection.layer_problems import leftover_problems
from layervenv.inspection.pipeline import inspect_layer
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


def check_layer(directory: str | None, environ: dict[str, str] | None = None,
                imports: bool = False, import_timeout: float = IMPORT_TIMEOUT) -> CheckResult:
    """The layer's problems as it runs in ``environ`` (default: this process's); with
    ``imports``, also what fails to import (which runs the packages' code)."""
    layer = Layer.from_argument(directory)
    inspection = inspect_layer(layer, environ)
    leftovers = leftover_problems(layer)
    kernels = kernel_problems(layer, inspection.view if inspection.report else None,
                              dict(os.environ if environ is None else environ))
    problems = inspection.problems() + leftovers + kernels
    if imports:
        problems = problems + import_problems(inspection, import_timeout)
    return CheckResult(layer=str(layer.root), python_version=inspection.python_version,
                       problems=sort_problems(problems))


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
    add_format(parser)
    return parser
