"""The per-user cache: what ``create`` would otherwise compute again for every layer.

It holds the unpacked pip wheel (linked into new layers) and the stack interpreter's
answers to the probe, under ``$LAYERVENV_CACHE_DIR``, else
``$XDG_CACHE_HOME/layervenv``, else ``~/.cache/layervenv``.  Removing the directory is
always safe: it fills again.

A cache is an optimisation, never a requirement: every function here answers None (or
False) instead of raising when the directory is missing, read-only, full or holds
something unexpected, and the caller does what it would do without a cache.  Entries
are filled in a private temporary directory and renamed into place, so a reader sees a
complete entry or none, and concurrent creates filling the same entry do not disturb
each other (the first rename wins, the others drop their copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layervenv.infra.atomic import atomic_write

ENV_VAR = "LAYERVENV_CACHE_DIR"
#: bumped when the layout of an entry changes: old entries are then simply not found
LAYOUT = "v2"


def cache_root(environ: dict[str, str] | None = None) -> Path:
    """Where the cache lives (it may not exist)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR])
    xdg = env.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative value is to be ignored
        return Path(xdg) / "layervenv"
    return Path(os.path.expanduser("~")) / ".cache" / "layervenv"


def section(name: str) -> Path | None:
    """The directory of one kind of entry (``wheels``, ``interpreters``), created if
    needed; None when it cannot be used (read-only, not a directory, no home)."""
    path = cache_root() / LAYOUT / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK | os.X_OK) else None


def digest(data: bytes | str) -> str:
    """A stable name for a key (sha256, hex)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a file's content, hex."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def read_json(path: Path) -> Any:
    """The JSON document at ``path``, or None (missing, unreadable, not JSON)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> bool:
    """Write ``data`` to ``path`` atomically, readable by this user only; False when it
    cannot be (a cache is never a requirement)."""
    try:
        atomic_write(path, json.dumps(data), mode=0o600)
        return True
    except (OSError, TypeError, ValueError):
        return False


def filled(entry: Path, build: Callable[[Path], None]) -> Path | None:
    """``entry``, built first by ``build(tmp)`` if it does not exist yet.

    ``build`` fills a fresh temporary directory beside ``entry``, which is then renamed
    to ``entry``.  If another process renamed its own first, that one is used.  An
    error while building (``OSError``, ``ValueError``) leaves no trace and answers None.
    """
    if entry.is_dir():
        return entry
    if os.path.lexists(entry):  # a file or a dangling link where the entry goes: damage
        discard(entry)
    try:
        temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    except OSError:
        return None
    try:
        build(temporary)
        os.rename(temporary, entry)
        return entry
    except (OSError, ValueError):
        _remove(temporary)
        return entry if entry.is_dir() else None  # another process won the rename
    except BaseException:  # Ctrl-C, SIGTERM: the half-filled entry goes, then the tool stops
        from layervenv.infra.interrupts import uninterrupted

        with uninterrupted():
            _remove(temporary)
        raise


def discard(entry: Path) -> None:
    """Remove a damaged entry, so that the next use fills it again.

    It is renamed aside first (one step: no process finds half of it), then removed; a
    process linking from it at that moment fails over to installing without the cache.
    """
    try:
        aside = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    except OSError:
        return
    with contextlib.suppress(OSError):  # gone already: another process set it aside
        os.rename(entry, aside / "entry")
    _remove(aside)


def _remove(path: Path) -> None:
    """Remove a file or a tree we made, even with read-only files in it."""
    if path.is_dir() and not path.is_symlink():
        for folder, _, _ in os.walk(path):
            with contextlib.suppress(OSError):
                os.chmod(folder, 0o700)
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
