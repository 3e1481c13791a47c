# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""First run of a packed layer on a worker: check it, check the stack, put it in place.

``layervenv pack`` ships this file as ``DIR/.layervenv-pack/unpack.py``; the
archive's ``bin/layervenv-run`` starts it with the stack's interpreter (``-I``:
nothing of the job's environment counts) the first time the unpacked layer is used
at a path, then sources ``bin/activate`` and runs the command.  Nothing of
layervenv is installed on the worker, so this is stdlib only and runs on the
stack's Python, whatever version it is (3.6 and later).

What it does, in this order (each step can refuse with one line, exit status 2):

1. the unpacked layer is complete and of one archive: the identity file, the
   archive's first file, names the archive the manifest, its last member, names (an
   archive unpacked over an older unpack and cut short leaves the new identity beside
   the old manifest: refused, never run mixed), and every file the manifest lists has
   its size (a truncated archive is never used);
2. the layer's new path can be written into its scripts (the characters the pack
   found its renderer quotes verbatim);
3. the stack is the recorded one: the interpreter reports the recorded Python X.Y
   (another micro version: a warning), the stack's directories exist; another set of
   distributions on the stack (its fingerprint) is a one-line warning;
4. the files that name the layer's path are written from the pack's templates:
   activation scripts and ``layervenv.toml`` were rendered by layervenv itself with a
   placeholder path, which is replaced here by the real one; console scripts get the
   ``#!`` line installers write for the new path; directory links (``lib64``) that
   HTCondor's file transfer would not carry are made again;
5. files that an older archive unpacked here put in place and this one does not hold
   are removed (its manifest was kept as ``unpacked.json``): a newer archive unpacked
   over an older unpack never runs beside the older one's distributions;
6. a link to the interpreter's resolved file (``interpreter``) is made: every later
   run checks in ``/bin/sh`` that the recorded path still leads to that file (``-ef``:
   two stat calls) and does the first run again where not, so the recorded path
   holding another Python X.Y later (a view's link swapped) is refused by step 3 on
   every run, not only the first;
7. a marker naming the archive's identity and the path is written last.

Every file is written under a temporary name and renamed into place, and the same
inputs give the same bytes: concurrent first runs of one directory (a job array on
a shared file system) each write the same files, and whichever rename comes last
changes nothing.  A run killed half-way leaves no marker: the next run does it all
again (stale files are removed before ``unpacked.json`` names the new archive, so a
run killed half-way through removing them leaves the next run the same list).  The
templates are kept, so a directory moved again is put in place again.
"""

import contextlib
import hashlib
import json
import os
import shlex
import site
import sys

PACK_DIR = ".layervenv-pack"
MANIFEST = "manifest.json"
#: the archive's identity (the manifest's ``archive``), the archive's first file
IDENTITY = "id"
#: written last by a first run: ``IDENTITY ROOT``, one line (read by ``layervenv-run``)
MARKER = "unpacked"
#: the manifest of the archive last put in place here (to remove what a newer one drops)
UNPACKED_MANIFEST = "unpacked.json"
#: a link to the interpreter's resolved file as the first run saw it
INTERPRETER = "interpreter"
TEMPLATES = "templates"
#: the longest ``#!`` line Linux reads whole (as installers decide)
SHEBANG_LIMIT = 127
DIST_SUFFIXES = (".dist-info", ".egg-info", ".egg")


class Refusal(Exception):
    """One line for the user; the layer is not used."""


def dist_entries_digest(directories):
    """The stack's distributions as the worker can see them cheaply (the manifest's
    ``stack.fingerprint``): sha256 over the distributions found in ``directories`` and
    the interpreter's own site-packages, one ``DIR/NAME`` line each, sorted.

    ``layervenv pack`` runs this same function with the stack's interpreter, so the
    worker compares like with like.  Reading directory names only keeps it fast on
    CVMFS (no metadata file is opened).
    """
    lines = []
    for directory in list(directories) + list(site.getsitepackages()):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        lines.extend(directory + "/" + name for name in names if name.endswith(DIST_SUFFIXES))
    return hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()


def load_manifest(root):
    """The manifest, and its bytes (kept as ``unpacked.json`` by a first run)."""
    path = os.path.join(root, PACK_DIR, MANIFEST)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        return json.loads(data.decode("utf-8")), data
    except (OSError, ValueError):
        raise Refusal(f"{root} is incomplete (its archive was truncated or not fully unpacked: "
                      f"{path} is missing or damaged); unpack the archive again") from None


def read_identity(root):
    """The identity file's one line ('' where it is missing: an older pack or a cut)."""
    try:
        with open(os.path.join(root, PACK_DIR, IDENTITY), encoding="utf-8") as handle:
            return handle.readline().strip()
    except (OSError, ValueError):
        return ""


def check_complete(root, manifest):
    """The identity file and the manifest are of one archive; every file the archive held
    is there with its size, every link with its target.

    tar writes the identity first and the manifest last: an archive unpacked over an
    older unpack and cut short between them has files of both.
    """
    identity = read_identity(root)
    if identity != manifest.get("archive", ""):
        raise Refusal(f"{root} holds an archive unpacked over an older one and not completely "
                      "(its files are of two archives); unpack the archive again, completely, "
                      "or into an empty directory")
    for rel, size in manifest["files"].items():
        try:
            found = os.lstat(os.path.join(root, rel)).st_size
        except OSError:
            found = None
        if found != size:
            raise Refusal("{} is incomplete ({} is {}; the archive was truncated or not fully "
                          "unpacked): unpack the archive again".format(
                              root, rel, "missing" if found is None else "cut short"))
    for rel, target in manifest["links"].items():
        try:
            found = os.readlink(os.path.join(root, rel))
        except OSError:
            found = None
        if found != target:
            raise Refusal(f"{root} is incomplete (the link {rel} is missing): unpack the archive "
                          "again")


def check_path(root, manifest):
    bad = sorted(set(c for c in root if c in manifest["unsafe_characters"]))
    if bad:
        raise Refusal("the layer cannot be used at {!r}: its path holds {}, which its "
                      "activation scripts cannot hold; unpack it elsewhere".format(
                          root, " ".join(repr(c) for c in bad)))


def check_packed_stack(stack):
    """Refuse a stack that is not there or is another Python than the one the layer was
    packed on (the manifest's ``stack``); warn about drift."""
    here = ".".join(str(n) for n in sys.version_info[:3])
    recorded = stack["python_version"]
    if here.split(".")[:2] != recorded.split(".")[:2]:
        raise Refusal("the stack's interpreter {} is Python {}, but the layer was made on "
                      "Python {}: set up the release the layer was made on".format(
                          stack["python"], here, recorded))
    for directory in stack["directories"]:
        if not os.path.isdir(directory):
            raise Refusal(f"the stack of this layer is missing: directory {directory} (is CVMFS "
                          "mounted? was the release removed?)")
    warnings = []
    if here != recorded:
        warnings.append("the stack's interpreter {} is Python {}, the layer was packed on {}"
                        .format(stack["python"], here, recorded))
    found = dist_entries_digest(stack["directories"])
    if found != stack["fingerprint"]:
        warnings.append("the stack's distributions are not those the layer was packed on "
                        "(fingerprint {} instead of {}): another build of the release?"
                        .format(found[:12], stack["fingerprint"][:12]))
    return warnings


def shebang(executable):
    """The ``#!`` header an installer writes for ``executable`` (as ``installer`` does:
    a ``/bin/sh`` trampoline where the path has a space or is too long)."""
    data = executable.encode("utf-8")
    if b" " not in data and len(data) + 3 <= SHEBANG_LIMIT:
        return b"#!" + data + b"\n"
    quoted = shlex.quote(executable).encode("utf-8")
    return b"#!/bin/sh\n'''exec' " + quoted + b' "$0" "$@"\n' + b"' '''\n"


def write_atomically(path, data, mode):
    """Same bytes by every concurrent writer; a reader sees the old file or the new one.

    The tool's own atomic write is ``layervenv.infra.atomic.atomic_write``; this one is
    separate on purpose: it runs in a worker's Python (3.6+, stdlib only), where the
    layervenv package is not importable.
    """
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.layervenv-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def link_atomically(path, target):
    if os.path.islink(path) and os.readlink(path) == target:
        return
    temporary = f"{path}.layervenv-{os.getpid()}-{os.urandom(4).hex()}"
    os.symlink(target, temporary)
    os.replace(temporary, path)


def put_in_place(root, manifest, manifest_data=b""):
    """Remove what an older archive left, write every file that names the layer's path
    for ``root``, record the interpreter; the marker last."""
    warnings = remove_stale(root, manifest)
    placeholder = manifest["placeholder"].encode("utf-8")
    new = root.encode("utf-8")
    templates = os.path.join(root, PACK_DIR, TEMPLATES)
    for entry in manifest["templates"]:
        with open(os.path.join(templates, entry["path"]), "rb") as handle:
            body = handle.read()
        if entry["kind"] == "script":
            data = shebang(os.path.join(root, entry["python"])) + body
        else:
            data = body.replace(placeholder, new)
        write_atomically(os.path.join(root, entry["path"]), data, entry["mode"])
    for rel, target in manifest["directory_links"].items():
        link_atomically(os.path.join(root, rel), target)
    pack = os.path.join(root, PACK_DIR)
    if manifest_data:
        write_atomically(os.path.join(pack, UNPACKED_MANIFEST), manifest_data, 0o644)
    python = manifest["stack"]["python"]
    link_atomically(os.path.join(pack, INTERPRETER), os.path.realpath(python))
    marker = (manifest.get("archive", "") + " ").encode("utf-8") + new + b"\n"
    write_atomically(os.path.join(pack, MARKER), marker, 0o644)
    return warnings


def _put_by(manifest):
    """Every path an archive's first run accounts for: its files and links, the files
    written from its templates, its directory links."""
    return (set(manifest.get("files", ())) | set(manifest.get("links", ()))
            | set(e["path"] for e in manifest.get("templates", ()))
            | set(manifest.get("directory_links", ())))


def remove_stale(root, manifest):
    """Remove what the archive put in place here before (``unpacked.json``) and this
    one does not hold; a file of it whose size changed since is kept and named."""
    try:
        with open(os.path.join(root, PACK_DIR, UNPACKED_MANIFEST), encoding="utf-8") as handle:
            before = json.load(handle)
    except (OSError, ValueError):
        return []  # a first unpack here (or one by an older pack)
    if before.get("archive") == manifest.get("archive"):
        return []
    kept = []
    parents = set()
    for rel in sorted(_put_by(before) - _put_by(manifest)):
        path = os.path.join(root, rel)
        size = before.get("files", {}).get(rel)
        try:
            if size is not None and not os.path.islink(path) \
                    and os.lstat(path).st_size != size:
                kept.append(rel)
                continue
            os.unlink(path)
        except FileNotFoundError:
            pass  # removed by a concurrent first run, or by the user
        except IsADirectoryError:
            kept.append(rel)
            continue
        parents.add(os.path.dirname(path))
    for directory in sorted(parents, key=len, reverse=True):
        while directory.startswith(root + os.sep):
            try:
                os.rmdir(directory)  # only where it is empty now
            except OSError:
                break
            directory = os.path.dirname(directory)
    if not kept:
        return []
    return ["kept {} file(s) of the archive unpacked here before, changed since: {}".format(
        len(kept), ", ".join(kept[:3]) + (" ..." if len(kept) > 3 else ""))]


def unpack(root):
    """Check and put in place the layer at ``root``; return the warnings to show."""
    manifest, data = load_manifest(root)
    check_complete(root, manifest)
    check_path(root, manifest)
    warnings = check_packed_stack(manifest["stack"])
    return warnings + put_in_place(root, manifest, data)


def main(argv):
    if argv[1:2] == ["--fingerprint"]:  # layervenv pack's query (layervenv.interp.query)
        with open(argv[0], "w") as handle:
            json.dump(dist_entries_digest(argv[2:]), handle)
        return 0
    if len(argv) != 1:
        sys.stderr.write("usage: unpack.py LAYER_DIR | REPORT --fingerprint DIR...\n")
        return 2
    try:
        for warning in unpack(argv[0]):
            sys.stderr.write(f"layervenv-run: warning: {warning}\n")
    except Refusal as refusal:
        sys.stderr.write(f"layervenv-run: error: {refusal}\n")
        return 2
    except OSError as error:
        sys.stderr.write(f"layervenv-run: error: cannot put the layer in place at {argv[0]}: "
                         f"{error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
