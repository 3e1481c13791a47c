"""layervenv.pyz and the tool's isolation from the stack it serves.

The stack here is hostile as real ones are: its PYTHONPATH holds the real, old
``packaging`` 21.3 (with its ``pyparsing``) and ``tomli`` 1.2.3 wheels, unpacked, and a
``sitecustomize`` that prints on standard output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import REPO, wheel_cache
from helpers import SRC, find_python, shell_path, strace_path

#: The real old wheels a stack's PYTHONPATH holds (fetched into the wheel cache).
OLD_WHEELS = ("packaging==21.3", "pyparsing==3.0.9", "tomli==1.2.3")
GREETING = "sitecustomize of the stack says hello"
BUNDLED = ("packaging/__init__.py", "installer/__init__.py", "tomli/__init__.py",
           "tomli_w/__init__.py", "layervenv/cli.py", "layervenv/boot/_layervenv_boot.py",
           "layervenv/interp/probe.py", "layervenv/interp/importer.py", "__main__.py")


def _old_wheel(spec: str) -> Path:
    name, version = spec.split("==")
    path = wheel_cache() / f"{name}-{version}-py3-none-any.whl"
    if not path.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "-d", str(wheel_cache()), spec], check=True)
    return path


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PYTHONPATH directory with old copies of the tool's dependencies and a
    ``sitecustomize`` that prints (flushed: the worst case) on standard output."""
    root = tmp_path_factory.mktemp("hostile") / "site-packages"
    for spec in OLD_WHEELS:
        with zipfile.ZipFile(_old_wheel(spec)) as wheel:
            wheel.extractall(root)
    (root / "sitecustomize.py").write_text(
        f"import sys\nprint({GREETING!r})\n"
        "if 'FLUSH_GREETING' in __import__('os').environ: sys.stdout.flush()\n",
        encoding="utf-8")
    return root


@pytest.fixture
def hostile_env(stack_env: dict[str, str], hostile: Path) -> dict[str, str]:
    # Python's default buffering, as in a user's shell (this machine may set it otherwise)
    env = {k: v for k, v in stack_env.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = f"{hostile}{os.pathsep}{env['PYTHONPATH']}"
    return env


def _check_hostile_stack_is_real(env: dict[str, str], python: str) -> None:
    """The stack's python3 does import the old packaging and runs the sitecustomize."""
    out = subprocess.run([python, "-c", "import packaging; print(packaging.__version__)"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == [GREETING, "21.3"]


INVOCATIONS = {
    "./layervenv.pyz": lambda pyz, stack: [str(pyz)],
    "python3 layervenv.pyz": lambda pyz, stack: [str(stack.python), str(pyz)],
}


def _run(argv: list[str], *args: str, env: dict[str, str], cwd: Path | None = None,
         status: tuple[int, ...] = (0,), clean: bool = True
         ) -> subprocess.CompletedProcess[str]:
    """Run the tool; ``clean``: nothing but its own output on standard output."""
    result = subprocess.run([*argv, *args], env=env, capture_output=True, text=True, cwd=cwd,
                            check=False)
    assert result.returncode in status, (args, result.stdout, result.stderr)
    assert not clean or GREETING not in result.stdout, (args, result.stdout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _json(result: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(result.stdout)


def _pip_check_conflicts(python: Path, env: dict[str, str]) -> set[str]:
    """The distributions whose requirements ``pip check`` (run by ``python``) finds unmet."""
    result = subprocess.run([str(python), "-m", "pip", "check"], env=env, capture_output=True,
                            text=True, check=False)
    return {line.split()[0].lower() for line in result.stdout.splitlines()
            if " has requirement " in line or " requires " in line}


def test_the_zipapp_is_reproducible_and_holds_what_it_needs(zipapp, tmp_path):
    """Two builds, the second from a checkout whose files have other mtimes: same bytes;
    fixed timestamps and modes, sorted, no compiled files, the four dependencies inside."""
    again = tmp_path / "again.pyz"
    for path in (REPO / "src" / "layervenv").rglob("*.py"):
        os.utime(path)  # "touch": a rebuild must not depend on when files were written
    subprocess.run([sys.executable, str(REPO / "dev" / "build-zipapp"), str(again),
                    "--wheels", str(wheel_cache())], check=True, capture_output=True)
    assert again.read_bytes() == zipapp.read_bytes()
    assert os.stat(zipapp).st_mode & 0o777 == 0o755
    with zipfile.ZipFile(zipapp) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 for info in infos} == {0o100644}
        assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".exe"))]
        assert set(BUNDLED) <= set(names)
        assert archive.testzip() is None
    assert zipapp.read_bytes().startswith(b"#!/bin/sh\n")


@pytest.mark.parametrize("how", INVOCATIONS)
def test_every_command_works_from_the_zipapp_on_a_hostile_stack(zipapp, stack, hostile_env,
                                                                tmp_path, how):
    """The stack's own python3, old packaging/tomli and a printing sitecustomize on
    PYTHONPATH: every command works and standard output is the tool's alone."""
    _check_hostile_stack_is_real(hostile_env, str(stack.python))
    tool = INVOCATIONS[how](zipapp, stack)
    layer = tmp_path / "layer"
    assert _run(tool, "--version", env=hostile_env).stdout.startswith("layervenv ")
    created = _json(_run(tool, "create", str(layer), "--format", "json", env=hostile_env))
    assert created["path"] == str(layer)
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q",
                    "hepconf==1.0.0"], env=hostile_env, check=True, capture_output=True)
    listed = _json(_run(tool, "list", str(layer), "--format", "json", env=hostile_env))
    names = {d["name"]: d for d in listed}
    assert names["hepconf"]["version"] == "1.0.0" and names["hepconf"]["origin"] == "layer"
    # the stack's old packaging is what the layer sees (the tool passes PYTHONPATH on)
    assert names["packaging"]["version"] == "21.3"
    # the old packaging on PYTHONPATH breaks a stack package that needs >= 22: pip check,
    # run by the layer's python, says so; check must too (exit 1), in clean JSON
    broken = _pip_check_conflicts(layer / "bin" / "python", hostile_env)
    assert broken, "the hostile stack was meant to hold a conflict"
    checked = _json(_run(tool, "check", str(layer), "--format", "json", env=hostile_env,
                         status=(1,)))
    assert checked["ok"] is False
    reported = {p.get("distribution", "").lower() for p in checked["problems"]
                if p["severity"] == "error"}
    assert broken <= reported, (broken, checked["problems"])
    lock = tmp_path / "pylock.toml"
    _run(tool, "lock", str(layer), "-o", str(lock), env=hostile_env)
    again = tmp_path / "again"
    _json(_run(tool, "create", str(again), "--from", str(lock), "--format", "json",
               env=hostile_env))
    ran = _run(tool, "run", str(again), "--", "python", "-c",
               "import hepconf; print('hepconf', hepconf.__version__)", env=hostile_env,
               clean=False)
    # the layer's own Python keeps the stack's environment: its sitecustomize runs there
    assert ran.stdout.split("\n")[:2] == [GREETING, "hepconf 1.0.0"]
    for command in ("create", "lock", "rebase", "run", "list", "check", "demo"):
        assert _run(tool, command, "--help", env=hostile_env).stdout.startswith("usage:")


def _tool_segments(log: str, marker: str) -> dict[str, list[str]]:
    """Files opened by each process image that ran the tool (``marker`` in its
    execve arguments), from an ``strace -f`` log: per pid, what follows its last
    execve, until the next one."""
    opened: dict[str, list[str]] = defaultdict(list)
    current: dict[str, str] = {}
    for line in log.splitlines():
        match = re.match(r"(\d+)\s+(\w+)\((.*)", line)
        if not match:
            continue
        pid, call, rest = match.groups()
        if call == "execve" and not rest.rstrip().endswith("= -1 ENOENT (No such file or "
                                                           "directory)"):
            current[pid] = f"{pid}:{len(opened)}" if marker in rest else ""
        elif call == "openat" and current.get(pid):
            path = re.match(r'[^"]*"([^"]*)"', rest)
            if path:
                opened[current[pid]].append(path.group(1))
    return opened


def _strace(argv: list[str], env: dict[str, str], log: Path) -> str:
    strace = strace_path()
    subprocess.run([strace, "-f", "-qq", "-s", "4096", "-e", "trace=execve,openat",
                    "-o", str(log), *argv], env=env, capture_output=True, check=True)
    return log.read_text(encoding="utf-8", errors="replace")


@pytest.mark.parametrize("how", ["./layervenv.pyz", "python3 layervenv.pyz", "installed"])
def test_the_tool_reads_nothing_from_the_stacks_pythonpath(zipapp, stack, hostile, hostile_env,
                                                            make_layer, tmp_path, how):
    """strace: once the tool runs, its process opens no file of the hostile directory
    (no old packaging, no sitecustomize), while the layer's Python it starts does."""
    layer = make_layer(env=hostile_env)
    if how == "installed":  # the console entry point, from this checkout
        argv = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from layervenv.app.isolation import console; console()", str(SRC)]
        marker = "from layervenv.cli import main"  # the isolated re-exec
    else:
        argv = INVOCATIONS[how](zipapp, stack)
        marker = '"-I", "-S", "' + str(zipapp)
    log = _strace([*argv, "list", str(layer.root), "--format", "json"], hostile_env,
                  tmp_path / "strace.log")
    segments = _tool_segments(log, marker)
    assert segments, "the tool's isolated process was not found in the trace"
    for files in segments.values():
        assert [f for f in files if f.startswith(str(SRC)) or f.startswith(str(zipapp))
                or "layervenv" in f], "the trace did not see the tool's own imports"
        assert not [f for f in files if f.startswith(str(hostile))]
    assert f"{hostile}/sitecustomize.py" in log  # the layer's Python did run it


def test_the_installed_tool_drops_what_sitecustomize_printed(stack, hostile_env, make_layer):
    """The console entry point re-executes isolated before importing a dependency: the
    unflushed line of the stack's sitecustomize is dropped, JSON parses, and the tool
    imported its own packaging (it needs >= 22; 21.3 is first on PYTHONPATH)."""
    layer = make_layer(env=hostile_env)
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from layervenv.app.isolation import console; console()")
    result = _run([sys.executable, "-c", code, str(SRC)], "list", str(layer.root),
                  "--format", "json", env=hostile_env)
    assert {d["name"] for d in _json(result)} >= {"hepconf", "packaging"}
    probe = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
             "from layervenv.infra.toolhome import tool_argv; import os; "
             "a = tool_argv(); os.execv(a[0], a[:2] + ['-c', 'import sys; "
             "sys.path.insert(0, sys.argv.pop(1)); import packaging; "
             "print(packaging.__version__, sys.flags.isolated)', a[-1]])")
    out = subprocess.run([sys.executable, "-c", probe, str(SRC)], env=hostile_env,
                         capture_output=True, text=True, check=True).stdout
    version, isolated = out.split()
    assert version != "21.3" and int(version.split(".")[0]) >= 22 and isolated == "1"


@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.12", "3.13"])
def test_the_zipapp_runs_on_every_supported_python(zipapp, stack, hostile_env, make_layer,
                                                   minor):
    """Python 3.9 and 3.10 read TOML with the bundled tomli, not the stack's 1.2.3."""
    found = [find_python(minor)]
    if found[-1] is None:
        pytest.skip(f"no Python {minor} here")
    layer = make_layer(env=hostile_env)
    result = _run([str(found[-1]), str(zipapp), "list", str(layer.root), "--format", "json"],
                  env=hostile_env)
    assert {d["name"] for d in _json(result)} >= {"pip", "hepnum"}


@pytest.mark.parametrize("minor", ["3.6", "3.8"])
def test_the_zipapp_on_an_old_python_says_what_it_needs(zipapp, tmp_path, base_env, minor):
    """No newer python3.X on PATH: one line, exit 2; with one, it runs on that one."""
    found = [find_python(minor)]
    if found[-1] is None:
        pytest.skip(f"no Python {minor} here")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(found[-1])
    env = {**base_env, "PATH": str(bin_dir)}  # the archive's #!/bin/sh needs no PATH
    result = subprocess.run([str(zipapp), "--version"], env=env, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("layervenv: error: layervenv needs Python 3.9 or newer")
    assert len(result.stderr.splitlines()) == 1
    (bin_dir / "python3.11").symlink_to(sys.executable)
    result = subprocess.run([str(zipapp), "--version"], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.startswith("layervenv ")


def test_the_zipapp_line_runs_in_every_posix_shell(zipapp, base_env):
    """The #!/bin/sh prefix is read by whatever sh is; bash and dash run it alike."""
    for shell in ("dash", "bash"):
        result = subprocess.run([shell_path(shell), str(zipapp), "--version"], env=base_env,
                                capture_output=True, text=True, check=True)
        assert result.stdout.startswith("layervenv ")


def _metadata_version(python: Path, name: str, env: dict[str, str]) -> tuple[str, str]:
    """``name``'s version and location as ``importlib.metadata`` in ``python`` sees them."""
    code = ("import importlib.metadata as m, sys; d = m.distribution(sys.argv[1]); "
            "print(d.version); print(d.locate_file(''))")
    out = subprocess.run([str(python), "-c", code, name], env=env, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return out[-2], out[-1]


def test_every_command_runs_from_the_zipapp_in_order(zipapp, stack, stack_env, tmp_path):
    """The end-to-end smoke of the installed tool, from ``layervenv.pyz``: each command
    once, its exit status, and one fact about its work read by something else."""
    tool = [str(zipapp)]
    layer, python = tmp_path / "layer", tmp_path / "layer" / "bin" / "python"
    env = {**stack_env, "SHELL": shell_path("bash"),
           "JUPYTER_PATH": str(tmp_path / "prefix" / "share" / "jupyter")}
    created = _json(_run(tool, "create", str(layer), "--format", "json", env=env))
    assert created["path"] == str(layer) and python.is_file()
    listed = {d["name"]: d for d in _json(_run(tool, "list", str(layer), "--format", "json",
                                               env=env))}
    assert listed["hepconf"]["version"] == _metadata_version(python, "hepconf", env)[0]
    assert _json(_run(tool, "check", str(layer), "--format", "json", env=env))["ok"] is True
    assert not _pip_check_conflicts(python, env)
    _run(tool, "check", "--imports", str(layer), env=env)
    lock = tmp_path / "pylock.toml"
    _run(tool, "lock", str(layer), "-o", str(lock), env=env)
    tomllib = pytest.importorskip("tomllib")
    assert tomllib.loads(lock.read_text(encoding="utf-8"))["lock-version"] == "1.0"
    again = tmp_path / "again"
    _run(tool, "create", str(again), "--from", str(lock), env=env)
    assert "home = " in (again / "pyvenv.cfg").read_text(encoding="utf-8")
    rebased = _json(_run(tool, "rebase", str(layer), "--python", str(stack.python),
                         "--format", "json", env=env))
    assert rebased and _metadata_version(python, "pip", env)[1].startswith(str(layer))
    _run(tool, "install", str(layer), "hepconf==1.0.0", "--find-links", str(stack.wheelhouse),
         env=env)
    version, where = _metadata_version(python, "hepconf", env)
    assert version == "1.0.0" and where.startswith(str(layer))
    archive = tmp_path / "layer.tar.gz"
    _run(tool, "pack", str(layer), "-o", str(archive), env=env)
    job = tmp_path / "job"
    job.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(job)], check=True)
    first = subprocess.run([str(job / "layer" / "bin" / "layervenv-run"), "python", "-c",
                            "import hepconf; print(hepconf.__file__)"], env=env,
                           capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().startswith(str(job / "layer"))
    site = next((layer / "lib").glob("python*/site-packages"))
    (site / "ipykernel_launcher.py").write_text("", encoding="utf-8")  # found, never run
    _run(tool, "kernel", "install", str(layer), "--name", "smoke", "--prefix",
         str(tmp_path / "prefix"), env=env)
    spec = tmp_path / "prefix" / "share" / "jupyter" / "kernels" / "smoke" / "kernel.json"
    assert Path(json.loads(spec.read_text(encoding="utf-8"))["argv"][0]).exists()
    kernels = _json(_run(tool, "kernel", "list", "--format", "json", env=env))
    assert "smoke" in json.dumps(kernels)
    _run(tool, "kernel", "remove", "smoke", env=env)
    assert not spec.parent.exists()
    shelled = subprocess.run([*tool, "shell", str(layer)], env=env, capture_output=True,
                             text=True, input='echo "in:$VIRTUAL_ENV"; exit 7\n', check=False)
    assert shelled.returncode == 7, shelled.stderr
    assert f"in:{layer}" in shelled.stdout
    ran = _run(tool, "run", str(layer), "--", "python", "-c",
               "import sys; print(sys.prefix)", env=env)
    assert ran.stdout.strip() == str(layer)
    demo = tmp_path / "demo"
    _run(tool, "demo", "--workdir", str(demo), "--keep", env=env)
    assert list(demo.rglob("pyvenv.cfg"))
