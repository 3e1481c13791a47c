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

from importlib import resources
from pathlib import Path

MODULE_NAME = "_layervenv_boot"
BASENAME = "~layervenv"
PTH_NAME = BASENAME + ".pth"
START_NAME = BASENAME + ".start"
PTH_LINE = f"import {MODULE_NAME}; {MODULE_NAME}.run()\n"
START_LINE = f"{MODULE_NAME}:run\n"


def hook_source() -> str:
    """The hook module's source, exactly as shipped in this package."""
    return resources.files(__package__).joinpath(MODULE_NAME + ".py").read_text(encoding="utf-8")


def install_boot_hook(site_packages: Path) -> list[Path]:
    """Write the hook, its ``.pth`` and its ``.start`` into ``site_packages``."""
    files = {
        MODULE_NAME + ".py": hook_source(),
        PTH_NAME: PTH_LINE,
        START_NAME: START_LINE,
    }
    written = []
    for name, text in files.items():
        path = site_packages / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
