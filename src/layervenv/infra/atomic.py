"""One way to replace a file whole: write a temporary file beside it, rename it over.

A reader (a Jupyter server reading a launcher, another ``create`` reading the cache,
a user reading a lock) sees the old file or the new one, never half of one; an
interrupted write leaves the old file as it was and no temporary file behind.

``boot/layervenv_unpack.py`` has its own ``write_atomically``: it runs in a worker's
Python (3.6, stdlib only, without this package) and cannot import this module.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one rename.

    ``mode`` is the new file's permission bits exactly (``0o755`` for a script,
    ``0o600`` for a private file); None gives what any new file gets under the umask.
    The temporary file is a hidden sibling named after ``path`` and this process, so
    that it is on the same filesystem (a rename cannot cross one) and says whose it is.
    Raises OSError as writing would; nothing is left behind when it does.
    """
    content = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 0o666 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:  # also Ctrl-C: the old file stays, the temporary one goes
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path
