"""Bytecode for what enters a layer: the one place that compiles it, and the one test of
whether it is there.

A layer published read-only (CVMFS, EOS, a group's directory) cannot take the
``__pycache__`` files Python writes on first import: without them every process of
every job compiles every module of the layer it imports again.  So every way a package
enters a layer -- ``create`` (the seeded pip, ``--from``), ``rebase``, ``install`` with
pip or uv -- ends with :func:`compile_layer`, which compiles with the layer's own
interpreter (its cache tag and magic number: ``cpython-311``), only files inside the
layer, only those without current bytecode, and starts no process when there are none.

The ``.pyc`` files are not added to the distributions' RECORDs: pip's uninstall removes
the running interpreter's ``.pyc`` of every ``.py`` it removes (as it must for those
Python writes itself on import), and a RECORD stays what installer wrote (a layer made
from the cache and one made by installer stay alike, byte for byte).

"Current" is judged by two ``stat`` calls a source, never by reading the ``.pyc``: a
``.pyc`` at least as new as its source.  ``check`` runs this over every file of the layer
(often on a network file system); a source edited after it was compiled is newer, and a
pack's unpacked layer gives both the same time.  A source replaced by an older file
with its time kept (``cp -p``) is the one case it misses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from layervenv.dists.record import installed_paths


def pyc_path(source: Path, cache_tag: str) -> Path:
    """Where an interpreter with ``cache_tag`` looks for the bytecode of ``source``
    (``importlib.util.cache_from_source``, without ``sys.pycache_prefix``)."""
    return source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"


def has_current_bytecode(source: Path, cache_tag: str) -> bool:
    """Whether ``source`` has a ``.pyc`` for ``cache_tag`` at least as new as itself (two
    stat calls; see the module's text for why not more)."""
    try:
        return os.stat(pyc_path(source, cache_tag)).st_mtime >= os.stat(source).st_mtime
    except OSError:
        return False


def _within(path: str, folders: Sequence[str]) -> bool:
    return any(path == folder or path.startswith(folder + os.sep) for folder in folders)


def distribution_sources(dist_info: Path, site_dirs: Sequence[Path]) -> list[Path]:
    """The ``.py`` files ``dist_info``'s RECORD lists inside ``site_dirs`` (what is
    imported; a ``.py`` under ``share/`` is data), that exist; none for an unreadable
    RECORD."""
    folders = [os.path.normpath(folder) for folder in site_dirs]
    try:
        paths = installed_paths(dist_info)
    except (OSError, ValueError):
        return []
    return [path for path in paths if path.suffix == ".py" and _within(str(path), folders)
            and path.is_file()]


def dist_infos(site_dirs: Iterable[Path]) -> list[Path]:
    """The ``.dist-info`` directories in ``site_dirs`` (each once), sorted."""
    found: set[Path] = set()
    for folder in site_dirs:
        found.update(folder.glob("*.dist-info"))
    return sorted(found)


def distribution_name(dist_info: Path) -> str:
    """The name in a ``NAME-VERSION.dist-info`` directory's name (no METADATA read)."""
    return dist_info.name[:-len(".dist-info")].rsplit("-", 1)[0]


@dataclass(frozen=True)
class MissingBytecode:
    """A distribution of the layer whose ``.py`` files lack current bytecode."""

    name: str
    missing: int
    total: int


def missing_bytecode(site_dirs: Sequence[Path], cache_tag: str) -> list[MissingBytecode]:
    """The layer's distributions with sources lacking current bytecode for ``cache_tag``."""
    found = []
    for info in dist_infos(site_dirs):
        sources = distribution_sources(info, site_dirs)
        missing = sum(not has_current_bytecode(source, cache_tag) for source in sources)
        if missing:
            found.append(MissingBytecode(distribution_name(info), missing, len(sources)))
    return found


@dataclass
class Compiled:
    """What :func:`compile_layer` did: sources compiled, and those that do not compile."""

    compiled: int = 0
    failed: list[str] = field(default_factory=list)


class Compiler(Protocol):
    """The layer's interpreter as it compiles (the one that runs it is
    :class:`layervenv.interp.compiler.LayerCompiler`): its ``.pyc`` files' cache tag and
    magic number (None, "": not known)."""

    cache_tag: str | None
    magic: str

    def compile(self, jobs: list[list[str]]) -> Compiled:
        """Compile ``[source, shown_as, pyc]`` jobs (``pyc`` "": where Python looks)."""
        ...


def compile_layer(compiler: Compiler, root: Path, site_dirs: Sequence[Path],
                  shown_root: Path | None = None, only: Iterable[Path] | None = None,
                  extra: Iterable[Path] = ()) -> Compiled:
    """Compile the sources of the distributions in ``site_dirs`` (``only``: of these
    ``.dist-info`` directories) and the ``extra`` files that lack current bytecode for
    the compiler's cache tag (not known: all of them).

    Only files whose directory is really inside ``root`` are compiled: a RECORD is data,
    and a path or link of it leading into the stack must not make us write there.
    ``shown_root``: where a layer being built in ``root`` will live, the file name its
    code objects carry (Python sets the loaded path anyway).
    """
    real_root = os.path.realpath(root)
    tag = compiler.cache_tag
    infos = dist_infos(site_dirs) if only is None else sorted(set(only))
    sources = [source for info in infos for source in distribution_sources(info, site_dirs)]
    sources += [Path(path) for path in extra if Path(path).is_file()]
    jobs = []
    for source in dict.fromkeys(sources):
        if (tag and has_current_bytecode(source, tag)) or not _within(
                os.path.realpath(source.parent), [real_root]):
            continue
        shown = source if shown_root is None else shown_root / source.relative_to(root)
        jobs.append([str(source), str(shown), ""])
    return compiler.compile(jobs)


def compile_command(python: Path, site_packages: Path) -> list[str]:
    """What a user runs to compile the layer's site-packages themselves (``check``'s fix):
    the layer's interpreter, isolated so that no PYTHONPYCACHEPREFIX sends the bytecode
    elsewhere."""
    return [str(python), "-I", "-m", "compileall", "-q", str(site_packages)]
