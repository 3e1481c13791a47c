"""``layervenv`` stays at hand in an active layer, however the tool was installed.

Real installs (a venv with the tool pip-installed from this checkout, offline; a
pipx-style link to its script; ``layervenv.pyz`` on PATH), real shells: the tool works
before activation, in the active layer and after ``deactivate``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, wheel_cache
from helpers import SHELLS, run_shell, run_tool

from layervenv.infra.toolhome import tool_argv


@pytest.fixture(scope="session")
def tool_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the tool installed from this checkout (offline, as ``pip install .``)."""
    venv = tmp_path_factory.mktemp("toolvenv") / "lv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    source = tmp_path_factory.mktemp("toolsrc") / "layervenv"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".cache", "__pycache__", "*.egg-info", "build", "dist", ".venv*"))
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--no-index", "--find-links", str(wheel_cache()), str(source)],
                   check=True, capture_output=True)
    return venv


#: how the tool is installed (see _install: shell code run first, a PATH directory)
KINDS = ("venv-activated", "venv-bin-on-path", "pipx-style", "zipapp")


def _install(kind: str, tool_venv: Path, zipapp: Path, home: Path, shell: str
             ) -> tuple[str, str]:
    syntax = SHELLS[shell]
    if kind == "venv-activated":
        script = syntax.quote(str(tool_venv / "bin" / syntax.activate))
        return (f". {script}" if syntax.family == "posix" else f"source {script}"), ""
    if kind == "venv-bin-on-path":
        return "", str(tool_venv / "bin")
    bin_dir = home / ".local" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    if kind == "pipx-style":  # pipx links the venv's script into ~/.local/bin
        (bin_dir / "layervenv").symlink_to(tool_venv / "bin" / "layervenv")
    else:
        shutil.copy2(zipapp, bin_dir / "layervenv")
    return "", str(bin_dir)


CASES = [*[("bash", kind) for kind in KINDS], ("zsh", "venv-activated"),
         ("fish", "venv-activated"), ("tcsh", "pipx-style"), ("dash", "zipapp")]


@pytest.mark.parametrize(("shell", "kind"), CASES)
def test_the_tool_works_before_during_and_after_activation(tool_venv, zipapp, stack_env, home,
                                                           tmp_path, shell, kind):
    syntax = SHELLS[shell]
    first, path_dir = _install(kind, tool_venv, zipapp, home, shell)
    env = dict(stack_env)
    # no other layervenv on PATH (this machine may have one installed): ours or nothing
    env["PATH"] = ":".join(d for d in env["PATH"].split(":")
                           if not os.path.exists(os.path.join(d, "layervenv")))
    if path_dir:
        env["PATH"] = f"{path_dir}:{env['PATH']}"
    layer = tmp_path / "layer"
    out = tmp_path / "out"
    out.mkdir()
    listing = "layervenv list --format json > " + syntax.quote(str(out / "{}.json"))
    script = "\n".join(filter(None, [
        first,
        f"layervenv create {syntax.quote(str(layer))} > /dev/null",
        listing.format("before") + " " + syntax.quote(str(layer)),
        syntax.source(layer),
        listing.format("during"),
        "deactivate",
        listing.format("after") + " " + syntax.quote(str(layer)),
    ]))
    result = run_shell(shell, script, env=env, check=False)
    found = {p.stem for p in out.iterdir() if p.stat().st_size}
    expected = {"before", "during", "after"}
    if kind == "venv-activated":
        # activation leaves the tool's venv; deactivate gives back the shell as it was
        # before that venv (docs/activation.md): the tool is at hand during, not after
        expected = {"before", "during"}
    assert expected <= found, (result.stdout, result.stderr)
    for name in expected:
        names = {d["name"] for d in json.loads((out / f"{name}.json").read_text())}
        assert "hepnum" in names  # the layer's view: the stack is seen


def test_the_shim_runs_the_tool_that_made_the_layer(make_layer, zipapp, stack_env, tmp_path):
    """From a layer made by the zipapp, DIR/bin/layervenv runs that zipapp (its version
    line and its isolation: its own PYTHONPATH-free interpreter), with the user's args."""
    copy = tmp_path / "tool" / "layervenv.pyz"
    copy.parent.mkdir()
    shutil.copy2(zipapp, copy)
    layer = tmp_path / "layer"
    subprocess.run([str(copy), "create", str(layer)], env=stack_env, check=True,
                   capture_output=True)
    shim = layer / "bin" / "layervenv"
    assert os.access(shim, os.X_OK)
    traced = subprocess.run(["sh", "-x", str(shim), "--version"], env=stack_env,
                            capture_output=True, text=True, check=True)
    assert traced.stdout.startswith("layervenv ")
    assert f"-I -S {copy} --version" in traced.stderr  # what sh itself ran
    # the tool is gone: one line, status 127 (as "command not found")
    copy.unlink()
    gone = subprocess.run([str(shim), "list"], env=stack_env, capture_output=True, text=True,
                          check=False)
    assert gone.returncode == 127 and gone.stdout == ""
    assert len(gone.stderr.splitlines()) == 1 and str(copy) in gone.stderr


def test_a_layer_made_in_process_points_at_this_checkout(make_layer):
    """The tests' own way of running the tool (``python -c`` from src/): the shim runs
    the same interpreter and package directory, as :func:`tool_argv` says."""
    layer = make_layer()
    text = (layer.root / "bin" / "layervenv").read_text(encoding="utf-8")
    assert str(Path(sys.executable)) in text and str(REPO / "src") in text
    result = subprocess.run([str(layer.root / "bin" / "layervenv"), "--version"],
                            env=layer.env, capture_output=True, text=True, check=True)
    assert result.stdout == run_tool("--version").stdout
    assert tool_argv()[1] == "-I"
