"""Constants shared across the stdlib-only boundary are defined once, in ``boot/``.

The boot hook and the worker's unpack code run where layervenv is not installed, so
they define what they share with the tool; the tool imports them.  These tests fail
when a second definition of one of them appears on the tool side.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import SRC

from layervenv import boot
from layervenv.boot import _layervenv_boot, layervenv_unpack
from layervenv.dists import seed
from layervenv.services import packing as pack

PACKAGE = Path(SRC) / "layervenv"
BOOT = PACKAGE / "boot"
#: modules that run by themselves (no layervenv import): they define, never import
STANDALONE = (BOOT / "_layervenv_boot.py", BOOT / "layervenv_unpack.py")


def _module_constants(path: Path) -> dict[str, object]:
    """``NAME = literal`` at the top level of ``path``."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def _shared_values() -> dict[object, str]:
    """The values of the standalone modules' constants worth sharing (not ``1`` or ``""``)."""
    shared: dict[object, str] = {}
    for path in STANDALONE:
        for name, value in _module_constants(path).items():
            if (isinstance(value, str) and len(value) >= 6) or \
                    (isinstance(value, tuple) and value):
                shared[value] = f"{path.name}:{name}"
    return shared


def _tool_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p not in STANDALONE]


def test_no_tool_module_defines_a_boot_constant_again():
    shared = _shared_values()
    again = []
    for path in _tool_modules():
        for name, value in _module_constants(path).items():
            if isinstance(value, (str, tuple)) and value in shared:
                again.append(f"{path.relative_to(PACKAGE)}:{name} = {value!r} "
                             f"(defined in {shared[value]})")
    assert again == []


def test_no_tool_module_spells_a_boot_name_literally():
    names = {v: where for v, where in _shared_values().items()
             if isinstance(v, str) and v.startswith(("~layervenv", ".layervenv-"))}
    assert names, "the boot modules name their files"
    spelt = []
    for path in _tool_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                spelt.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert spelt == []


def test_the_tool_uses_the_boot_definitions():
    assert boot.PTH_NAME == _layervenv_boot.OWN_PTH
    assert boot.START_NAME == boot.BASENAME + ".start" == "~layervenv.start"
    assert pack.PACK_DIR is layervenv_unpack.PACK_DIR
    assert seed.SHEBANG_LIMIT is layervenv_unpack.SHEBANG_LIMIT
