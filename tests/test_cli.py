"""What every command shares: how it fails, what it prints where, and its exit status."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from helpers import run_tool, tool_command


def run_into_closed_pipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``layervenv ARGS | head -0``: standard output is a pipe nobody reads any more.

    The read end is closed before the tool starts, so its first write fails whatever
    the size of the output (a pipe buffer would otherwise hide a short one).
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(tool_command(*args), env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("fmt", ["human", "json"])
@pytest.mark.parametrize("command", ["list", "check"])
def test_output_into_a_closed_pipe_ends_quietly(make_layer, command, fmt):
    layer = make_layer()
    result = run_into_closed_pipe(command, str(layer.root), "--format", fmt, env=layer.env)
    assert result.stderr == ""
    assert result.returncode == 141


@pytest.mark.parametrize("command", ["list", "check", "lock", "run", "rebase"])
def test_what_is_not_a_layer_is_told_apart(tmp_path, stack_env, command):
    """A typo, a file, a plain venv: each error names the mistake, in one line."""
    venv = tmp_path / "venv"
    subprocess.run([stack_env_python(stack_env), "-m", "venv", "--without-pip", str(venv)],
                   env=stack_env, check=True)
    (tmp_path / "file").write_text("")
    extra = {"run": ["--", "true"], "rebase": ["--python", "python3"]}.get(command, [])
    cases = {
        str(tmp_path / "typo"): "does not exist",
        str(tmp_path / "file"): "is not a directory",
        str(venv): "is a plain venv, not a layer",
        str(tmp_path): "is not a layer",
    }
    for directory, says in cases.items():
        result = run_tool(command, directory, *extra, env=stack_env, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
        assert "layervenv create" in result.stderr


@pytest.mark.parametrize("command", ["list", "check", "lock"])
def test_the_active_environment_is_named_when_it_is_not_a_layer(tmp_path, stack_env, command):
    venv = tmp_path / "venv"
    subprocess.run([stack_env_python(stack_env), "-m", "venv", "--without-pip", str(venv)],
                   env=stack_env, check=True)
    result = run_tool(command, env=dict(stack_env, VIRTUAL_ENV=str(venv)), check=False)
    assert result.returncode == 2
    assert "(the active environment, $VIRTUAL_ENV) is a plain venv" in result.stderr
    result = run_tool(command, env=stack_env, check=False)
    assert result.returncode == 2
    assert "activate the layer first" in result.stderr and result.stderr.count("\n") == 1


def stack_env_python(env: dict[str, str]) -> str:
    """The python3 a user of this environment gets (the stack's)."""
    found = shutil.which("python3", path=env["PATH"])
    assert found
    return found


@pytest.mark.parametrize("option", [["--allow-stack-drift"], ["--find-links", "/w"],
                                    ["--index-url", "https://example.org/simple"]])
def test_create_options_of_from_are_refused_without_it(tmp_path, stack_env, option):
    """They used to be ignored without a word, and the layer made as if not given."""
    result = run_tool("create", str(tmp_path / "layer"), *option, env=stack_env, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--from FILE" in result.stderr
    assert not (tmp_path / "layer").exists()
