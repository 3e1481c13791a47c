"""The seed's upgrade scenario with a real package from PyPI (needs the registry)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import clean_env, py, run_tool

from layervenv.services.simstack import install_into, tree_digest

pytestmark = pytest.mark.network

OLD = "attrs==21.4.0"


@pytest.fixture
def real_stack(tmp_path: Path, _built_stack) -> tuple[Path, dict[str, str]]:
    """A stack prefix holding a real, old ``attrs`` wheel from PyPI, on PYTHONPATH."""
    python = Path(_built_stack.python).resolve()
    wheels = tmp_path / "download"
    subprocess.run([str(python), "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels),
                    OLD], check=True, capture_output=True)
    prefix = tmp_path / "stack"
    short = _built_stack.short_version
    site = prefix / "lib" / f"python{short}" / "site-packages"
    site.mkdir(parents=True)
    (prefix / "bin").mkdir()
    install_into(next(wheels.glob("*.whl")), site, prefix / "bin", python)
    subprocess.run([str(python), "-m", "compileall", "-q", str(site)], check=True)
    env = clean_env(tmp_path, PYTHONPATH=str(site))
    return prefix, env


def test_real_package_upgrade_wins_in_layer(tmp_path, real_stack):
    prefix, env = real_stack
    before = tree_digest(prefix)
    layer = tmp_path / "layer"
    run_tool("create", str(layer), env=env)
    python = layer / "bin" / "python"
    version = "import attr; print(attr.__version__)"
    assert py(python, version, env) == "21.4.0"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "attrs"], env=env,
                   check=True, capture_output=True)
    new = py(python, version, env)
    assert new != "21.4.0" and int(new.split(".")[0]) >= 22
    show = subprocess.run([str(python), "-m", "pip", "show", "attrs"], env=env,
                          capture_output=True, text=True, check=True).stdout
    assert f"Version: {new}" in show
    assert tree_digest(prefix) == before
