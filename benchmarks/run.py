#!/usr/bin/env python3
"""layervenv benchmarks: creation, activation, start-up, inspection and import.

    python3 benchmarks/run.py [--repeat N] [--quick] [--json FILE] [--markdown FILE]

Everything runs on the interpreter running this script (the real one, never a
pyenv shim), against the tools users would pick instead, measured side by side
and interleaved in the same run: the machines are shared and noisy, so the
ratios are the figures to trust.  Prints one table (medians over repeated runs,
with min and max, in milliseconds) and writes it as JSON (default
``benchmarks/results/latest.json``).  Benchmarks never fail on a number; a
competitor that is not installed, or a command not written yet, is a row with a
note instead of a figure.  Standard library and this checkout's own code only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from layervenv.services.simstack import Dist, SimStack, build_stack, build_wheel, install_into  # noqa: E402

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"

#: ``layervenv ARGS`` from this checkout, started the way its console script starts it.
TOOL_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is: the full run, or ``--quick`` for the smoke test."""

    activation_loops: int = 1000  # activations per shell process
    find_loops: int = 20  # the find-based activation is ~100x slower
    small_layer_files: int = 100
    big_layer_files: int = 20_000
    startup_runs: int = 20  # processes per repetition
    hook_runs: int = 5  # processes per repetition timing the hook from inside
    hook_prompts: int = 100_000  # prompt hook runs per bash process
    inspect_dists: int = 1000
    import_dirs: int = 10
    import_modules: int = 1000
    #: PYTHONPATH lengths of the Spack-like stacks (one package per entry)
    pythonpath_entries: tuple[int, ...] = (2, 300)
    #: also count the instructions of ``import pkgN`` (not only ``pass``)
    count_imports: bool = True
    warm_up: bool = True


QUICK = Sizes(activation_loops=20, find_loops=5, hook_prompts=1000, big_layer_files=1000,
              startup_runs=5, hook_runs=1, inspect_dists=50, import_dirs=3, import_modules=100,
              count_imports=False, warm_up=False)


@dataclass
class Row:
    """One line of the table: samples in milliseconds, compared with row ``vs``."""

    key: str
    label: str
    samples: list[float] = field(default_factory=list)
    vs: str | None = None
    short: str = ""  # how the comparison column names this row (default: its label)
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


@dataclass
class Target:
    name: str
    met: bool | None  # None: not measured in this run
    detail: str


class Skip(Exception):
    """A row that cannot be measured here; the message says why."""


# --- running things -------------------------------------------------------------------------

def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any venv, stack or pip configuration leaking in.

    PYTHONDONTWRITEBYTECODE goes too: Python's default is to cache bytecode, and the
    start-up group measures the variable's effect in rows of its own.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PYTHONPATH", "PYTHONHOME",
                        "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONNOUSERSITE", "BASH_ENV",
                        "ENV", "CONDA_PREFIX", "PYENV_VERSION", "PYTHONDONTWRITEBYTECODE"}
           and not k.startswith(("_LAYERVENV_", "LAYERVENV_", "PIP_", "UV_", "VIRTUALENV_"))}
    # Never a pyenv shim first on PATH: each call of one costs ~70 ms of bash.
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent)]
        + [p for p in env.get("PATH", "").split(os.pathsep) if p and "/shims" not in p])
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "LC_ALL": "C"})
    env.update(extra)
    return env


def tool(*args: str) -> list[str]:
    return [sys.executable, "-c", TOOL_BOOT, str(SRC), *args]


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None,
        ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                            check=False)
    if result.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None,
          ok: tuple[int, ...] = (0,)) -> float:
    """Wall time of one process, in ms (output captured, as a terminal would receive it)."""
    start = time.perf_counter()
    run(argv, env, cwd, ok)
    return (time.perf_counter() - start) * 1000


def spawn_timed(argv: list[str], env: dict[str, str]) -> float:
    """Wall time of one process with the least overhead there is (posix_spawn, no pipes)."""
    devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=devnull)
    _, status = os.waitpid(pid, 0)
    elapsed = (time.perf_counter() - start) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed; run it by hand to see why")
    return elapsed


def interleaved(rows: dict[str, Row], measures: dict[str, Callable[[], float]], runs: int,
                warm_up: bool) -> None:
    """Measure every variant once per round, so that noise hits them all alike."""
    live = dict(measures)
    for round_ in range(-1 if warm_up else 0, runs):
        for key, measure in list(live.items()):
            try:
                elapsed = measure()
            except Skip as skip:
                rows[key].note = str(skip)
                del live[key]
                continue
            if round_ >= 0:
                rows[key].samples.append(elapsed)


def find_program(name: str) -> str | None:
    """``name`` beside this interpreter, else on PATH (never a pyenv shim)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if "/shims" not in p)
    return shutil.which(name, path=path)


def version_of(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.stdout or out.stderr else "?"


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def site_packages(env_dir: Path) -> Path:
    found = sorted(env_dir.glob("lib/python*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages under {env_dir}")
    return found[0]


def plain_venv(python: Path, target: Path, env: dict[str, str]) -> Path:
    """``python -m venv --without-pip --system-site-packages``: a plain venv on the stack."""
    run([str(python), "-m", "venv", "--without-pip", "--system-site-packages", str(target)], env)
    return target


def make_layer(target: Path, env: dict[str, str], *args: str) -> Path:
    run(tool("create", str(target), *args), env)
    return target


# --- 1. creation ----------------------------------------------------------------------------

def bench_create(work: Path, python: str, sizes: Sizes, repeat: int, rows: dict[str, Row],
                 facts: dict[str, str]) -> None:
    env = clean_env(UV_OFFLINE="1", VIRTUALENV_NO_PERIODIC_UPDATE="1", PIP_NO_INDEX="1")
    base = work / "create"
    base.mkdir()
    virtualenv, uv = find_program("virtualenv"), find_program("uv")
    # layervenv's per-user cache: warm (filled by the warm-up round, or the first run),
    # or cold (a new, empty cache directory for every run)
    envs = {"create.layervenv": dict(env, LAYERVENV_CACHE_DIR=str(base / "cache-warm"))}
    commands: dict[str, Callable[[Path], list[str]] | None] = {
        "create.layervenv": lambda d: tool("create", str(d), "--python", python),
        "create.layervenv.cold": lambda d: tool("create", str(d), "--python", python),
        "create.venv": lambda d: [python, "-m", "venv", str(d)],
        "create.virtualenv": (lambda d: [virtualenv, "-q", "-p", python, str(d)])
        if virtualenv else None,
        "create.uv": (lambda d: [uv, "venv", "-q", "--seed", "-p", python, str(d)])
        if uv else None,
    }
    if virtualenv:
        facts["virtualenv"] = version_of([virtualenv, "--version"]).split(" from ")[0]
    if uv:
        facts["uv"] = version_of([uv, "--version"])
    counter = iter(range(10**9))

    def measure(key: str) -> Callable[[], float]:
        def once() -> float:
            command = commands[key]
            if command is None:
                raise Skip("not installed")
            number = next(counter)
            target = base / f"{key.split('.')[1]}-{number}"
            run_env = envs.get(key, env)
            if key == "create.layervenv.cold":
                run_env = dict(env, LAYERVENV_CACHE_DIR=str(base / f"cache-cold-{number}"))
            try:
                elapsed = timed(command(target), run_env, cwd=base)
            except RuntimeError as error:
                last = str(error).strip().splitlines()[-1][:120]
                if key == "create.uv":  # offline, and its cache has no pip yet
                    raise Skip(f"uv failed offline (run `uv venv --seed` once online to "
                               f"warm its cache): {last}") from None
                if not key.startswith("create.layervenv"):  # a competitor's failure is a note
                    raise Skip(f"failed: {last}") from None
                raise
            if not list(target.glob("lib/python*/site-packages/pip/__init__.py")):
                raise RuntimeError(f"{key} made no pip in {target}")
            shutil.rmtree(target)
            shutil.rmtree(base / f"cache-cold-{number}", ignore_errors=True)
            return elapsed
        return once

    interleaved(rows, {key: measure(key) for key in commands}, repeat, sizes.warm_up)


# --- 2. activation --------------------------------------------------------------------------

#: How find-based tools activate: the venv's own script, then a walk of the whole
#: environment for its site-packages at every activation (one process, plus a subshell).
FIND_ACTIVATE = """\
. {venv}/bin/activate
_bench_old_pythonpath=${{PYTHONPATH-}}
PYTHONPATH="$(find {layer} -type d -name site-packages)${{PYTHONPATH:+:$PYTHONPATH}}"
export PYTHONPATH
_bench_find_deactivate() {{
    PYTHONPATH=$_bench_old_pythonpath
    export PYTHONPATH
    deactivate
}}
"""


def pad_layer(layer: Path, total: int) -> int:
    """Add dummy modules under the layer's ``lib/`` until it holds ``total`` files."""
    missing = total - count_files(layer)
    target = site_packages(layer)
    package = 0
    while missing > 0:
        folder = target / f"dummy_pkg{package:04d}"
        folder.mkdir()
        for index in range(min(100, missing)):
            (folder / f"mod{index:03d}.py").write_text("x = 1\n", encoding="utf-8")
        missing -= min(100, missing)
        package += 1
    return count_files(layer)


def bench_activate(work: Path, stack: SimStack, stack_env: dict[str, str], sizes: Sizes,
                   repeat: int, rows: dict[str, Row]) -> None:
    bash = shutil.which("bash", path=stack_env["PATH"])
    if bash is None:
        for key in rows:
            if key.startswith("activate."):
                rows[key].note = "bash is not installed"
        return
    base = work / "activate"
    base.mkdir()
    venv = plain_venv(stack.python, base / "venv", stack_env)
    small = make_layer(base / "layer-small", stack_env, "--without-pip")
    big = make_layer(base / "layer-big", stack_env, "--without-pip")
    files = {"small": pad_layer(small, sizes.small_layer_files),
             "big": pad_layer(big, sizes.big_layer_files)}
    for layer in (small, big):
        (layer / "bin" / "activate-find").write_text(
            FIND_ACTIVATE.format(venv=shlex.quote(str(venv)), layer=shlex.quote(str(layer))),
            encoding="utf-8")
    for key, size in files.items():
        rows[f"activate.layer.{key}"].label = f"activate · layer, {size:,} files"
        rows[f"activate.find.{key}"].label = f"activate · find-based, {size:,} files"
    variants = {
        "activate.venv": (venv / "bin" / "activate", "deactivate", sizes.activation_loops),
        "activate.layer.small": (small / "bin" / "activate", "deactivate",
                                 sizes.activation_loops),
        "activate.layer.big": (big / "bin" / "activate", "deactivate", sizes.activation_loops),
        "activate.find.small": (small / "bin" / "activate-find", "_bench_find_deactivate",
                                sizes.find_loops),
        "activate.find.big": (big / "bin" / "activate-find", "_bench_find_deactivate",
                              sizes.find_loops),
    }

    argv = [bash, "-c", SHELL_LOOPS["posix"][0], "bash"]
    interleaved(rows, {key: loop_measure(argv, script, deactivate, loops, stack_env, base)
                       for key, (script, deactivate, loops) in variants.items()},
                repeat, warm_up=True)
    bench_activate_shells(base, venv, small, big, stack_env, sizes, repeat, rows)
    hook_loop = [bash, "-c", PROMPT_HOOK_LOOP, "bash", str(small / "bin" / "activate")]
    interleaved(rows, {"hook.bash": lambda: prompt_hook_ms(hook_loop, sizes.hook_prompts,
                                                            stack_env, base)},
                repeat, warm_up=True)


#: An interactive bash runs ``$PROMPT_COMMAND`` before each prompt: the layer's hook, with
#: nothing to do (the layer's bin in front), ``$2`` times, or bash's no-op ``:`` instead.
PROMPT_HOOK_LOOP = """\
. "$1"; . "${1%/*}/prompt-hook.bash"
[ "${PROMPT_COMMAND-}" = _layervenv_hook ] || exit 3
for ((i = 0; i < $2; i++)); do eval "$3"; done
"""


def prompt_hook_ms(argv: list[str], prompts: int, env: dict[str, str], cwd: Path) -> float:
    """CPU ms the prompt hook adds to each prompt of an interactive bash when nothing changed."""
    hook = cpu_ms([*argv, str(prompts), "_layervenv_hook"], env, cwd)
    idle = cpu_ms([*argv, str(prompts), ":"], env, cwd)
    return (hook - idle) / prompts


#: ``. SCRIPT; DEACTIVATE`` LOOPS times in one shell (arguments 1-3), in each shell family
SHELL_LOOPS = {
    "posix": ('i=0; while [ "$i" -lt "$3" ]; do . "$1"; $2; i=$((i + 1)); done', ()),
    "fish": ("set i 0; while test $i -lt $argv[3]; source $argv[1]; $argv[2]; "
             "set i (math $i + 1); end", ("--no-config",)),
    # (an alias is not looked up for a command name that comes from a variable)
    "csh": ("set prompt = '> '\n@ i = 0\nwhile ( $i < $argv[3] )\nsource $argv[1]:q\n"
            "deactivate\n@ i++\nend\n", ("-f",)),
}
#: shell: (family, its options, activation script name, sizes measured)
OTHER_SHELLS = {
    "zsh": ("posix", ("-f",), "activate", ("small", "big")),
    "dash": ("posix", (), "activate", ("small", "big")),
    "ksh": ("posix", (), "activate", ("small", "big")),
    "fish": ("fish", ("--no-config",), "activate.fish", ("small",)),
    "tcsh": ("csh", ("-f",), "activate.csh", ("small",)),
}


def bench_activate_shells(base: Path, venv: Path, small: Path, big: Path,
                          stack_env: dict[str, str], sizes: Sizes, repeat: int,
                          rows: dict[str, Row]) -> None:
    """``activate · SHELL: ...`` rows: a plain venv and the layers, in zsh, dash, ksh, fish
    and tcsh (the activation scripts differ by shell, and so does what parsing costs)."""
    layers = {"small": small, "big": big}
    measures: dict[str, Callable[[], float]] = {}
    for shell, (family, options, script, kinds) in OTHER_SHELLS.items():
        program = shutil.which(shell, path=stack_env["PATH"])
        keys = [f"activate.{shell}.venv"] + [f"activate.{shell}.{kind}" for kind in kinds]
        if program is None:
            for key in keys:
                rows[key].note = f"{shell} is not installed"
            continue
        loop = SHELL_LOOPS[family][0]
        if family == "csh":
            loop_file = base / "loop.csh"
            loop_file.write_text(loop, encoding="utf-8")
            argv = [program, *options, str(loop_file)]
        else:  # fish's -c takes no $0: what follows the script is $argv
            argv = [program, *options, "-c", loop, *([] if family == "fish" else [shell])]
        # tcsh reads every PATH directory again at each change of PATH: 10 ms a round
        loops = sizes.activation_loops // (20 if family == "csh" else 1) or 1
        targets = [venv] + [layers[kind] for kind in kinds]
        for key, target in zip(keys, targets):
            measures[key] = loop_measure(argv, target / "bin" / script, "deactivate",
                                         loops, stack_env, base)
    interleaved(rows, measures, repeat, warm_up=True)


def cpu_ms(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """CPU time (user + system) of one process and of those it waited for, in ms.

    Activation starts no process: what it costs is the shell's own work, which CPU time
    measures without the waits for a CPU that a shared, loaded machine adds to wall time.
    """
    with open(os.devnull, "wb") as devnull:
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=devnull,
                                 stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        errors = child.stderr.read() if child.stderr else b""
    if child.returncode != 0 or errors:
        raise RuntimeError(f"{' '.join(argv)} exited {child.returncode}: {errors[-2000:]!r}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def loop_measure(argv: list[str], script: Path, deactivate: str, loops: int,
                 env: dict[str, str], cwd: Path) -> Callable[[], float]:
    """ms of CPU per ``. script; deactivate``: the loop run LOOPS times, less zero times."""
    def once() -> float:
        full = cpu_ms([*argv, str(script), deactivate, str(loops)], env, cwd)
        empty = cpu_ms([*argv, str(script), deactivate, "0"], env, cwd)
        return (full - empty) / loops
    return once


# --- 3. start-up ----------------------------------------------------------------------------

#: What the hook costs a fresh process, timed inside it: started with the hook disabled,
#: then the module imported again (from its bytecode) and run, as ``~layervenv.pth`` does.
HOOK_IN_PROCESS = """\
import os, sys, time
path = list(sys.path)
del sys.modules["_layervenv_boot"], os.environ["LAYERVENV_BOOT_DISABLE"]
start = time.perf_counter()
import _layervenv_boot; _layervenv_boot.run()
elapsed = (time.perf_counter() - start) * 1000
print(elapsed, sys.path != path)
"""


def add_pth_files(site: Path, root: Path, count: int = 3) -> None:
    """A few editable-install-style ``.pth`` files, each naming an existing directory."""
    for index in range(count):
        folder = root / f"editable{index}" / "src"
        folder.mkdir(parents=True, exist_ok=True)
        (site / f"__editable__.proj{index}.pth").write_text(f"{folder}\n", encoding="utf-8")


def bench_startup(work: Path, stack: SimStack, stack_env: dict[str, str], sizes: Sizes,
                  repeat: int, rows: dict[str, Row], counts: Counts) -> None:
    base = work / "startup"
    base.mkdir()
    venv = plain_venv(stack.python, base / "venv", stack_env)
    layer = make_layer(base / "layer", stack_env, "--without-pip")
    for env_dir in (venv, layer):
        add_pth_files(site_packages(env_dir), base / f"{env_dir.name}-src")
    disabled = dict(stack_env, LAYERVENV_BOOT_DISABLE="1")
    no_bytecode = dict(stack_env, PYTHONDONTWRITEBYTECODE="1")
    venv_python, layer_python = str(venv / "bin" / "python"), str(layer / "bin" / "python")
    variants = {
        "startup.venv": (venv_python, stack_env),
        "startup.layer": (layer_python, stack_env),
        "startup.disabled": (layer_python, disabled),
        "startup.venv.nobc": (venv_python, no_bytecode),
        "startup.layer.nobc": (layer_python, no_bytecode),
    }
    # The layer is measured as create leaves it: with the hook's .pyc it ships.
    measures = {key: (lambda p=python, e=env: spawn_timed([p, "-c", "pass"], e))
                for key, (python, env) in variants.items()}
    interleaved({k: v for k, v in rows.items() if k.endswith(".nobc")},
                {k: v for k, v in measures.items() if k.endswith(".nobc")},
                repeat * sizes.startup_runs, warm_up=True)
    interleaved(rows, {k: v for k, v in measures.items() if not k.endswith(".nobc")},
                repeat * sizes.startup_runs, warm_up=True)

    def hook_in_process() -> float:
        out = run([layer_python, "-c", HOOK_IN_PROCESS], disabled, cwd=base).stdout.split()
        if out[1] != "True":
            raise RuntimeError("the boot hook did not reorder sys.path in the start-up layer")
        return float(out[0])

    interleaved(rows, {"startup.hook": hook_in_process}, repeat * sizes.hook_runs,
                warm_up=True)
    count_startup_instructions(counts, {key: (*variants[key], "pass")
                                        for key in ("startup.venv", "startup.layer",
                                                    "startup.disabled")}, base)


def spack_like_stack(root: Path, python: str, entries: int) -> list[str]:
    """A stack the way Spack (Key4hep) lays one out: one prefix per package, each with
    its own ``lib/pythonX.Y/site-packages`` on PYTHONPATH, holding one tiny package
    ``pkgN``; byte-compiled, as an installed stack is."""
    version = run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                  clean_env()).stdout.strip()
    dirs = []
    for index in range(entries):
        folder = root / f"pkg{index}-1.0-{index:07x}" / "lib" / f"python{version}" / \
            "site-packages"
        (folder / f"pkg{index}").mkdir(parents=True)
        (folder / f"pkg{index}" / "__init__.py").write_text("x = 1\n", encoding="utf-8")
        dirs.append(str(folder))
    run([python, "-m", "compileall", "-q", str(root)], clean_env())
    return dirs


def utf8_env(**extra: str) -> dict[str, str]:
    """:func:`clean_env` without any locale variable: Python coerces the C locale to
    C.UTF-8 (PEP 538), so files are read as UTF-8, as in users' UTF-8 terminals.

    With ``LC_ALL=C`` (the other groups), Python >= 3.11 reads every ``.pth`` file in
    the ASCII codec (``encoding="locale"``), which it imports for the first one: that
    costs any venv with a ``.pth`` file ~1M instructions, the layer included; the
    instruction counts show that case in rows of their own.
    """
    env = clean_env(**extra)
    for name in [n for n in env if n == "LANG" or n.startswith("LC_")]:
        del env[name]
    return env


def bench_pythonpath(work: Path, python: str, sizes: Sizes, repeat: int,
                     rows: dict[str, Row], counts: Counts) -> None:
    """Start-up of a plain venv and of a layer on Spack-like stacks of N PYTHONPATH
    entries: ``python -c pass`` and importing the last entry's package."""
    base = work / "pythonpath"
    base.mkdir()
    counted: dict[str, tuple[str, dict[str, str], str]] = {}
    for entries in sizes.pythonpath_entries:
        dirs = spack_like_stack(base / f"stack{entries}", python, entries)
        env = utf8_env(PYTHONPATH=os.pathsep.join(dirs))
        venv = plain_venv(Path(python), base / f"venv{entries}", env)
        layer = make_layer(base / f"layer{entries}", env, "--without-pip", "--python", python)
        pythons = {"venv": str(venv / "bin" / "python"), "layer": str(layer / "bin" / "python")}
        last = f"import pkg{entries - 1}"
        for interpreter in pythons.values():
            where = run([interpreter, "-c", f"{last}; print(pkg{entries - 1}.__file__)"],
                        env, cwd=base).stdout.strip()
            if not where.startswith(dirs[-1]):
                raise RuntimeError(f"pkg{entries - 1} imported from {where}, not the stack")
        measures: dict[str, Callable[[], float]] = {}
        for kind, interpreter in pythons.items():
            for what, code in (("", "pass"), ("import.", last)):
                measures[f"pythonpath.{what}{kind}.{entries}"] = (
                    lambda p=interpreter, c=code, e=env: spawn_timed([p, "-c", c], e))
        interleaved(rows, measures, repeat * sizes.startup_runs, warm_up=True)
        disabled = dict(env, LAYERVENV_BOOT_DISABLE="1")
        for what, code in (("", "pass"), ("import.", last)):
            if what and not sizes.count_imports:
                continue
            counted[f"pythonpath.{what}venv.{entries}"] = (pythons["venv"], env, code)
            counted[f"pythonpath.{what}layer.{entries}"] = (pythons["layer"], env, code)
            counted[f"pythonpath.{what}disabled.{entries}"] = (pythons["layer"], disabled, code)
        if entries == sizes.pythonpath_entries[-1]:
            c_locale = dict(env, LC_ALL="C")
            counted[f"pythonpath.venv.{entries}.c"] = (pythons["venv"], c_locale, "pass")
            counted[f"pythonpath.layer.{entries}.c"] = (pythons["layer"], c_locale, "pass")
    count_startup_instructions(counts, counted, base)


#: Start-ups whose instructions are counted: how the section names them, and the key of
#: the count each is compared with.
INSTRUCTION_VARIANTS: dict[str, tuple[str, str | None]] = {
    "startup.venv": ("plain venv: python -c pass", None),
    "startup.layer": ("layer: python -c pass", "startup.venv"),
    "startup.disabled": ("layer, LAYERVENV_BOOT_DISABLE=1", "startup.venv"),
}
for _entries in Sizes().pythonpath_entries:
    for _what, _code in (("", "python -c pass"), ("import.", f"import pkg{_entries - 1}")):
        _base = f"pythonpath.{_what}venv.{_entries}"
        INSTRUCTION_VARIANTS.update({
            _base: (f"{_entries}-entry PYTHONPATH, plain venv: {_code}", None),
            f"pythonpath.{_what}layer.{_entries}": (
                f"{_entries}-entry PYTHONPATH, layer: {_code}", _base),
            f"pythonpath.{_what}disabled.{_entries}": (
                f"{_entries}-entry PYTHONPATH, layer, LAYERVENV_BOOT_DISABLE=1: {_code}", _base),
        })
_entries = Sizes().pythonpath_entries[-1]
INSTRUCTION_VARIANTS.update({
    f"pythonpath.venv.{_entries}.c": (
        f"{_entries}-entry PYTHONPATH, LC_ALL=C, plain venv: python -c pass", None),
    f"pythonpath.layer.{_entries}.c": (
        f"{_entries}-entry PYTHONPATH, LC_ALL=C, layer: python -c pass",
        f"pythonpath.venv.{_entries}.c"),
})


@dataclass
class Counts:
    """Instructions executed, counted by valgrind: the same figure however loaded the
    machine is (wall-clock start-up medians move by more than the hook costs)."""

    values: dict[str, int] = field(default_factory=dict)
    note: str = ""


def instructions(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Instructions ``argv`` executes, as callgrind counts them (user space, whole run)."""
    result = run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                 env, cwd=cwd)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if not found:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{result.stderr[-500:]}")
    return int(found.group(1))


def count_startup_instructions(counts: Counts,
                               variants: dict[str, tuple[str, dict[str, str], str]],
                               cwd: Path) -> None:
    """Count ``python -c CODE`` for each ``(python, env, CODE)``, once its bytecode is warm."""
    if shutil.which("valgrind") is None:
        counts.note = "valgrind is not installed"
        return
    for key, (python, env, code) in variants.items():
        run([python, "-c", code], env, cwd=cwd)  # .pyc files written, not counted
        counts.values[key] = instructions([python, "-c", code], env, cwd)


# --- 4. inspection --------------------------------------------------------------------------

def write_dists(site: Path, count: int) -> None:
    """``count`` installed distributions, written directly: METADATA, RECORD, a package."""
    for index in range(count):
        name, version = f"bigdist{index:04d}", f"1.{index % 7}.{index % 13}"
        package = site / name
        package.mkdir()
        (package / "__init__.py").write_text(f"__version__ = {version!r}\n", encoding="utf-8")
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        if index % 2:
            metadata.append(f"Requires-Dist: bigdist{(index * 7 + 1) % count:04d}>=1.0")
        (info / "METADATA").write_text("\n".join(metadata) + "\n", encoding="utf-8")
        (info / "INSTALLER").write_text("release-build\n", encoding="utf-8")
        (info / "top_level.txt").write_text(name + "\n", encoding="utf-8")
        (info / "RECORD").write_text(
            f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/INSTALLER,,\n"
            f"{info.name}/top_level.txt,,\n{info.name}/RECORD,,\n", encoding="utf-8")


def has_command(name: str) -> bool:
    result = subprocess.run(tool(name, "--help"), env=clean_env(), capture_output=True,
                            check=False)
    return result.returncode == 0


def bench_inspect(work: Path, python: str, sizes: Sizes, repeat: int,
                  rows: dict[str, Row]) -> None:
    base = work / "inspect"
    base.mkdir()
    stack = build_stack(base / "LCG_big", Path(python), name="LCG_big")
    write_dists(stack.site_packages, sizes.inspect_dists)
    env = stack.env(clean_env(PIP_NO_INDEX="1"))
    layer = make_layer(base / "layer", env)
    layer_python = str(layer / "bin" / "python")
    missing = "not on this branch yet (`layervenv {} --help` fails): run after merging"
    measures: dict[str, Callable[[], float]] = {
        "inspect.pip": lambda: timed([layer_python, "-m", "pip", "list"], env, cwd=base),
    }
    for command in ("list", "check"):
        if has_command(command):
            # check exits 1 when it finds an error: that is an answer, not a failure.
            measures[f"inspect.{command}"] = (
                lambda c=command: timed(tool(c, str(layer)), env, cwd=base, ok=(0, 1)))
        else:
            rows[f"inspect.{command}"].note = missing.format(command)
    listed = run([layer_python, "-m", "pip", "list"], env, cwd=base).stdout
    if "bigdist0000" not in listed:
        raise RuntimeError("pip list does not see the simulated stack's distributions")
    interleaved(rows, measures, repeat, sizes.warm_up)


# --- 5. install ------------------------------------------------------------------------------

#: What the install rows ask for: a new package needing two the stack has, and an upgrade.
INSTALL_REQUEST = ("myana", "hepio>=5.6")


def bench_install(work: Path, python: str, sizes: Sizes, repeat: int, rows: dict[str, Row],
                  facts: dict[str, str]) -> None:
    """The same request into a fresh layer over the simulated stack, offline: layervenv
    install with pip, with uv, and uv alone (which does not see the stack)."""
    base = work / "install"
    base.mkdir()
    stack = build_stack(base / "LCG_sim", Path(python))
    links = base / "links"
    build_wheel(Dist("myana", "1.0", requires=("hepconf>=0.9", "hepnum")), links)
    uv = find_program("uv")
    path = os.pathsep.join([str(Path(uv).parent)] if uv else [])
    env = stack.env(clean_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=f"{stack.wheelhouse} {links}",
                              UV_CACHE_DIR=str(base / "uv-cache")))
    env["PATH"] = os.pathsep.join(p for p in (path, env["PATH"]) if p)
    counter = iter(range(10**9))
    installed: dict[str, set[str]] = {}
    if uv:
        facts["uv"] = version_of([uv, "--version"])

    def measure(key: str) -> Callable[[], float]:
        def once() -> float:
            if key != "install.pip" and not uv:
                raise Skip("uv is not installed")
            layer = make_layer(base / f"layer-{next(counter)}", env, "--python", python)
            site = site_packages(layer)
            before = {p.name for p in site.glob("*.dist-info")}
            if key == "install.uv.alone":
                argv = [uv, "pip", "install", "-q", "--python", str(layer / "bin" / "python"),
                        "--no-index", "--find-links", str(stack.wheelhouse), "--find-links",
                        str(links), *INSTALL_REQUEST]
            else:
                argv = tool("install", str(layer), "--installer", key.split(".")[1],
                            *INSTALL_REQUEST)
            elapsed = timed(argv, env, cwd=base)
            installed[key] = {p.name.split("-")[0] for p in site.glob("*.dist-info")} - {
                n.split("-")[0] for n in before}
            shutil.rmtree(layer)
            return elapsed
        return once

    keys = ("install.pip", "install.uv", "install.uv.alone")
    interleaved(rows, {key: measure(key) for key in keys}, repeat, sizes.warm_up)
    facts["installed"] = "; ".join(f"{key}: {', '.join(sorted(names)) or 'nothing'}"
                                   for key, names in installed.items())


# --- 6. import ------------------------------------------------------------------------------

IMPORT_IN_PROCESS = """\
import time
start = time.perf_counter()
import somepkg
elapsed = (time.perf_counter() - start) * 1000
print(elapsed, somepkg.__file__)
"""


def bench_import(work: Path, python: str, sizes: Sizes, repeat: int,
                 rows: dict[str, Row]) -> None:
    base = work / "import"
    base.mkdir()
    dirs = []
    for index in range(sizes.import_dirs):
        folder = base / "stack" / f"pp{index:02d}"
        folder.mkdir(parents=True)
        for module in range(sizes.import_modules):
            (folder / f"stackmod_{index:02d}_{module:04d}.py").write_text("x = 1\n",
                                                                          encoding="utf-8")
        dirs.append(str(folder))
    env = clean_env(PYTHONPATH=os.pathsep.join(dirs))
    venv = plain_venv(Path(python), base / "venv", env)
    layer = make_layer(base / "layer", env, "--without-pip", "--python", python)
    wheel = build_wheel(Dist("somepkg", "1.0.0"), base / "wheels")
    for env_dir in (venv, layer):
        install_into(wheel, site_packages(env_dir), env_dir / "bin", env_dir / "bin" / "python")
    pythons = {"venv": str(venv / "bin" / "python"), "layer": str(layer / "bin" / "python")}
    for kind, interpreter in pythons.items():
        where = run([interpreter, "-c", IMPORT_IN_PROCESS], env, cwd=base).stdout.split()[1]
        if not where.startswith(str(base / kind)):
            raise RuntimeError(f"somepkg imported from {where}, not from the {kind}")
    runs = repeat * sizes.startup_runs
    interleaved(rows, {f"import.{kind}": (lambda p=interpreter: spawn_timed(
        [p, "-c", "import somepkg"], env)) for kind, interpreter in pythons.items()},
        runs, warm_up=True)

    def in_process(interpreter: str) -> Callable[[], float]:
        return lambda: float(run([interpreter, "-c", IMPORT_IN_PROCESS], env,
                                 cwd=base).stdout.split()[0])

    interleaved(rows, {f"import.{kind}.inproc": in_process(interpreter)
                       for kind, interpreter in pythons.items()},
                max(runs // 4, 1), warm_up=True)


# --- the table ------------------------------------------------------------------------------

def all_rows() -> dict[str, Row]:
    """Every row of the table, in order; sizes in labels are filled in by the groups."""
    rows = [
        Row("create.layervenv", "create · layervenv create (with pip), warm cache",
            short="layervenv"),
        Row("create.layervenv.cold", "create · layervenv create (with pip), cold cache",
            vs="create.layervenv"),
        Row("create.venv", "create · python -m venv (with pip)", vs="create.layervenv"),
        Row("create.virtualenv", "create · virtualenv", vs="create.layervenv"),
        Row("create.uv", "create · uv venv --seed", vs="create.layervenv"),
        Row("activate.venv", "activate · plain venv", short="plain venv"),
        Row("activate.layer.small", "activate · layer, SMALL files", vs="activate.venv"),
        Row("activate.layer.big", "activate · layer, BIG files", vs="activate.venv"),
        Row("activate.find.small", "activate · find-based, SMALL files", vs="activate.venv"),
        Row("activate.find.big", "activate · find-based, BIG files", vs="activate.venv"),
        *shell_rows(),
        Row("hook.bash", "prompt hook · bash: one prompt, nothing to move"),
        Row("startup.venv", "start-up · plain venv: python -c pass", short="plain venv"),
        Row("startup.layer", "start-up · layer: python -c pass", vs="startup.venv"),
        Row("startup.disabled", "start-up · layer, LAYERVENV_BOOT_DISABLE=1",
            vs="startup.venv"),
        Row("startup.venv.nobc", "start-up · plain venv, PYTHONDONTWRITEBYTECODE=1",
            short="plain venv, same"),
        Row("startup.layer.nobc", "start-up · layer, PYTHONDONTWRITEBYTECODE=1",
            vs="startup.venv.nobc"),
        Row("startup.hook", "start-up · boot hook import + run(), timed in-process"),
        Row("inspect.pip", "inspect · pip list, DISTS-dist stack", short="pip list"),
        Row("inspect.list", "inspect · layervenv list, DISTS-dist stack", vs="inspect.pip"),
        Row("inspect.check", "inspect · layervenv check, DISTS-dist stack", vs="inspect.pip"),
        Row("install.pip", "install · layervenv install (pip): myana + upgrade, 3-dist stack",
            short="layervenv install (pip)"),
        Row("install.uv", "install · layervenv install --installer uv, same",
            vs="install.pip"),
        Row("install.uv.alone", "install · uv pip install alone (blind to the stack), same",
            vs="install.pip"),
        Row("import.venv", "import · plain venv: python -c 'import somepkg', STACK",
            short="plain venv"),
        Row("import.layer", "import · layer: python -c 'import somepkg', STACK",
            vs="import.venv"),
        Row("import.venv.inproc", "import · plain venv: import somepkg, timed in-process",
            short="plain venv"),
        Row("import.layer.inproc", "import · layer: import somepkg, timed in-process",
            vs="import.venv.inproc"),
    ]
    for entries in Sizes().pythonpath_entries:
        for what, code in (("", "python -c pass"), ("import.", f"import pkg{entries - 1}")):
            rows += [
                Row(f"pythonpath.{what}venv.{entries}",
                    f"start-up · plain venv, {entries}-entry PYTHONPATH: {code}",
                    short="plain venv"),
                Row(f"pythonpath.{what}layer.{entries}",
                    f"start-up · layer, {entries}-entry PYTHONPATH: {code}",
                    vs=f"pythonpath.{what}venv.{entries}"),
            ]
    return {row.key: row for row in rows}


def shell_rows() -> list[Row]:
    """The activation rows of the shells other than bash."""
    made = []
    for shell, (_, _, _, kinds) in OTHER_SHELLS.items():
        made.append(Row(f"activate.{shell}.venv", f"activate · {shell}: plain venv",
                        short=f"{shell}: plain venv"))
        made += [Row(f"activate.{shell}.{kind}", f"activate · {shell}: layer, "
                     f"{kind.upper()} files", vs=f"activate.{shell}.venv") for kind in kinds]
    return made


def size_labels(rows: dict[str, Row], sizes: Sizes) -> None:
    stack = (f"{sizes.import_dirs} dirs × {sizes.import_modules:,} modules on PYTHONPATH")
    words = {"SMALL": f"{sizes.small_layer_files:,}", "BIG": f"{sizes.big_layer_files:,}",
             "DISTS": f"{sizes.inspect_dists:,}", "STACK": stack}
    for row in rows.values():
        for word, value in words.items():
            row.label = row.label.replace(word, value)


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    for limit, digits in ((100, 0), (10, 1), (1, 2)):
        if abs(value) >= limit:
            return f"{value:.{digits}f}"
    return f"{value:.3f}"


def compare(row: Row, rows: dict[str, Row]) -> tuple[float | None, float | None]:
    """(ratio, difference in ms) of ``row`` against its comparison row."""
    ref = rows.get(row.vs or "")
    if ref is None or row.median is None or ref.median is None:
        return None, None
    return row.median / ref.median, row.median - ref.median


def table(rows: dict[str, Row]) -> str:
    lines = ["| benchmark | median ms | min ms | max ms | n | ratio | diff ms | vs |",
             "|---|--:|--:|--:|--:|--:|--:|---|"]
    for row in rows.values():
        ratio, diff = compare(row, rows)
        ref = rows.get(row.vs or "")
        vs = (ref.short or ref.label.split(" · ", 1)[1]) if ref else ""
        if not row.samples:
            lines.append(f"| {row.label} | {row.note or 'not measured'} ||||||{vs} |")
            continue
        lines.append(
            f"| {row.label} | {ms(row.median)} | {ms(min(row.samples))} | "
            f"{ms(max(row.samples))} | {len(row.samples)} | "
            f"{'' if ratio is None else f'{ratio:.2f}x'} | "
            f"{'' if diff is None else ('+' if diff >= 0 else '') + ms(diff)} | {vs} |")
    return "\n".join(lines)


#: the shells held to the activation target: (plain venv, small layer, big layer) rows
ACTIVATION_TARGETS = {
    "bash": ("activate.venv", "activate.layer.small", "activate.layer.big"),
    **{shell: (f"activate.{shell}.venv", f"activate.{shell}.small", f"activate.{shell}.big")
       for shell in ("zsh", "dash", "ksh")},
}


def targets(rows: dict[str, Row], counts: Counts) -> list[Target]:
    def med(key: str) -> float | None:
        return rows[key].median

    found = []
    lv, venv = med("create.layervenv"), med("create.venv")
    if lv is not None and venv is not None:
        found.append(Target("create: layervenv under 0.5 s and >= 4x faster than python -m venv",
                            lv < 500 and venv / lv >= 4,
                            f"{ms(lv)} ms, {venv / lv:.1f}x faster than python -m venv"))
    uv = med("create.uv")
    if lv is not None and uv is not None:
        found.append(Target("create: layervenv (warm cache) at most 1.0x uv venv --seed",
                            lv <= uv, f"{ms(lv)} ms vs {ms(uv)} ms: {lv / uv:.2f}x"))
    for shell, keys in ACTIVATION_TARGETS.items():
        plain, small, big = (med(key) for key in keys)
        if plain and small and big:
            found.append(Target(f"activate, {shell}: within 1.5x of a plain venv, flat in "
                                f"layer size (big/small <= 1.25)",
                                max(small, big) / plain <= 1.5 and big / small <= 1.25,
                                f"{small / plain:.2f}x and {big / plain:.2f}x of plain venv; "
                                f"big/small {big / small:.2f}"))
    hook = med("hook.bash")
    if hook is not None:
        found.append(Target("prompt hook, bash: under 20 µs per prompt when nothing changed",
                            hook < 0.020, f"{hook * 1000:.1f} µs"))
    base_start, layer_start = med("startup.venv"), med("startup.layer")
    if base_start and layer_start:
        diff = layer_start - base_start
        found.append(Target("start-up: under 1 ms or 3% over a plain venv",
                            diff < 1 or diff / base_start < 0.03,
                            f"{'+' if diff >= 0 else ''}{ms(diff)} ms "
                            f"({diff / base_start * 100:+.1f}%); hook in-process "
                            f"{ms(med('startup.hook'))} ms"))
    base_count, layer_count = (counts.values.get(k) for k in ("startup.venv", "startup.layer"))
    if base_count and layer_count:
        extra = layer_count / base_count - 1
        found.append(Target("start-up, instructions (valgrind): under 3% over a plain venv",
                            extra < 0.03, f"{extra * 100:+.1f}% ({layer_count - base_count:+,})"))
    for entries in Sizes().pythonpath_entries[-1:]:
        for what in ("", "import."):
            base_count, layer_count = (counts.values.get(f"pythonpath.{what}{kind}.{entries}")
                                       for kind in ("venv", "layer"))
            if base_count and layer_count:
                extra = layer_count / base_count - 1
                code = f"import pkg{entries - 1}" if what else "pass"
                found.append(Target(
                    f"start-up on a {entries}-entry PYTHONPATH, instructions (valgrind), "
                    f"python -c {code!r}: at most 2% over a plain venv", extra <= 0.02,
                    f"{extra * 100:+.2f}% ({layer_count - base_count:+,})"))
    pip = med("inspect.pip")
    for command in ("list", "check"):
        own = med(f"inspect.{command}")
        name = f"inspect: layervenv {command} under 1 s and >= 3x faster than pip list"
        if own is None or pip is None:
            found.append(Target(name, None, rows[f"inspect.{command}"].note or "not measured"))
        else:
            found.append(Target(name, own < 1000 and pip / own >= 3,
                                f"{ms(own)} ms, {pip / own:.1f}x faster than pip list"))
    return found


def mount_of(path: Path) -> str:
    """The file system ``path`` is on, from /proc/mounts (``/tmp (tmpfs)``)."""
    best = ("", "?")
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) > 2 and str(path).startswith(parts[1]) and \
                        len(parts[1]) > len(best[0]):
                    best = (parts[1], parts[2])
    except OSError:
        pass
    return f"{best[0]} ({best[1]})"


def machine_facts(work: Path, python: str) -> dict[str, str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), "?")
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": f"{version_of([python, '--version']).split()[-1]} ({python})",
        "os": f"{platform.system()} {platform.release()}",
        "bash": version_of(["bash", "--version"]),
        "workdir": mount_of(work),
    }


LEGEND = (
    "Times are wall-clock ms per command (activation: CPU ms per `. activate; deactivate`, "
    "looped in one shell process, less the same shell looping zero times); ratio "
    "and diff compare the median with the median of the row in `vs`, measured in the same run "
    "with the variants interleaved."
)


def count_table(counts: Counts) -> str:
    """The start-up instruction counts, each against the plain venv's."""
    lines = ["| start-up, instructions (valgrind callgrind) | instructions | vs plain venv |",
             "|---|--:|--:|"]
    for key, (label, vs) in INSTRUCTION_VARIANTS.items():
        value = counts.values.get(key)
        if value is None:
            lines.append(f"| {label} | {counts.note or 'not measured'} | |")
            continue
        base = counts.values.get(vs or "")
        ratio = f"{(value / base - 1) * 100:+.2f}%" if base else ""
        lines.append(f"| {label} | {value:,} | {ratio} |")
    return "\n".join(lines)


def markdown(rows: dict[str, Row], counts: Counts, found: list[Target],
             facts: dict[str, str], command: str) -> str:
    lines = [f"Measured with `{command}` on:", ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    lines += ["", table(rows), "", LEGEND, "", count_table(counts), "", "Targets:", ""]
    for target in found:
        mark = {True: "met", False: "NOT met", None: "not measured"}[target.met]
        lines.append(f"- **{mark}** — {target.name}: {target.detail}")
    return "\n".join(lines) + "\n"


GROUPS = ("create", "activate", "startup", "inspect", "install", "import", "pythonpath")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10, metavar="N",
                        help="timed runs per command (start-up and import: 20x N processes)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and no warm-up runs (the smoke test)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="FILE",
                        help=f"where to write the results (default: {DEFAULT_JSON})")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="also write the table, machine and targets as Markdown")
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS),
                        help="run only these groups")
    parser.add_argument("--python", metavar="PATH",
                        help="the stack's interpreter, which every environment is made with "
                             "(default: the real interpreter running this script)")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    # The interpreter everything is created with: the real one behind a venv or a shim.
    python = os.path.realpath(args.python or getattr(sys, "_base_executable", None)
                              or sys.executable)
    if args.workdir is not None:
        try:
            args.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(f"--workdir {args.workdir}: {error.strerror}")
    work = Path(tempfile.mkdtemp(prefix="layervenv-bench-", dir=args.workdir))
    facts = machine_facts(work, python)
    rows = all_rows()
    counts = Counts(note="" if {"startup", "pythonpath"} & set(args.only) else "not run (--only)")
    size_labels(rows, sizes)
    started = time.perf_counter()
    failed = True  # a failed run keeps its work directory, to look into
    try:
        stack = None
        if {"activate", "startup"} & set(args.only):
            stack = build_stack(work / "LCG_sim", Path(python))
        stack_env = stack.env(clean_env()) if stack else {}
        for group in args.only:
            print(f"running {group} ...", file=sys.stderr, flush=True)
            if group == "create":
                bench_create(work, python, sizes, args.repeat, rows, facts)
            elif group == "activate":
                bench_activate(work, stack, stack_env, sizes, args.repeat, rows)
            elif group == "startup":
                bench_startup(work, stack, stack_env, sizes, args.repeat, rows, counts)
            elif group == "inspect":
                bench_inspect(work, python, sizes, args.repeat, rows)
            elif group == "install":
                bench_install(work, python, sizes, args.repeat, rows, facts)
            elif group == "import":
                bench_import(work, python, sizes, args.repeat, rows)
            elif group == "pythonpath":
                bench_pythonpath(work, python, sizes, args.repeat, rows, counts)
        failed = False
    finally:
        if args.keep or failed:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for row in rows.values():
        if not row.samples and not row.note:
            row.note = "not run (--only)"
    facts["run time"] = f"{time.perf_counter() - started:.0f} s"
    found = targets(rows, counts)
    command = "python3 benchmarks/run.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    print(markdown(rows, counts, found, facts, command))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": command,
        "machine": facts,
        "sizes": sizes.__dict__,
        "repeat": args.repeat,
        "rows": [{
            "key": row.key, "label": row.label, "vs": row.vs, "note": row.note,
            "n": len(row.samples), "median_ms": row.median,
            "min_ms": min(row.samples, default=None), "max_ms": max(row.samples, default=None),
            "ratio": compare(row, rows)[0], "diff_ms": compare(row, rows)[1],
            "samples_ms": [round(s, 4) for s in row.samples],
        } for row in rows.values()],
        "instructions": {"values": counts.values, "note": counts.note},
        "targets": [target.__dict__ for target in found],
    }, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text("# layervenv benchmarks: the latest full run\n\n"
                                 + markdown(rows, counts, found, facts, command), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
