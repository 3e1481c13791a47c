"""Renames that cannot leave a gap: ``renameat2`` on Linux, via ctypes.

``--clear`` and ``rebase`` swap a finished layer in for the old one.  With two renames
(old aside, new in) a kill between them leaves no layer at the path; Linux (3.15+, on
ext4, xfs, btrfs, tmpfs and most local filesystems) exchanges two paths atomically with
``RENAME_EXCHANGE``.  Where it is missing (another OS, an old glibc, NFS, AFS) the
caller falls back to the two renames.  ``RENAME_NOREPLACE`` likewise moves a new layer
to a path that must still be free without replacing an empty directory someone made
there in the meantime.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
#: What ``renameat2`` says when the kernel, the filesystem or the flag is not supported.
UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


def _renameat2() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    except OSError:
        return None


_RENAMEAT2 = _renameat2()


def _call(source: Path, destination: Path, flags: int) -> bool:
    """True when done; False when not supported here; OSError for any other failure."""
    if _RENAMEAT2 is None:
        return False
    result = _RENAMEAT2(AT_FDCWD, os.fsencode(source), AT_FDCWD,  # type: ignore[operator]
                        os.fsencode(destination), flags)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(destination))


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths atomically; False where this system cannot."""
    return _call(first, second, RENAME_EXCHANGE)


def rename_new(source: Path, destination: Path) -> None:
    """Rename ``source`` to ``destination``, which must not exist (FileExistsError if it
    does, even as an empty directory, where the system can tell)."""
    if _call(source, destination, RENAME_NOREPLACE):
        return
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(destination))
    os.rename(source, destination)
