"""One writer at a time per layer: ``with layer_write_lock(DIR, "rebase"): ...``.

Every command that changes a layer, or must read it unchanged, holds this lock for its
whole run: ``create`` (``--clear`` and ``--from`` too), ``rebase``, ``install``, ``lock``,
``pack`` and ``kernel install --install-ipykernel``; a second one is refused at once
with one line naming the holder (pid, host, command, since when).  pip runs from the
layer by the user are not ours to lock: ``rebase`` and ``pack`` detect them by the
change instead.

Where: ``.NAME.layervenv.lock`` beside the layer ``NAME`` -- the directory that
``--clear`` and ``rebase`` rename is in that parent, so a lock inside the layer would be
renamed with it.  When the parent is not writable (an administrator's directory with an
empty layer directory in it) the lock is ``DIR/.layervenv.lock`` instead (such a layer
can be filled but never replaced), and when neither is writable nobody can change the
layer and no lock is needed (``lock`` on CVMFS).

How, and why both ways at once:

* The lock is *held* by whoever created the file with ``O_CREAT | O_EXCL``: atomic on
  local filesystems, NFSv3+ and AFS alike, so two hosts sharing a home directory never
  both hold it.  The file says who holds it, as one JSON line.
* The holder also keeps an ``flock`` on it.  On one host the kernel releases it when the
  holder dies, however it dies (SIGKILL, OOM), so a lock file whose ``flock`` is free
  and names this host is stale and is taken over without asking.  (``flock`` across
  hosts is not relied on: on NFS without lockd, and on some FUSE filesystems such as
  EOS, it is local only or absent.  Where it is absent, whether the pid is alive
  decides.)
* A lock file naming another host cannot be judged from here: the refusal says which
  host, since when, and that the file may be removed once nothing runs there.

The holder removes the file when done; a process that opened it just before takes the
``flock`` of an unlinked file, which is why a taken lock is checked to still be the
file at the path.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from layervenv.infra.errors import UserError
from layervenv.infra.interrupts import uninterrupted

#: Inside a layer directory whose parent is not writable.
INSIDE_NAME = ".layervenv.lock"
#: How long a lock file may stay empty while its creator writes who it is.
CREATION_GRACE = 1.0
#: Errors that say "you cannot write here", not "something is wrong".
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class LayerBusy(UserError):
    """Another layervenv is changing this layer."""


def lock_path_beside(target: Path) -> Path:
    return target.parent / f".{target.name}.layervenv.lock"


@dataclass
class Holder:
    pid: int
    host: str
    command: str
    since: float

    @classmethod
    def me(cls, command: str) -> Holder:
        return cls(os.getpid(), os.uname().nodename, command, time.time())

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["command"]),
                       float(data["since"]))
        except (ValueError, KeyError, TypeError):
            return None

    def dumps(self) -> str:
        return json.dumps({"pid": self.pid, "host": self.host, "command": self.command,
                           "since": self.since}) + "\n"

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"{self.command} (pid {self.pid} on {self.host}, since {since})"


_held: dict[str, int] = {}


@contextlib.contextmanager
def layer_write_lock(target: Path | str, command: str) -> Iterator[None]:
    """Hold the layer ``target``'s write lock (re-entrant within one process).

    ``command`` is what a refused second writer is told (``layervenv rebase``).
    """
    key = os.path.abspath(target)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    taken = _acquire(Path(key), command)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        if taken is not None:
            with uninterrupted():
                taken.release()


@dataclass
class _Taken:
    path: Path
    fd: int

    def release(self) -> None:
        with contextlib.suppress(OSError):
            if _same_file(self.path, self.fd):
                os.unlink(self.path)
        os.close(self.fd)


def refuse_if_busy(target: Path) -> None:
    """Raise :class:`LayerBusy`, naming the holder, when a live process holds the write
    lock of ``target``; return when nobody does (a stale lock is removed, as a writer
    taking it would).  For a check made before taking the lock: what a writer is
    changing right now must not be judged as the user's."""
    for path in _locations(Path(os.path.abspath(target))):
        if os.path.lexists(path):
            _judge_existing(path, target)


def _locations(target: Path) -> list[Path]:
    return [lock_path_beside(target), target / INSIDE_NAME]


def _acquire(target: Path, command: str) -> _Taken | None:
    for path in _locations(target):
        try:
            return _take(path, target, command)
        except OSError as error:
            if error.errno in NOT_WRITABLE or error.errno in (errno.ENOENT, errno.ENOTDIR):
                continue  # not writable here (or no such directory): the next place
            raise UserError(f"cannot lock {target} ({path}): {error.strerror}") from None
    return None


def _take(path: Path, target: Path, command: str) -> _Taken:
    me = Holder.me(f"layervenv {command}")
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            _judge_existing(path, target)
            time.sleep(0.01)
            continue
        try:
            _flock(fd, blocking=True)  # others hold it only for a moment, to judge
            os.write(fd, me.dumps().encode())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)
            raise
        return _Taken(path, fd)


def _flock(fd: int, blocking: bool) -> bool | None:
    """True: taken; False: someone holds it; None: this filesystem has no flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise


def _judge_existing(path: Path, target: Path) -> None:
    """Return to try again (the lock went away, or was stale and is now removed);
    raise :class:`LayerBusy` when it is held."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        free = _flock(fd, blocking=False)
        holder = Holder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        here = holder is not None and holder.host == os.uname().nodename
        if holder is None:  # its creator is writing it, or died before it could
            if time.time() - os.fstat(fd).st_mtime < CREATION_GRACE:
                return
            if free is not True:
                raise LayerBusy(f"{target} is locked by another layervenv ({path} says "
                                f"nothing more); if none runs any more, remove {path}")
        elif free is False:
            if here and not pid_alive(holder.pid):
                return  # another process is taking over a stale lock: see what it does
            raise LayerBusy(f"{target} is being changed by {holder.describe()}; "
                            "try again when it has finished")
        elif not here:
            raise LayerBusy(f"{target} is being changed by {holder.describe()}, or was when "
                            f"that host stopped it; if no layervenv runs there any more, "
                            f"remove {path}")
        elif free is None and pid_alive(holder.pid):
            raise LayerBusy(f"{target} is being changed by {holder.describe()}; "
                            "try again when it has finished")
        # Stale: its holder is dead.  Remove it if it is still the file at the path.
        if _same_file(path, fd):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    finally:
        os.close(fd)


def _same_file(path: Path, fd: int) -> bool:
    try:
        here, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (someone else's counts; a zombie,
    dead but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rpartition(b")")[2].split()[:1]
    except OSError:  # no /proc (not Linux): kill said it exists
        return True
    return state not in ([b"Z"], [b"X"])
