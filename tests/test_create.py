"""``layervenv create``: hostile names, refusals, all-or-nothing creation, JSON output."""

from __future__ import annotations

import json
import random
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import py, run_shell, run_tool, tool_command

from layervenv.layer import Layer

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
    from layervenv.layer import Layer

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
    layer = make_layer("again", "--without-pip")
    (layer.root / "marker").write_text("old")
    refused = run_tool("create", str(layer.root), env=stack_env, check=False)
    assert refused.returncode == 2 and "--clear" in refused.stderr
    assert (layer.root / "marker").exists()
    run_tool("create", "--clear", "--without-pip", str(layer.root), env=stack_env)
    assert not (layer.root / "marker").exists()
    assert (layer.root / "layervenv.toml").is_file()
    assert [p.name for p in layer.root.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/true", "/bin/false"])
def test_bad_interpreter_leaves_nothing(tmp_path, stack_env, python):
    target = tmp_path / "bad"
    result = run_tool("create", "--python", python, str(target), env=stack_env, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("layervenv: error:") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == [tmp_path / "home"] or not target.exists()
    assert not target.exists()


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


def test_interrupted_creation_leaves_a_layer_or_nothing(tmp_path, stack_env):
    """Ctrl-C at random moments: afterwards DIR is a complete layer or absent."""
    rng = random.Random(1234)
    for attempt in range(8):
        target = tmp_path / f"int{attempt}"
        proc = subprocess.Popen(tool_command("create", str(target)), env=stack_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.35))
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
        assert leftovers == []
        if target.exists():
            assert (target / "layervenv.toml").is_file()
            assert py(target / "bin" / "python", "import pip; print('ok')", stack_env) == "ok"
        else:
            assert proc.returncode != 0


def test_help_and_version():
    out = run_tool("--help").stdout
    for command in ("create", "demo"):
        assert command in out
        assert run_tool(command, "--help").stdout.startswith("usage:")
    assert run_tool("--version").stdout.startswith("layervenv ")


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
