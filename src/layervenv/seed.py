"""Put pip into a new layer, fast and offline, from a wheel already on the machine.

``python -m venv`` runs ensurepip, which starts a second interpreter and installs
pip through pip (about 6 s here).  Installing the very same wheel that ensurepip
would use -- the one bundled with the stack interpreter, so always compatible
with it -- with the ``installer`` library takes well under 0.1 s and no network.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.sources import WheelFile, WheelSource

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


# --- the pip wheel, unpacked once per user and linked into every new layer ----------------

#: what an unpacked wheel's entry holds: the wheel's files under ``files/``, and their
#: RECORD facts (path, hash, size, executable) in ``contents.json``, written last
CONTENTS = "contents.json"


def seed_wheel(wheel: Path, staging: Path, final_root: Path, purelib: str, platlib: str,
               scripts: str, include: str) -> None:
    """Install ``wheel`` into the layer being built, from the per-user cache when it can.

    The wheel is unpacked once into the cache (keyed by its sha256); every layer then
    gets hard links to those files (a copy where the filesystem refuses links: another
    filesystem, AFS), and its own ``RECORD``, ``INSTALLER`` and console scripts written
    by ``installer`` for its own interpreter.  The cached files are read-only, and pip
    replaces (never rewrites) the files of a distribution it upgrades or uninstalls, so
    no layer can change the cache or another layer.  Without a usable cache this is
    :func:`install_wheel`.
    """
    entry = unpacked_wheel(wheel)
    if entry is not None:
        destination = _LinkingDestination(staging, final_root, purelib, platlib, scripts,
                                          include, wheel.name.split("-")[0])
        try:
            install(_UnpackedWheel(wheel, entry), destination, {"INSTALLER": INSTALLER_NAME})
            return
        except (OSError, ValueError):  # a damaged entry: the wheel itself is still there
            destination.undo()
    install_wheel(wheel, staging, final_root, purelib, platlib, scripts, include)


def unpacked_wheel(wheel: Path) -> Path | None:
    """The cache entry of ``wheel`` (filled now if needed), or None."""
    from layervenv import cache
    from layervenv.packages import file_sha256

    wheels = cache.section("wheels")
    if wheels is None:
        return None
    try:
        name = file_sha256(wheel)
    except OSError:
        return None
    entry = cache.filled(wheels / name, lambda tmp: _unpack(wheel, tmp))
    if entry is None or cache.read_json(entry / CONTENTS) is None:
        return None
    return entry


def _unpack(wheel: Path, target: Path) -> None:
    """Extract ``wheel`` into ``target/files`` (read-only), its RECORD facts alongside."""
    from installer.utils import copyfileobj_with_hashing

    files = target / "files"
    contents = []
    with WheelFile.open(wheel) as source:
        source.validate_record()
        for (path, _, _), stream, executable in source.get_contents():
            destination = files / path
            if files not in destination.resolve().parents:
                raise ValueError(f"{wheel.name}: {path} is outside the wheel")
            destination.parent.mkdir(parents=True, exist_ok=True)
            with open(destination, "xb") as handle:
                hash_, size = copyfileobj_with_hashing(stream, handle, "sha256")
            os.chmod(destination, 0o555 if executable else 0o444)
            contents.append([path, hash_, size, executable])
    (target / CONTENTS).write_text(json.dumps(contents), encoding="utf-8")


class _CachedFile:
    """A file of an unpacked wheel with its RECORD facts, handed to the destination
    instead of a stream: linked, not read."""

    def __init__(self, path: Path, hash_: str, size: int) -> None:
        self.path, self.hash, self.size = path, hash_, size


class _UnpackedWheel(WheelSource):
    """A cache entry read as the wheel it was unpacked from (installer's WheelSource)."""

    def __init__(self, wheel: Path, entry: Path) -> None:
        distribution, version = wheel.name.split("-")[:2]
        super().__init__(distribution, version)
        self._files = entry / "files"
        self._contents = json.loads((entry / CONTENTS).read_text(encoding="utf-8"))
        found = {path.split("/")[0] for path, *_ in self._contents
                 if path.split("/")[0].endswith(".dist-info")}
        if len(found) != 1:
            raise ValueError(f"{wheel.name}: not one .dist-info directory")
        self._dist_info = found.pop()

    @property
    def dist_info_dir(self) -> str:
        return self._dist_info

    @property
    def dist_info_filenames(self) -> list[str]:
        return [path.split("/", 1)[1] for path, *_ in self._contents
                if path.startswith(self._dist_info + "/")]

    def read_dist_info(self, filename: str) -> str:
        return (self._files / self._dist_info / filename).read_text(encoding="utf-8")

    def validate_record(self) -> None:
        """Validated when unpacked (and the cached files are read-only)."""

    def get_contents(self) -> Iterator[tuple[tuple[str, str, str], Any, bool]]:
        for path, hash_, size, executable in self._contents:
            yield ((path, f"sha256={hash_}", str(size)),
                   _CachedFile(self._files / path, hash_, size), executable)


#: link() failing with these means "this filesystem will not link these": copy instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP,
            errno.EOPNOTSUPP, errno.ENOSYS}


class _LinkingDestination(SchemeDictionaryDestination):
    """installer's destination for a layer being built, linking cached files into it."""

    def __init__(self, staging: Path, final_root: Path, purelib: str, platlib: str,
                 scripts: str, include: str, distribution: str) -> None:
        super().__init__(
            {"purelib": str(staging / purelib), "platlib": str(staging / platlib),
             "headers": str(staging / include / "site" / distribution),
             "scripts": str(staging / scripts), "data": str(staging)},
            interpreter=str(final_root / scripts / "python"), script_kind="posix",
            bytecode_optimization_levels=(),
        )
        self.written: list[Path] = []
        self.can_link = True

    def write_to_fs(self, scheme: Any, path: str, stream: Any,
                    is_executable: bool) -> RecordEntry:
        """This layer's own files (RECORD, INSTALLER, scripts), written as installer does."""
        self.written.append(self._path_with_destdir(scheme, path))
        return super().write_to_fs(scheme, path, stream, is_executable)

    def write_file(self, scheme: Any, path: Any, stream: Any,
                   is_executable: bool) -> RecordEntry:
        if not isinstance(stream, _CachedFile):
            return super().write_file(scheme, path, stream, is_executable)
        if scheme not in ("purelib", "platlib"):  # .data/scripts: the #! line is rewritten
            with open(stream.path, "rb") as handle:
                return super().write_file(scheme, path, handle, is_executable)
        target = self._path_with_destdir(scheme, os.fspath(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        self.written.append(target)
        self._link_or_copy(stream.path, target, is_executable)
        return RecordEntry(os.fspath(path), Hash("sha256", stream.hash), stream.size)

    def _link_or_copy(self, source: Path, target: Path, executable: bool) -> None:
        if self.can_link:
            try:
                os.link(source, target)
                return
            except OSError as error:
                if error.errno not in _NO_LINK:
                    raise
                self.can_link = False  # the rest is copied too
        shutil.copyfile(source, target)
        if executable:
            target.chmod(target.stat().st_mode | 0o111)

    def undo(self) -> None:
        """Remove what this destination wrote, for a clean second attempt."""
        for path in reversed(self.written):
            with contextlib.suppress(OSError):
                path.unlink()
