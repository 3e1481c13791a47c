"""``layervenv create``: hostile names, refusals, all-or-nothing creation, JSON output."""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import find_python, py, run_shell, run_tool, tool_command

from layervenv.model.layer import Layer

HOSTILE = "lay-er 'q\" $HOME é"


def test_hostile_directory_name(tmp_path, stack_env):
    root = tmp_path / HOSTILE
    result = run_tool("create", str(root), "--format", "json", env=stack_env)
    data = json.loads(result.stdout)
    assert data["path"] == str(root)
    assert data["pip"]
    assert py(root / "bin" / "python", "import sys; print(sys.prefix)", stack_env) == str(root)
    pip = subprocess.run([str(root / "bin" / "pip"), "--version"], env=stack_env,
                         capture_output=True, text=True, check=True).stdout
    assert str(root) in pip


def test_layer_records_its_stack(make_layer, stack):
    from layervenv.model.layer import Layer

    layer = Layer.open(make_layer().root)
    assert layer.config.stack.python == str(stack.python)
    assert layer.config.stack.python_version.startswith(stack.short_version)
    assert layer.config.stack.pythonpath == [str(stack.site_packages), str(stack.egg)]
    assert layer.site_packages.is_dir()
    assert (layer.site_packages / "~layervenv.pth").is_file()
    assert (layer.site_packages / "~layervenv.start").read_text().strip() == "_layervenv_boot:run"


def test_existing_non_layer_directory_is_refused(tmp_path, stack_env):
    target = tmp_path / "data"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    result = run_tool("create", str(target), env=stack_env, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "is not a layer" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["precious.txt"]
    assert run_tool("create", "--clear", str(target), env=stack_env, check=False).returncode == 2


def test_empty_directory_is_accepted(tmp_path, stack_env):
    target = tmp_path / "empty"
    target.mkdir()
    run_tool("create", "--without-pip", str(target), env=stack_env)
    assert (target / "layervenv.toml").is_file()


def test_existing_layer_needs_clear(make_layer, stack_env):
    """--clear replaces what the layer made and keeps what it did not: a note at the top
    of the directory and a file dropped in its bin/ (which --clear used to delete)."""
    layer = make_layer("again", "--without-pip")
    (layer.root / "bin" / "marker").write_text("old")
    (layer.root / "notes.txt").write_text("mine")
    refused = run_tool("create", str(layer.root), env=stack_env, check=False)
    assert refused.returncode == 2 and "--clear" in refused.stderr
    assert (layer.root / "bin" / "marker").exists()
    out = run_tool("create", "--clear", "--without-pip", str(layer.root), "--format", "json",
                   env=stack_env).stdout
    assert json.loads(out)["carried_over"] == ["bin/marker", "notes.txt"]
    assert (layer.root / "bin" / "marker").read_text() == "old"
    assert (layer.root / "notes.txt").read_text() == "mine"
    assert (layer.root / "layervenv.toml").is_file()
    assert [p.name for p in layer.root.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/true", "/bin/false"])
def test_bad_interpreter_leaves_nothing(tmp_path, stack_env, python):
    target = tmp_path / "bad"
    result = run_tool("create", "--python", python, str(target), env=stack_env, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("layervenv: error:") and result.stderr.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["home"]  # no layer, staging directory or lock


@pytest.mark.parametrize(("kind", "message"), [
    ("python2", "is Python 2."),
    ("directory", "not an executable Python interpreter"),
    ("not-executable", "not an executable Python interpreter"),
    ("script", "not a usable Python 3.6+ interpreter"),
])
def test_bad_python_is_one_line_saying_why(tmp_path, stack_env, kind, message):
    if kind == "python2":
        python = find_python("2.7") or Path("/usr/bin/python2")
        if not python.exists():
            pytest.skip("no Python 2 here")
    elif kind == "directory":
        python = tmp_path
    else:
        python = tmp_path / "python3"
        python.write_text("#!/bin/sh\necho 'not python' >&2; exit 1\n")
        python.chmod(0o755 if kind == "script" else 0o644)
    result = run_tool("create", "--python", str(python), str(tmp_path / "bad"), env=stack_env,
                      check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("layervenv: error:") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not (tmp_path / "bad").exists()


def test_colon_in_path_is_refused(tmp_path, stack_env):
    result = run_tool("create", str(tmp_path / "a:b"), env=stack_env, check=False)
    assert result.returncode == 2 and "colon" in result.stderr


def test_newline_in_prompt_is_refused(tmp_path, stack_env):
    result = run_tool("create", "--prompt", "two\nlines", str(tmp_path / "l"), env=stack_env,
                      check=False)
    assert result.returncode == 2 and "newline" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "l").exists()


def test_no_write_permission(tmp_path, stack_env):
    """In a directory nobody may write to (immutable, so that root is refused too)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        result = run_tool("create", str(locked / "layer"), env=stack_env, check=False)
        assert result.returncode == 2, result.stderr
        assert "not permitted" in result.stderr or "Permission denied" in result.stderr
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
        assert list(locked.iterdir()) == []
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)


NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def _as_nobody_can_run(python: str) -> bool:
    probe = subprocess.run([*NOBODY, "test", "-x", python], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture
def nobody_tool():
    """The tool as user ``nobody`` would run it: a Python that user may execute, the
    tool's source and its dependencies copied where that user may read them (pytest's
    own temporary directories are private to root).  Yields (run, workdir)."""
    import shutil
    import sys
    import tempfile

    from helpers import SRC

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to become another user")
    python = next((c for c in (sys.executable, "/usr/bin/python3")
                   if os.path.exists(c) and _as_nobody_can_run(c)), None)
    if python is None:
        pytest.skip("no Python that user nobody may run")
    work = Path(tempfile.mkdtemp(prefix="layervenv-nobody-"))
    libs = work / "libs"
    shutil.copytree(SRC / "layervenv", libs / "layervenv",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("packaging", "installer", "tomli_w", "tomli"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        shutil.copytree(Path(module.__file__).parent, libs / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(work)], check=True)
    boot = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))")

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work)}
        return subprocess.run([*NOBODY, python, "-c", boot, str(libs), "create",
                               "--python", python, "--without-pip", *args],
                              env=env, capture_output=True, text=True, check=False)

    yield run, work
    shutil.rmtree(work)


def test_no_write_permission_as_another_user(nobody_tool):
    """A user who may not write where the layer would go, nor where its parents would."""
    run, work = nobody_tool
    owned = work / "root-owned"
    owned.mkdir(mode=0o755)
    for target in (owned / "layer", owned / "sub" / "deeper" / "layer"):
        result = run(str(target))
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"layervenv: error: cannot create {target}: Permission denied\n"
    assert list(owned.iterdir()) == []
    mine = work / "nobody's"
    mine.mkdir()
    os.chown(mine, 65534, 65534)
    made = run(str(mine / "layer"))
    assert made.returncode == 0, made.stderr
    assert (mine / "layer" / "layervenv.toml").stat().st_uid == 65534


def _seconds(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    run_tool(*args, env=env)
    return time.perf_counter() - start


def test_interrupted_creation_leaves_a_layer_or_nothing(tmp_path, stack_env):
    """Ctrl-C at 10 random moments spread from the tool's start-up (timed as ``--version``)
    to a little past the time a creation takes (timed here): afterwards DIR is a complete
    layer and the status 0, or DIR is absent, the status 130 and stderr one line."""
    started = _seconds("--version", env=stack_env)
    took = _seconds("create", str(tmp_path / "timed"), env=stack_env)
    rng = random.Random(1234)
    outcomes = []
    for attempt in range(10):
        target = tmp_path / f"int{attempt}"
        proc = subprocess.Popen(tool_command("create", str(target)), env=stack_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(started * 1.5, took * 1.2))
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
        assert leftovers == []
        if proc.returncode == 0:
            assert (target / "layervenv.toml").is_file()
            assert py(target / "bin" / "python", "import pip; print('ok')", stack_env) == "ok"
        else:
            assert (proc.returncode, err) == (130, "layervenv: interrupted\n")
            assert not target.exists()
        outcomes.append(proc.returncode == 0)
    print(f"10 interrupted creations: {sum(outcomes)} complete, {10 - sum(outcomes)} absent")


def _interrupt_after_setup(tmp_path: Path, stack, env: dict[str, str], delay: float,
                           times: int) -> subprocess.CompletedProcess:
    """``create --setup`` in its own process group, as a terminal runs it; once the setup
    ran (the tool is past its start-up), wait ``delay`` and press Ctrl-C ``times`` times."""
    marker = tmp_path / "setup-done"
    marker.unlink(missing_ok=True)
    setup = f". '{stack.setup_script}'; : > '{marker}'"
    proc = subprocess.Popen(tool_command("create", str(tmp_path / "layer"), "--setup", setup),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    for _ in range(times):
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            break
        time.sleep(0.005)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("times", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.15, 0.3])
def test_ctrl_c_to_the_process_group(tmp_path, stack, base_env, delay, times):
    """Ctrl-C reaches the tool and its children (the setup's bash, the interpreter probe):
    exit 130 with one line, or a complete layer; never a traceback or a leftover."""
    result = _interrupt_after_setup(tmp_path, stack, base_env, delay, times)
    target = tmp_path / "layer"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    if result.returncode == 0:
        assert (target / "layervenv.toml").is_file()
    else:
        assert (result.returncode, result.stderr) == (130, "layervenv: interrupted\n")
        assert not target.exists() or (target / "layervenv.toml").is_file()


def test_create_in_the_current_empty_directory_keeps_it(tmp_path, stack_env):
    """``mkdir ana && cd ana && layervenv create .``: the directory is filled, not
    replaced, so the shell standing in it can activate; its mode stays the user's."""
    target = tmp_path / "ana"
    target.mkdir(mode=0o750)
    target.chmod(0o750)
    inode = target.stat().st_ino
    script = f"{shlex.join(tool_command('create', '--without-pip', '.'))} >/dev/null && " \
             ". bin/activate && python -c 'import sys; print(sys.prefix)'"
    out = run_shell("bash", script, stack_env, cwd=target).stdout
    assert out.strip() == str(target)
    assert (target.stat().st_ino, target.stat().st_mode & 0o777) == (inode, 0o750)
    assert [p.name for p in target.iterdir() if p.name.startswith(".")] == []


def test_empty_directory_in_a_read_only_parent(tmp_path, stack_env):
    """An administrator made /scratch/me/layer for the user, who may not write beside it."""
    parent = tmp_path / "admin"
    target = parent / "layer"
    target.mkdir(parents=True)
    if subprocess.run(["chattr", "+i", str(parent)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        run_tool("create", "--without-pip", str(target), env=stack_env)
    finally:
        subprocess.run(["chattr", "-i", str(parent)], check=True)
    assert (target / "layervenv.toml").is_file()
    assert sorted(p.name for p in parent.iterdir()) == ["layer"]


def test_a_failed_swap_puts_the_old_layer_back(make_layer, monkeypatch):
    """``--clear`` where paths cannot be exchanged atomically (NFS, AFS): if the new
    layer cannot be renamed into place (Ctrl-C at that very moment), the old layer,
    already moved aside, goes back instead of being lost, with the user's file that was
    being carried over."""
    from layervenv.services import staging as create_module

    layer = make_layer("swap", "--without-pip")
    (layer.root / "marker").write_text("old")
    real_replace = os.replace
    monkeypatch.setattr(create_module, "exchange", lambda first, second: False)

    def replace(src, dst):
        if Path(src).name.startswith(".swap.layervenv-"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(create_module.os, "replace", replace)
    monkeypatch.setattr(create_module.os, "environ", dict(layer.env))
    options = create_module.CreateOptions(directory=str(layer.root), clear=True,
                                          without_pip=True)
    with pytest.raises(KeyboardInterrupt):
        create_module.create(options)
    assert (layer.root / "marker").read_text() == "old"
    assert [p.name for p in layer.root.parent.iterdir() if p.name.startswith(".")] == []


def test_help_and_version():
    out = run_tool("--help").stdout
    for command in ("create", "demo"):
        assert command in out
        assert run_tool(command, "--help").stdout.startswith("usage:")
    assert run_tool("--version").stdout.startswith("layervenv ")


COMMANDS = ("create", "run", "list", "check", "lock", "rebase", "demo")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_refuses_unknown_options(command, tmp_path):
    assert run_tool(command, "--help").stdout.startswith(f"usage: layervenv {command}")
    needs_dir = command in ("create", "run")
    result = run_tool(command, "--no-such-option", *([str(tmp_path)] if needs_dir else []),
                      check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unrecognized arguments: --no-such-option" in result.stderr
    # with the usage of the command, which shows its options, not the top-level one
    assert result.stderr.startswith(f"usage: layervenv {command} "), result.stderr


def test_python_m_layervenv_version():
    from helpers import SRC

    from layervenv import __version__

    result = subprocess.run([sys.executable, "-m", "layervenv", "--version"], cwd=SRC,
                            capture_output=True, text=True, check=True)
    assert result.stdout == f"layervenv {__version__}\n"


def test_tool_ignores_broken_packages_on_the_stack_pythonpath(tmp_path, stack_env):
    """A stack with a broken copy of the tool's own dependencies on PYTHONPATH."""
    broken = tmp_path / "broken"
    for name in ("packaging", "installer", "tomli_w"):
        (broken / name).mkdir(parents=True)
        (broken / name / "__init__.py").write_text("raise ImportError('stack copy')\n")
    env = dict(stack_env, PYTHONPATH=f"{broken}:{stack_env['PYTHONPATH']}")
    run_tool("create", str(tmp_path / "layer"), env=env)
    assert Path(tmp_path / "layer" / "layervenv.toml").is_file()


@pytest.mark.parametrize("setup", [False, True], ids=["stack-set-up", "recorded-stack"])
def test_create_inside_an_active_layer_stands_on_the_stack(setup, tmp_path, stack, stack_env,
                                                         base_env):
    """From a shell where layer A is active, B's python3 and PYTHONPATH are the stack's,
    not A's (whose bin is first on PATH and, with --export-pythonpath, on PYTHONPATH)."""
    a = tmp_path / "a"
    if setup:
        run_tool("create", "--without-pip", "--export-pythonpath", str(a),
                 "--setup", f". '{stack.setup_script}'", env=base_env)
        shell_env = base_env
    else:
        run_tool("create", "--without-pip", "--export-pythonpath", str(a), env=stack_env)
        shell_env = stack_env
    b = tmp_path / "b"
    cli = " ".join(shlex.quote(part) for part in tool_command("create", "--without-pip", str(b)))
    run_shell("bash", f". '{a}/bin/activate' && {cli}", shell_env)
    record = Layer.open(b).config.stack
    assert record.python == str(stack.python)
    assert record.pythonpath == [str(stack.site_packages), str(stack.egg)]
    assert (b / "bin" / "python").resolve() == stack.python.resolve()


def test_a_layer_cannot_stand_on_itself(make_layer, stack_env, tmp_path):
    """``create DIR --clear --over DIR`` (itself, through a group layer over it, or a layer
    inside it) is refused in one line, the layer left as it was: it made a layer whose
    stack held its own site-packages."""
    mine = make_layer("mine")
    make_layer("inside", env=stack_env)
    (tmp_path / "inside").rename(mine.root / "inside")
    (mine.root / "kept.txt").write_text("mine")
    run_tool("create", str(tmp_path / "group"), "--over", str(mine.root), env=stack_env)
    before = (mine.root / "layervenv.toml").read_text()
    for over in (mine.root, tmp_path / "group", mine.root / "inside"):
        result = run_tool("create", str(mine.root), "--clear", "--over", str(over),
                          env=stack_env, check=False)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "cannot stand on" in result.stderr and "Traceback" not in result.stderr
        assert (mine.root / "layervenv.toml").read_text() == before
        assert (mine.root / "kept.txt").read_text() == "mine"


def test_a_missing_group_layer_is_named_with_the_fix_that_keeps_it(make_layer, stack_env,
                                                                    tmp_path):
    """The group layer under a layer (``--over``) is gone: ``check`` names it as the
    group layer, and its fix keeps the layer over a group (``--clear`` alone would make
    a layer without the group's packages)."""
    group = make_layer("group", env=stack_env)
    mine = tmp_path / "mine"
    run_tool("create", str(mine), "--over", str(group.root), env=stack_env)
    group.root.rename(tmp_path / "moved")
    result = run_tool("check", str(mine), "--format", "json", env=stack_env, check=False)
    assert result.returncode == 1, result.stderr
    said = [p["message"] for p in json.loads(result.stdout)["problems"]
            if p["kind"] == "stack-missing"]
    assert len(said) == 1 and f"the group layer this layer stands on is missing: " \
        f"{group.root}" in said[0] and "--clear --over GROUP" in said[0], said


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_to_create_alone_stops_its_setup_whole(tmp_path, base_env, signum):
    """SIGTERM (or SIGINT) sent to ``create`` alone, not to its process group (a batch
    system, ``kill PID``), while a slow ``--setup`` runs: the setup and what it started
    in the background are gone too (the background ``sleep`` was left running, adopted
    by init); nothing is made."""
    pids = tmp_path / "pids"
    setup = f"sleep 300 & echo $! > {shlex.quote(str(pids))}; sleep 300"
    target = tmp_path / "layer"
    proc = subprocess.Popen(tool_command("create", "--without-pip", str(target), "--setup",
                                         setup), env=base_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    background = int(pids.read_text())
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err, err
    for _ in range(100):  # SIGKILLed: gone as soon as it is reaped
        try:
            os.kill(background, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{background}/stat").read_text().split(") ")[1][0] == "Z":
            break  # a zombie waiting for its reaper: not running
        time.sleep(0.05)
    else:
        os.kill(background, signal.SIGKILL)  # not left behind by this test either
        raise AssertionError(f"the setup's background process {background} still runs")
    assert not target.exists()
