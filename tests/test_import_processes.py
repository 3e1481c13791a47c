"""``check --imports`` and the processes a module starts as it is imported.

A real small distribution, installed into a real layer with pip, whose module starts a
process that sleeps (``os.fork``, or a non-daemon ``multiprocessing.Process`` that the
interpreter joins at exit) and writes the pids to a file.  The reference is the kernel:
after ``check --imports`` returns, ``os.kill(pid, 0)`` raises for every one of them.
This test process makes itself the *child subreaper* of what it starts, so that an
orphan killed by the tool is reaped here (a container's first process may never reap
it, and a zombie still answers ``kill(pid, 0)``); an orphan still alive is not reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_tool, tool_command

PR_SET_CHILD_SUBREAPER = 36

#: module sources: each writes "IMPORTER_PID CHILD_PID" to $FORKER_PIDS
STARTS = {
    "fork": (
        "import os, time\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    time.sleep(600)\n"
        "    os._exit(0)\n"
    ),
    "multiprocessing": (
        "import multiprocessing, os, time\n"
        "_worker = multiprocessing.get_context('fork').Process(target=time.sleep, args=(600,))\n"
        "_worker.start()\n"
        "child = _worker.pid\n"
    ),
}
WRITE_PIDS = ("with open(os.environ['FORKER_PIDS'], 'a') as _f:\n"
              "    _f.write('%d %d\\n' % (os.getpid(), child))\n")
HANG = "time.sleep(600)\n"


def forker_wheel(directory: Path, start: str, hang: bool) -> Path:
    """A wheel of ``forker`` 1.0, whose module starts a sleeping process (and, with
    ``hang``, then sleeps itself: an import that never returns)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = STARTS[start] + WRITE_PIDS + (HANG if hang else "")
    wheel = directory / "forker-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("forker/__init__.py", source)
        archive.writestr("forker-1.0.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: forker\nVersion: 1.0\n")
        archive.writestr("forker-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("forker-1.0.dist-info/top_level.txt", "forker\n")
        archive.writestr("forker-1.0.dist-info/RECORD", "")
    return directory


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """This process is the subreaper of its descendants' orphans for the test; the pids
    listed in the yielded list are killed (if still there) and reaped at the end."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.fail(f"prctl(PR_SET_CHILD_SUBREAPER): errno {ctypes.get_errno()}")
    pids: list[int] = []
    try:
        yield pids
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def gone(pid: int, within: float = 2.0) -> bool:
    """Whether ``pid`` is gone (``os.kill(pid, 0)`` raises), reaping it if it is a zombie
    of ours; a short grace for SIGKILL to land."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def started(pid_file: Path, reaper: list[int]) -> list[int]:
    pids = [int(p) for p in pid_file.read_text().split()] if pid_file.exists() else []
    reaper.extend(pids)
    return pids


def forker_layer(make_layer, stack_env: dict[str, str], tmp_path: Path, start: str,
                 hang: bool):
    links = forker_wheel(tmp_path / "links", start, hang)
    layer = make_layer()
    run_tool("install", str(layer.root), "--installer", "pip", "--find-links", str(links),
             "forker", env=stack_env)
    return layer


@pytest.mark.parametrize("start", sorted(STARTS))
def test_a_process_left_by_an_import_is_killed_not_a_timeout(
        make_layer, stack_env, tmp_path, reaper, start) -> None:
    """The import returns, the process it started sleeps on: check does not wait for it
    (no timeout, no import error: a warning names it) and it is gone when check returns."""
    layer = forker_layer(make_layer, stack_env, tmp_path, start, hang=False)
    pid_file = tmp_path / "pids"
    env = dict(stack_env, FORKER_PIDS=str(pid_file))
    began = time.monotonic()
    result = run_tool("check", str(layer.root), "--imports", "--import-timeout", "20",
                      "--format", "json", env=env, check=False)
    took = time.monotonic() - began
    pids = started(pid_file, reaper)
    assert len(pids) == 2, (pids, result.stderr)
    print(f"{start}: check --imports took {took:.1f} s")
    assert took < 20
    assert all(gone(pid) for pid in pids), pids
    report = json.loads(result.stdout)
    forker = [p for p in report["problems"] if p.get("distribution") == "forker"]
    assert [(p["kind"], p["severity"]) for p in forker] == [("import", "warning")], forker
    assert "left a process running" in forker[0]["message"]
    assert report["ok"] is True and result.returncode == 0, result.stdout
    # the independent view: the module imports in the layer (and starts its process,
    # which holds any pipe open: the output goes to a file)
    with open(tmp_path / "stderr", "w+") as err:
        imported = subprocess.run([str(layer.python), "-c", "import forker, os; os._exit(0)"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=60)
        err.seek(0)
        assert imported.returncode == 0, err.read()
    assert len(started(pid_file, reaper)) == 4


def test_an_import_that_hangs_is_killed_with_its_children(
        make_layer, stack_env, tmp_path, reaper) -> None:
    """A timeout kills the whole process group: the importer and the process it forked."""
    layer = forker_layer(make_layer, stack_env, tmp_path, "fork", hang=True)
    pid_file = tmp_path / "pids"
    env = dict(stack_env, FORKER_PIDS=str(pid_file))
    result = run_tool("check", str(layer.root), "--imports", "--import-timeout", "3",
                      "--format", "json", env=env, check=False)
    pids = started(pid_file, reaper)
    assert len(pids) == 2, (pids, result.stderr)
    assert all(gone(pid) for pid in pids), pids
    report = json.loads(result.stdout)
    forker = [p for p in report["problems"] if p.get("distribution") == "forker"]
    assert [(p["kind"], p["severity"]) for p in forker] == [("import", "error")], forker
    assert "did not finish within 3 s" in forker[0]["message"]
    assert result.returncode == 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_check_kills_the_imports(make_layer, stack_env, tmp_path, reaper,
                                                signum) -> None:
    """Ctrl-C (or SIGTERM) to the tool alone, while an import hangs: the tool ends at once
    with the signal's status, and the importer and its child are gone."""
    layer = forker_layer(make_layer, stack_env, tmp_path, "fork", hang=True)
    pid_file = tmp_path / "pids"
    env = dict(stack_env, FORKER_PIDS=str(pid_file))
    tool = subprocess.Popen(tool_command("check", str(layer.root), "--imports",
                                         "--import-timeout", "60"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline and tool.poll() is None:
            time.sleep(0.05)
        time.sleep(0.2)
        pids = started(pid_file, reaper)
        assert len(pids) == 2, tool.stderr.read() if tool.poll() is not None else pids
        began = time.monotonic()
        tool.send_signal(signum)
        _out, err = tool.communicate(timeout=20)
        print(f"{signum.name}: the tool ended {time.monotonic() - began:.2f} s after it")
    finally:
        if tool.poll() is None:
            tool.kill()
            tool.wait()
    assert tool.returncode == 128 + signum, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert all(gone(pid) for pid in pids), pids
