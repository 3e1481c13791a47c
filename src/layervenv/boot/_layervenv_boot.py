# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""layervenv boot hook: make the layer's packages win over the stack's PYTHONPATH.

This file is copied into every layer's site-packages and imported at start-up by
``~layervenv.pth`` (Python <= 3.14) or named by ``~layervenv.start`` (PEP 829,
Python >= 3.15).  It runs inside *every* process started from the layer's
interpreter, activated or not, so it must be tiny, stdlib-only, never raise and
run on every interpreter a stack may bring (Python 3.6 to 3.13 and later).

Why it is needed: entries from PYTHONPATH are placed on ``sys.path`` before the
site-packages of a virtual environment, so a package the stack provides on
PYTHONPATH always shadows the copy the user installed into the layer.  The hook
moves the layer's site-packages, together with every path the layer's own
``.pth`` files added (editable installs), to just before the first PYTHONPATH
entry, and moves import-hook finders that the layer's ``.pth`` files appended to
``sys.meta_path`` (setuptools' editable finders) ahead of the path-based finder.
What ``site`` or the stack's ``sitecustomize`` puts in front of the layer after
that (eggs of an ``easy-install.pth``) goes right behind it once ``site`` is done.
The stack stays importable, right behind the layer.  Nothing else moves: the
standard library keeps its place, and no empty entry (the current directory) is
ever added.
"""

import os
import sys

PTH_SUFFIX = ".pth"
#: this hook's own ``.pth`` file: an import line only, never read for paths
OWN_PTH = "~layervenv.pth"
#: the site-packages of the group layers this layer stands on (``create --over``), one
#: path a line: ``site`` adds them (sorted before OWN_PTH: before the hook runs), and
#: the hook keeps them right behind the layer's own entries, ahead of PYTHONPATH, in
#: every process of the layer, activated or not
OVER_PTH = "~layervenv-over.pth"


def _key(path):
    """Normalise a path entry the way ``site`` compares them."""
    return os.path.normcase(os.path.abspath(path))


def _already_keys(joined, sep):
    """True when every entry of ``joined`` (entries separated by ``sep``) is its own key.

    On POSIX, ``_key`` of an absolute path with no empty, ``.`` or ``..`` part and no
    trailing slash is the path itself.  ``site`` leaves every ``sys.path`` entry so (it
    makes them absolute and normalised before any ``.pth`` file runs), and stacks
    usually spell PYTHONPATH so: a few substring searches over the joined entries (in
    C) then replace one ``abspath`` per entry -- what made start-up grow with every
    PYTHONPATH entry of a Spack-built stack (one per package, hundreds of them).
    """
    if os.name != "posix" or not joined.startswith("/") or joined.endswith("/") \
            or "//" in joined or "/" + sep in joined \
            or joined.count(sep + "/") != joined.count(sep):
        return False
    if "/." not in joined:  # the usual case: one search instead of five
        return True
    return ("/./" not in joined and "/../" not in joined and "/." + sep not in joined
            and "/.." + sep not in joined and not joined.endswith(("/.", "/..")))


def _keys(paths, known=None):
    """``[_key(p) for p in paths]``, without normalising entries that need none.

    ``known``: ``site``'s set of the keys of the entries it put on ``sys.path``; an
    entry found in it is its own key (looked up in C, no Python code per entry).
    """
    if isinstance(known, set) and os.name == "posix":
        try:
            if known.issuperset(paths):
                return list(paths)
        except TypeError:  # an unhashable entry
            pass
    try:
        joined = "\0".join(paths)
    except TypeError:  # an entry that is not a str: let _key say what it makes of it
        joined = None
    if joined is not None and joined.count("\0") == len(paths) - 1 and \
            _already_keys(joined, "\0"):
        return list(paths)
    return [_key(p) for p in paths]


def _layer_site_dirs(path_keys):
    """The layer's own site-packages directories that are on sys.path (``path_keys``)."""
    if getattr(sys, "base_prefix", sys.prefix) == sys.prefix:
        return []  # not running in a virtual environment: nothing to do
    import site

    return [d for d in site.getsitepackages([sys.prefix]) if _key(d) in path_keys]


def pth_paths(sitedir):
    """Path lines of the ``.pth`` files in ``sitedir``, resolved like ``site`` does
    (not the hook's own files: see :func:`pth_scan`)."""
    return pth_scan(sitedir)[0]


def pth_scan(sitedir):
    """The path lines of the ``.pth`` files in ``sitedir``, resolved like ``site`` does,
    and those of OVER_PTH (the group layers' site-packages) apart.

    Reading the files ourselves (instead of looking at what was appended after the
    site dir) also works when Python defers ``.pth`` processing (PEP 829), where the
    stack interpreter's own site-packages may already sit between them.
    """
    try:
        names = sorted(os.listdir(sitedir))
    except OSError:
        return [], []
    found = []
    over = []
    for name in names:
        if not name.endswith(PTH_SUFFIX) or name.startswith(".") or name == OWN_PTH:
            continue
        try:
            with open(os.path.join(sitedir, name), "rb") as handle:
                lines = _decoded(handle.read()).splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        into = over if name == OVER_PTH else found
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith(("import ", "import\t")):
                continue
            into.append(os.path.join(sitedir, line.rstrip()))
    return found, over


def _decoded(data):
    """UTF-8 text of a ``.pth`` file, BOM dropped (as ``site`` reads it, "utf-8-sig").

    Decoding by hand spares loading the utf-8-sig codec at every start-up (0.2 ms).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8")


def _pythonpath():
    """PYTHONPATH as the interpreter used it ("" with -E or -I)."""
    if sys.flags.ignore_environment:
        return ""
    return os.environ.get("PYTHONPATH", "")


def _pythonpath_keys(value=None):
    """Normalised entries of PYTHONPATH, as the interpreter put them on sys.path."""
    value = _pythonpath() if value is None else value
    if not value:
        return set()
    if _already_keys(value, os.pathsep):
        return set(value.split(os.pathsep))
    return set(_key(entry) for entry in value.split(os.pathsep))


def layer_keys(path_keys=None):
    """Keys of the layer's site-packages, of the paths its ``.pth`` files add (0) and of
    its group layers' site-packages (1): the layer's block, its own entries in their
    order on ``sys.path`` (eggs a ``.pth`` inserts go in front of its site-packages), then
    the group layers' -- whatever their place on ``sys.path`` (a group layer's
    site-packages may come first there, on a PYTHONPATH its activation exported).

    ``path_keys``: the keys of ``sys.path`` as it is now, if already computed.
    """
    keys = {}
    later = []
    for sitedir in _layer_site_dirs(_keys(sys.path) if path_keys is None else path_keys):
        paths, over = pth_scan(sitedir)
        for path in [sitedir, *paths]:
            keys[_key(path)] = 0
        later.extend(over)
    for path in later:
        keys.setdefault(_key(path), 1)
    return keys


def reorder_sys_path(layer=None, keys=None):
    """Move the layer block in front of the first PYTHONPATH entry; return True if moved.

    ``keys``: the keys of ``sys.path`` as it is now, if already computed.
    """
    keys = _keys(sys.path) if keys is None else keys
    layer = layer_keys(keys) if layer is None else layer
    if not layer:
        return False
    anchor = _anchor(keys, layer)
    if anchor is None:
        return False
    # Where the layer's entries are: found by list.index over flags computed in C (a
    # handful of them among hundreds of entries), not by Python code run per entry.
    flags = list(map(layer.__contains__, keys))
    where = []
    try:
        while True:
            where.append(flags.index(True, where[-1] + 1 if where else 0))
    except ValueError:
        pass
    if isinstance(layer, dict):  # the layer's own first, then its group layers' (stable)
        where.sort(key=lambda index: layer[keys[index]])
    block = [sys.path[i] for i in where]  # every one at or after the anchor
    rest = sys.path[anchor:]
    for index in sorted(where, reverse=True):
        del rest[index - anchor]
    new_path = sys.path[:anchor] + block + rest
    if new_path == sys.path:
        return False
    sys.path[:] = new_path
    return True


def _anchor(keys, layer):
    """Index of the first entry (by ``keys``) from PYTHONPATH or of the layer, or None.

    Python puts PYTHONPATH first on ``sys.path``: when the first entry is the first
    PYTHONPATH entry (or the layer's), that is the answer without the keys of every
    PYTHONPATH entry.
    """
    if not keys:
        return None
    if keys[0] in layer:
        return 0
    value = _pythonpath()
    end = value.find(os.pathsep)
    if value and keys[0] == _key(value if end < 0 else value[:end]):
        return 0
    env_keys = _pythonpath_keys(value)
    for index, key in enumerate(keys):
        if key in env_keys or key in layer:
            return index
    return None


def move_late_prepends(layer, known, before=None):
    """Put entries added in front of (or into) the layer block after the hook ran right
    behind it.

    ``site`` processes the ``.pth`` files of the user site and of the stack
    interpreter's own site-packages after the layer's, then imports the stack's
    ``sitecustomize``.  Some of them insert near the front of ``sys.path``: the
    ``easy-install.pth`` of eggs (setuptools' "rewrite" technique, Spack-built
    Pythons; at ``sys.__egginsert``, so after eggs the layer inserted the same way),
    a ``sitecustomize`` doing ``sys.path.insert(0, ...)``.  Those entries would shadow
    the layer; behind the layer block they keep their order, in front of everything
    else.  ``known`` holds the keys on ``sys.path`` when the hook ran: those entries
    stay where they are (without PYTHONPATH, the standard library is in front).
    ``before``: ``sys.path`` when the hook ran; when entries were only appended since
    (the usual case), none of this work is needed.
    """
    if before is not None and sys.path[:len(before)] == before and \
            not any(map(layer.__contains__, _keys(sys.path[len(before):]))):
        return False
    known = set(known)
    keys = _keys(sys.path)
    last = None
    for index, key in enumerate(keys):
        if key in layer:
            last = index
    if last is None:
        return False
    late = set(i for i in range(last) if keys[i] not in known)
    if not late:
        return False
    kept = [p for i, p in enumerate(sys.path[:last + 1]) if i not in late]
    moved = [p for i, p in enumerate(sys.path[:last]) if i in late]
    sys.path[:] = kept + moved + sys.path[last + 1:]
    return True


def recheck_after_site(layer, known=None):
    """Run :func:`move_late_prepends` once ``site`` has done everything else.

    ``site.main`` calls ``execsitecustomize()`` after every site directory is
    processed; wrapping it (once, undone at its first call) is the last moment before
    the user's code runs.  This is not a ``sitecustomize`` of our own: the stack's
    runs as it did.
    """
    site = sys.modules.get("site")
    original = getattr(site, "execsitecustomize", None)
    if original is None or getattr(original, "_layervenv", False):
        return False
    before = list(sys.path)
    known = _keys(before) if known is None else known

    def execsitecustomize():
        site.execsitecustomize = original
        try:
            original()
        finally:
            _guarded(move_late_prepends, layer, known, before)

    execsitecustomize._layervenv = True
    site.execsitecustomize = execsitecustomize
    return True


def promote_layer_finders():
    """Put meta-path finders appended by the layer's ``.pth`` files before PathFinder.

    setuptools' editable installs append a finder to ``sys.meta_path``; behind the
    path-based finder it never sees its package when the stack has one on PYTHONPATH.
    The hook runs last among the layer's ``.pth`` files and before the stack's, so
    every finder behind PathFinder at this point came from the layer.
    """
    PathFinder = _path_finder()
    meta = sys.meta_path
    if PathFinder not in meta:
        return False
    index = meta.index(PathFinder)
    behind = meta[index + 1 :]
    if not behind:
        return False
    meta[:] = meta[:index] + behind + [PathFinder]
    return True


def _path_finder():
    """The path-based finder, without importing ``importlib.machinery`` (0.2 ms a start).

    It is defined in ``_frozen_importlib_external``, loaded before ``site`` runs.
    """
    external = sys.modules.get("_frozen_importlib_external")
    finder = getattr(external, "PathFinder", None)
    if finder is None:
        from importlib.machinery import PathFinder as finder
    return finder


WARNED = "LAYERVENV_WARNED_PYTHON_MISMATCH"


#: What the directories holding a Python's installed distributions are called:
#: ``site-packages``, and ``dist-packages`` for Debian's and Ubuntu's own Python
#: (``/usr/lib/python3/dist-packages``).  A stack on PYTHONPATH is recognised by them,
#: here, by ``check``, ``run`` and the activation scripts alike.
PACKAGE_DIRECTORIES = ("site-packages", "dist-packages")


def site_packages_version(entry):
    """``"3.9"`` for a ``.../lib/python3.9/site-packages`` (or ``dist-packages``) entry
    (``lib64``, ``3.13t`` too), else None.  Only a real X.Y names a Python:
    ``lib/python/site-packages`` or ``lib/python3/dist-packages`` do not.  ``check``
    applies this same rule."""
    parts = entry.split("/")
    for lib, version, leaf in zip(parts, parts[1:], parts[2:]):
        if lib in ("lib", "lib64") and leaf in PACKAGE_DIRECTORIES and \
                version.startswith("python"):
            number = version[len("python"):].rstrip("t")
            major, _, minor = number.partition(".")
            if major.isdigit() and minor.isdigit():
                return number
    return None


def foreign_python_entries():
    """PYTHONPATH entries that are ``lib/pythonX.Y/site-packages`` of another Python.

    Mixing stacks (an LCG view for Python 3.11 set up over an ATLAS release with 3.9)
    fails later with an ImportError or a crashing C extension; say it up front.
    """
    value = _pythonpath()
    if not any(name in value for name in PACKAGE_DIRECTORIES):
        return []
    mine = "{}.{}".format(*sys.version_info[:2])
    others = 0
    for name in PACKAGE_DIRECTORIES:
        others += (value.count(name) - value.count(f"/python{mine}/{name}")
                   - value.count(f"/python{mine}t/{name}"))
    if not others:
        # Every one is this Python's: no entry parsed (Spack stacks have hundreds).
        return []
    found = []
    for entry in value.split(os.pathsep):
        version = site_packages_version(entry)
        if version is not None and version != mine:
            found.append(entry)
    return found


def warn_foreign_python():
    """Warn once per process tree (children inherit the marker) about another Python's paths."""
    if os.environ.get(WARNED):
        return False
    foreign = foreign_python_entries()
    if not foreign:
        return False
    os.environ[WARNED] = "1"
    _say(
        "layervenv: PYTHONPATH has site-packages of another Python ({}); this layer runs "
        "Python {}.{}: set up the stack the layer was made on\n".format(
            foreign[0], *sys.version_info[:2])
    )
    return True


def _say(text):
    """Write ``text`` to stderr, or nowhere: never to stdout, never raising.

    With stderr closed (``2>&-``) ``sys.stderr`` is None; with it full or gone
    (``2>/dev/full``, a closed pipe) writing raises.  An exception leaving the hook
    would reach ``site``, which prints its traceback with ``print(file=sys.stderr)``
    -- to *stdout* when that is None -- into the program's own output.
    """
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:
        pass


def _guarded(function, *args):
    """Call ``function``; an error is one line on stderr, never a broken start-up."""
    try:
        return function(*args)
    except Exception as error:
        _say(f"layervenv boot hook: {type(error).__name__}: {error}\n")
        return None


#: The layer's record of which PYTHONPATH directories are read-only, beside this hook in
#: the layer's site-packages (not an importable name; the layer's own file, which
#: ``--clear`` and ``rebase`` do not carry over: :mod:`layervenv.model.ownership`).
INDEX_NAME = "_layervenv_import_index.txt"
INDEX_HEADER = "layervenv-import-index 1"
#: ``LAYERVENV_IMPORT_INDEX=0`` turns the import index off (Python's own finders only).
INDEX_SWITCH = "LAYERVENV_IMPORT_INDEX"
#: Where ``FileFinder`` relaxes the case of names (PYTHONCASEOK): not indexed.
CASE_INSENSITIVE = ("win", "cygwin", "darwin")


def index_enabled():
    """Whether the import index may be used in this process."""
    return os.environ.get(INDEX_SWITCH, "1").strip() != "0" and \
        not sys.platform.startswith(CASE_INSENSITIVE)


def read_index(path):
    """``{directory: True if read-only}`` from the index file at ``path`` ({} if unusable).

    A text file of ``r\tPATH`` (read-only) and ``w\tPATH`` (not) lines under a header:
    data, parsed, never executed; read with one ``openat``.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return {}
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return {}
    finally:
        os.close(fd)
    try:
        lines = b"".join(chunks).decode("utf-8", "surrogateescape").split("\n")
    except ValueError:
        return {}
    if not lines or lines[0] != INDEX_HEADER:
        return {}
    return dict((line[2:], line[0] == "r") for line in lines[1:]
                if line[1:2] == "\t" and line[:1] in ("r", "w"))


def write_index(path, flags):
    """Write ``flags`` (``{directory: read-only}``) to ``path`` atomically; False if it
    cannot be written (a read-only layer: every process then judges for itself)."""
    lines = [INDEX_HEADER]
    for entry in sorted(flags):
        if "\n" not in entry:
            lines.append(("r\t" if flags[entry] else "w\t") + entry)
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        return False
    try:
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        return True
    except OSError:
        _remove(temporary)
        return False


def _remove(path):
    """Remove ``path`` if it can be (no ``contextlib``: one import less at every start)."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def is_read_only(entry):
    """Whether the directory ``entry`` cannot change under a running process: the user
    may not write it (a CVMFS or read-only mount, another owner), or it has no write bit
    at all (an installed tree marked read-only, even to root).  Not a directory: False."""
    try:
        mode = os.stat(entry).st_mode
    except (OSError, ValueError):
        return False
    if mode & 0o170000 != 0o040000:  # not a directory
        return False
    return not (mode & 0o222) or not os.access(entry, os.W_OK)


def indexable_entries(value, layer):
    """PYTHONPATH entries (as ``sys.path`` and ``sys.path_importer_cache`` spell them) that
    the index may cover: absolute, normalised, not the layer's; duplicates once."""
    if not value:
        return []
    entries = value.split(os.pathsep)
    if not _already_keys(value, os.pathsep):
        entries = [e for e in entries if e and _already_keys(e, os.pathsep)]
    seen = set(layer)
    found = []
    for entry in entries:
        if entry not in seen:
            seen.add(entry)
            found.append(entry)
    return found


def _indexed_finder_class(file_finder):
    """A ``FileFinder`` that trusts its listing of a read-only directory.

    ``FileFinder`` lists its directory once, then stats it on *every* lookup to notice a
    change; on a PYTHONPATH of N entries in front of the standard library, every
    top-level import costs N stats (network round trips on CVMFS, Lustre, GPFS).  A
    read-only directory cannot change under the process, so this subclass answers
    names its listing does not hold at once, exactly as ``FileFinder.find_spec`` would
    with that listing (it finds something only when the name, or the name plus one of
    its loaders' suffixes, is in the listing), and hands every other name to
    ``FileFinder.find_spec`` itself, stat included.  After ``invalidate_caches()``
    (``_path_mtime`` is -1) the next lookup goes through ``FileFinder`` too, which lists
    the directory again.  A subclass, so ``pkgutil.iter_modules`` and every
    ``isinstance`` check see a ``FileFinder``.
    """

    class IndexedFileFinder(file_finder):
        def find_spec(self, fullname, target=None):
            if self._path_mtime != -1:
                tail = fullname.rpartition(".")[2]
                cache = self._path_cache
                if tail not in cache:
                    for suffix, _ in self._loaders:
                        if tail + suffix in cache:
                            break
                    else:
                        return None
            return file_finder.find_spec(self, fullname, target)

    IndexedFileFinder.__qualname__ = IndexedFileFinder.__name__
    return IndexedFileFinder


def _still_there(flags, current):
    """``flags`` without the directories gone since they were recorded, except this
    process's ``current`` entries: a pip build's temporary environment (on PYTHONPATH in
    pip's build subprocesses, which run the layer's Python) would otherwise stay in the
    index for good, one line per build, read at every start.  Called only when the index
    is written (a new entry), so the ``stat`` per recorded entry is not paid per start."""
    keep = set(current)
    return dict((entry, read_only) for entry, read_only in flags.items()
                if entry in keep or os.path.isdir(entry))


def install_import_index(layer, index_path=None):
    """Let ``FileFinder`` trust its listing of each read-only PYTHONPATH directory.

    Python listed every PYTHONPATH entry in this process already, before ``site`` ran
    (looking for ``encodings`` in front of the standard library): those listings are
    fresh.  The layer's index says which of the entries are read-only, so that no
    entry costs a system call per process; an entry it does not know yet is judged
    once (a ``stat`` and an ``access``) and added.  Writable, relative, missing and
    zip entries, the layer's own and finders Python has not filled are left alone.
    Returns the number of finders switched.
    """
    if not index_enabled():
        return 0
    external = sys.modules.get("_frozen_importlib_external")
    file_finder = getattr(external, "FileFinder", None)
    if file_finder is None:
        return 0
    cache = sys.path_importer_cache
    entries = [e for e in indexable_entries(_pythonpath(), layer)
               if type(cache.get(e)) is file_finder]
    if not entries:
        return 0
    if index_path is None:
        index_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), INDEX_NAME)
    flags = read_index(index_path)
    new = [e for e in entries if e not in flags]
    if new:
        for entry in new:
            flags[entry] = is_read_only(entry)
        write_index(index_path, _still_there(flags, entries))
    indexed = None
    switched = 0
    for entry in entries:
        finder = cache[entry]
        if flags[entry] and finder._path_mtime != -1:
            if indexed is None:
                indexed = _indexed_finder_class(file_finder)
            finder.__class__ = indexed
            switched += 1
    return switched


def _boot(known=None):
    keys = _keys(sys.path, known)
    layer = layer_keys(keys)
    if layer:
        reorder_sys_path(layer, keys)
        recheck_after_site(layer, keys)  # reordering keeps the same entries
    promote_layer_finders()
    install_import_index(layer)
    warn_foreign_python()


#: set by the first run: ``site`` processes the layer's ``.pth`` files twice
_RAN = []


def run(site_locals=None):
    """Entry point for the ``.pth`` import line and the PEP 829 ``.start`` file.

    It works once per process.  ``site`` processes the layer's site-packages a second
    time (``venv()`` adds it, then ``addsitepackages`` walks it again, ``.pth`` files
    included) after the user site's ``.pth`` files ran: a second run would cost time
    again and would take import-hook finders of the *user site* for the layer's.

    ``site_locals``: the locals of ``site.addpackage`` running the ``.pth`` line, which
    put ``sitedir`` first on ``sys.path`` to import this module from there (taken off
    again here) and hold ``site``'s ``known_paths``.
    """
    known = None
    if site_locals is not None:
        inserted = site_locals.get("sitedir", sys.prefix)
        if sys.path and sys.path[0] == inserted:
            del sys.path[0]
        known = site_locals.get("known_paths")
    if _RAN or os.environ.get("LAYERVENV_BOOT_DISABLE"):
        return
    _RAN.append(True)
    _guarded(_boot, known)
