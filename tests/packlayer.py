"""A layer as users pack it for batch jobs, and an independent look at what a job sees.

The layer stands on the simulated stack, made with ``--setup`` (so that a job started
with an empty environment gets the stack back from the record), has ``hepnum``
upgraded over the stack's 1.22.3, and the user's own project ``hepconf`` installed
with ``pip install -e`` (the stack has hepconf 0.9.0).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import cached_wheels, clean_env, run_tool

from layervenv.services.simstack import SimStack

#: the project's version, and a marker only its *current* code prints
PROJECT_VERSION = "9.9.0"
PROJECT_MARK = "analysis code of today"

#: printed as JSON by the layer's python in a job: read with importlib.metadata and by
#: importing, not from anything layervenv says
REPORT = """
import json, sys
from importlib import metadata
import hepnum, hepfit, hepconf
print(json.dumps({
    "hepnum": metadata.version("hepnum"), "hepnum_module": hepnum.__version__,
    "hepnum_file": hepnum.__file__, "hepfit_file": hepfit.__file__,
    "hepconf": metadata.version("hepconf"), "hepconf_file": hepconf.__file__,
    "hepconf_mark": hepconf.MARK, "prefix": sys.prefix,
}))
"""


def make_project(root: Path) -> Path:
    package = root / "src" / "hepconf"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        f"__version__ = {PROJECT_VERSION!r}\nMARK = {PROJECT_MARK!r}\n")
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "hepconf"\nversion = "{PROJECT_VERSION}"\n')
    return root


def make_batch_layer(where: Path, stack: SimStack, env: dict[str, str],
                     editable: bool = True) -> Path:
    """The layer of the module docstring, at ``where/ana``."""
    layer = where / "ana"
    setup = f". {shlex.quote(str(stack.setup_script))}"
    run_tool("create", str(layer), "--setup", setup, env=env)
    pip = [str(layer / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "hepnum==1.24.2"], env=env, check=True, capture_output=True)
    if editable:
        wheels = cached_wheels()
        env = dict(env, PIP_FIND_LINKS=f"{wheels} {env['PIP_FIND_LINKS']}")
        subprocess.run([*pip, "setuptools>=70"], env=env, check=True, capture_output=True)
        project = make_project(where / "project")
        subprocess.run([*pip, "--no-build-isolation", "-e", str(project)], env=env,
                       check=True, capture_output=True)
    return layer


def pack_layer(layer: Path, archive: Path, env: dict[str, str]) -> dict:
    result = run_tool("pack", str(layer), "-o", str(archive), "--format", "json", env=env)
    return json.loads(result.stdout)


def unpack(archive: Path, dest: Path) -> Path:
    """``tar -xzf`` as a job script does; the unpacked layer's directory."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(dest)], check=True)
    with tarfile.open(archive) as tar:
        name = tar.next().name.split("/")[0]
    return dest / name


def run_in_job(unpacked: Path, *command: str, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``DEST/NAME/bin/layervenv-run COMMAND`` from an empty environment (``env -i``)."""
    return subprocess.run([str(unpacked / "bin" / "layervenv-run"), *command],
                          env=env or {}, capture_output=True, text=True, cwd=cwd, check=False)


def report(unpacked: Path, env: dict[str, str] | None = None) -> dict:
    result = run_in_job(unpacked, "python", "-c", REPORT, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@dataclass
class Packed:
    layer: Path
    archive: Path
    result: dict
    env: dict[str, str]


def packed_layer(tmp_path_factory: pytest.TempPathFactory, _built_stack: SimStack) -> Packed:
    """The layer of this module's docstring, packed (once per test module: a fixture's body)."""
    where = tmp_path_factory.mktemp("packed")
    home = where / "home"
    home.mkdir()
    env = _built_stack.env(clean_env(home))
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(_built_stack.wheelhouse))
    layer = make_batch_layer(where / "user", _built_stack, env)
    archive = where / "out" / "ana.tar.gz"
    archive.parent.mkdir()
    return Packed(layer, archive, pack_layer(layer, archive, env), env)
