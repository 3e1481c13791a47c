"""``layervenv list`` / ``check`` against ``pip list`` on a 1,000-distribution stack.

    python3 benchmarks/list_check.py [--count 1000] [--repeat 5] [--description-kb N]

Builds the simulated stack plus COUNT distributions written straight into its
site-packages (as a big LCG view holds), creates a layer on it with the tool,
installs one upgrade into the layer, then times, in the stack's environment with
the layer active, each command as a user runs it (a fresh process each time; the
best and the median of REPEAT runs; ``--description-kb`` gives every METADATA a long
description of that size, as real ones carry a whole README):

    layervenv list                  layervenv check
    layervenv list --format json    DIR/bin/python -m pip list
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from layervenv.services.simstack import build_stack, many_dists, write_dist_info  # noqa: E402

TOOL = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))")


def tool(*args: str) -> list[str]:
    return [sys.executable, "-c", TOOL, str(SRC), *args]


def active_layer(stack: Any, tmp: Path, *install: str) -> tuple[Path, dict[str, str]]:
    """A layer made by the tool on ``stack`` (set up from this environment, pip offline
    from its wheelhouse, HOME ``tmp``), ``pip install INSTALL...`` into it; the layer and
    the environment with it active, as a user's shell has it."""
    env = stack.env({k: v for k, v in os.environ.items()
                     if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(stack.wheelhouse),
               PIP_DISABLE_PIP_VERSION_CHECK="1", HOME=str(tmp))
    layer = tmp / "layer"
    subprocess.run(tool("create", str(layer)), env=env, check=True, capture_output=True)
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q", *install],
                   env=env, check=True, capture_output=True)
    return layer, dict(env, VIRTUAL_ENV=str(layer), PATH=f"{layer / 'bin'}:{env['PATH']}")


def timed(command: list[str], env: dict[str, str], repeat: int) -> tuple[float, float, str]:
    """Best and median wall time of ``repeat`` fresh runs, and the last run's output."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        runs.append(time.perf_counter() - start)
        if result.returncode not in (0, 1):
            raise SystemExit(f"{command} failed:\n{result.stderr}")
    return min(runs), statistics.median(runs), result.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--description-kb", type=int, default=0)
    args = parser.parse_args()
    python = Path(getattr(sys, "_base_executable", None) or sys.executable).resolve()
    with tempfile.TemporaryDirectory(prefix="layervenv-bench-") as tmp:
        stack = build_stack(Path(tmp) / "LCG_big", python)
        body = b"A long description line, as in a README.\n" * (args.description_kb * 25)
        for dist in many_dists(args.count):
            info = write_dist_info(stack.site_packages, dist)
            with open(info / "METADATA", "ab") as handle:
                handle.write(body)
        layer, env = active_layer(stack, Path(tmp), "hepnum<2")
        commands = {
            "layervenv list": tool("list"),
            "layervenv list --format json": tool("list", "--format", "json"),
            "layervenv check": tool("check"),
            "python -m pip list": [str(layer / "bin" / "python"), "-m", "pip", "list"],
        }
        print(f"{args.count} distributions written into the stack ({args.description_kb} KB "
              f"descriptions); best / median of {args.repeat} runs, "
              f"Python {sys.version.split()[0]}")
        results = {name: timed(cmd, env, args.repeat) for name, cmd in commands.items()}
        pip_best = results["python -m pip list"][0]
        for name, (best, median, output) in results.items():
            print(f"  {name:<30} {best:6.3f} s / {median:6.3f} s  "
                  f"({len(output.splitlines())} lines, pip list / this = "
                  f"{pip_best / best:4.1f}x)")


if __name__ == "__main__":
    main()
