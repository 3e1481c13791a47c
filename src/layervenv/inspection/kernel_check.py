"""``kernel-broken``: a layer's Jupyter kernel that will not start, found before a user
clicks on it.

A kernelspec outlives its layer: it sits in ``~/.local/share/jupyter/kernels`` (or
another place a server reads, see :mod:`layervenv.model.kernelspec`) and keeps naming the
layer's path.  Static facts say whether the kernel can start (no interpreter is run):
the layer is there and was not moved, its launcher is there and was made for the stack
the layer stands on now (a layer rebased onto another Python by a layervenv that did not
make the launcher again, or whose launcher was deleted).  ``check`` adds the one fact
that needs the layer's interpreter: ipykernel is importable (a rebase onto a stack
without it loses a kernel that took it from the old stack).
"""

from __future__ import annotations

import os
from pathlib import Path

from layervenv.infra.errors import UserError
from layervenv.inspection.effective_view import Distribution
from layervenv.inspection.problems import Problem
from layervenv.model.kernelspec import KernelSpec, layer_kernels
from layervenv.model.layer import Layer
from layervenv.runtime.kernel_launcher import (
    expected_launcher_stack,
    launcher_path,
    launcher_stack,
)

KIND = "kernel-broken"


#: why a kernel cannot start: its layer is gone (moved or removed), ...
GONE, MOVED, NO_STUB, NO_LAUNCHER, STALE = "gone", "moved", "no-stub", "no-launcher", "stale"


def kernel_status(spec: KernelSpec) -> tuple[str, str] | None:
    """Why the kernel of ``spec`` cannot start, as (reason, words), or None."""
    root = Path(spec.layer or "")
    if not spec.argv or not os.path.isfile(spec.argv[0]):
        return NO_STUB, f"its launcher {spec.argv[0] if spec.argv else '(none)'} is missing"
    try:
        layer = Layer.open(root)
    except UserError:
        return GONE, f"its layer {root} is not there any more (moved or removed)"
    moved_from = layer.moved_from()
    if moved_from is not None:
        return MOVED, (f"its layer {root} was made in {moved_from} and cannot be used where "
                       f"it is now (re-create it)")
    launcher = launcher_path(layer)
    made_for = launcher_stack(launcher)
    if made_for is None:
        return NO_LAUNCHER, f"the layer has no kernel launcher ({launcher})"
    if made_for != expected_launcher_stack(layer):
        old = made_for.split(" ")[0]
        new = layer.config.stack.python_version
        what = f"Python {old}, the layer is now on Python {new}" if old != new else \
            "another stack than the layer's now"
        return STALE, f"its launcher {launcher} was made for {what} (the layer was rebased)"
    return None


def _same(one: str, other: Path) -> bool:
    if os.path.normpath(one) == os.path.normpath(str(other)):
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def kernel_problems(layer: Layer, view: list[Distribution] | None,
                    environ: dict[str, str]) -> list[Problem]:
    """The kernels of ``layer`` that will not start (errors), and kernels of layers that
    are gone (warnings: they are not this layer's, but they are broken in this user's
    Jupyter).  ``view`` is the layer's effective view (None: its interpreter did not run)."""
    problems = []
    moved_from = layer.moved_from()
    for spec in layer_kernels(environ):
        where = f"kernel {spec.name!r} ({spec.directory})"
        fix = (f"install it again: layervenv kernel install {layer.root} --name {spec.name}")
        if spec.layer is not None and moved_from is not None and _same(spec.layer, Path(
                moved_from)):
            problems.append(Problem(KIND, "error", f"{where} starts the layer in {moved_from}, "
                                    f"where this layer was made before it was moved here: "
                                    f"re-create the layer (see 'moved'), then {fix}"))
            continue
        if spec.layer is not None and _same(spec.layer, layer.root):
            found = kernel_status(spec)
            status = found[1] if found else None
            if status is None and view is not None and not any(
                    d.key == "ipykernel" for d in view):
                status = ("ipykernel is not importable by the layer's Python any more (was "
                          "the layer rebased onto a stack without it?); add it: "
                          f"{layer.python} -m pip install ipykernel")
                fix = ""
            if status is not None:
                problems.append(Problem(KIND, "error",
                                        f"{where} will not start: {status}" +
                                        (f"; {fix}" if fix else "")))
            continue
        found = kernel_status(spec)
        if found is not None and found[0] == GONE:
            problems.append(Problem(KIND, "warning", f"{where} will not start: {found[1]}; "
                                    f"remove it: layervenv kernel remove {spec.name}"))
    return problems
