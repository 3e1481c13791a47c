"""``layervenv check --imports`` against the layer python's ``pip check``, on the real-wheel stack.

    python3 benchmarks/check_imports.py [--repeat 3] [--wheels DIR] [--scenario numpy-2]

Builds, as the tests do (``tests/realstack.py``), the stack of ~20 real 2023 wheels
(numpy 1.24, scipy, pandas, awkward, ...) from ``--wheels`` (default
``.cache/wheels/real-cpXY``, what ``dev/test`` downloads), creates a layer on it and
installs the scenario's upgrades into it (``numpy-2``: numpy 2.0.2, which scipy, pandas,
contourpy, ... are imported under).  Then times, as a user runs them (a fresh process
each, wall time; best and median of REPEAT runs):

    layervenv check --imports         DIR/bin/python -m pip check
    LAYERVENV_IMPORTS_FORK=0 layervenv check --imports   (one process per distribution)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(ROOT / "tests"))

from realstack import build_real_stack, short_version  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from list_check import active_layer, timed, tool  # noqa: E402

#: the layer's upgrades, each a way to break what the stack imports
SCENARIOS = {
    "numpy-2": ("numpy==2.0.2",),
    "packaging-too-old": ("packaging==18.0",),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wheels", type=Path)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="numpy-2")
    args = parser.parse_args()
    python = Path(getattr(sys, "_base_executable", None) or sys.executable).resolve()
    tag = short_version(python).replace(".", "")
    wheels = args.wheels or ROOT / ".cache" / "wheels" / f"real-cp{tag}"
    if not (wheels / ".complete").exists():
        raise SystemExit(f"no real wheels in {wheels}: python3 tests/realstack.py .cache/wheels")
    with tempfile.TemporaryDirectory(prefix="layervenv-bench-") as tmp:
        stack = build_real_stack(Path(tmp) / "LCG_real", python, wheels)
        layer, env = active_layer(stack, Path(tmp), "--no-deps", *SCENARIOS[args.scenario])
        commands = {
            "layervenv check --imports": (tool("check", "--imports", "--format", "json"), {}),
            "  one process per distribution": (
                tool("check", "--imports", "--format", "json"), {"LAYERVENV_IMPORTS_FORK": "0"}),
            "python -m pip check": ([str(layer / "bin" / "python"), "-m", "pip", "check"], {}),
        }
        print(f"real-wheel stack, scenario {args.scenario}, {os.cpu_count()} CPUs; "
              f"best / median of {args.repeat} runs, Python {sys.version.split()[0]}")
        results = {name: timed(cmd, dict(env, **extra), args.repeat)
                   for name, (cmd, extra) in commands.items()}
        pip_best = results["python -m pip check"][0]
        for name, (best, median, out) in results.items():
            problems = ""
            if out.startswith("{"):
                found = json.loads(out)["problems"]
                problems = f", {sum(p['kind'] == 'import' for p in found)} import problems"
            print(f"  {name:<32} {best:6.3f} s / {median:6.3f} s  "
                  f"(this / pip check = {best / pip_best:4.1f}x{problems})")


if __name__ == "__main__":
    main()
