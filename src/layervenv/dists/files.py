"""What an installed distribution consists of: its files, extension modules and
top-level import names, read from its metadata directory (never by importing it).

The probe reports where each distribution's metadata is; ``check`` needs more of a few
of them (those a layer's change can reach), so that is read here, on the tool's side,
only for those: a wheel's ``RECORD``, setuptools' ``installed-files.txt`` or
``top_level.txt`` (Debian's and old ``setup.py install`` egg-info directories list no
files: their top-level packages are walked instead).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from layervenv.dists.record import installed_paths

#: What an extension module's file name ends with (``X.cpython-311-x86_64-linux-gnu.so``,
#: ``X.abi3.so``, ``X.pyd``); a shared library (``libX.so.1``, ``.dylib``) is not one.
EXTENSION_SUFFIXES = (".so", ".pyd")
#: The file name endings of a top-level module ``import`` finds in a site directory.
MODULE_SUFFIXES = (".py", ".pyc", *EXTENSION_SUFFIXES)
#: First components of an installed path that are never a module: not installed in the
#: site directory, bytecode caches, metadata, a wheel's data.
_NOT_MODULES = ("__pycache__", "..", "")
_NOT_MODULE_SUFFIXES = (".dist-info", ".egg-info", ".data", ".pth")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def is_extension_module(leaf: str) -> bool:
    """Whether the file name ``leaf`` is a compiled extension module's (``.so``, ``.pyd``)."""
    return leaf.lower().endswith(EXTENSION_SUFFIXES)


def installed_files(metadata: str) -> list[Path] | None:
    """Every file the distribution whose metadata directory is ``metadata`` installed,
    or None when no list of them exists (or the metadata is inside a zip)."""
    meta = Path(metadata)
    if not meta.is_dir():
        return None
    if meta.name.lower().endswith(".dist-info"):
        try:
            return installed_paths(meta)
        except (OSError, ValueError):
            return None
    text = _read(meta / "installed-files.txt")
    if text is None:
        return None
    return [Path(os.path.normpath(meta / line.strip()))
            for line in text.splitlines() if line.strip()]


def _top_level_txt(meta: Path) -> list[str] | None:
    text = _read(meta / "top_level.txt") if meta.is_dir() else None
    if text is None:
        return None
    names = [line.strip().replace("/", ".") for line in text.splitlines()]
    return [n for n in names if n and all(part.isidentifier() for part in n.split("."))]


def _module_name(leaf: str) -> str | None:
    """``six.py`` -> ``six``; ``_cffi_backend.cpython-311-x86_64-linux-gnu.so`` ->
    ``_cffi_backend``; anything else (data, scripts, ``libX.so.1``) -> None."""
    if not leaf.lower().endswith(MODULE_SUFFIXES):
        return None
    name = leaf.split(".", 1)[0]
    return name if name.isidentifier() else None


def top_level_name(parts: tuple[str, ...]) -> str | None:
    """The top-level import name a file installed at ``parts`` (relative to its site
    directory) makes: a module file, or a package -- a regular one or a namespace
    portion, ``import`` takes both; None for metadata, caches, ``.pth`` files, data."""
    if not parts or parts[0] in _NOT_MODULES or parts[0].lower().endswith(_NOT_MODULE_SUFFIXES):
        return None
    if len(parts) == 1:
        return _module_name(parts[0])
    return parts[0] if parts[0].isidentifier() else None


def top_level_modules(metadata: str) -> list[str]:
    """The names ``import`` takes for the distribution: ``top_level.txt`` where it
    exists (setuptools wrote it from the project), else the first component of its
    installed files (see :func:`top_level_name`)."""
    meta = Path(metadata)
    listed = _top_level_txt(meta)
    if listed is not None:
        return sorted(set(listed))
    files = installed_files(metadata)
    if not files:
        return []
    base = meta.parent
    names = set()
    for path in files:
        try:
            parts = path.relative_to(base).parts
        except ValueError:
            continue  # a script or data file outside the site directory
        name = top_level_name(parts)
        if name:
            names.add(name)
    return sorted(names)


def _files(metadata: str, wanted: Callable[[str], bool]) -> list[Path]:
    """The files of the distribution whose names ``wanted`` accepts: from its list of
    files, else found under its top-level packages."""
    files = installed_files(metadata)
    if files is not None:
        return [f for f in files if wanted(f.name)]
    base = Path(metadata).parent
    found: list[Path] = []
    for name in top_level_modules(metadata):
        top = base / name.split(".")[0]
        if top.is_dir():
            for root, dirs, leaves in os.walk(top):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                found.extend(Path(root, leaf) for leaf in leaves if wanted(leaf))
        else:
            with contextlib.suppress(OSError):
                found.extend(base / leaf for leaf in os.listdir(base)
                             if leaf.split(".", 1)[0] == name and wanted(leaf))
    return found


def extension_modules(metadata: str) -> list[Path]:
    """The compiled extension modules (``.so``, ``.pyd``) the distribution installed."""
    return _files(metadata, is_extension_module)


def python_files(metadata: str) -> list[Path]:
    """The ``.py`` files the distribution installed."""
    return _files(metadata, lambda leaf: leaf.endswith(".py"))
