"""Problems of the layer directory itself.

``moved``     the layer is not where it was made: its scripts still name the old place;
``leftover``  what an interrupted layervenv run left beside or inside the layer;
``bytecode``  packages of the layer without bytecode for its interpreter.
"""

from __future__ import annotations

import os
import shlex

from layervenv.dists.bytecode import compile_command, missing_bytecode
from layervenv.infra.output import count
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


def bytecode_problems(layer: Layer, cache_tag: str | None) -> list[Problem]:
    """The layer's distributions whose ``.py`` files lack current bytecode for its
    interpreter's ``cache_tag``: harmless where Python may write ``__pycache__`` (it does
    on first import), but a layer others use read-only (CVMFS, EOS, a group's directory)
    compiles them again in every process.  Stat calls only (``dists/bytecode``)."""
    if not cache_tag:  # an interpreter that writes no bytecode (or no interpreter)
        return []
    fix = shlex.join(compile_command(layer.python, layer.site_packages))
    return [Problem("bytecode", "warning",
                    f"{m.missing} of {count(m.total, 'Python file')} of {m.name} have no "
                    f"current bytecode for {cache_tag}: where the layer is read-only "
                    f"(published for a group) every process compiles them again; compile "
                    f"them: {fix}", distribution=m.name)
            for m in missing_bytecode([layer.site_packages], cache_tag)]
