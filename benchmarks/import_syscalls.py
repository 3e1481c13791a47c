#!/usr/bin/env python3
"""Metadata system calls of an import on a many-entry PYTHONPATH: plain venv vs. layer.

    python3 benchmarks/import_syscalls.py [--python PY] [--entries 1,300] [--markdown FILE]

Spack, Key4hep and Lmod stacks put one PYTHONPATH entry per package, in front of the
standard library: Python's ``FileFinder`` stats its directory on every lookup, so every
top-level import costs one metadata operation per entry, each a round trip on CVMFS,
Lustre or GPFS.  This counts them, with
``strace -f -c -e trace=stat,newfstatat,statx,lstat,openat,getdents64,readlink,access``
(counts, not times: the same on any machine, however loaded), for

    python -c 'import pkgN'     the last entry's package (N = entries - 1)
    python -c 'import numpy'    Debian's numpy, when /usr/lib/python3/dist-packages has one

in a plain ``python -m venv --system-site-packages --without-pip`` and in a layer (with
its import index, and with ``LAYERVENV_IMPORT_INDEX=0``), on stacks of N entries with one
small byte-compiled package each.  Every variant runs once before it is counted (its
bytecode and the layer's index written), as every later process of a job finds them.
The interpreter is Debian's ``/usr/bin/python3`` when it exists (its numpy is the one
case), else the one running this script.  Benchmarks never fail on a number.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from run import spack_like_stack  # benchmarks/run.py: the one Spack-like stack

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
TOOL = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))")
TRACED = "stat,newfstatat,statx,lstat,openat,getdents64,readlink,access"
DEBIAN_NUMPY = Path("/usr/lib/python3/dist-packages/numpy")
#: the issue's targets: (row, variant compared, ratio or added operations)
TARGETS = (("pkg", 300, "<= 0.75x"), ("numpy", 300, "<= 0.25x"), ("pkg", 1, "<= +10"))


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


def read_only_spack_stack(root: Path, python: str, entries: int) -> list[str]:
    """The Spack-like stack of ``benchmarks/run.py`` (one prefix per package, one tiny
    package ``pkgN`` each, byte-compiled), then made read-only, as an installed stack on
    CVMFS is (directories without write bits)."""
    dirs = spack_like_stack(root, python, entries)
    for top, subdirs, _ in os.walk(root):
        for name in subdirs:
            os.chmod(os.path.join(top, name), 0o555)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="/usr/bin/python3" if os.path.exists(
        "/usr/bin/python3") else sys.executable, help="the stack's interpreter")
    parser.add_argument("--entries", default="1,300",
                        help="comma-separated PYTHONPATH lengths (default: 1,300)")
    parser.add_argument("--workdir", help="build here instead of a temporary directory")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    strace = shutil.which("strace")
    if strace is None:
        print("strace is not installed: nothing to count")
        return 0
    sizes = [int(n) for n in args.entries.split(",")]
    numpy = DEBIAN_NUMPY.is_dir() and args.python == "/usr/bin/python3"
    results: dict[tuple[str, int], dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="layervenv-syscalls-", dir=args.workdir) as tmp:
        work = Path(tmp)
        try:
            for entries in sizes:
                base = work / f"n{entries}"
                dirs = read_only_spack_stack(base / "stack", args.python, entries)
                env = clean_env(PYTHONPATH=os.pathsep.join(dirs), HOME=str(work))
                venv = base / "venv"
                run([args.python, "-m", "venv", "--without-pip", "--system-site-packages",
                     str(venv)], env)
                layer = base / "layer"
                run([sys.executable, "-c", TOOL, str(SRC), "create", str(layer),
                     "--without-pip", "--python", args.python], env)
                variants = {
                    "plain venv": (venv, env),
                    "layer": (layer, env),
                    "layer, index off": (layer, dict(env, LAYERVENV_IMPORT_INDEX="0")),
                }
                codes = {"pkg": f"import pkg{entries - 1}"}
                if numpy:
                    codes["numpy"] = "import numpy"
                for what, code in codes.items():
                    row = results.setdefault((what, entries), {})
                    for name, (prefix, variant_env) in variants.items():
                        python = [str(prefix / "bin" / "python"), "-c", code]
                        where = run([*python[:2], f"{code}; print({code.split()[1]}.__file__)"],
                                    variant_env, cwd=base).strip()  # bytecode, index written
                        if what == "pkg" and not where.startswith(dirs[-1] + os.sep):
                            raise SystemExit(f"{code} found {where}, not in {dirs[-1]}")
                        row[name] = count(strace, python, variant_env, base)
        finally:
            for top, subdirs, _ in os.walk(work):
                for name in subdirs:
                    os.chmod(os.path.join(top, name), 0o755)
    table = render(results, args.python)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")
    return 0


def render(results: dict[tuple[str, int], dict[str, int]], python: str) -> str:
    version = run([python, "-c", "import sys; print(sys.version.split()[0])"],
                  clean_env()).strip()
    lines = [f"Metadata system calls (strace -f -c -e trace={TRACED}), "
             f"{python} (Python {version}):", "",
             "| import | PYTHONPATH entries | plain venv | layer | vs plain venv "
             "| layer, LAYERVENV_IMPORT_INDEX=0 |", "|---|--:|--:|--:|--:|--:|"]
    for (what, entries), row in sorted(results.items()):
        code = f"import pkg{entries - 1}" if what == "pkg" else "import numpy"
        base, layer = row["plain venv"], row["layer"]
        lines.append(f"| `{code}` | {entries} | {base:,} | {layer:,} | "
                     f"{layer / base:.2f}x ({layer - base:+,}) | {row['layer, index off']:,} |")
    lines += ["", "| target | result |", "|---|---|"]
    for what, entries, goal in TARGETS:
        row = results.get((what, entries))
        name = f"pkg{entries - 1}" if what == "pkg" else "numpy"
        label = f"`import {name}`, " \
                f"{entries} entr{'y' if entries == 1 else 'ies'}: layer {goal}"
        if row is None:
            lines.append(f"| {label} | not measured |")
            continue
        base, layer = row["plain venv"], row["layer"]
        if goal.startswith("<= +"):
            met = layer - base <= int(goal[4:])
            got = f"{layer - base:+,} operations"
        else:
            met = layer / base <= float(goal[3:-1])
            got = f"{layer / base:.2f}x"
        lines.append(f"| {label} | {'**met**' if met else '**missed**'}: {got} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
