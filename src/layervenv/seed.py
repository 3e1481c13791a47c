"""Put pip into a new layer, fast and offline, from a wheel already on the machine.

``python -m venv`` runs ensurepip, which starts a second interpreter and installs
pip through pip (about 6 s here).  Installing the very same wheel that ensurepip
would use -- the one bundled with the stack interpreter, so always compatible
with it -- with the ``installer`` library takes well under 0.1 s and no network.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from layervenv.errors import UserError

INSTALLER_NAME = b"layervenv\n"


class BadWheel(UserError):
    """A wheel file that cannot be installed as it is (a locked file is data from elsewhere)."""


def escaping_member(names: list[str]) -> str | None:
    """The first member of a wheel that would be written outside its scheme directory:
    an absolute name, or one with a ``..`` part (also inside ``NAME.data/SCHEME/``).

    ``installer`` >= 0.7 checks each file as it writes it, stopping half-way; this looks
    at every name first, whatever its version.
    """
    for name in names:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or "\0" in name:
            return name
    return None


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
    try:
        with zipfile.ZipFile(wheel) as archive:
            bad = escaping_member(archive.namelist())
        if bad is not None:
            raise BadWheel(f"cannot install {wheel.name}: its file {bad!r} would be written "
                           "outside the layer")
        with WheelFile.open(wheel) as source:
            install(source, destination, {"INSTALLER": INSTALLER_NAME, **(metadata or {})})
    except zipfile.BadZipFile:
        raise BadWheel(f"cannot install {wheel.name}: it is not a zip file (a wheel is one): "
                       f"{wheel}") from None
    except (ValueError, KeyError) as error:  # installer's checks: RECORD, dist-info, paths
        raise BadWheel(f"cannot install {wheel.name}: {error}") from None
