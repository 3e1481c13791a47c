#!/usr/bin/env python3
"""Time from ``kernel install`` to a kernel answering ``1+1``: a layer over a stack,
against a plain ipykernel (``python -m ipykernel install`` in a plain venv).

    python3 benchmarks/kernel.py [--repeat N] [--wheels DIR]

Needs jupyter_client in this interpreter and the ipykernel wheels dev/test caches
(``.cache/wheels-jupyter``).  Built once, not timed: a simulated stack, a layer on it
(``--setup``, so the launcher re-establishes the stack) and a plain venv, each with
ipykernel and all its dependencies, the same versions, from the wheels.  Timed,
interleaved, ``--repeat`` times: the install command, then jupyter_client's
KernelManager starting the kernel from an environment with no stack, until ``1+1`` has
answered.  Prints medians (and min, max) in ms.
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

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from layervenv.services.simstack import build_stack  # noqa: E402

TOOL_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))"
)


def run(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def answer(name: str, env: dict[str, str], home: Path) -> float:
    """Start kernel ``name`` (found under ``home``) and ask 1+1; the seconds it took."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    start = time.perf_counter()
    specs = KernelSpecManager(kernel_dirs=[str(home / ".local/share/jupyter/kernels")])
    manager = KernelManager(kernel_name=name, kernel_spec_manager=specs)
    manager.start_kernel(env=env, stderr=subprocess.DEVNULL)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        result: list[str] = []
        client.execute_interactive("1+1", timeout=60, output_hook=lambda m: result.append(
            m["content"].get("data", {}).get("text/plain", "")))
        assert "2" in result, result
        return time.perf_counter() - start
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--wheels", type=Path, default=ROOT / ".cache" / "wheels-jupyter")
    args = parser.parse_args()
    python = Path(getattr(sys, "_base_executable", None) or sys.executable).resolve()
    with tempfile.TemporaryDirectory(prefix="layervenv-kbench-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("PYTHON", "VIRTUAL_ENV", "_LAYERVENV_", "PIP_", "JUPYTER"))}
        base.update(HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1")
        pip_env = {**base, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(args.wheels)}
        stack = build_stack(work / "LCG_bench", python)
        layer, venv = work / "layer", work / "venv"
        run([sys.executable, "-c", TOOL_BOOT, str(SRC), "create", str(layer), "--setup",
             f". {stack.setup_script}"], base)
        # --ignore-installed: the same versions as in the venv, whatever this interpreter's
        # own site-packages holds (an older IPython there imports 0.5 s more at start-up)
        run([str(layer / "bin/python"), "-m", "pip", "install", "-q", "--ignore-installed",
             "ipykernel"], pip_env)
        run([str(python), "-m", "venv", str(venv)], base)
        run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "ipykernel"], pip_env)
        installs = {
            "layervenv kernel install (layer over a stack)": [
                sys.executable, "-c", TOOL_BOOT, str(SRC), "kernel", "install", str(layer),
                "--name", "bench-layer"],
            "python -m ipykernel install --user (plain venv)": [
                str(venv / "bin/python"), "-m", "ipykernel", "install", "--user",
                "--name", "bench-plain"],
        }
        names = dict(zip(installs, ("bench-layer", "bench-plain")))
        times: dict[str, dict[str, list[float]]] = {
            k: {"install": [], "start": [], "total": []} for k in installs}
        for _ in range(args.repeat):
            for label, argv in installs.items():
                start = time.perf_counter()
                run(argv, base)
                installed = time.perf_counter() - start
                started = answer(names[label], base, home)
                times[label]["install"].append(installed)
                times[label]["start"].append(started)
                times[label]["total"].append(installed + started)
    print(f"Python {sys.version.split()[0]}, {args.repeat} runs each, interleaved; "
          f"ms: median (min-max)")
    for label, parts in times.items():
        shown = ", ".join(f"{part} {statistics.median(v) * 1000:.0f} "
                          f"({min(v) * 1000:.0f}-{max(v) * 1000:.0f})"
                          for part, v in parts.items())
        print(f"{label}: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
