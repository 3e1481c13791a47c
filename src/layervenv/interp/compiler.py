"""The layer's interpreter compiling sources into ``.pyc`` files (what to compile is
:func:`layervenv.dists.bytecode.compile_layer`'s; the script run is ``compile_sources.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from layervenv.dists.bytecode import Compiled
from layervenv.interp.query import run_query

COMPILE_SCRIPT = "compile_sources.py"
#: a layer of torch and CUDA has tens of thousands of sources: their compile takes minutes
COMPILE_TIMEOUT = 1800.0


@dataclass(frozen=True)
class LayerCompiler:
    """The layer's interpreter, as it compiles: its ``.pyc`` files' cache tag and magic
    number (None, "": not known), and the environment it starts in (a stack's Python may
    need its LD_LIBRARY_PATH; None: this process's)."""

    python: Path
    cache_tag: str | None
    magic: str = ""
    env: dict[str, str] | None = None

    def compile(self, jobs: list[list[str]]) -> Compiled:
        """Compile ``[source, shown_as, pyc]`` jobs (``pyc`` "": where Python looks)."""
        if not jobs:
            return Compiled()
        answer = run_query(self.python, COMPILE_SCRIPT, flags=("-I", "-S"), env=self.env,
                           stdin=json.dumps(jobs), timeout=COMPILE_TIMEOUT)
        return Compiled(int(answer.get("compiled", 0)),
                        [str(f) for f in answer.get("failed", [])])
