"""Put pip into a new layer, fast and offline, from a wheel already on the machine.

``python -m venv`` runs ensurepip, which starts a second interpreter and installs
pip through pip (about 6 s here).  Installing the very same wheel that ensurepip
would use -- the one bundled with the stack interpreter, so always compatible
with it -- with the ``installer`` library takes well under 0.1 s and no network.
"""

from __future__ import annotations

from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

INSTALLER_NAME = b"layervenv\n"


def install_wheel(wheel: Path, staging: Path, final_root: Path, purelib: str,
                  platlib: str, scripts: str, include: str,
                  metadata: dict[str, bytes] | None = None) -> None:
    """Install ``wheel`` into the layer being built in ``staging``.

    Files go under ``staging``; console scripts point at the interpreter of
    ``final_root``, where the layer will live once it is complete.  ``metadata``
    adds files to the ``.dist-info`` (``REQUESTED``) besides ``INSTALLER``.
    """
    destination = SchemeDictionaryDestination(
        {
            "purelib": str(staging / purelib),
            "platlib": str(staging / platlib),
            "headers": str(staging / include / "site" / wheel.name.split("-")[0]),
            "scripts": str(staging / scripts),
            "data": str(staging),
        },
        interpreter=str(final_root / scripts / "python"),
        script_kind="posix",
        bytecode_optimization_levels=(),
    )
    with WheelFile.open(wheel) as source:
        install(source, destination, {"INSTALLER": INSTALLER_NAME, **(metadata or {})})
