"""Whose is each file of a layer: the layer's (made by ``create`` or installed by pip), or
the user's -- at any depth.

Replacing a layer (``create --clear``, ``rebase``) builds the new one beside the old and
swaps them.  What the old one holds that is neither what ``create`` writes nor what a
distribution's ``RECORD`` lists is the user's: a script put in ``bin/``, a data file in
``lib/``, a package copied by hand into ``site-packages``, pip's ``src/`` checkouts.  It
is carried into the new layer, at the same place (``site-packages`` and ``bin`` follow
the new layer's scheme when the Python version changes), never dropped.

What ``create`` writes is read off the new layer itself (every path the staged layer
holds): a file an older ``create`` wrote and this one no longer does is carried, which
keeps a file rather than loses one.  Byte-compiled files (``__pycache__/*.pyc``) whose
source is the layer's are the layer's; the rest follow their directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layervenv.boot._layervenv_boot import INDEX_NAME, OVER_PTH
from layervenv.dists.record import installed_paths

#: A layer's configuration file, at its root: what makes a directory a layer.
CONFIG_NAME = "layervenv.toml"
#: The top-level entries ``create`` writes in every layer directory (with the first
#: part of the install scheme's paths, and the lock of a layer whose parent is not
#: writable: see ``writelock``).  Everything else in the directory is the user's or
#: pip's (``src/`` checkouts of ``pip install -e git+...``), unless a distribution's
#: RECORD lists it: see :func:`made_by_the_layer`.
MADE_ENTRIES = frozenset({"bin", "include", "lib", "lib64", "pyvenv.cfg", CONFIG_NAME,
                          ".layervenv.lock"})
#: Where ``create`` assembles a layer inside an empty directory it fills.
STAGING_INSIDE = ".layervenv-"


def installed_by_pip(root: Path, purelib: str) -> set[str]:
    """Every path (relative to the layer ``root``, POSIX form) that a ``RECORD`` under
    ``purelib`` lists inside the layer; an unreadable RECORD lists nothing."""
    found = set()
    for record in (root / purelib).glob("*.dist-info/RECORD"):
        try:
            paths = installed_paths(record.parent)
        except (OSError, ValueError):
            continue
        for path in paths:
            rel = os.path.relpath(path, root)
            if not rel.startswith(".."):
                found.add(rel.replace(os.sep, "/"))
    return found


def made_by_the_layer(root: Path, purelib: str, scripts: str) -> set[str]:
    """The top-level names in ``root`` that are the layer's: what ``create`` writes, and
    every top-level entry a distribution installed there (``share/``, ``etc/`` from a
    wheel's data, as its ``RECORD`` says)."""
    names = set(MADE_ENTRIES)
    names.update(Path(rel).parts[0] for rel in (scripts, purelib) if rel)
    names.update(rel.split("/")[0] for rel in installed_by_pip(root, purelib))
    return names


def not_made_by_the_layer(root: Path, purelib: str, scripts: str) -> list[str]:
    """The top-level entries of the layer directory ``root`` that are not the layer's
    (sorted); an unfinished ``create``'s staging directory is neither (see
    :func:`~layervenv.model.layer.find_leftovers`)."""
    made = made_by_the_layer(root, purelib, scripts)
    try:
        entries = os.listdir(root)
    except OSError:
        return []
    return sorted(n for n in entries if n not in made and not n.startswith(STAGING_INSIDE))


@dataclass(frozen=True)
class Carried:
    """One of the user's entries of the old layer and where it goes in the new one
    (both relative to the layer's root, POSIX form); a directory moves whole."""

    source: str
    destination: str


def _relocate(rel: str, moves: Iterable[tuple[str, str]]) -> str:
    """``rel`` with the first matching old prefix replaced by its new one."""
    for old, new in moves:
        if old and (rel == old or rel.startswith(old + "/")):
            return new + rel[len(old):]
    return rel


#: directories of site-packages that are a distribution's metadata, all of them pip's
METADATA_DIRECTORIES = (".dist-info", ".egg-info")


def _python_dir(purelib: str) -> str:
    """``python3.11`` of ``lib/python3.11/site-packages`` ("" when there is none)."""
    return next((part for part in purelib.split("/") if part.startswith("python")), "")


def _other_version(rel: str, new: str, old: str) -> str:
    """``rel`` of the new layer as the old layer (another Python version) has it:
    ``bin/python3.12`` -> ``bin/python3.11``, ``include/python3.12`` -> ``include/python3.11``."""
    if not new or new == old:
        return rel
    return "/".join(old if part == new else part for part in rel.split("/"))


def _pycache_of_ours(rel: PurePosixPath, ours: set[str]) -> bool:
    """``pkg/__pycache__/mod.cpython-311.pyc`` is the layer's when ``pkg/mod.py`` is."""
    if rel.parent.name != "__pycache__" or rel.suffix != ".pyc":
        return False
    source = rel.parent.parent / (rel.name.split(".", 1)[0] + ".py")
    return source.as_posix() in ours


def users_entries(old_root: Path, old_purelib: str, old_scripts: str,
                  new_root: Path, new_purelib: str, new_scripts: str) -> list[Carried]:
    """The user's entries of the layer at ``old_root``, as few as possible: a directory
    that holds nothing of the layer's is one entry, moved whole.

    ``new_root`` is the new layer as staged: whatever path it holds is the layer's in
    the old one too (after relocating ``site-packages`` and ``bin``, and the new Python
    version's names -- ``bin/python3.12`` -- to the old one's), and so is every path a
    ``RECORD`` under ``old_purelib`` lists and everything in a distribution's
    ``.dist-info``.  A file of the user's at a path ``create`` writes is the layer's: it
    cannot be told apart."""
    moves = [(new_purelib, old_purelib), (new_scripts, old_scripts)]
    versions = (_python_dir(new_purelib), _python_dir(old_purelib))
    ours: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(new_root):
        for name in (*dirnames, *filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), new_root).replace(os.sep, "/")
            ours.add(_other_version(_relocate(rel, moves), *versions))
    ours |= installed_by_pip(old_root, old_purelib)
    holders = {PurePosixPath(rel).parents[i].as_posix()
               for rel in ours for i in range(len(PurePosixPath(rel).parents) - 1)}
    back = [(old_purelib, new_purelib), (old_scripts, new_scripts)]
    found: list[Carried] = []

    written = f"{old_purelib}/{INDEX_NAME}"  # by the boot hook, when the layer runs

    def layers(rel: str) -> bool:
        """A file (or link) that is the layer's, which the new layer replaces."""
        if "/" not in rel and (rel.startswith(STAGING_INSIDE) or rel in MADE_ENTRIES):
            return True  # an unfinished create's staging; pyvenv.cfg, the lock
        if rel == written or rel.startswith(written + "."):
            return True  # the import index (and a temporary file of its writing)
        if rel == f"{old_purelib}/{OVER_PTH}":
            return True  # the group layers of the old stack (create --over): its record
        return rel in ours or _pycache_of_ours(PurePosixPath(rel), ours)

    def visit(directory: str) -> None:
        try:
            names = sorted(os.listdir(old_root / directory))
        except OSError:
            return
        for name in names:
            rel = f"{directory}/{name}" if directory else name
            path = old_root / rel
            if path.is_dir() and not path.is_symlink():
                if directory == old_purelib and name.endswith(METADATA_DIRECTORIES):
                    continue  # a distribution's metadata: pip's, whatever it holds
                if rel in holders or rel in ours or name == "__pycache__":
                    visit(rel)  # the layer's directory: look inside
                elif not layers(rel):
                    found.append(Carried(rel, _relocate(rel, back)))
            elif not layers(rel):
                found.append(Carried(rel, _relocate(rel, back)))

    visit("")
    return found
