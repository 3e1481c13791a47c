"""One way to run code inside another interpreter (the stack's, or a layer's) and read
its answer.

Every query is a script of this package (or of ``boot/``), read with
``importlib.resources`` -- inside ``layervenv.pyz`` files have no path -- and run as
``PYTHON [FLAGS] -c SOURCE REPORT ARGS...``.  The script writes one JSON value to the
file REPORT, never to stdout, where a stack's ``sitecustomize`` or ``.pth`` files may
print.  Whatever goes wrong (no such interpreter, a hang, a crash, no report) is one
:class:`QueryFailed`: a one-line :class:`UserError` naming the interpreter and the
cause, never a traceback.

A query runs in a process group of its own, which is killed whole when the query ends
(answered, timed out, or the tool interrupted): nothing it started outlives it.  A
script that starts processes in sessions of their own (``importer.py --fork``) lists
their pids in ``REPORT.groups`` before they run; those groups are killed with it.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from layervenv.infra.errors import UserError

#: where the query scripts are: this package (the boot code's own, for the worker's)
SCRIPTS = "layervenv.interp"


class QueryFailed(UserError):
    """An interpreter gave no answer to a query; ``str()`` is the one line to show.

    ``status`` is the exit status (negative: the signal), None when the interpreter
    could not be started or did not finish; ``last_line`` is the last line it wrote
    to stderr (or stdout), which is usually the reason.  Callers that know more about
    what was asked (``create``'s "not a usable Python") word it from these.
    """

    def __init__(self, python: str | Path, message: str, status: int | None = None,
                 last_line: str = "", timed_out: bool = False) -> None:
        super().__init__(message)
        self.python = str(python)
        self.status = status
        self.last_line = last_line
        self.timed_out = timed_out


def ended(status: int) -> str:
    """How an interpreter ended, as messages say it: ``exit 1``, ``signal 9``."""
    return f"signal {-status}" if status < 0 else f"exit {status}"


def script_source(name: str, package: str = SCRIPTS) -> str:
    """The source of the query script ``name`` (``probe.py``), as shipped."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


#: Runs first in every query: the modules the script imports at its top come from the
#: standard library, whatever the path of the interpreter puts first (a layer's
#: ``json.py`` would otherwise break the very check that reports it).  Python 3.6+; ``os``
#: is the standard library's (imported before any path of the user's is read).
STDLIB_FIRST = """import sys as _lv_sys, os as _lv_os
def _lv_from_stdlib(names):
    home = _lv_os.path.dirname(_lv_os.__file__)
    saved = _lv_sys.path[:]
    zips = _lv_os.path.dirname(home)
    _lv_sys.path[:] = [p for p in saved if p and (
        p == home or p.startswith(home + _lv_os.sep)
        or (p.endswith(".zip") and _lv_os.path.dirname(p) == zips)) and not (
        "site-packages" in p.split(_lv_os.sep) or "dist-packages" in p.split(_lv_os.sep))]
    try:
        for name in names:
            try:
                __import__(name)
            except ImportError:
                pass
    finally:
        _lv_sys.path[:] = saved
_lv_from_stdlib({names!r})
del _lv_from_stdlib, _lv_sys, _lv_os
"""


def stdlib_first(source: str) -> str:
    """``source`` after :data:`STDLIB_FIRST` for the modules it imports at its top (as it
    is, where a ``from __future__`` import must stay first)."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            return source
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return STDLIB_FIRST.format(names=names) + source


def last_line(output: bytes) -> str:
    """The last line of an interpreter's output, whatever its encoding."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else "(no output)"


@dataclass
class Answer:
    """A query's answer, and whether processes it started outlived it.

    ``lingered``: when the interpreter had exited, processes it had started (a module
    that forks a server as it is imported) were still running in its process group;
    they were killed.
    """

    value: Any
    lingered: bool = False


class QueryBatch:
    """Queries run at once from several threads (``check --imports``), stopped together.

    A query runs in a session of its own, so a Ctrl-C at the terminal no longer reaches
    it: the thread that gets the interrupt (the main one) calls :meth:`stop`, which
    kills the process group of every query of the batch that is running and makes every
    later one fail at once, instead of each running to its time limit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._stopped = False

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for pgid in self._running:
                kill_group(pgid)

    @contextmanager
    def started(self, python: str | Path, start: Callable[[], subprocess.Popen[bytes]]
                ) -> Iterator[subprocess.Popen[bytes]]:
        """``start()`` unless the batch is stopped; the process is the batch's until it
        ends, and an exception in the ``with`` body (a timeout, an interrupt) kills its
        whole process group."""
        with self._lock:  # a stop() between the check and the start would miss it
            if self._stopped:
                raise QueryFailed(python, f"{python}: stopped")
            process = start()
            self._running.add(process.pid)
        try:
            yield process
        except BaseException:  # the time limit, the tool interrupted: the whole group goes
            kill_group(process.pid)
            process.wait()
            raise
        finally:
            with self._lock:
                self._running.discard(process.pid)


def kill_group(pgid: int) -> None:
    """SIGKILL to every process of the process group ``pgid`` (gone already: nothing)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (a zombie waiting to be reaped does
    not: where the reaper is slow, or a container's first process does not reap)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return True  # no /proc to look closer: a member is there
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold blanks and parentheses
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def kill_listed_groups(report: str) -> None:
    """SIGKILL to the process groups a script listed in ``REPORT.groups`` (see above)."""
    try:
        with open(report + ".groups", encoding="ascii") as handle:
            listed = handle.read().split()
    except OSError:
        return
    for pgid in listed:
        if pgid.isdigit() and int(pgid) > 1:
            kill_group(int(pgid))


def run_query(python: str | Path, script: str, args: Sequence[str] = (),
              env: dict[str, str] | None = None, timeout: float = 120, *,
              flags: Sequence[str] = (), cwd: str | Path | None = None,
              stdin: str | None = None, package: str = SCRIPTS) -> Any:
    """Run the script ``script`` in ``python`` with ``args``; the JSON value it reported.

    ``flags`` go before ``-c`` (``-I -S``: an answer that neither PYTHONPATH nor
    site-packages can change); ``stdin`` is text given on standard input.  A failure
    raises :class:`QueryFailed`.  See :func:`query` for the processes it starts.
    """
    return query(python, script, args, env, timeout, flags=flags, cwd=cwd, stdin=stdin,
                 package=package).value


def query(python: str | Path, script: str, args: Sequence[str] = (),
          env: dict[str, str] | None = None, timeout: float = 120, *,
          flags: Sequence[str] = (), cwd: str | Path | None = None,
          stdin: str | None = None, package: str = SCRIPTS,
          batch: QueryBatch | None = None) -> Answer:
    """:func:`run_query`, saying also whether processes the interpreter started outlived it.

    The interpreter runs in a session (and process group) of its own, its output goes
    to files, not pipes: a process it forked and left running (holding those files
    open) neither holds up the answer nor outlives the query.  On a timeout, on an
    interrupt of the tool, or when the answer is in, the whole group is killed.
    ``batch``: the :class:`QueryBatch` this query is one of.
    """
    source = stdlib_first(script_source(script, package))
    with tempfile.TemporaryDirectory(prefix="layervenv-query-") as tmp:
        report = os.path.join(tmp, "report.json")
        argv = [str(python), *flags, "-c", source, report, *args]
        with open(os.path.join(tmp, "in"), "w+b") as given, \
                open(os.path.join(tmp, "out"), "w+b") as out, \
                open(os.path.join(tmp, "err"), "w+b") as err:
            if stdin is not None:
                given.write(stdin.encode("utf-8"))
                given.seek(0)

            def start() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    argv, env=env, cwd=None if cwd is None else str(cwd),
                    stdin=subprocess.DEVNULL if stdin is None else given, stdout=out,
                    stderr=err, start_new_session=True)

            try:
                with (batch or QueryBatch()).started(python, start) as process:
                    status = process.wait(timeout)
            except OSError as error:
                raise QueryFailed(python, f"cannot run {python}: {error.strerror}") from None
            except subprocess.TimeoutExpired:
                raise QueryFailed(python, f"{python} did not answer within {timeout:g} s",
                                  timed_out=True) from None
            finally:
                kill_listed_groups(report)
            lingered = group_alive(process.pid)
            if lingered:
                kill_group(process.pid)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        try:
            with open(report, "rb") as handle:
                return Answer(json.loads(handle.read()), lingered)
        except (OSError, ValueError):
            last = last_line(stderr if stderr.strip() else stdout)
            if status != 0:
                raise QueryFailed(python, f"{python} failed to start ({ended(status)}): {last}",
                                  status, last) from None
            raise QueryFailed(python, f"{python} gave no readable report: {last}",
                              status, last) from None
