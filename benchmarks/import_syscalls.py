#!/usr/bin/env python3
"""Imports on a many-entry PYTHONPATH: metadata operations, instructions and wall time,
plain venv vs. the layer before its import index vs. the layer with it.

    python3 benchmarks/import_syscalls.py [--python PY] [--entries 1,300] [--markdown FILE]
        [--measure ops,instructions,wall] [--repeat 21] [--real-stack] [--json FILE]
    .cache/bench-venv/bin/python benchmarks/import_syscalls.py --entries 1,10,30,100,300,1000 \\
        --measure ops,wall --plot docs/img/import-ops.svg     # a Python with matplotlib

Spack, Key4hep and Lmod stacks put one PYTHONPATH entry per package, in front of the
standard library: Python's ``FileFinder`` stats its directory on every lookup, so every
top-level import costs one metadata operation per entry, each a round trip on CVMFS,
Lustre or GPFS.  Measured, for

    python -c 'import pkgN'     the last entry's package (N = entries - 1)
    python -c 'import numpy'    Debian's numpy, when /usr/lib/python3/dist-packages has one

in a plain ``python -m venv --system-site-packages --without-pip``, in a layer with
``LAYERVENV_IMPORT_INDEX=0`` (the layer before its import index) and in a layer, on
read-only stacks of N entries with one small byte-compiled package each:

    ops            ``strace -f -c -e trace=stat,newfstatat,statx,lstat,openat,getdents64,
                   readlink,access``: counts, the same on any machine, however loaded
    instructions   ``valgrind --tool=callgrind``: user-space instructions, the same
                   within ~0.2% from run to run
    wall           median of REPEAT runs (posix_spawn, output to /dev/null), the
                   variants interleaved so that a loaded machine's noise hits them alike

``--real-stack`` adds the tests' real-wheel stack (``tests/realstack.py``: ~20 wheels of
2023, numpy 1.24, scipy, pandas, ... in one LCG-like prefix, made read-only, over the
interpreter running this script) with ``import numpy``, ``import scipy``, ``import pandas``.
Every variant runs once before it is measured (its bytecode and the layer's index
written), as every later process of a job finds them.  The interpreter is Debian's
``/usr/bin/python3`` when it exists (its numpy is the one case), else the one running
this script.  ``--plot`` draws operations and wall time against PYTHONPATH length (needs
matplotlib: ``--from-json`` redraws a saved run).  Benchmarks never fail on a number.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from run import instructions, spack_like_stack, spawn_timed  # benchmarks/run.py

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
TOOL = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))")
TRACED = "stat,newfstatat,statx,lstat,openat,getdents64,readlink,access"
DEBIAN_NUMPY = Path("/usr/lib/python3/dist-packages/numpy")
#: the issue's targets: (row, variant compared, ratio or added operations)
TARGETS = (("pkg", 300, "<= 0.75x"), ("numpy", 300, "<= 0.25x"), ("pkg", 1, "<= +10"))
#: the three ways of running the same import, in the tables' order
VARIANTS = ("plain venv", "layer, index off", "layer")
METRICS = ("ops", "instructions", "wall")
#: what is imported from the real-wheel stack
REAL_CODES = ("import numpy", "import scipy", "import pandas")
#: a measured case: which stack, how many PYTHONPATH entries, the code, and per variant
#: per metric the figure (ops and instructions: counts; wall: median ms)
Case = dict


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any venv, stack, locale or tool setting leaking in."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PYTHONPATH", "PYTHONHOME",
                        "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONNOUSERSITE",
                        "PYTHONDONTWRITEBYTECODE", "LANG"}
           and not k.startswith(("LAYERVENV_", "_LAYERVENV_", "PIP_", "LC_"))}
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent)]
        + [p for p in env.get("PATH", "").split(os.pathsep) if p and "/shims" not in p])
    env.update(extra)
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def set_read_only(root: Path, read_only: bool = True) -> None:
    """Take the write bits off every directory under ``root`` (or give them back), as an
    installed stack on CVMFS has none: the index covers read-only entries only."""
    for top, subdirs, _ in os.walk(root):
        for name in subdirs:
            os.chmod(os.path.join(top, name), 0o555 if read_only else 0o755)


def read_only_spack_stack(root: Path, python: str, entries: int) -> list[str]:
    """The Spack-like stack of ``benchmarks/run.py`` (one prefix per package, one tiny
    package ``pkgN`` each, byte-compiled), then made read-only, as an installed stack on
    CVMFS is (directories without write bits)."""
    dirs = spack_like_stack(root, python, entries)
    set_read_only(root)
    return dirs


def count(strace: str, argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Metadata system calls of ``argv`` (children included), as ``strace -c`` counts them."""
    out = cwd / "strace.out"
    run([strace, "-f", "-c", "-o", str(out), "-e", f"trace={TRACED}", *argv], env, cwd=cwd)
    text = out.read_text(encoding="utf-8")
    found = re.search(r"^-+.*\n\s*[\d.]+\s+[\d.]+\s+\d*\s+(\d+)\s+(?:\d+\s+)?total", text,
                      re.MULTILINE)
    if not found:
        raise SystemExit(f"no total in strace's summary:\n{text[-1000:]}")
    return int(found.group(1))


def variants_on(base: Path, python: str, env: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """A plain venv and a layer on the stack ``env`` sets up, as the three variants."""
    venv = base / "venv"
    run([python, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], env)
    layer = base / "layer"
    run([sys.executable, "-c", TOOL, str(SRC), "create", str(layer), "--without-pip",
         "--python", python], env)
    return {
        "plain venv": (str(venv / "bin" / "python"), env),
        "layer, index off": (str(layer / "bin" / "python"),
                             dict(env, LAYERVENV_IMPORT_INDEX="0")),
        "layer": (str(layer / "bin" / "python"), env),
    }


def measure(variants: dict[str, tuple[str, dict]], code: str, metrics: list[str],
            repeat: int, cwd: Path, expect_in: str | None = None) -> dict[str, dict]:
    """Each metric of ``python -c CODE`` in each variant, after one warm-up run each."""
    module = code.split()[1]
    values: dict[str, dict] = {name: {} for name in variants}
    for name, (python, env) in variants.items():
        where = run([python, "-c", f"{code}; print({module}.__file__)"], env, cwd=cwd).strip()
        if expect_in is not None and not where.startswith(expect_in + os.sep):
            raise SystemExit(f"{code} found {where}, not in {expect_in}")
        if "ops" in metrics:
            values[name]["ops"] = count(shutil.which("strace") or "strace",
                                        [python, "-c", code], env, cwd)
        if "instructions" in metrics:
            values[name]["instructions"] = instructions([python, "-c", code], env, cwd)
    if "wall" in metrics:
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(repeat):
            for name, (python, env) in variants.items():
                samples[name].append(spawn_timed([python, "-c", code], env))
        for name in variants:
            values[name]["wall"] = statistics.median(samples[name])
    return values


def spack_cases(work: Path, python: str, sizes: list[int], metrics: list[str],
                repeat: int, numpy: bool) -> list[Case]:
    cases = []
    for entries in sizes:
        base = work / f"n{entries}"
        dirs = read_only_spack_stack(base / "stack", python, entries)
        variants = variants_on(base, python, clean_env(PYTHONPATH=os.pathsep.join(dirs),
                                                       HOME=str(work)))
        codes = {"pkg": f"import pkg{entries - 1}"}
        if numpy:
            codes["numpy"] = "import numpy"
        for what, code in codes.items():
            print(f"  {entries} entries: {code}", file=sys.stderr, flush=True)
            cases.append({"stack": "spack", "what": what, "entries": entries, "code": code,
                          "values": measure(variants, code, metrics, repeat, base,
                                            dirs[-1] if what == "pkg" else None)})
    return cases


def real_cases(work: Path, wheels: Path | None, metrics: list[str], repeat: int) -> list[Case]:
    """The tests' real-wheel stack (one LCG-like prefix), read-only, over this Python."""
    sys.path.insert(0, str(SRC))
    sys.path.insert(0, str(ROOT / "tests"))
    from realstack import build_real_stack, short_version

    python = Path(getattr(sys, "_base_executable", None) or sys.executable).resolve()
    tag = short_version(python).replace(".", "")
    wheels = wheels or Path(os.environ.get("LAYERVENV_TEST_WHEELS", ROOT / ".cache" / "wheels")) \
        / f"real-cp{tag}"
    if not (wheels / ".complete").exists():
        raise SystemExit(f"no real wheels in {wheels}: python3 tests/realstack.py .cache/wheels")
    base = work / "real"
    stack = build_real_stack(base / "LCG_real", python, wheels)
    set_read_only(base / "LCG_real")
    env = stack.env(clean_env(HOME=str(work)))
    variants = variants_on(base, str(stack.python), env)
    cases = []
    for code in REAL_CODES:
        print(f"  real-wheel stack: {code}", file=sys.stderr, flush=True)
        cases.append({"stack": "real-wheel", "what": code.split()[1],
                      "entries": len([e for e in env.get("PYTHONPATH", "").split(os.pathsep)
                                      if e]),
                      "code": code,
                      "values": measure(variants, code, metrics, repeat, base,
                                        str(stack.site_packages))})
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="/usr/bin/python3" if os.path.exists(
        "/usr/bin/python3") else sys.executable, help="the stack's interpreter")
    parser.add_argument("--entries", default="1,300",
                        help="comma-separated PYTHONPATH lengths (default: 1,300)")
    parser.add_argument("--measure", default="ops,instructions,wall",
                        help="comma-separated, of ops, instructions, wall (default: all)")
    parser.add_argument("--repeat", type=int, default=21,
                        help="wall-time runs per variant; the median is reported (default: 21)")
    parser.add_argument("--real-stack", action="store_true",
                        help="also measure the tests' real-wheel stack (numpy, scipy, pandas)")
    parser.add_argument("--real-wheels", type=Path,
                        help="its wheels (default: $LAYERVENV_TEST_WHEELS/real-cpXY, "
                             "else .cache/wheels/real-cpXY)")
    parser.add_argument("--workdir", help="build here instead of a temporary directory")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--plot", help="draw operations and wall time against PYTHONPATH "
                                       "length into this file, .svg or .png (needs matplotlib)")
    parser.add_argument("--from-json", help="measure nothing: take the figures from this "
                                            "file (written by --json)")
    args = parser.parse_args(argv)
    if args.from_json:
        try:
            data = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            parser.error(f"cannot read {args.from_json}: {error}")
    else:
        data = measure_all(args)
        if data is None:
            return 0
    table = render(data)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        plot(data, Path(args.plot))
    return 0


def measure_all(args: argparse.Namespace) -> dict | None:
    metrics = [m for m in args.measure.split(",") if m]
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise SystemExit(f"--measure: unknown {', '.join(sorted(unknown))}")
    notes = []
    for metric, program in (("ops", "strace"), ("instructions", "valgrind")):
        if metric in metrics and shutil.which(program) is None:
            metrics.remove(metric)
            notes.append(f"{program} is not installed: no {metric}")
    if not metrics:
        print("; ".join(notes) or "nothing to measure")
        return None
    sizes = [int(n) for n in args.entries.split(",")]
    numpy = DEBIAN_NUMPY.is_dir() and args.python == "/usr/bin/python3"
    with tempfile.TemporaryDirectory(prefix="layervenv-syscalls-", dir=args.workdir) as tmp:
        work = Path(tmp)
        try:
            cases = spack_cases(work, args.python, sizes, metrics, args.repeat, numpy)
            real_python = None
            if args.real_stack:
                cases += real_cases(work, args.real_wheels, metrics, args.repeat)
                real_python = str(Path(getattr(sys, "_base_executable", None)
                                       or sys.executable).resolve())
        finally:
            set_read_only(work, False)
    return {"python": args.python, "version": version_of(args.python),
            "real_python": real_python,
            "real_version": version_of(real_python) if real_python else None,
            "cpus": os.cpu_count(), "load": os.getloadavg()[0], "repeat": args.repeat,
            "metrics": metrics, "notes": notes, "cases": cases}


def version_of(python: str) -> str:
    return run([python, "-c", "import sys; print(sys.version.split()[0])"],
               clean_env()).strip()


def _figure(value: float | None, metric: str) -> str:
    if value is None:
        return "–"
    if metric == "wall":
        return f"{value:.1f}" if value < 100 else f"{value:,.0f}"
    if metric == "instructions":
        return f"{value / 1e6:,.1f}M"
    return f"{value:,.0f}"


def render(data: dict) -> str:
    metrics = data["metrics"]
    names = {"ops": "metadata ops", "instructions": "instructions", "wall": "wall ms"}
    lines = [f"Spack-like stacks: {data['python']} (Python {data['version']})"
             + (f"; real-wheel stack: {data['real_python']} (Python {data['real_version']})"
                if data.get("real_python") else "")
             + f"; wall: median of {data['repeat']}, {data['cpus']} CPUs, "
               f"load average {data['load']:.1f} at the start.", ""]
    lines += [f"- {note}" for note in data["notes"]]
    head = ["stack", "import", "entries"]
    for metric in metrics:
        head += [f"{names[metric]}: {v}" for v in VARIANTS]
    lines += ["| " + " | ".join(head) + " |",
              "|---|---|--:|" + "--:|" * (len(metrics) * len(VARIANTS))]
    for case in data["cases"]:
        row = [case["stack"], f"`{case['code']}`", str(case["entries"])]
        for metric in metrics:
            base = case["values"]["plain venv"].get(metric)
            for variant in VARIANTS:
                value = case["values"][variant].get(metric)
                cell = _figure(value, metric)
                if variant != "plain venv" and value is not None and base:
                    cell += f" ({value / base:.2f}x)"
                row.append(cell)
        lines.append("| " + " | ".join(row) + " |")
    if "ops" in metrics:
        lines += ["", "| target (metadata operations) | result |", "|---|---|"]
        found = {(c["what"], c["entries"]): c["values"] for c in data["cases"]
                 if c["stack"] == "spack"}
        for what, entries, goal in TARGETS:
            row = found.get((what, entries))
            name = f"pkg{entries - 1}" if what == "pkg" else "numpy"
            label = f"`import {name}`, " \
                    f"{entries} entr{'y' if entries == 1 else 'ies'}: layer {goal}"
            if row is None:
                lines.append(f"| {label} | not measured |")
                continue
            base, layer = row["plain venv"]["ops"], row["layer"]["ops"]
            if goal.startswith("<= +"):
                met = layer - base <= int(goal[4:])
                got = f"{layer - base:+,} operations"
            else:
                met = layer / base <= float(goal[3:-1])
                got = f"{layer / base:.2f}x"
            lines.append(f"| {label} | {'**met**' if met else '**missed**'}: {got} |")
    return "\n".join(lines)


def plot(data: dict, target: Path) -> None:
    """Metadata operations and wall time against PYTHONPATH length, one line per variant
    and import, on log-log axes (the stack's length grows by orders of magnitude)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: python3 -m venv --system-site-packages "
                         ".cache/bench-venv && "
                         ".cache/bench-venv/bin/pip install matplotlib, then run this "
                         "script with .cache/bench-venv/bin/python (--from-json FILE "
                         "redraws a saved run)") from None
    matplotlib.use("Agg")  # no display; saves SVG (the docs' plot) and PNG alike
    matplotlib.rcParams["svg.hashsalt"] = "layervenv"  # the same run draws the same file
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: a small, greppable file
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = [m for m in ("ops", "wall") if m in data["metrics"]]
    titles = {"ops": "metadata operations (strace -c)", "wall": "wall time, ms (median)"}
    colours = {"plain venv": "#d62728", "layer, index off": "#7f7f7f", "layer": "#1f77b4"}
    styles = {"pkg": "-", "numpy": "--"}
    labels = {"pkg": "import pkgN (last entry)", "numpy": "import numpy"}
    sizes: list[int] = []
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2),
                                squeeze=False)
    for axis, metric in zip(axes[0], panels):
        for what in styles:
            cases = sorted((c for c in data["cases"]
                            if c["stack"] == "spack" and c["what"] == what),
                           key=lambda c: c["entries"])
            if len(cases) < 2:
                continue
            for variant in VARIANTS:
                axis.plot([c["entries"] for c in cases],
                          [c["values"][variant][metric] for c in cases],
                          styles[what], marker="o", markersize=3, color=colours[variant],
                          # the plain venv wide below: the layer before the index lies on it
                          linewidth=4 if variant == "plain venv" else 1.5,
                          alpha=0.45 if variant == "plain venv" else 1.0,
                          label=f"{labels[what]}: {variant}")
            sizes = [c["entries"] for c in cases]
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(sizes, [str(n) for n in sizes])
        axis.minorticks_off()
        axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
            lambda value, _: f"{value:,.0f}"))
        axis.set_xlabel("PYTHONPATH entries (one package each, read-only)")
        axis.set_title(titles[metric], fontsize=10)
        axis.grid(True, which="major", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(f"Python {data['version']}: plain venv, layer before the import "
                    f"index (LAYERVENV_IMPORT_INDEX=0), layer", fontsize=10)
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, metadata={"Date": None} if target.suffix == ".svg" else None)
    plt.close(figure)
    print(f"plot: {target}")


if __name__ == "__main__":
    sys.exit(main())
