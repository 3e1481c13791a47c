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


def _key(path):
    """Normalise a path entry the way ``site`` compares them."""
    return os.path.normcase(os.path.abspath(path))


def _layer_site_dirs():
    """The layer's own site-packages directories that are on sys.path."""
    if getattr(sys, "base_prefix", sys.prefix) == sys.prefix:
        return []  # not running in a virtual environment: nothing to do
    import site

    on_path = set(_key(p) for p in sys.path)
    return [d for d in site.getsitepackages([sys.prefix]) if _key(d) in on_path]


def _pth_paths(sitedir):
    """Path lines of the ``.pth`` files in ``sitedir``, resolved like ``site`` does.

    Reading the files ourselves (instead of looking at what was appended after the
    site dir) also works when Python defers ``.pth`` processing (PEP 829), where the
    stack interpreter's own site-packages may already sit between them.
    """
    try:
        names = sorted(os.listdir(sitedir))
    except OSError:
        return []
    found = []
    for name in names:
        if not name.endswith(PTH_SUFFIX) or name.startswith("."):
            continue
        try:
            with open(os.path.join(sitedir, name), "rb") as handle:
                lines = _decoded(handle.read()).splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith(("import ", "import\t")):
                continue
            found.append(os.path.join(sitedir, line.rstrip()))
    return found


def _decoded(data):
    """UTF-8 text of a ``.pth`` file, BOM dropped (as ``site`` reads it, "utf-8-sig").

    Decoding by hand spares loading the utf-8-sig codec at every start-up (0.2 ms).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8")


def _pythonpath_keys():
    """Normalised entries of PYTHONPATH, as the interpreter put them on sys.path."""
    if sys.flags.ignore_environment:
        return set()
    value = os.environ.get("PYTHONPATH", "")
    if not value:
        return set()
    return set(_key(entry) for entry in value.split(os.pathsep))


def layer_keys():
    """Keys of the layer's site-packages and of the paths its ``.pth`` files add."""
    keys = set()
    for sitedir in _layer_site_dirs():
        keys.add(_key(sitedir))
        keys.update(_key(p) for p in _pth_paths(sitedir))
    return keys


def reorder_sys_path(layer=None):
    """Move the layer block in front of the first PYTHONPATH entry; return True if moved."""
    layer = layer_keys() if layer is None else layer
    if not layer:
        return False
    env_keys = _pythonpath_keys() - layer
    keys = [_key(p) for p in sys.path]
    anchor = None
    for index, key in enumerate(keys):
        if key in env_keys or key in layer:
            anchor = index
            break
    if anchor is None:
        return False
    block = [p for p, k in zip(sys.path, keys) if k in layer]
    rest = [p for p, k in zip(sys.path[anchor:], keys[anchor:]) if k not in layer]
    new_path = sys.path[:anchor] + block + rest
    if new_path == sys.path:
        return False
    sys.path[:] = new_path
    return True


def move_late_prepends(layer, known):
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
    """
    keys = [_key(p) for p in sys.path]
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


def recheck_after_site(layer):
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
    known = set(_key(p) for p in sys.path)

    def execsitecustomize():
        site.execsitecustomize = original
        try:
            original()
        finally:
            _guarded(move_late_prepends, layer, known)

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
    if sys.flags.ignore_environment:
        return []
    value = os.environ.get("PYTHONPATH", "")
    if not any(name in value for name in PACKAGE_DIRECTORIES):
        return []
    mine = "{}.{}".format(*sys.version_info[:2])
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


def _boot():
    layer = layer_keys()
    if layer:
        reorder_sys_path(layer)
        recheck_after_site(layer)
    promote_layer_finders()
    warn_foreign_python()


#: set by the first run: ``site`` processes the layer's ``.pth`` files twice
_RAN = []


def run():
    """Entry point for the ``.pth`` import line and the PEP 829 ``.start`` file.

    It works once per process.  ``site`` processes the layer's site-packages a second
    time (``venv()`` adds it, then ``addsitepackages`` walks it again, ``.pth`` files
    included) after the user site's ``.pth`` files ran: a second run would cost time
    again and would take import-hook finders of the *user site* for the layer's.
    """
    if _RAN or os.environ.get("LAYERVENV_BOOT_DISABLE"):
        return
    _RAN.append(True)
    _guarded(_boot)
