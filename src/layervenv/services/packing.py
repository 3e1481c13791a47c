"""``layervenv pack [DIR] -o FILE``: one archive a batch job unpacks anywhere and uses.

The contract a job script relies on: ``tar -xzf FILE -C DEST`` makes ``DEST/NAME``,
and ``DEST/NAME/bin/layervenv-run CMD [ARGS...]`` runs CMD with the layer and its
recorded stack, from an empty environment, with nothing but the stack on the worker.

How the layer gets to its new path (measured against the alternatives in
docs/batch.md): the files that name the layer's path are shipped as *templates* and
written on the worker by the stdlib-only :mod:`layervenv.boot.layervenv_unpack`.
The activation scripts and ``layervenv.toml`` are rendered here, by the same
renderer ``create`` uses, for a layer whose root is a placeholder path; the worker
replaces the placeholder by the real path.  Every shell's quoting of a path is
checked here by rendering probe paths, character by character: the characters
whose rendering is not the placeholder's with the character in it are recorded,
and the worker refuses a path holding one.  Console scripts (written by pip, not
by us) keep their body; the worker gives them the ``#!`` line installers write.

Editable installs point at a project the worker cannot see: each is built into a
wheel (``pip wheel --no-deps --no-build-isolation``, offline, with the layer's own
Python) and installed into the archive in its place, so the packed layer holds a
normal install of the project's current code.

The archive is reproducible: entries sorted, owners and modification times
normalised (bytecode kept valid for the normalised times), gzip without a
timestamp.  The manifest comes last: an unpacked directory without it, or with a
file shorter than it says, is refused on the worker (a truncated archive).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import string
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.parser import HeaderParser
from pathlib import Path

from layervenv import __version__
from layervenv.boot.layervenv_unpack import PACK_DIR
from layervenv.dists.direct_url import editable_project, read_direct_url
from layervenv.dists.record import installed_paths
from layervenv.dists.scheme import InstallScheme
from layervenv.dists.seed import install_wheel
from layervenv.infra.arguments import add_active_dir, add_format
from layervenv.infra.errors import UserError
from layervenv.infra.writelock import INSIDE_NAME, layer_write_lock
from layervenv.interp.query import QueryFailed, run_query, script_source
from layervenv.model.layer import CONFIG_NAME, Layer, site_snapshot
from layervenv.runtime.activation import env_change
from layervenv.runtime.environment import layer_environment
from layervenv.runtime.shells import posix, render_all
from layervenv.runtime.shells.posix import quote

UNPACK_MODULE = "layervenv_unpack.py"
LAUNCHER = "layervenv-run"
RUN_ACTIVATE = f"{PACK_DIR}/activate-for-run"
#: where the rendered templates stand for the layer's root; a space in it makes every
#: renderer treat it as it treats a path that needs quoting
PLACEHOLDER = "/@layervenv pack placeholder@/layer"
#: characters probed one by one in the layer's path (letters and digits never need quoting)
PROBED = string.punctuation + " \t\u00e9"
#: a layer's path can never hold these (PATH cannot; one setting per line)
NEVER = ":\n\0"
#: modification time of every member (2000-01-01 UTC), unless SOURCE_DATE_EPOCH says
DEFAULT_EPOCH = 946684800
#: gzip level: on numpy+scipy (214 MB), 4 takes 9.8 s for 67.7 MB, 6 17.5 s for 65.1 MB
COMPRESSLEVEL = 4


@dataclass
class Snapshot:
    """An editable project packed as a normal install of its current code."""

    name: str
    version: str
    project: str
    seconds: float


@dataclass
class PackResult:
    path: str
    layer: str
    size: int
    files: int
    seconds: float
    snapshots: list[Snapshot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def human(self) -> str:
        lines = [f"packed layer {self.layer} into {self.path} ({self.size / 1e6:.1f} MB, "
                 f"{self.files} files) in {self.seconds:.2f} s"]
        for snap in self.snapshots:
            lines.append(f"snapshot of editable {snap.name} {snap.version} from {snap.project} "
                         f"(built in {snap.seconds:.1f} s)")
        lines += self.notes
        name = Path(self.layer).name
        lines.append(f"on a worker: tar -xzf {Path(self.path).name} -C DEST && "
                     f"DEST/{name}/bin/{LAUNCHER} COMMAND [ARGS...]")
        return "\n".join(lines)


def epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


# --- templates: rendered by layervenv's own renderer for a placeholder root ---------


def rendered_files(layer: Layer, root: str) -> dict[str, bytes]:
    """The files ``create`` renders for ``layer`` if it lived at ``root`` (by relative path)."""
    moved = Layer(root=Path(root), config=replace(layer.config, path=root))
    files = {f"{layer.config.scripts}/{name}": text.encode("utf-8")
             for name, text in render_all(env_change(moved), __version__).items()}
    files[CONFIG_NAME] = moved.config.to_toml().encode("utf-8")
    # what bin/layervenv-run sources: the recorded stack replayed, also for a layer made
    # with --rerun-setup (as ``layervenv run`` does: a job has no use for shell functions)
    replay = replace(moved.config, stack=replace(moved.config.stack, rerun_setup=False))
    files[RUN_ACTIVATE] = posix.render(env_change(Layer(root=Path(root), config=replay)),
                                       __version__)["activate"].encode("utf-8")
    return files


def unsafe_characters(layer: Layer, templates: dict[str, bytes]) -> str:
    """Characters a path cannot hold for the placeholder to be replaced verbatim.

    For each probed character, the files rendered for a path holding it are compared
    with the templates where the placeholder is replaced by that path: any difference
    (a shell quoting the character) puts it on the list.
    """
    unsafe = set(NEVER)
    for char in PROBED:
        probe = f"/probe{char}dir/layer"
        expected = {rel: data.replace(PLACEHOLDER.encode(), probe.encode())
                    for rel, data in templates.items()}
        if rendered_files(layer, probe) != expected:
            unsafe.add(char)
    return "".join(sorted(unsafe))


def script_header(data: bytes, root: str) -> tuple[int, str] | None:
    """(length of the ``#!`` header, the interpreter relative to ``root``) when ``data`` is
    a script whose interpreter is in the layer: ``#!ROOT/bin/python`` or the ``/bin/sh``
    trampoline pip and installer write for a long path or one with a space."""
    import shlex

    prefix = root + "/"
    lines = data.split(b"\n", 3)
    first = lines[0].decode("utf-8", "replace")
    if first.startswith("#!" + prefix) and " " not in first[2 + len(prefix):]:
        return len(lines[0]) + 1, first[2 + len(prefix):].strip()
    if first == "#!/bin/sh" and len(lines) > 3 and lines[2] == b"' '''":
        line = lines[1].decode("utf-8", "replace")
        head, tail = "'''exec' ", ' "$0" "$@"'
        if line.startswith(head) and line.endswith(tail):
            words = shlex.split(line[len(head):-len(tail)])
            if len(words) == 1 and words[0].startswith(prefix):
                return sum(len(part) + 1 for part in lines[:3]), words[0][len(prefix):]
    return None


def launcher(python: str) -> str:
    """``bin/layervenv-run``: a shell script, so that a missing stack interpreter is one
    line and exit status 2 (a ``#!`` naming it would fail with "bad interpreter").

    The body is one function called on the last line: a file cut short never runs
    half of it.  After the first run (the marker names this path) it starts no Python.
    """
    return f"""#!/bin/sh
# Runs COMMAND with this layer and its recorded stack: layervenv-run COMMAND [ARGS...]
# Written by layervenv pack {__version__}; needs only /bin/sh and the stack on this machine.
_layervenv_run() {{
    _lv_python={quote(python)}
    case $0 in */*) _lv_here=${{0%/*}} ;; *) _lv_here=. ;; esac
    _lv_root=$(cd -P -- "$_lv_here/.." && pwd -P) || exit 2
    _lv_pack=$_lv_root/{PACK_DIR}
    if [ ! -f "$_lv_pack/manifest.json" ]; then
        printf 'layervenv-run: error: %s is incomplete %s\\n' "$_lv_root" \\
            '(its archive was truncated or not fully unpacked): unpack the archive again' >&2
        exit 2
    fi
    if [ ! -x "$_lv_python" ]; then
        printf 'layervenv-run: error: the stack of this layer is missing: %s %s %s\\n' \\
            interpreter "$_lv_python" '(is CVMFS mounted? was the release removed?)' >&2
        exit 2
    fi
    _lv_done=
    if [ -f "$_lv_pack/unpacked" ]; then IFS= read -r _lv_done < "$_lv_pack/unpacked"; fi
    if [ "x$_lv_done" != "x$_lv_root" ]; then
        "$_lv_python" -I "$_lv_pack/unpack.py" "$_lv_root" || exit $?
    fi
    if [ $# -eq 0 ]; then
        printf 'layervenv-run: error: no command given: %s COMMAND [ARGS...]\\n' "$0" >&2
        exit 2
    fi
    . "$_lv_root/{RUN_ACTIVATE}" || exit 2
    unset _lv_python _lv_here _lv_root _lv_pack _lv_done
    exec "$@"
}}
_layervenv_run "$@"
"""


# --- editable projects ---------------------------------------------------------------


@dataclass
class Editable:
    name: str
    version: str
    project: Path
    dist_info: Path
    #: the files the editable install put into the layer (from RECORD)
    files: set[Path]


def editable_installs(site: Path) -> list[Editable]:
    """Distributions installed with ``pip install -e`` (PEP 660, ``direct_url.json``)."""
    found = []
    for dist_info in sorted(site.glob("*.dist-info")):
        project = editable_project(read_direct_url(dist_info))
        if project is None:
            continue
        meta = HeaderParser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
        files = {dist_info, *dist_info.rglob("*")}
        with contextlib.suppress(OSError, ValueError):  # no RECORD: its dist-info only
            files.update(installed_paths(dist_info))
        found.append(Editable(name=meta["Name"], version=meta["Version"],
                              project=Path(project), dist_info=dist_info, files=files))
    return found


def snapshot(layer: Layer, editable: Editable, staging: Path, env: dict[str, str]) -> Snapshot:
    """Build ``editable``'s project into a wheel and install it into ``staging``."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="layervenv-wheel-") as wheels:
        command = [str(layer.python), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                   "--no-index", "--disable-pip-version-check", "-q", "-w", wheels,
                   str(editable.project)]
        # the layer is read, never written: no bytecode of pip's modules appears in it
        result = subprocess.run(command, env=dict(env, PYTHONDONTWRITEBYTECODE="1"),
                                capture_output=True, text=True, check=False)
        built = sorted(Path(wheels).glob("*.whl"))
        if result.returncode != 0 or len(built) != 1:
            last = (result.stderr.strip().splitlines() or ["no wheel was built"])[-1]
            raise UserError(f"cannot snapshot the editable {editable.name} from "
                            f"{editable.project}: pip wheel --no-build-isolation failed "
                            f"({last.strip()}); install its build backend in the layer "
                            f"(python -m pip install setuptools) and pack again")
        extra = {}
        if (editable.dist_info / "REQUESTED").exists():
            extra["REQUESTED"] = b""
        install_wheel(built[0], InstallScheme(staging, layer.root, layer.config.purelib,
                                              layer.config.purelib, layer.config.scripts,
                                              "include"), extra)
    return Snapshot(editable.name, editable.version, str(editable.project),
                    round(time.perf_counter() - start, 2))


# --- the archive -----------------------------------------------------------------------


@dataclass
class Member:
    """One archive member: a file's bytes, a symlink's target, or a directory."""

    rel: str
    kind: str  # "file", "link", "dir"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""


def pyc_for_epoch(data: bytes, source: Path, flags_field: bool, when: int) -> bytes | None:
    """``data`` (a ``.pyc``) valid for ``source`` once its mtime is ``when``; None if stale.

    A timestamp pyc records its source's mtime and size; unpacked with normalised
    times, it would be recompiled by every job (or, with PYTHONDONTWRITEBYTECODE, by
    every process) unless its recorded mtime is normalised too.
    """
    offset = 8 if flags_field else 4
    if len(data) < offset + 8:
        return None
    if flags_field and struct.unpack("<I", data[4:8])[0] & 1:
        return data  # hash-based: valid whatever the mtime
    mtime, size = struct.unpack("<II", data[offset:offset + 8])
    stat = source.stat()
    if mtime != int(stat.st_mtime) & 0xFFFFFFFF or size != stat.st_size & 0xFFFFFFFF:
        return None
    return data[:offset] + struct.pack("<I", when & 0xFFFFFFFF) + data[offset + 4:]


def layer_members(root: Path, bin_dir: Path, skip: set[Path], flags_field: bool, when: int
                  ) -> Iterator[tuple[Member, Path]]:
    """Every entry of the layer, sorted, except ``skip``, stale bytecode and a launcher
    (of a layer unpacked from a pack, packed again)."""
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        dirs.sort()
        if here == root and PACK_DIR in dirs:
            dirs.remove(PACK_DIR)  # an unpacked layer packed again
        kept = []
        for name in dirs:
            path = here / name
            if path in skip:
                continue
            if path.is_symlink():
                yield Member(str(path.relative_to(root)), "link", target=os.readlink(path)), path
            else:
                kept.append(name)
        dirs[:] = kept
        yield Member(str(here.relative_to(root)), "dir", mode=0o755), here
        for name in sorted(files):
            path = here / name
            if path in skip or (here == bin_dir and name == LAUNCHER):
                continue
            rel = str(path.relative_to(root))
            if path.is_symlink():
                yield Member(rel, "link", target=os.readlink(path)), path
                continue
            if not path.is_file():
                continue
            data = path.read_bytes()
            if here.name == "__pycache__" and name.endswith(".pyc"):
                source = here.parent / (name.split(".", 1)[0] + ".py")
                if source in skip or not source.is_file():
                    continue
                fixed = pyc_for_epoch(data, source, flags_field, when)
                if fixed is None:
                    continue
                data = fixed
            mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
            yield Member(rel, "file", data, mode), path


def add_member(tar: tarfile.TarFile, name: str, member: Member, when: int) -> None:
    info = tarfile.TarInfo(f"{name}/{member.rel}" if member.rel != "." else name)
    info.mtime = when
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = member.mode
    if member.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif member.kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = member.target
        info.mode = 0o777
        tar.addfile(info)
    else:
        info.size = len(member.data)
        tar.addfile(info, io.BytesIO(member.data))


def unpack_source() -> str:
    """The worker-side module, as shipped in this package."""
    return script_source(UNPACK_MODULE, "layervenv.boot")


def stack_facts(layer: Layer) -> dict[str, object]:
    """What the worker checks (the manifest's ``stack``): the interpreter, its version,
    the directories, and the digest of their distributions, computed by the worker's own
    code (``dist_entries_digest``) on the stack's interpreter."""
    stack = layer.config.stack
    directories = [e for e in stack.stack_pythonpath() if os.path.isabs(e)]
    try:
        digest = run_query(stack.python, UNPACK_MODULE, ["--fingerprint", *directories],
                           flags=("-I",), package="layervenv.boot")
    except QueryFailed as error:
        raise UserError(f"{error}; pack on a machine where the stack is") from None
    return {"python": stack.python, "python_version": stack.python_version,
            "directories": directories, "fingerprint": digest}


def pack(directory: str | None, output: str | None) -> PackResult:
    """Pack the layer ``directory`` into ``output``.

    It holds the layer's lock: snapshotting an editable project runs pip in the layer and
    builds in the project's directory, which two packs at once break.  A pip run in the
    layer that took no lock is caught too: an archive of packages that changed while it
    was made is refused, with nothing written, as ``rebase`` does.
    """
    start = time.perf_counter()
    layer = Layer.from_argument(directory)
    with layer_write_lock(layer.root, "pack"):
        return _pack(layer, output, start)


def _pack(layer: Layer, output: str | None, start: float) -> PackResult:
    packages_before = site_snapshot(layer.site_packages)
    layer.refuse_if_moved("packed from")
    name = layer.root.name
    target = Path(output or f"{name}.tar.gz").absolute()
    if not target.name.endswith((".tar.gz", ".tgz")):
        raise UserError(f"the archive's name must end in .tar.gz or .tgz: {target}")
    root = str(layer.root)
    when = epoch()
    templates = rendered_files(layer, PLACEHOLDER)
    manifest: dict[str, object] = {
        "format": 1, "layervenv": __version__, "name": name, "placeholder": PLACEHOLDER,
        "unsafe_characters": unsafe_characters(layer, templates),
        "stack": stack_facts(layer),
    }
    env = layer_environment(layer, dict(os.environ), "run")
    site = layer.site_packages
    editables = editable_installs(site)
    # (a writer's lock, kept inside the layer where its parent is read-only, is not packed)
    skip = {layer.root / rel for rel in templates} | {layer.root / INSIDE_NAME}
    for editable in editables:
        skip |= editable.files
    files: dict[str, int] = {}
    links: dict[str, str] = {}
    directory_links: dict[str, str] = {}
    entries: list[dict[str, object]] = []
    notes = []
    flags_field = tuple(int(p) for p in layer.config.stack.python_version.split(".")[:2]) >= (3, 7)
    try:
        tmp_fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise UserError(f"cannot write {target}: {error.strerror}") from None
    skip.add(Path(tmp_name))
    skip.add(target)
    snapshots = []
    try:
        with os.fdopen(tmp_fd, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                              compresslevel=COMPRESSLEVEL) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar, \
                tempfile.TemporaryDirectory(prefix="layervenv-pack-") as work:
            staging = Path(work)
            for editable in editables:
                snapshots.append(snapshot(layer, editable, staging, env))
            members: dict[str, Member] = {}
            for member, path in layer_members(layer.root, layer.bin_dir, skip, flags_field, when):
                if member.kind == "link" and path.is_dir():
                    directory_links[member.rel] = member.target
                    continue
                header = script_header(member.data, root) if member.kind == "file" else None
                if header is not None:
                    length, python = header
                    entries.append({"path": member.rel, "kind": "script", "python": python,
                                    "mode": member.mode})
                    members[f"{PACK_DIR}/templates/{member.rel}"] = replace(
                        member, rel=f"{PACK_DIR}/templates/{member.rel}",
                        data=member.data[length:])
                    continue
                if member.kind == "file" and root.encode() in member.data \
                        and not member.rel.endswith(".pyc"):
                    notes.append(f"note: {member.rel} names the layer's path {root} and is "
                                 f"packed as it is")
                members[member.rel] = member
            for path in sorted(staging.rglob("*")):
                rel = str(path.relative_to(staging))
                if path.is_dir():
                    members.setdefault(rel, Member(rel, "dir", mode=0o755))
                    continue
                data = path.read_bytes()
                header = script_header(data, root)
                mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
                if header is not None:
                    entries.append({"path": rel, "kind": "script", "python": header[1],
                                    "mode": mode})
                    rel = f"{PACK_DIR}/templates/{rel}"
                    data = data[header[0]:]
                members[rel] = Member(rel, "file", data, mode)
            for rel, data in templates.items():
                entries.append({"path": rel, "kind": "text", "mode": 0o644})
                members[f"{PACK_DIR}/templates/{rel}"] = Member(
                    f"{PACK_DIR}/templates/{rel}", "file", data)
            members[f"{PACK_DIR}/unpack.py"] = Member(f"{PACK_DIR}/unpack.py", "file",
                                                      unpack_source().encode("utf-8"))
            launcher_rel = f"{layer.config.scripts}/{LAUNCHER}"
            members[launcher_rel] = Member(launcher_rel, "file",
                                           launcher(layer.config.stack.python).encode(), 0o755)
            for rel in _parents(members):
                members.setdefault(rel, Member(rel, "dir", mode=0o755))
            for rel in sorted(members, key=_sort_key):
                member = members[rel]
                add_member(tar, name, member, when)
                if member.kind == "file":
                    files[rel] = len(member.data)
                elif member.kind == "link":
                    links[rel] = member.target
            manifest.update(files=files, links=links, directory_links=directory_links,
                            templates=sorted(entries, key=lambda e: str(e["path"])),
                            snapshots=[{"name": s.name, "version": s.version,
                                        "project": s.project} for s in snapshots])
            data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
            add_member(tar, name, Member(f"{PACK_DIR}/manifest.json", "file", data), when)
        if site_snapshot(layer.site_packages) != packages_before:
            raise UserError(f"the packages of {root} changed while it was being packed (a "
                            f"pip run in it?): nothing was written; pack it again")
        os.replace(tmp_name, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(error, OSError):  # an unreadable file, a full disk
            where = f" {error.filename}" if error.filename else ""
            raise UserError(f"cannot pack {root} into {target}:{where} {error.strerror}"
                            ) from None
        raise
    return PackResult(path=str(target), layer=root, size=target.stat().st_size,
                      files=len(files), seconds=round(time.perf_counter() - start, 3),
                      snapshots=snapshots, notes=notes)


def _parents(members: dict[str, Member]) -> set[str]:
    parents = {"."}
    for rel in members:
        parts = rel.split("/")[:-1]
        parents.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return parents


def _sort_key(rel: str) -> tuple[int, list[str]]:
    """Sorted by path components; the root first."""
    return (0, []) if rel == "." else (1, rel.split("/"))


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv pack``'s options and help."""
    parser = commands.add_parser(
        "pack", help="one archive of the layer for batch jobs (Slurm, HTCondor)",
        description="Pack the layer into a .tar.gz that a job unpacks anywhere: "
                    "tar -xzf FILE -C DEST, then DEST/NAME/bin/layervenv-run COMMAND "
                    "[ARGS...]. Editable projects are packed as a snapshot of their "
                    "current code.")
    add_active_dir(parser)
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the archive (default: NAME.tar.gz in the current directory)")
    add_format(parser)
    return parser
