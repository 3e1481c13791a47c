"""The environment a layer runs in, computed in Python: one function for every use.

``layervenv run`` (and ``lock`` and ``pack``, which run the layer's Python as ``run``
would), the inspection behind ``list``/``check``, and ``kernel install`` (which asks the
layer's Python, started as its kernel's launcher would start it, whether it finds
ipykernel) all start the layer's interpreter.  They differ only where the use does:

``run``      the layer activated, on its recorded stack where that is not set up; a stack
             that is gone, or another stack set up, is refused in one line;
``kernel``   as ``run``, after leaving every stack of ``environ`` that is not the layer's
             (what the launcher does first: a Jupyter server's environment is its own);
``inspect``  only the recorded stack, where neither it nor another stack is set up: the
             interpreter is looked at as it runs, and what ``run`` would refuse is a
             problem ``check`` reports, not a reason to stop.

Every one starts by leaving a layer or venv active in ``environ``, as activating this
layer in that shell would (a group layer of the stack, ``create --over``, is left too and
put back in its place, between the layer and the stack's PYTHONPATH, with the stack),
and applies the same change model the activation scripts
and the kernel launcher are rendered from (:mod:`layervenv.runtime.envchange`).
"""

from __future__ import annotations

from typing import Literal

from layervenv.model.layer import Layer
from layervenv.model.stack import foreign_site_packages
from layervenv.runtime.activation import (
    layer_changes,
    leave_other_stacks,
    over_changes,
    require_layer_stack,
    stack_changes,
    without_active_environment,
)
from layervenv.runtime.envchange import apply_to

#: the uses that differ (``lock`` and ``pack`` run the layer's Python as ``run`` does)
Purpose = Literal["run", "kernel", "inspect"]


def layer_environment(layer: Layer, environ: dict[str, str], purpose: Purpose) -> dict[str, str]:
    """``environ`` as the layer's interpreter gets it for ``purpose`` (see the module)."""
    stack = layer.config.stack
    environ = without_active_environment(
        environ, over=tuple(o.root for o in stack.over_layers()))
    if purpose == "kernel":
        environ = apply_to((leave_other_stacks(layer),), environ)
    if purpose == "inspect":
        if foreign_site_packages(environ, stack.stack_pythonpath()):
            return environ  # activation would refuse; the interpreter runs as it is
        return apply_to(stack_changes(layer, environ) + over_changes(stack), environ)
    require_layer_stack(layer, environ)
    return apply_to(stack_changes(layer, environ) + layer_changes(layer), environ)
