"""``layervenv list``: every distribution the layer's interpreter sees, and where from.

One row per name: the copy that wins (the first on ``sys.path`` after the boot hook),
its origin (layer, editable, user-site, stack) and location, and the copies it
shadows.  A copy in a group layer the layer stands on (``create --over``) is the stack's
(JSON: origin ``stack``, ``layer`` the group layer's root); the table shows it as
``group``, so that which layer each copy comes from is read at a glance.
``--shadowed`` keeps only names with more than one copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layervenv.infra.output import count
from layervenv.inspection.effective_view import Copy, Distribution, Unreadable
from layervenv.inspection.pipeline import inspect_layer
from layervenv.inspection.stack_problems import stack_not_set_up_message, unset_stack_entries
from layervenv.model.layer import Layer


@dataclass
class ListResult:
    layer: str
    python_version: str
    distributions: list[Distribution] = field(default_factory=list)
    shadowed_only: bool = False
    #: lines for stderr, whatever the format (the JSON stays a plain list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        rows = []
        for dist in self.distributions:
            win = dist.winner
            rows.append({
                "name": win.name, "version": win.version, "origin": win.origin,
                "location": win.location, "layer": win.layer or None,
                "shadows": [c.brief() for c in dist.shadowed],
                "compiled": win.compiled, "requested": win.requested,
                "editable": win.editable, "metadata": win.metadata,
            })
        return rows

    def human(self) -> str:
        if not self.distributions:
            what = "no name has more than one copy" if self.shadowed_only \
                else "no distributions are visible"
            return f"{what} in layer {self.layer} (Python {self.python_version})"
        header = ("Name", "Version", "Origin", "Location")
        rows = [(d.name, d.winner.version, shown_origin(d.winner, self.layer), d.winner.location)
                for d in self.distributions]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + cells[3]

        out = [line(header)]
        for dist, row in zip(self.distributions, rows):
            out.append(line(row).rstrip())
            indent = " " * (widths[0] + 2)
            out += [f"{indent}shadows {c.version} ({shown_origin(c, self.layer)}) {c.location}"
                    for c in dist.shadowed]
        counts: dict[str, int] = {}
        for dist in self.distributions:
            shown = shown_origin(dist.winner, self.layer)
            counts[shown] = counts.get(shown, 0) + 1
        hidden = sum(len(d.shadowed) for d in self.distributions)
        parts = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
        out.append(f"{count(len(self.distributions), 'distribution')} ({parts}), "
                   f"{count(hidden, 'shadowed copy', 'shadowed copies')}; "
                   f"Python {self.python_version}")
        return "\n".join(out)


def shown_origin(copy: Copy, layer: str) -> str:
    """A copy's origin as the table shows it: ``group`` for a group layer's copy (part of
    the stack, ``create --over``), else its origin."""
    return "group" if copy.origin == "stack" and copy.layer and copy.layer != layer \
        else copy.origin


def list_layer(directory: str | None, shadowed_only: bool = False,
               environ: dict[str, str] | None = None) -> ListResult:
    """The layer's effective view as it runs in ``environ`` (default: this process's)."""
    layer = Layer.from_argument(directory)
    inspection = inspect_layer(layer, environ, need_interpreter=True)
    view = inspection.view
    if shadowed_only:
        view = [d for d in view if d.shadowed]
    unset = unset_stack_entries(inspection.record, inspection.environ)
    warnings = [unreadable_warning(inspection.unreadable),
                stack_not_set_up_message(unset) if unset else None]
    return ListResult(layer=str(layer.root), python_version=inspection.python_version,
                      distributions=view, shadowed_only=shadowed_only,
                      warnings=[w for w in warnings if w])


def unreadable_warning(unreadable: list[Unreadable]) -> str | None:
    """One line naming what could not be read, so that a short list is not taken as all."""
    if not unreadable:
        return None
    reasons = ", ".join(dict.fromkeys(u.reason.lower() for u in unreadable))
    paths = ", ".join(u.path for u in unreadable)
    return (f"cannot read {len(unreadable)} path{'s' * (len(unreadable) != 1)} ({reasons}): "
            f"{paths}; what is there is not listed (layervenv check says more)")
