"""Packing a layer into one archive a batch job unpacks anywhere and uses
(``layervenv pack``; the command itself is :mod:`layervenv.commands.pack`).

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
wheel from a temporary copy of the project (nothing is written into it; no earlier
build's output is shipped), the way ``pip install -e`` built it, and installed into
the archive in its place, so the packed layer holds a normal install of the project's
current code.  Links leaving the layer are packed as their content (see
:class:`LayerWalk`).

Nothing is held in memory but the members' names: every file is streamed from disk
into the archive, so packing a multi-GB layer needs little more than the largest
bytecode file.

The archive is reproducible: entries sorted, owners and modification times
normalised (bytecode kept valid for the normalised times), gzip without a
timestamp.  The manifest comes last: an unpacked directory without it, or with a
file shorter than it says, is refused on the worker (a truncated archive).  The
archive's identity (a digest of everything else in it) comes first, as
``.layervenv-pack/id``, and in the manifest: the worker's marker records it, so another
archive unpacked over an unpacked one is put in place again, and one cut short over
it (new identity, old manifest) is refused.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import string
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from email.parser import HeaderParser
from pathlib import Path
from typing import BinaryIO

from layervenv import __version__
from layervenv.boot._layervenv_boot import INDEX_NAME
from layervenv.boot.layervenv_unpack import IDENTITY, INTERPRETER, MARKER, PACK_DIR
from layervenv.dists.direct_url import editable_project, read_direct_url
from layervenv.dists.record import installed_paths
from layervenv.dists.scheme import InstallScheme
from layervenv.dists.seed import install_wheel
from layervenv.infra.errors import UserError
from layervenv.infra.writelock import INSIDE_NAME
from layervenv.interp.query import QueryFailed, run_query, script_source
from layervenv.model.layer import CONFIG_NAME, Layer, site_snapshot
from layervenv.runtime.activation import env_change
from layervenv.runtime.environment import layer_environment
from layervenv.runtime.shells import posix, render_all
from layervenv.runtime.shells.posix import quote

UNPACK_MODULE = "layervenv_unpack.py"
LAUNCHER = "layervenv-run"
RUN_ACTIVATE = f"{PACK_DIR}/activate-for-run"
#: the archive's first file: its identity, as the manifest (its last member) names it
IDENTITY_REL = f"{PACK_DIR}/{IDENTITY}"
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
#: how much of a file is read at once into the archive (memory is this plus names)
COPY_CHUNK = 1 << 20


@dataclass
class Snapshot:
    """An editable project packed as a normal install of its current code."""

    name: str
    version: str
    project: str
    seconds: float


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
    half of it.  It finds the layer from its own file, through links (``~/bin/ana-run``
    linking to it).  After the first run it starts no Python: the marker names this
    archive and this path, and the recorded interpreter's path leads to the file the first
    run checked (``-ef`` against the link it made: two stat calls); otherwise the first
    run is done (again), which refuses another Python X.Y.
    """
    return f"""#!/bin/sh
# Runs COMMAND with this layer and its recorded stack: layervenv-run COMMAND [ARGS...]
# Written by layervenv pack {__version__}; needs only /bin/sh and the stack on this machine.
_layervenv_run() {{
    _lv_python={quote(python)}
    _lv_self=$0
    _lv_hops=0
    while [ -L "$_lv_self" ] && [ "$_lv_hops" -lt 40 ]; do
        _lv_link=$(readlink -- "$_lv_self") || {{
            printf 'layervenv-run: error: cannot follow the link %s (no readlink?)\\n' \\
                "$_lv_self" >&2
            exit 2
        }}
        case $_lv_link in
            /*) _lv_self=$_lv_link ;;
            *) case $_lv_self in
                   */*) _lv_self=${{_lv_self%/*}}/$_lv_link ;;
                   *) _lv_self=$_lv_link ;;
               esac ;;
        esac
        _lv_hops=$((_lv_hops + 1))
    done
    case $_lv_self in */*) _lv_here=${{_lv_self%/*}} ;; *) _lv_here=. ;; esac
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
    _lv_id= _lv_done=
    if [ -f "$_lv_pack/{IDENTITY}" ]; then IFS= read -r _lv_id < "$_lv_pack/{IDENTITY}"; fi
    if [ -f "$_lv_pack/{MARKER}" ]; then IFS= read -r _lv_done < "$_lv_pack/{MARKER}"; fi
    if [ "x$_lv_done" != "x$_lv_id $_lv_root" ] \\
            || ! [ "$_lv_python" -ef "$_lv_pack/{INTERPRETER}" ]; then
        "$_lv_python" -I "$_lv_pack/unpack.py" "$_lv_root" || exit $?
    fi
    if [ $# -eq 0 ]; then
        printf 'layervenv-run: error: no command given: %s COMMAND [ARGS...]\\n' "$0" >&2
        exit 2
    fi
    . "$_lv_root/{RUN_ACTIVATE}" || exit 2
    unset _lv_python _lv_self _lv_hops _lv_link _lv_here _lv_root _lv_pack _lv_id _lv_done
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


#: what distutils/setuptools leave under a project's ``build/`` (``build_base``): copied
#: into the snapshot's build, they would ship modules the user has since deleted
BUILD_OUTPUTS = ("lib", "lib.*", "bdist.*", "temp.*", "scripts-*")


def _without_build_outputs(project: Path) -> Callable[[str, list[str]], set[str]]:
    build = str(project / "build")

    def ignore(directory: str, names: list[str]) -> set[str]:
        if directory != build:
            return set()
        return {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in BUILD_OUTPUTS)}

    return ignore


def pip_cause(stderr: str) -> str:
    """The line of pip's output that names why it failed: a requirement not found, the
    last line of the build backend's traceback, else pip's last ``ERROR:`` line (the
    final line is often only ``hint: See above for details.``)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("ERROR: No matching distribution found for "):
            return "no " + line.split(" for ", 1)[1] + " in the indexes and find-links pip uses"
    for index, line in enumerate(lines):  # the backend's traceback, as pip quotes it
        if line.startswith("Traceback (most recent call last):"):
            tail = [x for x in lines[index + 1:] if not x.startswith(("File ", "^", "~"))
                    and not x.startswith(("[end of output]", "note:", "hint:", "ERROR:",
                                          "error:", "╰─>", "×", "│"))]
            if tail:
                return tail[-1].lstrip("│ ").strip()
    errors = [line for line in lines if line.startswith(("ERROR:", "error:"))
              and "See above" not in line and "subprocess-exited-with-error" not in line]
    return (errors or lines or ["no wheel was built"])[-1]


def _pip_wheel(layer: Layer, project: Path, wheels: str, env: dict[str, str], isolated: bool,
               find_links: Sequence[str]) -> tuple[list[Path], str]:
    """Run the layer's ``pip wheel`` on ``project``; the wheels built and pip's stderr."""
    command = [str(layer.python), "-m", "pip", "wheel", "--no-deps",
               "--disable-pip-version-check", "-q", "-w", wheels]
    command += [f"--find-links={where}" for where in find_links]
    if not isolated:
        command.append("--no-build-isolation")
    result = subprocess.run([*command, str(project)], env=env, capture_output=True,
                            text=True, check=False)
    built = sorted(Path(wheels).glob("*.whl"))
    return (built if result.returncode == 0 else []), result.stderr


def build_snapshot_wheel(layer: Layer, editable: Editable, work: Path, env: dict[str, str],
                         find_links: Sequence[str]) -> Path:
    """A wheel of ``editable``'s project as it is now, built without writing into it.

    The project is copied first (without a setuptools ``build/`` left from earlier
    builds), because backends build in the tree (setuptools' ``build/`` and
    ``*.egg-info``).  It is built as ``pip install -e`` built it by default: in an
    isolated environment whose build requirements come from the user's pip
    configuration (its index, ``PIP_FIND_LINKS``, ``pip.conf``) and ``find_links``; the
    stack's PYTHONPATH is kept out of that build (an older ``packaging`` of the stack
    would shadow the one the backend needs).  A project installed with
    ``--no-build-isolation`` is built again that way, with the layer's own backend.
    """
    copy = work / "project" / editable.project.name
    try:
        shutil.copytree(editable.project, copy, symlinks=True,
                        ignore=_without_build_outputs(editable.project))
    except (OSError, shutil.Error) as error:
        raise UserError(f"cannot snapshot the editable {editable.name}: cannot copy its "
                        f"project {editable.project}: {error}") from None
    # the layer is read, never written: no bytecode of pip's modules appears in it
    env = dict(env, PYTHONDONTWRITEBYTECODE="1")
    isolated_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    causes = []
    for isolated in (True, False):
        wheels = work / f"wheels-{isolated}"
        wheels.mkdir()
        built, stderr = _pip_wheel(layer, copy, str(wheels), isolated_env if isolated else env,
                                   isolated, find_links)
        if len(built) == 1:
            return built[0]
        causes.append(pip_cause(stderr))
    raise UserError(f"cannot snapshot the editable {editable.name} from {editable.project}: "
                    f"pip wheel failed: {causes[0]} (and with the layer's own build backend, "
                    f"without build isolation: {causes[1]}); give pack --find-links DIR "
                    f"holding its build requirements, or install them in the layer")


def snapshot(layer: Layer, editable: Editable, staging: Path, env: dict[str, str],
             find_links: Sequence[str] = ()) -> Snapshot:
    """Build ``editable``'s project into a wheel and install it into ``staging``."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="layervenv-wheel-") as work:
        wheel = build_snapshot_wheel(layer, editable, Path(work), env, find_links)
        extra = {}
        if (editable.dist_info / "REQUESTED").exists():
            extra["REQUESTED"] = b""
        install_wheel(wheel, InstallScheme(staging, layer.root, layer.config.purelib,
                                           layer.config.purelib, layer.config.scripts,
                                           "include"), extra)
    return Snapshot(editable.name, editable.version, str(editable.project),
                    round(time.perf_counter() - start, 2))


# --- the archive -----------------------------------------------------------------------


@dataclass
class Member:
    """One archive member: a directory, a symlink's target, or a file's content, read
    from ``source`` (from byte ``offset`` on) when it is written, or made here (``data``:
    small things only -- templates, bytecode, the manifest).  Nothing of the layer's
    files is held in memory: a layer of torch and CUDA is packed on a login node."""

    rel: str
    kind: str  # "file", "link", "dir"
    mode: int = 0o644
    target: str = ""
    source: Path | None = None
    offset: int = 0
    size: int = 0
    data: bytes | None = None


def made(rel: str, data: bytes, mode: int = 0o644) -> Member:
    return Member(rel, "file", mode, data=data, size=len(data))


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


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def stack_directories(layer: Layer) -> list[str]:
    """Where the stack is (the worker has it at the same paths): the interpreter's prefix
    (as recorded and resolved), its PYTHONPATH and every directory its setup prepends."""
    stack = layer.config.stack
    found = []
    for python in (stack.python, os.path.realpath(stack.python)):
        found.append(os.path.dirname(os.path.dirname(python)))
    found += stack.stack_pythonpath()
    for entries in stack.stack_environment().prepend.values():
        found += entries
    return sorted({os.path.normpath(d) for d in found if os.path.isabs(d) and d != "/"})


@dataclass
class LayerWalk:
    """Every entry of the layer as archive members, sorted, except ``skip``, stale
    bytecode and a launcher (of a layer unpacked from a pack, packed again).

    Links: one into the layer stays a link (made relative), as does one into the stack
    (the worker has it); a link to a file or directory elsewhere (``site-packages/mypkg ->
    ~/src/mypkg``, a data link) is packed as a copy of its content, with a note, since
    the worker does not have the host's path.  A dangling link and a special file (FIFO,
    socket, device) cannot be packed: each is named in ``notes``.  A link to a directory
    in the layer or the stack goes to ``directory_links`` (made on the worker: HTCondor's
    file transfer drops such links).
    """

    root: Path
    bin_dir: Path
    skip: set[Path]
    flags_field: bool
    when: int
    stack_dirs: list[str]
    notes: list[str] = field(default_factory=list)
    directory_links: dict[str, str] = field(default_factory=dict)

    def members(self) -> Iterator[Member]:
        real_root = os.path.realpath(self.root)
        for directory, dirs, files in os.walk(self.root):
            here = Path(directory)
            dirs.sort()
            if here == self.root and PACK_DIR in dirs:
                dirs.remove(PACK_DIR)  # an unpacked layer packed again
            kept = []
            for name in dirs:
                path = here / name
                refuse_non_utf8(path)
                if path in self.skip:
                    continue
                if path.is_symlink():
                    yield from self._link(path, real_root)
                else:
                    kept.append(name)
            dirs[:] = kept
            yield Member(str(here.relative_to(self.root)), "dir", 0o755)
            for name in sorted(files):
                path = here / name
                refuse_non_utf8(path)
                if path in self.skip or (here == self.bin_dir and name == LAUNCHER):
                    continue
                if path.is_symlink():
                    yield from self._link(path, real_root)
                else:
                    yield from self._file(path, str(path.relative_to(self.root)))

    def _file(self, path: Path, rel: str, copied: bool = False) -> Iterator[Member]:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            self.notes.append(f"note: {rel} is a {_kind(info.st_mode)}: not packed (an archive "
                              f"cannot carry it; make it in the job)")
            return
        mode = 0o755 if info.st_mode & 0o111 else 0o644
        here = path.parent
        if here.name == "__pycache__" and path.name.endswith(".pyc") and not copied:
            source = here.parent / (path.name.split(".", 1)[0] + ".py")
            if source in self.skip or not source.is_file():
                return
            fixed = pyc_for_epoch(path.read_bytes(), source, self.flags_field, self.when)
            if fixed is not None:
                yield made(rel, fixed, mode)
            return
        yield Member(rel, "file", mode, source=path, size=info.st_size)

    def _link(self, path: Path, real_root: str) -> Iterator[Member]:
        rel = str(path.relative_to(self.root))
        target = os.readlink(path)
        refuse_non_utf8(Path(target), f"the target of the link {path}")
        resolved = os.path.realpath(path)
        if not os.path.exists(resolved):
            self.notes.append(f"note: {rel} is a link to {target}, which does not exist: "
                              f"not packed")
            return
        absolute = os.path.normpath(os.path.join(path.parent, target))
        if _within(resolved, real_root):
            if os.path.isabs(target):  # the worker's layer is elsewhere: relative
                target = os.path.relpath(resolved, os.path.realpath(path.parent))
        elif not any(_within(absolute, d) or _within(resolved, d) for d in self.stack_dirs):
            self.notes.append(f"note: {rel} is a link to {target}, outside the layer: packed "
                              f"as a copy of its content")
            yield from self._copy(Path(resolved), rel)
            return
        if os.path.isdir(resolved):
            self.directory_links[rel] = target
        else:
            yield Member(rel, "link", 0o777, target=target)

    def _copy(self, source: Path, rel: str) -> Iterator[Member]:
        """The content of ``source`` (outside the layer) at ``rel``; links in it followed
        (a loop is cut where a directory comes back)."""
        if not source.is_dir():
            yield from self._file(source, rel, copied=True)
            return
        seen = set()
        for directory, dirs, files in os.walk(source, followlinks=True):
            real = os.path.realpath(directory)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
            dirs.sort()
            here = rel if directory == str(source) else \
                f"{rel}/{os.path.relpath(directory, source)}"
            yield Member(here, "dir", 0o755)
            for name in sorted(files):
                path = Path(directory, name)
                if not path.exists():
                    self.notes.append(f"note: {here}/{name} is a link to {os.readlink(path)}, "
                                      f"which does not exist: not packed")
                    continue
                yield from self._file(path, f"{here}/{name}", copied=True)


def refuse_non_utf8(path: Path, what: str | None = None) -> None:
    """Refuse a name an archive's manifest and the worker's records cannot hold: tar
    carries any bytes, but the manifest, RECORD and the scripts name paths in UTF-8.
    The refusal names the file (its undecodable bytes as \\xNN), so the user can find
    and rename it."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise UserError(f"cannot pack {what or shown}: its name is not valid UTF-8"
                        f"{'' if what is None else f' ({shown})'}; rename it") from None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


class _Reading(io.RawIOBase):
    """A member's content as tarfile reads it, chunk by chunk, watching for ``needle``
    (the layer's path, which the worker's path replaces only in templates)."""

    def __init__(self, stream: BinaryIO, needle: bytes) -> None:
        self.stream, self.needle, self.found, self.tail = stream, needle, False, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        if self.needle and not self.found and chunk:
            joined = self.tail + chunk
            self.found = self.needle in joined
            self.tail = joined[len(joined) - len(self.needle) + 1:]
        return chunk


def _head(path: Path, size: int = 1 << 16) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(size)


def as_template(member: Member, root: str, entries: list[dict[str, object]]) -> Member:
    """A script whose ``#!`` names the layer's interpreter goes to the templates, without
    its header (the worker writes one for its path); anything else stays."""
    if member.kind != "file" or member.rel.endswith(".pyc"):
        return member
    head = member.data if member.data is not None else _head(member.source)
    header = script_header(head, root)
    if header is None:
        return member
    length, python = header
    entries.append({"path": member.rel, "kind": "script", "python": python,
                    "mode": member.mode})
    rel = f"{PACK_DIR}/templates/{member.rel}"
    if member.data is not None:
        return replace(member, rel=rel, data=member.data[length:], size=member.size - length)
    return replace(member, rel=rel, offset=length, size=member.size - length)


def add_member(tar: tarfile.TarFile, name: str, member: Member, when: int,
               needle: bytes = b"") -> bool:
    """Write ``member`` under ``name/``, streaming a file's content from disk; whether
    the content holds ``needle``."""
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
    elif member.data is not None:
        info.size = len(member.data)
        tar.addfile(info, io.BytesIO(member.data))
        return bool(needle) and needle in member.data
    else:
        info.size = member.size
        with open(member.source, "rb") as stream:
            stream.seek(member.offset)
            reading = _Reading(stream, needle)
            try:
                tar.addfile(info, reading)
            except OSError as error:
                if error.errno is None:  # tarfile's "unexpected end of data"
                    raise FileChanged(str(member.source)) from None
                raise
            return bool(needle) and reading.found
    return False


class FileChanged(Exception):
    """A file got shorter while it was packed."""


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


@dataclass
class Packed:
    """What :func:`write_archive` made."""

    files: int
    snapshots: list[Snapshot]
    notes: list[str]


def archive_name(layer: Layer, output: str | None) -> Path:
    """Where the archive goes (``NAME.tar.gz`` in the current directory by default)."""
    target = Path(output or f"{layer.root.name}.tar.gz").absolute()
    if not target.name.endswith((".tar.gz", ".tgz")):
        raise UserError(f"the archive's name must end in .tar.gz or .tgz: {target}")
    return target


def write_archive(layer: Layer, target: Path, find_links: Sequence[str] = ()) -> Packed:
    """Pack ``layer`` (whose write lock the caller holds) into ``target``, atomically.

    A pip run in the layer that took no lock is caught: an archive of packages that
    changed while it was made is refused, with nothing written, as ``rebase`` does.
    """
    packages_before = site_snapshot(layer.site_packages)
    layer.refuse_if_moved("packed from")
    root = str(layer.root)
    when = epoch()
    templates = rendered_files(layer, PLACEHOLDER)
    manifest: dict[str, object] = {
        "format": 1, "layervenv": __version__, "name": layer.root.name,
        "placeholder": PLACEHOLDER, "unsafe_characters": unsafe_characters(layer, templates),
        "stack": stack_facts(layer),
    }
    env = layer_environment(layer, dict(os.environ), "run")
    editables = editable_installs(layer.site_packages)
    try:
        tmp_fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise UserError(f"cannot write {target}: {error.strerror}") from None
    # not packed: a writer's lock, kept inside the layer where its parent is read-only;
    # the import index, whose read-only flags are this machine's (the worker's first
    # process records its own)
    skip = {layer.root / rel for rel in templates} | {layer.root / INSIDE_NAME,
                                                      layer.site_packages / INDEX_NAME,
                                                      Path(tmp_name), target}
    for editable in editables:
        skip |= editable.files
    try:
        with os.fdopen(tmp_fd, "wb") as raw, \
                tempfile.TemporaryDirectory(prefix="layervenv-pack-") as work:
            staging = Path(work)
            snapshots = [snapshot(layer, editable, staging, env, find_links)
                         for editable in editables]
            packed = _write(layer, raw, staging, templates, skip, when, manifest, snapshots)
        if site_snapshot(layer.site_packages) != packages_before:
            raise UserError(f"the packages of {root} changed while it was being packed (a "
                            f"pip run in it?): nothing was written; pack it again")
        os.replace(tmp_name, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(error, FileChanged):
            raise UserError(f"{error} changed while {root} was being packed: nothing was "
                            f"written; pack it again") from None
        if isinstance(error, OSError):  # an unreadable file, a full disk
            where = f" {error.filename}" if error.filename else ""
            raise UserError(f"cannot pack {root} into {target}:{where} {error.strerror}"
                            ) from None
        raise
    return packed


def _write(layer: Layer, raw: BinaryIO, staging: Path, templates: dict[str, bytes],
           skip: set[Path], when: int, manifest: dict[str, object],
           snapshots: list[Snapshot]) -> Packed:
    """The members, sorted, then the manifest, into a reproducible ``.tar.gz``."""
    root = str(layer.root)
    name = layer.root.name
    version = layer.config.stack.python_version.split(".")[:2]
    walk = LayerWalk(layer.root, layer.bin_dir, skip,
                     flags_field=tuple(int(p) for p in version) >= (3, 7), when=when,
                     stack_dirs=stack_directories(layer))
    entries: list[dict[str, object]] = []
    members: dict[str, Member] = {}
    for member in walk.members():
        member = as_template(member, root, entries)
        members[member.rel] = member
    snapshot_walk = LayerWalk(staging, staging / layer.config.scripts, set(), True, when, [])
    for member in snapshot_walk.members():
        if member.rel == ".":
            continue
        member = as_template(member, root, entries)
        if member.kind != "dir" or member.rel not in members:
            members[member.rel] = member
    for rel, data in templates.items():
        entries.append({"path": rel, "kind": "text", "mode": 0o644})
        members[f"{PACK_DIR}/templates/{rel}"] = made(f"{PACK_DIR}/templates/{rel}", data)
    members[f"{PACK_DIR}/unpack.py"] = made(f"{PACK_DIR}/unpack.py",
                                            unpack_source().encode("utf-8"))
    launcher_rel = f"{layer.config.scripts}/{LAUNCHER}"
    members[launcher_rel] = made(launcher_rel, launcher(layer.config.stack.python).encode(),
                                 0o755)
    for rel in _parents(members):
        members.setdefault(rel, Member(rel, "dir", 0o755))
    files = {rel: m.size for rel, m in members.items() if m.kind == "file"}
    links = {rel: m.target for rel, m in members.items() if m.kind == "link"}
    manifest.update(files=files, links=links, directory_links=walk.directory_links,
                    templates=sorted(entries, key=lambda e: str(e["path"])),
                    snapshots=[{"name": s.name, "version": s.version, "project": s.project}
                               for s in snapshots])
    manifest["archive"] = archive_identity(manifest, members.values())
    members[IDENTITY_REL] = made(IDENTITY_REL, f"{manifest['archive']}\n".encode())
    files[IDENTITY_REL] = members[IDENTITY_REL].size
    notes = list(walk.notes)
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                       compresslevel=COMPRESSLEVEL) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT,
                         copybufsize=COPY_CHUNK) as tar:
        for rel in sorted(members, key=_sort_key):
            member = members[rel]
            plain = member.kind == "file" and not rel.startswith(f"{PACK_DIR}/") \
                and not rel.endswith(".pyc")
            if add_member(tar, name, member, when, root.encode() if plain else b""):
                notes.append(f"note: {rel} names the layer's path {root} and is packed as it is")
        data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
        add_member(tar, name, made(f"{PACK_DIR}/manifest.json", data), when)
    return Packed(files=len(files), snapshots=snapshots, notes=notes)

def member_digest(member: Member) -> str:
    """sha256 of a file member's content, streamed from disk as it will be packed."""
    if member.data is not None:
        return hashlib.sha256(member.data).hexdigest()
    digest = hashlib.sha256()
    with open(member.source, "rb") as stream:
        stream.seek(member.offset)
        left = member.size
        while left > 0:
            chunk = stream.read(min(COPY_CHUNK, left))
            if not chunk:
                raise FileChanged(str(member.source))
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def archive_identity(manifest: dict[str, object], members: Iterable[Member]) -> str:
    """A digest of everything the archive holds but the identity and the manifest: the
    manifest's fields so far and each member's kind, mode, path and content (read once
    more from disk, never held: the pass costs reading the layer twice, not memory).

    Two packs of one layer give one identity (the archive is reproducible); any change
    in a file, a link or the stack's facts gives another.
    """
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode("utf-8"))
    for member in sorted(members, key=lambda m: m.rel):
        content = member.target if member.kind == "link" else \
            member_digest(member) if member.kind == "file" else ""
        digest.update(f"{member.kind} {member.mode:o} {member.rel}\0{content}\n".encode())
    return digest.hexdigest()


def _parents(members: dict[str, Member]) -> set[str]:
    parents = {"."}
    for rel in members:
        parts = rel.split("/")[:-1]
        parents.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return parents


def _sort_key(rel: str) -> tuple[int, list[str]]:
    """Sorted by path components; the root first, then the identity (the first file tar
    writes: an update cut short has the new identity beside the old manifest)."""
    if rel == ".":
        return (0, [])
    if rel in (PACK_DIR, IDENTITY_REL):
        return (0, rel.split("/"))
    return (1, rel.split("/"))
