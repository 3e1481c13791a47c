# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""Import modules in the layer's interpreter and say which fail: ``check --imports``.

The tool runs this file's source as ``DIR/bin/python -c SOURCE REPORT [--deep] MODULE...``
in the environment the layer runs with.  Each MODULE is imported; with ``--deep``,
so are the public submodules right below a package (``scipy.special``: importing
``scipy`` alone loads none of its compiled modules, and succeeds under a numpy it
cannot run with).  Submodules named ``_*``, ``test*``, ``conftest`` or ``setup`` are
left alone.  The answer, ``{"failed": {module: last line of the exception}}``, goes
to the file REPORT (ASCII JSON), never to stdout, where imported code may print;
then the interpreter ends at once (``os._exit``): a process or thread a module started
as it was imported does not hold it up (the tool kills its whole process group).

With ``--fork`` (``REPORT --fork`` and a JSON request on stdin: ``{"shared": [MODULE...],
"targets": [[MODULE...], ...], "timeout": SECONDS, "jobs": N}``), this process first
imports the shared modules (the layer's own copies that the targets are imported
under: numpy), then forks one child per target (at most N at once), each in a session
of its own, importing that target's modules (``--deep``) with its output in files of
its own, and supervises it as the tool supervises a query: killed whole (its process
group) after SECONDS, a process it left running killed and said (``lingered``), a crash
said by its exit status and last line.  Each child's pid is appended to ``REPORT.groups``
before it starts importing, so that the tool kills those groups too when it ends the
query (a timeout, Ctrl-C).  The answer: ``{"forked": true, "results": [{"failed": {...},
"lingered": bool} | {"status": N, "last_line": TEXT} | {"timed_out": true}, ...]}``, or
``{"forked": false, "reason": TEXT}`` -- fork missing, a shared module failing, or a
thread running after the shared imports (forking then is unsafe) -- and the tool imports
each target in a process of its own instead.

Importing runs the package's code: that is the point (it is the proof), and why
``check`` does it only when asked.
"""

import contextlib
import importlib
import json
import os
import pkgutil
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings

SKIPPED = ("test", "conftest", "setup")


def _drop_command_entry():
    """Remove the ``''`` that ``-c`` put first on sys.path (the current directory)."""
    if sys.path and sys.path[0] == "" and not getattr(sys.flags, "safe_path", False):
        del sys.path[0]


def _last_line(error):
    lines = traceback.format_exception_only(type(error), error)
    text = lines[-1].strip() if lines else type(error).__name__
    return text.splitlines()[-1] if text else type(error).__name__


def _try(name, failed):
    try:
        return importlib.import_module(name)
    except BaseException as error:  # SystemExit, KeyboardInterrupt from a module too
        failed[name] = _last_line(error)
        return None


def _public_children(module):
    path = getattr(module, "__path__", None)
    if path is None:
        return []
    names = []
    try:
        for info in pkgutil.iter_modules(path):
            if info.name.startswith("_") or info.name.startswith(SKIPPED):
                continue
            names.append(module.__name__ + "." + info.name)
    except Exception:
        return []
    return sorted(set(names))


def _import_all(modules, deep):
    failed = {}
    for name in modules:
        module = _try(name, failed)
        if module is not None and deep:
            for child in _public_children(module):
                _try(child, failed)
    return failed


def _last_output_line(err_path, out_path):
    """The last line of what a child wrote, as the tool's query loader says it."""
    chosen = b""
    for path in (err_path, out_path):
        try:
            with open(path, "rb") as handle:
                chosen = handle.read()
        except OSError:
            chosen = b""
        if chosen.strip():
            break
    lines = chosen.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else "(no output)"


def _group_alive(pgid):
    """Whether a process of group ``pgid`` still runs (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    if not os.path.exists("/proc/self/stat"):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/" + entry + "/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _kill_group(pgid):
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def _child(modules, files, gate):
    """In the forked child: wait until the parent recorded this group, then import."""
    if os.read(gate, 1) != b"x":  # the parent died before recording us: do nothing
        os._exit(70)
    os.close(gate)
    for fd, path in ((1, files["out"]), (2, files["err"])):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    failed = _import_all(modules, True)
    with open(files["report"], "w") as handle:
        json.dump({"failed": failed}, handle)
    os._exit(0)


def _start(modules, files, groups):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(write)
            os.setsid()
            _child(modules, files, read)
        finally:
            os._exit(71)
    os.close(read)
    with open(groups, "a") as handle:  # before the child imports: the tool kills it too
        handle.write(str(pid) + "\n")
    os.write(write, b"x")
    os.close(write)
    return pid


def _finished(pid, status, files):
    lingered = _group_alive(pid)
    _kill_group(pid)
    try:
        with open(files["report"]) as handle:
            answer = json.load(handle)
    except (OSError, ValueError):
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return {"status": code, "last_line": _last_output_line(files["err"], files["out"])}
    answer["lingered"] = lingered
    return answer


def _forked(report, request):
    """``--fork``: the shared modules once, then a forked child per target."""
    if not hasattr(os, "fork"):
        return {"forked": False, "reason": "no fork here"}
    failed = _import_all(request["shared"], False)
    if failed:
        return {"forked": False, "reason": "a shared module fails: " + sorted(failed)[0]}
    if threading.active_count() > 1:
        return {"forked": False, "reason": "a thread runs after the shared imports"}
    targets, timeout = request["targets"], float(request["timeout"])
    jobs = max(1, int(request["jobs"]))
    results = [None] * len(targets)
    work = tempfile.mkdtemp(prefix="layervenv-imports-")
    waiting = list(range(len(targets)))
    running = {}  # pid -> (index, files, deadline)
    sys.stdout.flush()
    sys.stderr.flush()
    while waiting or running:
        while waiting and len(running) < jobs:
            index = waiting.pop(0)
            files = dict((k, os.path.join(work, str(index) + "." + k))
                         for k in ("out", "err", "report"))
            pid = _start(targets[index], files, report + ".groups")
            running[pid] = (index, files, time.monotonic() + timeout)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid in running:
            index, files, _ = running.pop(pid)
            results[index] = _finished(pid, status, files)
            continue
        now = time.monotonic()
        for pid, (index, _, deadline) in list(running.items()):
            if now > deadline:
                _kill_group(pid)
                os.waitpid(pid, 0)
                del running[pid]
                results[index] = {"timed_out": True}
        time.sleep(0.005)
    shutil.rmtree(work, ignore_errors=True)
    return {"forked": True, "results": results}


def main():
    _drop_command_entry()
    target = sys.argv[1]
    if sys.argv[2:3] == ["--fork"]:
        warnings.simplefilter("ignore")
        answer = _forked(target, json.loads(sys.stdin.read()))
        with open(target, "w") as handle:
            json.dump(answer, handle)
        os._exit(0)
    deep = sys.argv[2:3] == ["--deep"]
    modules = sys.argv[3:] if deep else sys.argv[2:]
    warnings.simplefilter("ignore")
    failed = _import_all(modules, deep)
    with open(target, "w") as handle:
        json.dump({"failed": failed}, handle)
    # The answer is written.  An ordinary exit would wait for what the modules started
    # (a non-daemon thread, a multiprocessing child joined at exit) and turn an import
    # that returned into a timeout; the tool kills what is left of the process group.
    os._exit(0)


if __name__ == "__main__":
    main()
