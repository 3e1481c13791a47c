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
import csv
import io
import os
from collections.abc import Callable
from pathlib import Path

from layervenv.interp.probe import _is_extension

#: Names in a RECORD's first component that are not importable modules.
_NOT_MODULES = ("__pycache__", "..", "")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _record_paths(text: str) -> list[str]:
    """The file paths of a RECORD (CSV: a path may be quoted, holding a comma)."""
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]


def installed_files(metadata: str) -> list[Path] | None:
    """Every file the distribution whose metadata directory is ``metadata`` installed,
    or None when no list of them exists (or the metadata is inside a zip)."""
    meta = Path(metadata)
    if not meta.is_dir():
        return None
    if meta.name.lower().endswith(".dist-info"):
        text = _read(meta / "RECORD")
        base = meta.parent
    else:
        text = _read(meta / "installed-files.txt")
        base = meta
        if text is not None:
            return [Path(os.path.normpath(base / line.strip()))
                    for line in text.splitlines() if line.strip()]
    if text is None:
        return None
    return [Path(os.path.normpath(base / path)) for path in _record_paths(text)]


def _top_level_txt(meta: Path) -> list[str] | None:
    text = _read(meta / "top_level.txt") if meta.is_dir() else None
    if text is None:
        return None
    names = [line.strip().replace("/", ".") for line in text.splitlines()]
    return [n for n in names if n and all(part.isidentifier() for part in n.split("."))]


def _module_name(leaf: str) -> str | None:
    """``six.py`` -> ``six``; ``_cffi_backend.cpython-311-x86_64-linux-gnu.so`` ->
    ``_cffi_backend``; anything else (data, scripts) -> None."""
    if leaf.endswith(".py"):
        name = leaf[:-3]
    elif _is_extension(leaf):
        name = leaf.split(".", 1)[0]
    else:
        return None
    return name if name.isidentifier() else None


def top_level_modules(metadata: str) -> list[str]:
    """The names ``import`` takes for the distribution: ``top_level.txt`` where it
    exists, else the first component of its installed files (packages and modules)."""
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
        if not parts or parts[0] in _NOT_MODULES or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1:
            name = _module_name(parts[0])
        else:
            name = parts[0] if parts[0].isidentifier() else None
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
    return _files(metadata, _is_extension)


def python_files(metadata: str) -> list[Path]:
    """The ``.py`` files the distribution installed."""
    return _files(metadata, lambda leaf: leaf.endswith(".py"))
