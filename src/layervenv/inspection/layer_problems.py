"""Problems of the layer directory itself.

``moved``     the layer is not where it was made: its scripts still name the old place;
``leftover``  what an interrupted layervenv run left beside or inside the layer.
"""

from __future__ import annotations

import os

from layervenv.inspection.problems import Problem
from layervenv.model.layer import Layer, find_leftovers


def moved_problems(layer: Layer) -> list[Problem]:
    """The layer is not where it was made: its scripts still name the old place."""
    recorded = layer.moved_from()
    if recorded is None:
        return []
    root = layer.root
    state = "which is gone" if not os.path.lexists(recorded) else "another directory"
    return [Problem("moved", "error",
                    f"this layer was made in {recorded} ({state}) and is now in {root}: its "
                    f"activation scripts and the scripts pip wrote still use {recorded}; "
                    f"re-create it here: layervenv lock {root} -o pylock.toml, then "
                    f"layervenv create --clear {root} --from pylock.toml")]


def leftover_problems(layer: Layer) -> list[Problem]:
    """What interrupted runs left (leaving out what a running process works in)."""
    return [Problem("leftover", "warning", leftover.message(layer.root))
            for leftover in find_leftovers(layer.root, skip_running=True)]
