"""The files copied into every layer's site-packages so that the layer wins.

``_layervenv_boot.py`` is the hook itself (stdlib only, Python >= 3.6).  It is
started by ``~layervenv.pth`` on Python <= 3.14 and by the PEP 829
``~layervenv.start`` entry point on Python >= 3.15 (where a matching ``.start``
file disables the ``.pth`` import line, so the hook never runs twice).

The name starts with ``~`` on purpose: ``site`` processes ``.pth`` files in sorted
order and ``~`` (0x7E) sorts after every name built from letters, digits, ``_``,
``-`` and ``.`` -- all names pip, setuptools and hatchling generate.  Running last
lets the hook see the import-hook finders that editable installs register.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from layervenv.boot._layervenv_boot import OVER_PTH, OWN_PTH, PTH_SUFFIX

MODULE_NAME = "_layervenv_boot"
#: the hook's own ``.pth``: named in the hook itself, which must know it to skip it
PTH_NAME = OWN_PTH
BASENAME = PTH_NAME[: -len(PTH_SUFFIX)]
START_NAME = BASENAME + ".start"
#: ``site`` runs the line inside ``addpackage(sitedir, name, known_paths)``: with
#: ``sitedir`` first on sys.path the hook is found at once, not after a look into every
#: PYTHONPATH entry (hundreds on Spack-built stacks, ~50,000 instructions each);
#: ``run`` takes it off again and uses ``known_paths``.
PTH_LINE = (f'import sys; sys.path.insert(0, locals().get("sitedir", sys.prefix)); '
            f'import {MODULE_NAME} as m; m.run(locals())\n')
START_LINE = f"{MODULE_NAME}:run\n"


def hook_source() -> str:
    """The hook module's source, exactly as shipped in this package."""
    return resources.files(__package__).joinpath(MODULE_NAME + ".py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class HookBytecode:
    """The hook compiled by the stack's interpreter (marshal is version-specific)."""

    magic: bytes
    cache_tag: str
    flags_field: bool  # the PEP 552 flags word of Python >= 3.7 pycs
    code: bytes
    #: compiled for ``-O`` and ``-OO`` (PYTHONOPTIMIZE), which load ``.opt-N.pyc`` files
    optimized: tuple[bytes, ...] = ()

    @classmethod
    def from_probe(cls, facts: dict[str, Any] | None) -> HookBytecode | None:
        if not facts:
            return None
        return cls(magic=base64.b64decode(facts["magic"]), cache_tag=facts["cache_tag"],
                   flags_field=bool(facts["flags_field"]), code=base64.b64decode(facts["code"]),
                   optimized=tuple(base64.b64decode(c) for c in facts.get("optimized", ())))

    def pycs(self, source: Path) -> dict[str, bytes]:
        """Timestamp-checked pycs for ``source`` by file name: valid until it changes."""
        stat = source.stat()
        stamp = struct.pack("<II", int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF)
        header = self.magic + (struct.pack("<I", 0) if self.flags_field else b"") + stamp
        base = f"{MODULE_NAME}.{self.cache_tag}"
        pycs = {f"{base}.pyc": header + self.code}
        for level, code in enumerate(self.optimized, start=1):
            pycs[f"{base}.opt-{level}.pyc"] = header + code
        return pycs


def install_boot_hook(site_packages: Path, bytecode: HookBytecode | None = None,
                      over: Sequence[str] = ()) -> list[Path]:
    """Write the hook, its ``.pth`` and its ``.start`` into ``site_packages``; with
    ``over`` (the site-packages of the group layers under this one, ``create --over``),
    their ``.pth`` too, so that every process of the layer sees them, activated or not.

    With ``bytecode``, the hook's ``.pyc`` files too (plain, ``-O`` and ``-OO``):
    compiling the hook on every start-up (stacks and containers often set
    PYTHONDONTWRITEBYTECODE) costs about 2 ms; loading the shipped ``.pyc`` about 0.1 ms.
    """
    files = {
        MODULE_NAME + ".py": hook_source(),
        PTH_NAME: PTH_LINE,
        START_NAME: START_LINE,
    }
    if over:
        if any("\n" in path or "\r" in path or not os.path.isabs(path) for path in over):
            raise ValueError(f"a group layer's site-packages must be one absolute path: {over!r}")
        files[OVER_PTH] = "".join(f"{path}\n" for path in over)
    written = []
    for name, text in files.items():
        path = site_packages / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if bytecode is not None:
        cache = site_packages / "__pycache__"
        os.makedirs(cache, exist_ok=True)
        for name, data in bytecode.pycs(written[0]).items():
            pyc = cache / name
            pyc.write_bytes(data)
            written.append(pyc)
    return written
