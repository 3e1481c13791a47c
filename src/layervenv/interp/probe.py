# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""What a layer's interpreter sees: sys.path after the boot hook, and every distribution.

The tool runs this file's source as ``DIR/bin/python -c SOURCE`` in the environment
the layer really runs with, so the answer is the interpreter's own: its sys.path
(after ``site``, the layer's ``.pth`` files and the boot hook), its version, its
user site, and the marker environment ``packaging`` needs to evaluate requirements
for it.  It writes one JSON object (ASCII) to the file named by its first argument,
never to stdout, where the stack's ``sitecustomize`` and ``.pth`` files may print.

It never imports the packages it reports (importing can fail, be slow, or have side
effects; the point of ``layervenv check`` is to warn *before* anything is imported).
Metadata files are read directly, once, with no per-entry overhead, and METADATA
and PKG-INFO only up to the end of their headers: a thousand distributions take a
few tens of milliseconds.
"""

import csv
import io
import json
import os
import platform
import re
import site
import sys
import zipfile

SCHEMA = 1


def _drop_command_entry():
    """Remove the ``''`` that ``-c`` put first on sys.path (the current directory)."""
    if sys.path and sys.path[0] == "" and not getattr(sys.flags, "safe_path", False):
        del sys.path[0]


def _open_binary(path):
    return open(path, "rb")


class _Files:
    """The files of one metadata directory: on disk, or inside a zip on sys.path."""

    def __init__(self, path, names, opener):
        self.path = path  # where the metadata is, as reported (``EGG-INFO`` of a zip: inside it)
        self.names = names
        self._opener = opener
        self.failed = []  # [path, reason] of files that exist but cannot be read
        self.single_file = False

    @classmethod
    def on_disk(cls, directory):
        """A metadata directory; raises OSError when it cannot be listed."""
        return cls(directory, set(os.listdir(directory)),
                   lambda name: _open_binary(os.path.join(directory, name)))

    @classmethod
    def single(cls, path):
        """distutils' ``NAME.egg-info`` written as one file: PKG-INFO itself."""
        files = cls(path, {"PKG-INFO"}, lambda name: _open_binary(path))
        files.single_file = True
        return files

    @classmethod
    def in_zip(cls, archive, prefix, zip_path):
        """``prefix`` (``EGG-INFO/``, ``x.dist-info/``) inside the open zip ``archive``."""
        names = set()
        for member in archive.namelist():
            rest = member[len(prefix):]
            if member.startswith(prefix) and rest and "/" not in rest:
                names.add(rest)
        return cls(os.path.join(zip_path, prefix.rstrip("/")), names,
                   lambda name: archive.open(prefix + name))

    def read(self, name, headers_only=False):
        """The text of file ``name``; with ``headers_only``, its RFC 822 header block only
        (a METADATA's body is the long description: often a whole README).  None when
        the file is not there or cannot be read; "" when it is empty."""
        if name not in self.names:
            return None
        try:
            with self._opener(name) as handle:
                data = _header_block(handle) if headers_only else handle.read()
        except OSError as error:
            where = self.path if self.single_file else os.path.join(self.path, name)
            self.failed.append([where, _reason(error)])
            return None
        except (ValueError, KeyError, zipfile.BadZipFile):
            return None
        return _text(data)

    def metadata(self):
        """The header block of the metadata file ``importlib.metadata`` reads: METADATA,
        else PKG-INFO (an empty file counts as none)."""
        return self.read("METADATA", headers_only=True) or \
            self.read("PKG-INFO", headers_only=True)


#: What starts a line of a header block (``email.feedparser.headerRE``): a field name and
#: its colon, a folded continuation (any line starting with a space or tab, even one that
#: is only whitespace), or a Unix "From " line.  Any other line (an empty one, or text)
#: ends the block.
_HEADER_LINE = re.compile(rb"(From |[\x21-\x39\x3b-\x7e]*:|[\t ])")
#: Lines end at \r\n, \r or \n (universal newlines), not at other characters
#: str.splitlines() breaks at (a form feed in a folded License is part of it).
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_BOM = b"\xef\xbb\xbf"


def _header_block(handle):
    """The bytes of the header block as ``email.parser`` delimits it, the line that ends
    it left out; the body is never read.  A leading byte order mark is skipped: with it,
    ``importlib.metadata`` would see no header at all (it decodes as plain UTF-8), and
    nothing would be checked.  A file with bytes but no header gives b"\n" (not empty,
    as ``importlib.metadata`` does not then fall back to PKG-INFO)."""
    block = []
    match = _HEADER_LINE.match
    for raw in handle:  # binary lines end at \n; a lone \r ends one too
        if not block and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if b"\r" in raw:
            for line in _LINE.findall(raw):
                if not match(line):
                    return b"".join(block) or b"\n"
                block.append(line)
        elif match(raw):
            block.append(raw)
        else:
            return b"".join(block) or b"\n"
    return b"".join(block)


def _text(data):
    """UTF-8 text (as importlib.metadata decodes it; undecodable bytes replaced rather
    than failing) with universal newlines, a leading byte order mark dropped."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    text = data.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


#: The fields read (lower case); the others are skipped, continuation lines included.
_WANTED = ("name", "version", "requires-dist")


def _headers(text):
    """Name, Version (the first of each) and every Requires-Dist of a header block, as
    ``email.feedparser`` with the ``compat32`` policy gives them to ``importlib.metadata``:
    a value is the text after the colon, leading blanks dropped, followed by its
    continuation lines unchanged (newlines included), trailing newlines dropped."""
    fields = []  # (key, lines) of the wanted fields, in order
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    current = None  # the lines of a wanted field being read
    for number, line in enumerate(lines):
        first = line[:1]
        if first == " " or first == "\t":
            if current is not None:  # a continuation before any field is ignored
                current.append(line)
            continue
        current = None
        if first == "F" and line.startswith("From "):  # a Unix envelope line: no field
            if number == len(lines) - 1:
                break  # the first line of the body
            continue
        colon = line.find(":")
        if colon > 0:
            key = line[:colon].lower()
            if key in _WANTED:
                current = [line[colon + 1:].lstrip(" \t")]
                fields.append((key, current))
    name = version = None
    requires = []
    for key, parts in fields:
        value = (parts[0] if len(parts) == 1 else "\n".join(parts)).rstrip("\r\n")
        if key == "requires-dist":
            requires.append(value)
        elif key == "name":
            name = value if name is None else name
        elif version is None:
            version = value
    return name, version, requires


def _metadata(files):
    """Name, Version, Requires-Dist and, for a distribution without Requires-Dist,
    setuptools' requires.txt (``importlib.metadata``'s ``requires`` reads the one, else
    the other; the tool converts requires.txt the way it does)."""
    text = files.metadata()
    name, version, requires = _headers(text) if text else (None, None, [])
    return name, version, requires, None if requires else files.read("requires.txt")


def _name_from_directory(entry):
    """``foo_bar-1.0.dist-info`` -> (``foo_bar``, ``1.0``): the fallback when METADATA is bad."""
    stem = entry.rsplit(".", 1)[0]
    name, _, rest = stem.partition("-")
    return name, rest.split("-")[0] or None


EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib")


def _is_extension(path):
    """Whether ``path`` is compiled code: an extension module or a shared library it
    ships (``libX.so.1``, ``.dylib``) -- what makes a distribution "compiled"; which file
    ``import`` loads is ``layervenv.dists.files.is_extension_module``'s question."""
    leaf = path.rsplit("/", 1)[-1].lower()
    return leaf.endswith(EXTENSION_SUFFIXES) or ".so." in leaf


def record_paths(text):
    """The paths a RECORD lists: CSV, as pip and installer read it (a path holding a
    comma or a quote is quoted).  The tool's reader is ``layervenv.dists.record``, which
    this stdlib copy must agree with (``tests/test_record.py``)."""
    try:
        return [row[0] for row in csv.reader(io.StringIO(text, newline="")) if row and row[0]]
    except csv.Error:
        return []


def _has_extension(paths_text, paths):
    """Whether a list of installed files names a compiled file (``.so``, ``.pyd``);
    ``paths`` reads the list's text (a RECORD's CSV, installed-files.txt's lines)."""
    if not any(suffix in paths_text for suffix in EXTENSION_SUFFIXES):
        return False
    return any(_is_extension(path.strip()) for path in paths(paths_text))


def _dist_info(files, entry):
    """One ``*.dist-info`` directory."""
    name, version, requires, requires_txt = _metadata(files)
    compiled = False
    for line in (files.read("WHEEL") or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "root-is-purelib" and value.strip().lower() == "false":
            compiled = True
    if not compiled:
        compiled = _has_extension(files.read("RECORD") or "", record_paths)
    editable = None
    if "direct_url.json" in files.names:
        try:
            direct = json.loads(files.read("direct_url.json") or "{}")
        except ValueError:
            direct = {}
        dir_info = direct.get("dir_info") if isinstance(direct, dict) else None
        if isinstance(dir_info, dict) and dir_info.get("editable"):  # = dists.direct_url's
            editable = direct.get("url") or ""
    return _dist(files.path, entry, "dist-info", name, version, requires, requires_txt, compiled,
                 "REQUESTED" in files.names, editable, files.read("INSTALLER"))


def _egg_info(files, entry, kind, compiled=False, installed=None):
    """An ``*.egg-info`` directory or file, or an egg's ``EGG-INFO``.

    ``installed``: the directory it sits in, its names and the stems of the extension
    modules there, to find compiled modules no file lists (``setup.py install`` writes
    installed-files.txt only when asked to record).
    """
    name, version, requires, requires_txt = _metadata(files)
    compiled = compiled or bool((files.read("native_libs.txt") or "").strip())
    if not compiled:
        listed = files.read("installed-files.txt")
        if listed is not None:
            compiled = _has_extension(listed, str.splitlines)
        elif installed is not None:
            compiled = _ships_extension(files.read("top_level.txt") or "", *installed)
    return _dist(files.path, entry, kind, name, version, requires, requires_txt, compiled,
                 "REQUESTED" in files.names, None, files.read("INSTALLER"))


def _ships_extension(top_level, root, names, extension_stems):
    """Whether a top-level name of a distribution is an extension module in ``root``, or
    a package there holding one (a few levels down)."""
    for top in top_level.split():
        if top in extension_stems:
            return True
        if top in names and _tree_has_extension(os.path.join(root, top), 3):
            return True
    return False


def _tree_has_extension(directory, depth):
    try:
        children = list(os.scandir(directory))
    except OSError:
        return False
    if any(_is_extension(child.name) for child in children):
        return True
    return depth > 0 and any(
        _tree_has_extension(child.path, depth - 1) for child in children
        if child.name != "__pycache__" and child.is_dir())


def _dist(directory, entry, kind, name, version, requires, requires_txt, compiled, requested,
          editable, installer):
    if not name or not version:
        fallback_name, fallback_version = _name_from_directory(entry)
        name = name or fallback_name
        version = version or fallback_version
    return {
        "name": name, "version": version, "metadata": directory, "kind": kind,
        "requires": requires, "requires_txt": requires_txt, "compiled": compiled,
        "requested": requested, "editable": editable,
        "installer": installer.strip() if installer else None,
    }


def _egg_name(path):
    """The file or directory name of an egg, which ``_name_from_directory`` understands."""
    return os.path.basename(path.rstrip("/"))


def _reason(error):
    return error.strerror or type(error).__name__


def scan(path_entry):
    """Every distribution whose metadata lives directly in ``path_entry`` (a directory),
    and the ``[path, reason]`` of what could not be read there (the directory itself, a
    metadata directory or file: permissions of a shared area)."""
    found, unreadable = [], []
    base = path_entry or "."

    def add(reader, path, entry, *args):
        try:
            files = _Files.single(path) if os.path.isfile(path) else _Files.on_disk(path)
        except OSError as error:
            unreadable.append([path, _reason(error)])
            return
        found.append(reader(files, entry, *args))
        unreadable.extend(files.failed)

    if base.lower().endswith(".egg") and os.path.isdir(os.path.join(base, "EGG-INFO")):
        add(_egg_info, os.path.join(base, "EGG-INFO"), _egg_name(base), "egg")
    try:
        names = os.listdir(base)  # in the order importlib.metadata finds them (not sorted)
    except OSError as error:
        unreadable.append([path_entry, _reason(error)])
        return found, unreadable
    installed = None
    for entry in names:
        low = entry.lower()
        if low.endswith(".dist-info"):
            add(_dist_info, os.path.join(base, entry), entry)
        elif low.endswith(".egg-info"):
            if installed is None:
                installed = (base, set(names), set(
                    n.split(".", 1)[0] for n in names if _is_extension(n)))
            add(_egg_info, os.path.join(base, entry), entry, "egg-info", False, installed)
    return found, unreadable


def scan_zip(path_entry):
    """Every distribution inside a zip on sys.path: a zipped egg's ``EGG-INFO``, and
    ``*.dist-info``/``*.egg-info`` at its top (what ``importlib.metadata`` finds there)."""
    try:
        archive = zipfile.ZipFile(path_entry)
    except (OSError, zipfile.BadZipFile, ValueError):
        return []
    found = []
    with archive:
        try:
            members = archive.namelist()
        except (OSError, ValueError):
            return []
        tops = sorted(set(m.split("/", 1)[0] + "/" for m in members if "/" in m))
        compiled = any(_is_extension(m) for m in members)
        for top in tops:
            low = top.lower().rstrip("/")
            files = _Files.in_zip(archive, top, path_entry)
            if low == "egg-info":
                found.append(_egg_info(files, _egg_name(path_entry), "egg", compiled))
            elif low.endswith(".dist-info"):
                found.append(_dist_info(files, top.rstrip("/")))
            elif low.endswith(".egg-info"):
                found.append(_egg_info(files, top.rstrip("/"), "egg-info"))
    return found


def _scan_entry(entry, real, is_dir):
    """Distributions and unreadable paths of one sys.path entry: a directory, a zip, or
    a path that cannot even be looked at (a parent directory without permission)."""
    if is_dir:
        return scan(entry)
    try:
        os.stat(real)
    except OSError as error:  # missing (often harmless) or not allowed
        return [], [[entry, _reason(error)]] if isinstance(error, PermissionError) else []
    return scan_zip(real), []


def frozen_module_names():
    """The top-level modules this interpreter takes frozen, ahead of every path entry
    (``os``, ``stat``, ``codecs`` on 3.11+, unless ``-X frozen_modules=off``)."""
    try:
        import _imp
        from importlib.machinery import FrozenImporter
    except ImportError:
        return []
    names = getattr(_imp, "_frozen_module_names", lambda: ())()
    return sorted(name for name in names if "." not in name and not name.startswith("_")
                  and FrozenImporter.find_spec(name) is not None)


def marker_environment():
    """What ``packaging.markers.default_environment()`` returns, for this interpreter."""
    info = sys.implementation.version
    version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def report():
    entries = []
    seen = {}
    for position, entry in enumerate(sys.path):
        real = os.path.realpath(entry or ".")
        item = {"path": entry, "real": real, "is_dir": os.path.isdir(real)}
        if real in seen:
            item["duplicate_of"] = seen[real]
            item["distributions"] = []
        else:
            seen[real] = position
            item["distributions"], item["unreadable"] = _scan_entry(entry, real, item["is_dir"])
        entries.append(item)
    user_base = site.getuserbase() if hasattr(site, "getuserbase") else site.USER_BASE
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") \
        else site.USER_SITE
    return {
        "schema": SCHEMA,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "version": "{}.{}.{}".format(*sys.version_info[:3]),
        "implementation": sys.implementation.name,
        # the name part of its .pyc files (cpython-311; None: it writes none)
        "cache_tag": sys.implementation.cache_tag,
        "user_base": user_base,
        "user_site": user_site,
        "user_site_enabled": bool(site.ENABLE_USER_SITE),
        "pythonpath": None if sys.flags.ignore_environment else os.environ.get("PYTHONPATH"),
        # CMSSW's Python maps PYTHON3PATH into sys.path from its sitecustomize.py, and
        # EasyBuild 5's the site-packages of each EBPYTHONPREFIXES prefix
        "python3path": os.environ.get("PYTHON3PATH"),
        "ebpythonprefixes": os.environ.get("EBPYTHONPREFIXES"),
        "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
        "boot_disabled": bool(os.environ.get("LAYERVENV_BOOT_DISABLE")),
        "markers": marker_environment(),
        # the standard library's names (3.10+; the tool knows older ones) and its place
        "stdlib_module_names": sorted(getattr(sys, "stdlib_module_names", ())) or None,
        "builtin_module_names": sorted(sys.builtin_module_names),
        "frozen_module_names": frozen_module_names(),
        "stdlib_dir": os.path.dirname(os.__file__),
        "sys_path": entries,
    }


def main():
    """Write the report to the file named by the first argument (stdout without one)."""
    target = sys.argv[1] if len(sys.argv) > 1 else None
    _drop_command_entry()
    text = json.dumps(report())
    if target is None:
        sys.stdout.write(text + "\n")
        return
    with open(target, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
