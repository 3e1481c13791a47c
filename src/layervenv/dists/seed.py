"""Put pip into a new layer, fast and offline, from a wheel already on the machine.

``python -m venv`` runs ensurepip, which starts a second interpreter and installs
pip through pip (about 6 s here).  Installing the very same wheel that ensurepip
would use -- the one bundled with the stack interpreter, so always compatible
with it -- with the ``installer`` library takes well under 0.1 s and no network.

``installer`` (and the ``email`` and ``configparser`` modules it imports: a quarter of
what starting ``layervenv create`` costs) is imported only when a wheel is unpacked:
a layer made from the per-user cache gets the files, scripts and RECORD that
``installer`` made and recorded there (see :func:`seed_wheel`).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import io
import json
import os
import posixpath
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from layervenv.boot.layervenv_unpack import SHEBANG_LIMIT
from layervenv.dists.bytecode import Compiler, pyc_path
from layervenv.dists.record import format_record, record_hash
from layervenv.dists.scheme import InstallScheme
from layervenv.infra.errors import UserError

if TYPE_CHECKING:
    from installer.destinations import SchemeDictionaryDestination

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


def script_name(name: str, distribution: str, python_version: str) -> str:
    """The name of a console script in the layer: pip's own rule when it installs pip,
    whose versioned scripts name the Python it is installed for (the wheel's name the
    Python it was built with: 3.10's bundled pip says ``pip3.9``).  See also
    :func:`missing_scripts`."""
    if python_version and distribution.lower() == "pip":
        if re.fullmatch(r"pip\d+\.\d+", name):
            return "pip" + python_version
        if re.fullmatch(r"pip\d+", name):
            return "pip" + python_version.split(".")[0]
    return name


def missing_scripts(written: list[str], distribution: str, python_version: str) -> list[str]:
    """The scripts pip's rule adds to those of the wheel: ``pip``, ``pipX`` and ``pipX.Y``
    for the Python pip is installed for (pip 24's wheels name only ``pip`` and
    ``pip3``), each a copy of ``pip``."""
    if not python_version or distribution.lower() != "pip" or "pip" not in written:
        return []
    wanted = ["pip", "pip" + python_version.split(".")[0], "pip" + python_version]
    return [name for name in wanted if name not in written]


def install_wheel(wheel: Path, scheme: InstallScheme,
                  metadata: dict[str, bytes] | None = None) -> None:
    """Install ``wheel`` into the layer being built in ``scheme.staging``.

    Files go under ``staging``; console scripts point at the interpreter of
    ``final_root``, where the layer will live once it is complete.  ``metadata``
    adds files to the ``.dist-info`` (``REQUESTED``) besides ``INSTALLER``.
    """
    import zipfile

    from installer import install
    from installer.sources import WheelFile

    destination = _destination(scheme, wheel.name.split("-")[0])
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
#: RECORD facts, the console scripts to generate (with what installer writes below
#: their ``#!`` line) and the .dist-info directory
CONTENTS = "contents.json"
#: the interpreter the cached scripts are generated for: its ``#!`` line is replaced
SCRIPT_INTERPRETER = "/python"


def seed_wheel(wheel: Path, scheme: InstallScheme, compiler: Compiler | None = None) -> None:
    """Install ``wheel`` into the layer being built, from the per-user cache when it can.

    The wheel is unpacked once into the cache (keyed by its sha256) by ``installer``
    itself; every layer then gets hard links to those files (a copy where the filesystem
    refuses links: another filesystem, AFS), and its own ``RECORD``, ``INSTALLER`` and
    console scripts for its own interpreter, as ``installer`` writes them (see
    :func:`_install_linked`).  The cached files
    are read-only, and pip replaces (never rewrites) the files of a distribution it
    upgrades or uninstalls, so no layer can change the cache or another layer.  Without
    a usable cache this is :func:`install_wheel`.

    With ``compiler`` (the layer's interpreter), the files linked get their bytecode
    linked too, compiled once per interpreter into the cache (:func:`link_bytecode`).
    """
    contents = unpacked_wheel(wheel)
    if contents is not None:
        entry, facts = contents
        distribution = wheel.name.split("-")[0]
        target = _Target(_schemes(scheme, distribution), str(scheme.final_python),
                         distribution, scheme.python_version)
        linked: list[str] = []
        try:
            _install_linked(entry, facts, target, linked)
        except (OSError, ValueError, KeyError, TypeError) as error:  # start over
            for path in reversed(linked):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            if _damaged(error, entry):  # filled again by the next create
                from layervenv.infra import cache

                cache.discard(entry)
        else:
            if compiler is not None:
                link_bytecode(entry, facts, target.schemes, compiler)
            return
    install_wheel(wheel, scheme)


def link_bytecode(entry: Path, facts: dict[str, Any], schemes: dict[str, str],
                  compiler: Compiler) -> int:
    """Link the bytecode of the wheel's sources linked from ``entry`` into the layer;
    how many were linked.

    Compiling pip takes its interpreter about a second, five times what the rest of
    ``create`` takes; so its ``.pyc`` files are compiled once per interpreter (cache tag
    and magic number) into the cache, beside the wheel's entry, and linked.  A ``.pyc``
    names its source's time and size: a source linked from the entry is the same file,
    so the ``.pyc`` compiled for the entry's is current for it.  An optimisation only:
    what is not linked here (a copied source, no usable cache) is compiled by
    :func:`~layervenv.dists.bytecode.compile_layer` at the end of the build.
    """
    from layervenv.infra import cache
    from layervenv.infra.errors import UserError

    tag, magic = compiler.cache_tag, compiler.magic
    folder = cache.section("bytecode")
    if not tag or not magic or folder is None:
        return 0
    files = entry / "files"
    sources = [(scheme, path) for scheme, path, *_ in facts["files"]
               if scheme in ("purelib", "platlib") and path.endswith(".py")]
    try:  # a refilled wheel entry has new times: its bytecode is another entry
        stamp = os.stat(entry / CONTENTS).st_mtime_ns
    except OSError:
        return 0

    def fill(tmp: Path) -> None:
        jobs = [[str(files / scheme / path), path, str(pyc_path(tmp / scheme / path, tag))]
                for scheme, path in sources]
        try:
            compiler.compile(jobs)
        except UserError as error:  # the interpreter did not answer: no entry
            raise ValueError(str(error)) from None
        for pyc in tmp.rglob("*.pyc"):
            os.chmod(pyc, 0o444)  # shared by every layer: none may rewrite it

    done = cache.filled(folder / f"{entry.name}-{tag}-{magic}-{stamp}", fill)
    linked = 0
    for scheme, path in sources if done is not None else ():
        target = Path(schemes[scheme]) / path
        pyc = pyc_path(done / scheme / path, tag)
        try:
            if not os.path.samefile(target, files / scheme / path) or not pyc.is_file():
                continue  # a copy (its own time), or a source that does not compile
            made = pyc_path(target, tag)
            made.parent.mkdir(exist_ok=True)
            os.link(pyc, made)
            linked += 1
        except OSError:
            break  # no links here (another filesystem): the build compiles the rest
    return linked


def _damaged(error: Exception, entry: Path) -> bool:
    """Whether ``error`` says the cache entry is damaged (a file of it gone, facts that
    do not fit), not the layer being built (a full disk)."""
    if not isinstance(error, OSError):
        return True
    return isinstance(error, FileNotFoundError) and str(error.filename or "").startswith(
        str(entry) + os.sep)


@dataclass(frozen=True)
class _Target:
    """Where a wheel from the cache goes: the schemes' directories, the interpreter its
    scripts run, and what names its scripts (:func:`script_name`)."""

    schemes: dict[str, str]
    interpreter: str
    distribution: str
    python_version: str

    def script(self, name: str) -> str:
        return script_name(name, self.distribution, self.python_version)

    def missing(self, written: list[str]) -> list[str]:
        return missing_scripts(written, self.distribution, self.python_version)


def _schemes(scheme: InstallScheme, distribution: str) -> dict[str, str]:
    """Where each of a wheel's schemes goes in the layer being built."""
    staging = scheme.staging
    return {"purelib": str(staging / scheme.purelib), "platlib": str(staging / scheme.platlib),
            "headers": str(staging / scheme.include / "site" / distribution),
            "scripts": str(scheme.scripts_dir), "data": str(staging)}


def _destination(scheme: InstallScheme, distribution: str) -> SchemeDictionaryDestination:
    return _installer_destination(_Target(_schemes(scheme, distribution),
                                          str(scheme.final_python), distribution,
                                          scheme.python_version))


def _installer_destination(target: _Target) -> SchemeDictionaryDestination:
    """installer's destination for ``target``, naming scripts as :func:`script_name`."""
    from installer.destinations import SchemeDictionaryDestination

    class Destination(SchemeDictionaryDestination):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.written: dict[str, tuple[str, str, Any]] = {}

        def write_script(self, name: str, module: str, attr: str, section: Any) -> Any:
            name = target.script(name)
            self.written[name] = (module, attr, section)
            return super().write_script(name, module, attr, section)

        def finalize_installation(self, scheme: Any, record_file_path: str,
                                  records: Any) -> None:
            records = list(records)
            for name in target.missing(list(self.written)):
                records.append(("scripts", self.write_script(name, *self.written["pip"])))
            super().finalize_installation(scheme, record_file_path, records)

    return Destination(target.schemes, interpreter=target.interpreter, script_kind="posix",
                       bytecode_optimization_levels=())


def unpacked_wheel(wheel: Path) -> tuple[Path, dict[str, Any]] | None:
    """The cache entry of ``wheel`` (filled now if needed) and its contents, or None."""
    from layervenv.infra import cache

    wheels = cache.section("wheels")
    if wheels is None:
        return None
    try:
        name = cache.file_sha256(wheel)
    except OSError:
        return None
    for again in (True, False):  # a damaged entry is set aside and filled once more
        entry = cache.filled(wheels / name, lambda tmp: _unpack(wheel, tmp))
        if entry is None:
            return None
        facts = cache.read_json(entry / CONTENTS)
        if isinstance(facts, dict):
            return entry, facts
        if again:
            cache.discard(entry)
    return None


def _recorder(root: Path) -> Any:
    """A destination that writes a wheel's files into a cache entry, noting what
    ``installer`` did with each: the RECORD facts, the scripts it generates."""
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import RecordEntry
    from installer.scripts import Script

    class Recorder(SchemeDictionaryDestination):
        def __init__(self) -> None:
            super().__init__({scheme: str(root / "files" / scheme) for scheme in
                              ("purelib", "platlib", "headers", "scripts", "data")},
                             interpreter=SCRIPT_INTERPRETER, script_kind="posix",
                             bytecode_optimization_levels=())
            self.files: list[list[Any]] = []
            self.scripts: list[list[Any]] = []

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

        def write_script(self, name: str, module: str, attr: str,
                         section: Any) -> RecordEntry:
            # what installer writes below the #! line, for layers on a simple interpreter
            _, data = Script(name, module, attr, section).generate(SCRIPT_INTERPRETER,
                                                                   "posix")
            shebang = b"#!" + SCRIPT_INTERPRETER.encode() + b"\n"
            body = data[len(shebang):] if data.startswith(shebang) else None
            self.scripts.append([name, module, attr, str(section),
                                 None if body is None else base64.b64encode(body).decode()])
            return RecordEntry(name, None, None)

        def finalize_installation(self, scheme: Any, record_file_path: str,
                                  records: Any) -> None:
            self.record = [str(scheme), record_file_path]

    return Recorder()


def _unpack(wheel: Path, target: Path) -> None:
    """Unpack ``wheel`` into the entry being built in ``target``, with installer."""
    from installer import install
    from installer.sources import WheelFile

    recorder = _recorder(target)
    with WheelFile.open(wheel) as source:
        source.validate_record()
        install(source, recorder, {})
    facts = {"files": recorder.files, "scripts": recorder.scripts,
             "record": recorder.record}
    (target / CONTENTS).write_text(json.dumps(facts), encoding="utf-8")


#: link() failing with these means "this filesystem will not link these": copy instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP,
            errno.EOPNOTSUPP, errno.ENOSYS}


def _simple_interpreter(interpreter: str) -> bool:
    """A path installer writes as ``#!PATH`` (no ``/bin/sh`` trick): no space and a
    short line (installer's own rule), and -- to stay well inside it -- printable ASCII."""
    return (len(interpreter) + 3 <= SHEBANG_LIMIT and interpreter.isascii()
            and interpreter.isprintable() and " " not in interpreter)


def _install_linked(entry: Path, facts: dict[str, Any], target: _Target,
                    linked: list[str]) -> None:
    """What ``installer.install`` does, with the wheel's files linked from ``entry``.

    The console scripts are what installer wrote for the cache, below a ``#!`` line for
    this layer's interpreter; INSTALLER and RECORD are written as installer writes them
    (``test_cache.py`` compares the two, byte for byte).  A wheel with files outside
    site-packages, or an interpreter whose ``#!`` line installer writes otherwise, goes
    through installer itself (:func:`_install_linked_by_installer`).
    """
    schemes, interpreter = target.schemes, target.interpreter
    bodies = [script[4] if len(script) > 4 else None for script in facts["scripts"]]
    if (not _simple_interpreter(interpreter) or None in bodies
            or any(scheme not in ("purelib", "platlib") for scheme, *_ in facts["files"])):
        _install_linked_by_installer(entry, facts, target, linked)
        return
    root, record_path = facts["record"]
    rows: list[tuple[str, str, str, str]] = []  # scheme, path, hash, size
    _link_files(entry, facts, schemes, linked, rows)
    shebang = b"#!" + interpreter.encode("ascii") + b"\n"
    scripts = {target.script(name): shebang + base64.b64decode(body, validate=True)
               for (name, *_), body in zip(facts["scripts"], bodies)}  # damaged: ValueError
    for name in target.missing(list(scripts)):
        scripts[name] = scripts["pip"]
    for name, data in scripts.items():
        rows.append(_write_new(schemes, "scripts", name, data, True, linked))
    installer_path = posixpath.join(posixpath.dirname(record_path), "INSTALLER")
    rows.append(_write_new(schemes, root, installer_path, INSTALLER_NAME, False, linked))
    rows.append((root, record_path, "", ""))
    lines = []
    for scheme, path, hash_, size in sorted(rows, key=lambda row: row[1]):
        if scheme != root:
            path = os.path.relpath(schemes[scheme], start=schemes[root]) + "/" + path
        lines.append((path, hash_, size))
    linked.append(os.path.join(schemes[root], record_path))
    _write_new(schemes, root, record_path, format_record(lines).encode("utf-8"), False, [])


def _write_new(schemes: dict[str, str], scheme: str, path: str, data: bytes,
               executable: bool, linked: list[str]) -> tuple[str, str, str, str]:
    """Write a file that must not exist yet, as installer does; its RECORD row."""
    target = os.path.join(schemes[scheme], path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "xb") as stream:
        linked.append(target)
        stream.write(data)
    if executable:  # installer's modes: executable by all, then by whoever may read it
        umask = os.umask(0o22)
        os.umask(umask)
        mode = 0o777 & ~umask | 0o111
        os.chmod(target, mode | ((mode & 0o444) >> 2))
    return scheme, path, record_hash(data), str(len(data))


def _link_files(entry: Path, facts: dict[str, Any], schemes: dict[str, str],
                linked: list[str], rows: list[tuple[str, str, str, str]]) -> None:
    """Link (or copy, where the filesystem refuses links) the site-packages files."""
    files = str(entry / "files")
    made: set[str] = set()
    can_link = True
    for scheme, path, hash_, size, executable in facts["files"]:
        source = os.path.join(files, scheme, path)
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
        rows.append((scheme, path, f"sha256={hash_}", str(size)))


def _install_linked_by_installer(entry: Path, facts: dict[str, Any], target: _Target,
                                 linked: list[str]) -> None:
    """:func:`_install_linked` with installer writing scripts, other schemes and RECORD."""
    from installer.records import Hash, RecordEntry

    schemes = target.schemes
    destination = _installer_destination(target)
    files = str(entry / "files")
    records = []
    site_files = {"files": [], "scripts": [], "record": facts["record"]}
    for fact in facts["files"]:
        scheme, path, _, _, executable = fact
        if scheme in ("purelib", "platlib"):
            site_files["files"].append(fact)
            continue
        with open(os.path.join(files, scheme, path), "rb") as stream:  # #! rewritten for us
            records.append((scheme, destination.write_file(scheme, path, stream, executable)))
        linked.append(os.path.join(schemes[scheme], path))
    rows: list[tuple[str, str, str, str]] = []
    _link_files(entry, site_files, schemes, linked, rows)
    for scheme, path, hash_, size in rows:
        records.append((scheme, RecordEntry(path, Hash("sha256", hash_[len("sha256="):]),
                                            int(size))))
    for name, module, attr, section, *_ in facts["scripts"]:
        records.append(("scripts", destination.write_script(name, module, attr, section)))
        linked.append(os.path.join(schemes["scripts"], target.script(name)))
    root, record_path = facts["record"]
    installer_path = posixpath.join(posixpath.dirname(record_path), "INSTALLER")
    with io.BytesIO(INSTALLER_NAME) as stream:
        records.append((root, destination.write_file(root, installer_path, stream, False)))
    linked.append(os.path.join(schemes[root], installer_path))
    linked.append(os.path.join(schemes[root], record_path))
    records.append((root, RecordEntry(record_path, None, None)))
    destination.finalize_installation(root, record_path, records)
