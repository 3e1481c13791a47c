#!/usr/bin/env python3
"""``import numpy`` from a read-only layer, with and without its bytecode.

    python3 benchmarks/bytecode.py [--python PY] [--wheels DIR] [--repeat 15]

A layer published read-only (CVMFS, EOS, a group's directory) cannot take the
``__pycache__`` files Python writes on first import: without them every process
compiles every module it imports again.  This makes a layer with numpy (a wheel from
``--wheels``, default ``$LAYERVENV_TEST_WHEELS/numpy2-cp311``) installed by its pip
(which leaves bytecode; ``--ignore-installed``: the layer's own copy, whatever the stack
has), checks that ``numpy`` is imported from the layer, then times
``python -c 'import numpy'`` (median wall and CPU time of ``--repeat`` runs, one run
first) and counts its metadata system calls with
``strace -f -c -e trace=stat,newfstatat,statx,lstat,openat,getdents64,readlink,access``:

    with bytecode       as the layer is made now
    without bytecode    numpy's ``__pycache__`` removed; PYTHONDONTWRITEBYTECODE=1 stands
                        in for the read-only file system (as root, permissions do not
                        stop a write): every process compiles again

Benchmarks never fail on a number.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from import_syscalls import TRACED, clean_env, count, run

ROOT = Path(__file__).resolve().parent.parent
TOOL = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))")
IMPORT = "import numpy"


def timed(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """The median wall and CPU (user + system) time of ``argv`` over ``repeat`` runs,
    after one run not counted (CPU time: steadier on a shared machine)."""
    walls, cpus = [], []
    for index in range(repeat + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        run(argv, env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if index:
            walls.append(time.perf_counter() - start)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--wheels", default=os.path.join(
        os.environ.get("LAYERVENV_TEST_WHEELS", str(ROOT / ".cache" / "wheels")),
        "numpy2-cp311"))
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    strace = shutil.which("strace")
    with tempfile.TemporaryDirectory(prefix="layervenv-bytecode-") as tmp:
        work = Path(tmp)
        env = clean_env(HOME=str(work), PIP_NO_INDEX="1", PIP_FIND_LINKS=args.wheels)
        layer = work / "layer"
        run([sys.executable, "-c", TOOL, str(ROOT / "src"), "create", "-q", "--python",
             args.python, str(layer)], env)
        # the layer's own copy even where the stack has the same numpy (pip compiles it)
        run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
             "--ignore-installed", "numpy"], env)
        python = [str(layer / "bin" / "python"), "-c", IMPORT]
        where = run([python[0], "-c", "import numpy; print(numpy.__file__)"], env)
        if not where.startswith(str(layer)):
            raise SystemExit(f"numpy comes from {where.strip()}, not from the layer")
        site = next(layer.glob("lib/python*/site-packages"))
        rows = []
        for label in ("with bytecode", "without bytecode"):
            if label == "without bytecode":
                for folder in list((site / "numpy").rglob("__pycache__")):
                    shutil.rmtree(folder)
            ro = dict(env, PYTHONDONTWRITEBYTECODE="1")
            seconds, cpu = timed(python, ro, args.repeat)
            ops = count(strace, python, ro, work) if strace else None
            rows.append((label, seconds, cpu, ops))
    version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=False).stdout.strip()
    print(f"`{IMPORT}` from a read-only layer, Python {version}, "
          f"median of {args.repeat} runs; metadata operations: trace={TRACED}")
    print("| layer | wall time | CPU time | metadata operations |\n|---|---|---|---|")
    for label, seconds, cpu, ops in rows:
        print(f"| {label} | {seconds * 1000:.0f} ms | {cpu * 1000:.0f} ms "
              f"| {ops if ops is not None else 'n/a'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
