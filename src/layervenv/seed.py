"""Put pip into a new layer, fast and offline, from a wheel already on the machine.

``python -m venv`` runs ensurepip, which starts a second interpreter and installs
pip through pip (about 6 s here).  Installing the very same wheel that ensurepip
would use -- the one bundled with the stack interpreter, so always compatible
with it -- with the ``installer`` library takes well under 0.1 s and no network.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import posixpath
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
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


# --- the pip wheel, unpacked once per user and linked into every new layer ----------------

#: what an unpacked wheel's entry holds: the files ``installer`` would write, under
#: ``files/SCHEME/PATH`` (read-only), and in ``contents.json`` (written last) their
#: RECORD facts, the console scripts to generate and the .dist-info directory
CONTENTS = "contents.json"


def seed_wheel(wheel: Path, staging: Path, final_root: Path, purelib: str, platlib: str,
               scripts: str, include: str) -> None:
    """Install ``wheel`` into the layer being built, from the per-user cache when it can.

    The wheel is unpacked once into the cache (keyed by its sha256) by ``installer``
    itself; every layer then gets hard links to those files (a copy where the filesystem
    refuses links: another filesystem, AFS), and its own ``RECORD``, ``INSTALLER`` and
    console scripts, written by ``installer`` for its own interpreter.  The cached files
    are read-only, and pip replaces (never rewrites) the files of a distribution it
    upgrades or uninstalls, so no layer can change the cache or another layer.  Without
    a usable cache this is :func:`install_wheel`.
    """
    contents = unpacked_wheel(wheel)
    if contents is not None:
        entry, facts = contents
        destination = _destination(staging, final_root, purelib, platlib, scripts, include,
                                   wheel.name.split("-")[0])
        linked: list[str] = []
        try:
            _install_linked(entry, facts, destination, linked)
            return
        except (OSError, ValueError, KeyError, TypeError):  # a damaged entry: start over
            for path in reversed(linked):
                with contextlib.suppress(OSError):
                    os.unlink(path)
    install_wheel(wheel, staging, final_root, purelib, platlib, scripts, include)


def _destination(staging: Path, final_root: Path, purelib: str, platlib: str, scripts: str,
                 include: str, distribution: str) -> SchemeDictionaryDestination:
    return SchemeDictionaryDestination(
        {"purelib": str(staging / purelib), "platlib": str(staging / platlib),
         "headers": str(staging / include / "site" / distribution),
         "scripts": str(staging / scripts), "data": str(staging)},
        interpreter=str(final_root / scripts / "python"), script_kind="posix",
        bytecode_optimization_levels=(),
    )


def unpacked_wheel(wheel: Path) -> tuple[Path, dict[str, Any]] | None:
    """The cache entry of ``wheel`` (filled now if needed) and its contents, or None."""
    from layervenv import cache

    wheels = cache.section("wheels")
    if wheels is None:
        return None
    try:
        name = cache.file_sha256(wheel)
    except OSError:
        return None
    entry = cache.filled(wheels / name, lambda tmp: _unpack(wheel, tmp))
    facts = cache.read_json(entry / CONTENTS) if entry is not None else None
    return (entry, facts) if isinstance(facts, dict) else None


class _Recorder(SchemeDictionaryDestination):
    """A destination that writes a wheel's files into a cache entry, noting what
    ``installer`` did with each: the RECORD facts, the scripts it would generate."""

    def __init__(self, root: Path) -> None:
        super().__init__({scheme: str(root / "files" / scheme) for scheme in
                          ("purelib", "platlib", "headers", "scripts", "data")},
                         interpreter="/python", script_kind="posix",
                         bytecode_optimization_levels=())
        self.files: list[list[Any]] = []
        self.scripts: list[list[str]] = []

    def write_file(self, scheme: Any, path: Any, stream: Any,
                   is_executable: bool) -> RecordEntry:
        # stored as in the wheel: a .data/scripts #! line is rewritten per layer
        record = super().write_to_fs(scheme, os.fspath(path), stream, is_executable)
        os.chmod(self._path_with_destdir(scheme, record.path), 0o555 if is_executable
                 else 0o444)
        if record.hash_ is None:
            raise ValueError(f"no hash for {record.path}")
        self.files.append([str(scheme), record.path, record.hash_.value, record.size,
                           is_executable])
        return record

    def write_script(self, name: str, module: str, attr: str, section: Any) -> RecordEntry:
        self.scripts.append([name, module, attr, str(section)])
        return RecordEntry(name, None, None)

    def finalize_installation(self, scheme: Any, record_file_path: str,
                              records: Any) -> None:
        self.record = [str(scheme), record_file_path]


def _unpack(wheel: Path, target: Path) -> None:
    """Unpack ``wheel`` into the entry being built in ``target``, with installer."""
    recorder = _Recorder(target)
    with WheelFile.open(wheel) as source:
        source.validate_record()
        install(source, recorder, {})
    facts = {"files": recorder.files, "scripts": recorder.scripts,
             "record": recorder.record}
    (target / CONTENTS).write_text(json.dumps(facts), encoding="utf-8")


#: link() failing with these means "this filesystem will not link these": copy instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP,
            errno.EOPNOTSUPP, errno.ENOSYS}


def _install_linked(entry: Path, facts: dict[str, Any],
                    destination: SchemeDictionaryDestination, linked: list[str]) -> None:
    """What ``installer.install`` does, with the wheel's files linked from ``entry``:
    scripts, INSTALLER and RECORD written by installer for this layer."""
    schemes = destination.scheme_dict
    files = str(entry / "files")
    records = []
    made: set[str] = set()
    can_link = True
    for scheme, path, hash_, size, executable in facts["files"]:
        source = os.path.join(files, scheme, path)
        if scheme not in ("purelib", "platlib"):  # .data/scripts: #! rewritten for us
            with open(source, "rb") as stream:
                records.append((scheme, destination.write_file(scheme, path, stream,
                                                               executable)))
            linked.append(os.path.join(schemes[scheme], path))
            continue
        target = os.path.join(schemes[scheme], path)
        folder = os.path.dirname(target)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        if can_link:
            try:
                os.link(source, target)
            except OSError as error:
                if error.errno not in _NO_LINK:
                    raise
                can_link = False  # this one and the rest are copied
        if not can_link:
            shutil.copyfile(source, target)
            if executable:
                os.chmod(target, os.stat(target).st_mode | 0o111)
        linked.append(target)
        records.append((scheme, RecordEntry(path, Hash("sha256", hash_), size)))
    for name, module, attr, section in facts["scripts"]:
        records.append(("scripts", destination.write_script(name, module, attr, section)))
        linked.append(os.path.join(schemes["scripts"], name))
    root, record_path = facts["record"]
    installer_path = posixpath.join(posixpath.dirname(record_path), "INSTALLER")
    with io.BytesIO(INSTALLER_NAME) as stream:
        records.append((root, destination.write_file(root, installer_path, stream, False)))
    linked.append(os.path.join(schemes[root], installer_path))
    linked.append(os.path.join(schemes[root], record_path))
    records.append((root, RecordEntry(record_path, None, None)))
    destination.finalize_installation(root, record_path, records)
