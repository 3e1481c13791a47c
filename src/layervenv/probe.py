# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""What a layer's interpreter sees: sys.path after the boot hook, and every distribution.

The tool runs this file's source as ``DIR/bin/python -c SOURCE`` in the environment
the layer really runs with, so the answer is the interpreter's own: its sys.path
(after ``site``, the layer's ``.pth`` files and the boot hook), its version, its
user site, and the marker environment ``packaging`` needs to evaluate requirements
for it.  It prints one JSON object on stdout.

It never imports the packages it reports (importing can fail, be slow, or have side
effects; the point of ``layervenv check`` is to warn *before* anything is imported).
Metadata files are read directly, once, with no per-entry overhead: a thousand
distributions take a few tens of milliseconds.
"""

import json
import os
import platform
import site
import sys

SCHEMA = 1


def _drop_command_entry():
    """Remove the ``''`` that ``-c`` put first on sys.path (the current directory)."""
    if sys.path and sys.path[0] == "" and not getattr(sys.flags, "safe_path", False):
        del sys.path[0]


def _read(path, limit=None):
    try:
        with open(path, "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit)
    except (OSError, ValueError):
        return None
    return data.decode("utf-8", "replace")


def _headers(text):
    """Name, Version and Requires-Dist of an RFC 822 metadata file (header part only)."""
    name = version = None
    requires = []
    key = None
    for line in text.splitlines():
        if not line.strip():
            break  # the body (long description) starts here
        if line[:1] in (" ", "\t"):  # a folded header continues
            if key == "requires-dist":
                requires[-1] = requires[-1] + " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            key = None
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == "name" and name is None:
            name = value
        elif key == "version" and version is None:
            version = value
        elif key == "requires-dist":
            requires.append(value)
    return name, version, requires


def _name_from_directory(entry):
    """``foo_bar-1.0.dist-info`` -> (``foo_bar``, ``1.0``): the fallback when METADATA is bad."""
    stem = entry.rsplit(".", 1)[0]
    name, _, rest = stem.partition("-")
    return name, rest.split("-")[0] or None


def _has_extension(record_text):
    """Whether an installed-files list names a compiled file (``.so``, ``.pyd``)."""
    if not any(suffix in record_text for suffix in (".so", ".pyd", ".dylib")):
        return False
    for line in record_text.splitlines():
        path = line.split(",", 1)[0].strip().lower()
        leaf = path.rsplit("/", 1)[-1]
        if leaf.endswith((".so", ".pyd", ".dylib")) or ".so." in leaf:
            return True
    return False


def _dist_info(directory, entry):
    """One ``*.dist-info`` directory."""
    try:
        files = set(os.listdir(directory))
    except OSError:
        return None
    text = _read(os.path.join(directory, "METADATA")) if "METADATA" in files else None
    name, version, requires = _headers(text) if text else (None, None, [])
    compiled = False
    if "WHEEL" in files:
        wheel = _read(os.path.join(directory, "WHEEL")) or ""
        for line in wheel.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "root-is-purelib" and value.strip().lower() == "false":
                compiled = True
    if not compiled and "RECORD" in files:
        compiled = _has_extension(_read(os.path.join(directory, "RECORD")) or "")
    editable = None
    if "direct_url.json" in files:
        try:
            direct = json.loads(_read(os.path.join(directory, "direct_url.json")) or "{}")
        except ValueError:
            direct = {}
        if isinstance(direct, dict) and (direct.get("dir_info") or {}).get("editable"):
            editable = direct.get("url") or ""
    installer = _read(os.path.join(directory, "INSTALLER")) if "INSTALLER" in files else None
    return _dist(directory, entry, "dist-info", name, version, requires, None, compiled,
                 "REQUESTED" in files, editable, installer)


def _egg_info(directory, entry, kind):
    """An ``*.egg-info`` directory or file, or an ``.egg``'s ``EGG-INFO``."""
    if os.path.isfile(directory):  # distutils wrote PKG-INFO as a single file
        text, files = _read(directory), set()
    else:
        try:
            files = set(os.listdir(directory))
        except OSError:
            return None
        text = _read(os.path.join(directory, "PKG-INFO")) if "PKG-INFO" in files else None
    name, version, requires = _headers(text) if text else (None, None, [])
    requires_txt = None
    if not requires and "requires.txt" in files:
        requires_txt = _read(os.path.join(directory, "requires.txt"))
    compiled = False
    if "native_libs.txt" in files:
        compiled = bool((_read(os.path.join(directory, "native_libs.txt")) or "").strip())
    if not compiled and "installed-files.txt" in files:
        compiled = _has_extension(_read(os.path.join(directory, "installed-files.txt")) or "")
    installer = _read(os.path.join(directory, "INSTALLER")) if "INSTALLER" in files else None
    return _dist(directory, entry, kind, name, version, requires, requires_txt, compiled,
                 "REQUESTED" in files, None, installer)


def _dist(directory, entry, kind, name, version, requires, requires_txt, compiled, requested,
          editable, installer):
    if not name or not version:
        fallback_name, fallback_version = _name_from_directory(
            os.path.basename(os.path.dirname(directory)) if kind == "egg" else entry)
        name = name or fallback_name
        version = version or fallback_version
    return {
        "name": name, "version": version, "metadata": directory, "kind": kind,
        "requires": requires, "requires_txt": requires_txt, "compiled": compiled,
        "requested": requested, "editable": editable,
        "installer": installer.strip() if installer else None,
    }


def scan(path_entry):
    """Every distribution whose metadata lives directly in ``path_entry``."""
    found = []
    base = path_entry or "."
    if base.lower().endswith(".egg") and os.path.isdir(os.path.join(base, "EGG-INFO")):
        dist = _egg_info(os.path.join(base, "EGG-INFO"), "EGG-INFO", "egg")
        if dist:
            found.append(dist)
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return found
    for entry in names:
        low = entry.lower()
        if low.endswith(".dist-info"):
            dist = _dist_info(os.path.join(base, entry), entry)
        elif low.endswith(".egg-info"):
            dist = _egg_info(os.path.join(base, entry), entry, "egg-info")
        else:
            continue
        if dist:
            found.append(dist)
    return found


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
            item["distributions"] = scan(entry) if item["is_dir"] else []
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
        "user_base": user_base,
        "user_site": user_site,
        "user_site_enabled": bool(site.ENABLE_USER_SITE),
        "pythonpath": None if sys.flags.ignore_environment else os.environ.get("PYTHONPATH"),
        "boot_disabled": bool(os.environ.get("LAYERVENV_BOOT_DISABLE")),
        "markers": marker_environment(),
        "sys_path": entries,
    }


def main():
    _drop_command_entry()
    sys.stdout.write(json.dumps(report()))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
