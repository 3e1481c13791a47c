"""``check`` and ``check --imports`` against real imports, on a real stack.

The stack: Debian's own python3-numpy 1.24.2 and python3-scipy 1.10.1 (with what apt
brings: pythran, ...) in /usr/lib/python3/dist-packages, plus a small prefix of real
2023 wheels: awkward 2.4.6 (pure Python, uses ``np.AxisError``, gone in numpy 2),
awkward-cpp 24 and boost-histogram 1.3.2 (pybind11, no numpy C API: they import fine
under numpy 2).  The layer, on /usr/bin/python3, installs numpy 2 from a cached wheel.

The reference is a real import, in a process of its own, of every module of every
distribution (top-level modules and the public submodules right below them), with
the layer's interpreter and with the stack's own interpreter: what fails with the
layer and not on the stack alone is what the layer breaks.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import clean_env, missing, run_tool

from layervenv.services.simstack import install_into, tree_digest

pytestmark = pytest.mark.network

#: Debian's own interpreter: its dist-packages are built for it, whatever version it is
SYSTEM_PYTHON = Path("/usr/bin/python3")
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def stack_wheels(version: tuple[int, int]) -> tuple[tuple[str, list[str]], tuple[str, list[str]]]:
    """(numpy 2 for the layer, the stack's prefix): real wheels for the Debian Python's
    ``version`` (cp311 on bookworm, cp312 on Ubuntu 24.04), so the scenario runs on
    whatever Debian's python3 is.  boost-histogram 1.3.2 has wheels up to cp311 only; 1.4.0
    (cp38-cp312) is the same kind (pybind11, no numpy C API)."""
    tag = "cp{}{}".format(*version)
    histogram = "boost-histogram==1.3.2" if version <= (3, 11) else "boost-histogram==1.4.0"
    return (f"numpy2-{tag}", ["numpy>=2,<3"]), (f"numpy1-stack-{tag}", [
        "awkward==2.4.6", "awkward-cpp==24", histogram, "importlib-metadata==6.8.0",
        "zipp==3.17.0", "packaging==23.1"])

#: every distribution of ``sys.argv[1:]`` (directories) and its top-level import names
DISTRIBUTIONS = r"""
import importlib.metadata as md, json, sys
found = {}
for dist in md.distributions(path=sys.argv[1:]):
    name = dist.metadata["Name"]
    top = (dist.read_text("top_level.txt") or "").split()
    if not top:
        for path in dist.files or []:
            first = path.parts[0]
            if len(path.parts) > 1 and first.isidentifier():
                top.append(first)
            elif len(path.parts) == 1 and path.suffix in (".py", ".so"):
                top.append(first.split(".")[0])
    found.setdefault(name, sorted(set(t for t in top if t.isidentifier())))
print(json.dumps(found))
"""

#: import each module of ``sys.argv[2:]`` and its public submodules; failures to argv[1]
IMPORT_ALL = r"""
import importlib, json, pkgutil, sys, warnings
warnings.simplefilter("ignore")
if sys.path and sys.path[0] == "":
    del sys.path[0]
failed = {}
for top in sys.argv[2:]:
    try:
        module = importlib.import_module(top)
    except BaseException as error:
        failed[top] = repr(error)
        continue
    for info in pkgutil.iter_modules(getattr(module, "__path__", None) or []):
        if info.name.startswith(("_", "test", "conftest", "setup")):
            continue
        try:
            importlib.import_module(top + "." + info.name)
        except BaseException as error:
            failed[top + "." + info.name] = repr(error)
with open(sys.argv[1], "w") as handle:
    json.dump(failed, handle)
"""


def _wheels(subdir: str, requirements: list[str], version: tuple[int, int]) -> Path:
    """Real wheels for Python ``version``, downloaded once into LAYERVENV_TEST_WHEELS
    (dev/test does)."""
    value = os.environ.get("LAYERVENV_TEST_WHEELS")
    base = Path(value) if value else Path(__file__).resolve().parent.parent / ".cache" / "wheels"
    path = base / subdir
    if not (path / ".complete").exists():
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "--python-version", "{}.{}".format(*version),
                        "--platform", "manylinux2014_x86_64",
                        "--platform", "manylinux_2_17_x86_64",
                        "--platform", "manylinux_2_28_x86_64", "-d", str(path), *requirements],
                       check=True, capture_output=True)
        (path / ".complete").touch()
    return path


@pytest.fixture(scope="module")
def debian_stack(tmp_path_factory: pytest.TempPathFactory):
    """Debian's numpy/scipy and a prefix of real wheels, both on PYTHONPATH; a layer on
    /usr/bin/python3 with numpy 2; the stack's hash checked after the module's tests."""
    if not (SYSTEM_PYTHON.exists() and (DIST_PACKAGES / "scipy").is_dir()
            and (DIST_PACKAGES / "numpy").is_dir()):
        missing("Debian's python3-numpy and python3-scipy are not installed",
                "dev/test installs them")
    version, numpy = debian_versions()["python"], debian_versions()["numpy"]
    if int(numpy.split(".")[0]) >= 2:  # (Debian 13 on): no numpy 1 stack to break
        missing(f"Debian's numpy is {numpy}: the scenario is numpy 2 over a numpy 1 stack",
                "Debian 12 or Ubuntu 24.04 has numpy 1")
    numpy_2, prefix_wheels = stack_wheels(version)
    tmp = tmp_path_factory.mktemp("debian")
    prefix = tmp / "stack"
    site = prefix / "lib" / "python{}.{}".format(*version) / "site-packages"
    site.mkdir(parents=True)
    (prefix / "bin").mkdir()
    for wheel in sorted(_wheels(*prefix_wheels, version).glob("*.whl")):
        install_into(wheel, site, prefix / "bin", SYSTEM_PYTHON)
    home = tmp / "home"
    home.mkdir()
    env = clean_env(home, PYTHONPATH=f"{site}:{DIST_PACKAGES}", PIP_NO_INDEX="1")
    guarded = [prefix, DIST_PACKAGES / "numpy", DIST_PACKAGES / "scipy",
               *DIST_PACKAGES.glob("numpy-*-info"), *DIST_PACKAGES.glob("scipy-*-info")]
    before = [tree_digest(path) for path in guarded]
    layer = tmp / "layer"
    run_tool("create", str(layer), "--python", str(SYSTEM_PYTHON), env=env)
    numpy2 = sorted(_wheels(*numpy_2, version).glob("numpy-2*.whl"))
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q", str(numpy2[-1])],
                   env=env, check=True, capture_output=True)
    yield layer, env, [site, DIST_PACKAGES]
    assert [tree_digest(path) for path in guarded] == before, "the stack was modified"


_VERSIONS = r"""
import importlib.metadata as md, json, sys
print(json.dumps({"python": list(sys.version_info[:2]), **{
    name: md.version(name) for name in ("numpy", "scipy")}}))
"""


@functools.cache
def debian_versions() -> dict:
    """Debian's python3 version and its own numpy's and scipy's, as that Python's
    importlib.metadata reads them from dist-packages."""
    said = json.loads(subprocess.run(
        [str(SYSTEM_PYTHON), "-I", "-c", _VERSIONS], env={"PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True).stdout)
    return {**said, "python": tuple(said["python"])}


def _failures(python: Path, env: dict[str, str], modules: list[str], tmp: Path) -> dict:
    target = tmp / f"{python.parent.parent.name}-{modules[0]}.json"
    subprocess.run([str(python), "-c", IMPORT_ALL, str(target), *modules], env=env,
                   capture_output=True, timeout=300, check=False, cwd=str(tmp))
    if not target.exists():
        return {module: "the interpreter crashed" for module in modules}
    return json.loads(target.read_text())


@pytest.fixture(scope="module")
def reference(debian_stack, tmp_path_factory):
    """(broken, fine): the stack distributions the layer really breaks (a module fails
    with the layer's interpreter and imports with the stack's own), and those whose
    every module imports with the layer."""
    layer, env, dirs = debian_stack
    tmp = tmp_path_factory.mktemp("imports")
    listed = subprocess.run([str(SYSTEM_PYTHON), "-c", DISTRIBUTIONS, *map(str, dirs)], env=env,
                            capture_output=True, text=True, check=True).stdout
    dists = {name: tops for name, tops in json.loads(listed).items() if tops}
    python = layer / "bin" / "python"

    def judge(item):
        name, tops = item
        in_layer = _failures(python, env, tops, tmp)
        alone = _failures(SYSTEM_PYTHON, env, sorted(in_layer), tmp) if in_layer else {}
        return name, in_layer, {m: why for m, why in in_layer.items() if m not in alone}

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        judged = list(pool.map(judge, dists.items()))
    broken = {name for name, _, caused in judged if caused}
    fine = {name for name, in_layer, _ in judged if not in_layer}
    return broken, fine, {name: caused for name, _, caused in judged}


def _check(layer: Path, env: dict[str, str], *args: str) -> dict:
    result = run_tool("check", str(layer), "--format", "json", *args, env=env, check=False)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def _named(problem: dict) -> list[str]:
    return problem.get("distributions") or [problem.get("distribution")]


def test_the_scenario_is_real(reference):
    """The reference sees what the issue reports: scipy and awkward break, the pybind11
    packages import fine under numpy 2."""
    broken, fine, results = reference
    assert {"scipy", "awkward"} <= broken, results
    assert {"awkward-cpp", "boost-histogram"} <= {n.lower() for n in fine}, results


def test_check_predicts_every_real_import_failure(debian_stack, reference):
    layer, env, _ = debian_stack
    broken, fine, results = reference
    data = _check(layer, env)
    predicted = {name.lower() for p in data["problems"] if p["kind"] in ("dependents", "conflict")
                 for name in _named(p)}
    assert {n.lower() for n in broken} <= predicted, (broken - predicted, data)
    errors = {name.lower() for p in data["problems"] if p["severity"] == "error"
              and p["kind"] in ("dependents", "conflict") for name in _named(p)}
    assert not errors & {n.lower() for n in fine}, (errors, results)
    # scipy is an error for its C API, whatever its metadata says
    broken_by_api = [p for p in data["problems"] if p["kind"] == "dependents"
                     and p["severity"] == "error"]
    assert f"scipy {debian_versions()['scipy']}" in broken_by_api[0]["message"]
    assert "built against numpy 1's C API" in broken_by_api[0]["message"]


def test_check_imports_reports_exactly_the_real_failures(debian_stack, reference):
    layer, env, _ = debian_stack
    broken, fine, _ = reference
    data = _check(layer, env, "--imports")
    imports = [p for p in data["problems"] if p["kind"] == "import"]
    reported = {p["distribution"].lower() for p in imports}
    assert {n.lower() for n in broken} <= reported, (broken, imports)
    assert not reported & {n.lower() for n in fine}, imports
    assert all(p["severity"] == "error" for p in imports if p["distribution"] in broken)
    scipy = next(p for p in imports if p["distribution"] == "scipy")
    assert "ValueError: numpy.dtype size changed" in scipy["message"]
    assert data["ok"] is False


if __name__ == "__main__":  # dev/test: python tests/test_check_breakage.py (fetches once)
    if SYSTEM_PYTHON.exists() and int(debian_versions()["numpy"].split(".")[0]) < 2:
        for subdir, requirements in stack_wheels(debian_versions()["python"]):
            print(_wheels(subdir, requirements, debian_versions()["python"]))
