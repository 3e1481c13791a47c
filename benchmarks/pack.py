#!/usr/bin/env python3
"""``layervenv pack`` against venv-pack, and the ways a packed layer can be relocated.

    python3 -m pip install venv-pack     # the competitor (optional: a 'not installed' row)
    python3 benchmarks/pack.py [--wheels DIR] [--json FILE]

Builds the simulated stack, then two layers on it (made with ``--setup``, as a batch
user would): the demo layer (hepnum upgraded), and the same plus numpy and scipy
(real wheels from ``--wheels``, default ``.cache/sci-wheels``: ``pip download -d
.cache/sci-wheels numpy scipy`` once) and an editable project.  For each layer it
measures, in the same run: archive size, time to pack, time to unpack (``tar -xzf``)
and first run (``bin/layervenv-run true``: checks, puts the layer in place), a later
run; venv-pack on the same layer (it refuses editable installs: then on the layer
without its editable project); and option (c) of docs/batch.md, re-creating the layer
on the worker from its wheels (``create`` + ``pip install --no-index``).
Standard library and this checkout's own code only; never fails on a number.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from layervenv.services.simstack import build_stack, sourced_environment  # noqa: E402

TOOL = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))", str(SRC)]
PROJECT = {"pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\n'
           'build-backend = "setuptools.build_meta"\n[project]\nname = "ana"\nversion = "1.0"\n',
           "src/ana/__init__.py": "VALUE = 42\n"}


def timed(command: list[str], env: dict[str, str], cwd: Path | None = None
          ) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                            check=False)
    return time.perf_counter() - start, result


def must(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(result.args)}\n{result.stdout}{result.stderr}")


def make_layer(where: Path, stack, env: dict[str, str], wheels: Path | None,
               editable: bool) -> Path:
    layer = where / "ana"
    must(subprocess.run([*TOOL, "create", str(layer), "--setup",
                         f". {shlex.quote(str(stack.setup_script))}"], env=env,
                        capture_output=True, text=True))
    pip = [str(layer / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
           "--find-links", str(stack.wheelhouse)]
    must(subprocess.run([*pip, "hepnum==1.24.2"], env=env, capture_output=True, text=True))
    if wheels is not None:
        must(subprocess.run([*pip, "--ignore-installed", "--find-links", str(wheels), "numpy",
                             "scipy"], env=env,
                            capture_output=True, text=True))
    if editable:  # a build backend in the layer, as pack's snapshot needs (dev/test's wheels)
        backends = Path(os.environ.get("LAYERVENV_TEST_WHEELS", ROOT / ".cache" / "wheels"))
        must(subprocess.run([*pip, "--find-links", str(backends), "setuptools>=70"], env=env,
                            capture_output=True, text=True))
        project = where / "project"
        for rel, text in PROJECT.items():
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / rel).write_text(text)
        must(subprocess.run([*pip, "--no-build-isolation", "-e", str(project)], env=env,
                            capture_output=True, text=True))
    return layer


def measure_layervenv(layer: Path, work: Path, env: dict[str, str]) -> dict:
    archive = work / "lv.tar.gz"
    seconds, result = timed([*TOOL, "pack", str(layer), "-o", str(archive)], env)
    must(result)
    dest = work / "lv unpacked"
    dest.mkdir()
    untar, result = timed(["tar", "-xzf", str(archive), "-C", str(dest)], env)
    must(result)
    launcher = str(dest / layer.name / "bin" / "layervenv-run")
    first, result = timed([launcher, "true"], {})
    must(result)
    later, result = timed([launcher, "true"], {})
    must(result)
    job, result = timed([launcher, "python", "-c", "import hepnum"], {})
    must(result)
    return {"size_mb": archive.stat().st_size / 1e6, "pack_s": seconds, "untar_s": untar,
            "first_run_s": first, "later_run_s": later, "python_job_s": job}


def measure_venv_pack(layer: Path, work: Path, env: dict[str, str]) -> dict:
    exe = shutil.which("venv-pack")
    if exe is None:
        return {"note": "venv-pack not installed (python3 -m pip install venv-pack)"}
    archive = work / "vp.tar.gz"
    seconds, result = timed([exe, "-p", str(layer), "-o", str(archive)], env)
    if result.returncode != 0:
        return {"note": "refused: " + (result.stderr.strip().splitlines() or ["?"])[-1]}
    dest = work / "vp unpacked"
    dest.mkdir()
    untar, result = timed(["tar", "-xzf", str(archive), "-C", str(dest)], env)
    must(result)
    job, result = timed(["sh", "-c", f". {shlex.quote(str(dest))}/bin/activate && "
                         "python -c 'import hepnum'"], env)
    return {"size_mb": archive.stat().st_size / 1e6, "pack_s": seconds, "untar_s": untar,
            "python_job_s": job, "job_ok": result.returncode == 0}


def measure_recreate(stack, work: Path, env: dict[str, str], wheels: Path | None) -> dict:
    """Option (c): the worker makes the layer again from wheels shipped with the job."""
    start = time.perf_counter()
    make_layer(work / "recreated", stack, env, wheels, editable=False)
    return {"recreate_s": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, default=ROOT / ".cache" / "sci-wheels")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" /
                        "pack.json")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="lv-pack-bench-") as tmp:
        base = Path(tmp)
        stack = build_stack(base / "stack" / "LCG_sim", Path(sys._base_executable))
        home = base / "home"
        home.mkdir()
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
        env = sourced_environment(stack.setup_script, dict(clean, HOME=str(home),
                                                           PIP_DISABLE_PIP_VERSION_CHECK="1"))
        sci = args.wheels if any(args.wheels.glob("scipy-*.whl")) else None
        cases = [("demo layer", None, False)]
        if sci is None:
            print(f"no numpy/scipy wheels in {args.wheels}: pip download -d {args.wheels} "
                  "numpy scipy", file=sys.stderr)
        else:
            cases += [("numpy+scipy", sci, False), ("numpy+scipy+editable", sci, True)]
        for name, wheels, editable in cases:
            work = base / name.replace("+", "_").replace(" ", "_")
            work.mkdir()
            layer = make_layer(work / "user", stack, env, wheels, editable)
            rows[name] = {"layervenv pack": measure_layervenv(layer, work, env),
                          "venv-pack": measure_venv_pack(layer, work, env)}
            if not editable:
                rows[name]["re-create from wheels (c)"] = measure_recreate(stack, work, env,
                                                                           wheels)
    print(f"{'layer':24} {'tool':28} {'MB':>7} {'pack s':>7} {'untar s':>8} "
          f"{'1st run s':>9} {'later s':>8} {'python job s':>12}")
    for name, tools in rows.items():
        for tool, row in tools.items():
            if "note" in row:
                print(f"{name:24} {tool:28} {row['note']}")
                continue
            cells = [row.get(k) for k in ("size_mb", "pack_s", "untar_s", "first_run_s",
                                          "later_run_s", "python_job_s")]
            if "recreate_s" in row:
                cells = [None, None, None, row["recreate_s"], None, None]
            text = " ".join(f"{c:>{w}.2f}" if c is not None else " " * w
                            for c, w in zip(cells, (7, 7, 8, 9, 8, 12)))
            print(f"{name:24} {tool:28} {text}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
