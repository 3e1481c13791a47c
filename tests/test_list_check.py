"""``layervenv list`` and ``layervenv check`` on real layers over the simulated stack.

The stack holds hepnum 1.22.3, hepfit 1.0.0 (compiled, requires ``hepnum<1.27``),
hepconf 0.9.0 and the egg hepio 5.4.3; the wheelhouse offers hepnum 1.24.2 and
2.0.0.  Every answer of ``list`` is compared with what the interpreter really
imports; every JSON answer is validated against the documented shape.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import STACK_PYTHON
from helpers import clean_env, py, run_tool
from packaging.utils import canonicalize_name

from layervenv.services.simstack import (
    Dist,
    build_stack,
    build_wheel,
    install_into,
    many_dists,
    tree_digest,
    write_dist_info,
)

ORIGINS = {"layer", "editable", "user-site", "stack"}
KINDS = {"conflict", "dependents", "abi", "import", "user-site", "cwd-on-path",
         "python-mismatch", "stack-missing", "unreadable", "metadata", "moved", "stack-not-set-up",
         "shadows-stdlib", "leftover", "import-index", "bytecode", "path"}
SHORT = "{}.{}".format(*sys.version_info[:2])


# --- the documented JSON shapes --------------------------------------------------------

def assert_list_shape(rows: object) -> None:
    assert isinstance(rows, list)
    for row in rows:
        assert isinstance(row, dict)
        for key in ("name", "version", "origin", "location"):
            assert isinstance(row[key], str), (key, row)
        assert row["origin"] in ORIGINS
        assert isinstance(row["shadows"], list)
        for copy in row["shadows"]:
            assert set(copy) == {"version", "location", "origin"}
            assert all(isinstance(v, str) for v in copy.values())
            assert copy["origin"] in ORIGINS
    names = [row["name"].lower() for row in rows]
    assert len(names) == len(set(names)), "one row per name"


def assert_check_shape(data: object) -> None:
    assert isinstance(data, dict) and set(data) == {"ok", "problems"}
    assert isinstance(data["ok"], bool)
    for problem in data["problems"]:
        assert set(problem) in ({"kind", "severity", "message"},
                                {"kind", "severity", "message", "distribution"},
                                {"kind", "severity", "message", "distribution",
                                 "distributions"},
                                {"kind", "severity", "message", "distribution", "requirement"}
                                ), problem
        assert all(isinstance(name, str) for name in problem.get("distributions", []))
        assert ("requirement" in problem) is (problem["kind"] == "conflict"), problem
        assert problem["kind"] in KINDS
        assert problem["severity"] in {"error", "warning"}
        assert isinstance(problem["message"], str) and "\n" not in problem["message"]
        assert isinstance(problem.get("distribution", ""), str)
    assert data["ok"] == (not any(p["severity"] == "error" for p in data["problems"]))


def listing(root: Path | None, env: dict[str, str], *args: str,
            isolated: bool = False) -> dict[str, dict]:
    where = [str(root)] if root else []
    rows = json.loads(run_tool("list", *where, *args, "--format", "json", env=env,
                               isolated=isolated).stdout)
    assert_list_shape(rows)
    return {row["name"]: row for row in rows}


def check(root: Path | None, env: dict[str, str], isolated: bool = False) -> tuple[int, dict]:
    where = [str(root)] if root else []
    result = run_tool("check", *where, "--format", "json", env=env, check=False,
                      isolated=isolated)
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    assert_check_shape(data)
    assert result.returncode == (0 if data["ok"] else 1)
    return result.returncode, data


@functools.cache
def machine_broken() -> frozenset[str]:
    """Distributions of the interpreter's own site-packages with unmet requirements, as
    ``pip check`` of the bare interpreter says (a machine's python3 may have some)."""
    out = subprocess.run([str(STACK_PYTHON), "-I", "-m", "pip", "check"],
                         capture_output=True, text=True, check=False).stdout
    return frozenset(canonicalize_name(line.split()[0]) for line in out.splitlines()
                     if " requires " in line or " has requirement " in line)


def ours(data: dict, *kinds: str) -> list[dict]:
    """Problems of the given kinds, but for those of distributions of the interpreter's
    own site-packages that are broken already (see :func:`machine_broken`)."""
    return [p for p in data["problems"] if p["kind"] in kinds
            and canonicalize_name(p.get("distribution") or "") not in machine_broken()]


def errors(data: dict) -> list[dict]:
    """The errors :func:`ours` keeps, of any kind."""
    return [p for p in ours(data, *KINDS) if p["severity"] == "error"]


def pip(layer, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run([str(layer.python), "-m", "pip", *args], env=env or layer.env,
                          capture_output=True, text=True, check=True).stdout


def imported(layer, name: str, env: dict[str, str] | None = None) -> str:
    return py(layer.python, f"import {name}; print({name}.__version__)", env or layer.env)


# --- list ------------------------------------------------------------------------------

def test_fresh_layer_shows_the_stack(make_layer, stack):
    layer = make_layer()
    rows = listing(layer.root, layer.env)
    assert rows["hepnum"]["version"] == "1.22.3" and rows["hepnum"]["origin"] == "stack"
    assert rows["hepnum"]["location"] == str(stack.site_packages)
    assert rows["hepnum"]["shadows"] == []
    assert rows["hepfit"]["compiled"] is True and rows["hepconf"]["compiled"] is False
    assert rows["hepio"]["location"] == str(stack.egg)  # the egg entry on PYTHONPATH
    assert rows["hepio"]["version"] == "5.4.3"
    assert rows["pip"]["origin"] == "layer"
    _, data = check(layer.root, layer.env)
    assert not [p for p in data["problems"] if "hep" in p["message"]]


def test_layer_shadows_the_stack_after_an_upgrade(make_layer, stack):
    layer = make_layer()
    pip(layer, "install", "-q", "--upgrade", "hepnum<2")
    rows = listing(layer.root, layer.env)
    site = layer.root / "lib" / f"python{SHORT}" / "site-packages"
    assert rows["hepnum"]["version"] == imported(layer, "hepnum") == "1.24.2"
    assert rows["hepnum"]["origin"] == "layer"
    assert rows["hepnum"]["location"] == str(site)
    assert rows["hepnum"]["shadows"] == [
        {"version": "1.22.3", "location": str(stack.site_packages), "origin": "stack"}]
    assert rows["hepnum"]["requested"] is True
    # stack-only packages stay, from the stack
    for name in ("hepfit", "hepconf", "hepio"):
        assert rows[name]["origin"] == "stack" and rows[name]["shadows"] == []
    human = run_tool("list", str(layer.root), env=layer.env).stdout
    line = next(x for x in human.splitlines() if x.startswith("hepnum "))
    assert line.split()[:3] == ["hepnum", "1.24.2", "layer"]
    assert f"shadows 1.22.3 (stack) {stack.site_packages}" in human


def test_stack_shadows_the_layer_without_the_boot_hook(make_layer, stack):
    """The other direction: in a plain venv the stack's copy wins, and list says so."""
    layer = make_layer()
    pip(layer, "install", "-q", "--upgrade", "hepnum<2")
    env = dict(layer.env, LAYERVENV_BOOT_DISABLE="1")
    rows = listing(layer.root, env)
    assert rows["hepnum"]["version"] == imported(layer, "hepnum", env) == "1.22.3"
    assert rows["hepnum"]["origin"] == "stack"
    assert [(c["version"], c["origin"]) for c in rows["hepnum"]["shadows"]] == [
        ("1.24.2", "layer")]


def test_shadowed_only(make_layer):
    layer = make_layer()
    pip(layer, "install", "-q", "--upgrade", "hepnum<2", "hepconf")
    rows = listing(layer.root, layer.env, "--shadowed")
    assert {"hepnum", "hepconf"} <= set(rows)
    assert "hepfit" not in rows and "hepio" not in rows
    assert all(row["shadows"] for row in rows.values())
    human = run_tool("list", str(layer.root), "--shadowed", env=layer.env).stdout
    assert "hepfit" not in human and "shadows 0.9.0 (stack)" in human


def test_active_layer_is_the_default(make_layer):
    layer = make_layer()
    env = dict(layer.env, VIRTUAL_ENV=str(layer.root))
    assert listing(None, env)["pip"]["location"].startswith(str(layer.root))
    # an error in this layer (hepfit needs hepnum<1.27), so the answer tells layers apart
    pip(layer, "install", "-q", "--upgrade", "hepnum==2.0.0")
    default = check(None, env)
    assert default == check(layer.root, env)
    assert default[0] == 1 and default[1]["ok"] is False


@pytest.mark.parametrize("command", ["list", "check"])
def test_not_a_layer_is_a_one_line_error(tmp_path, stack_env, command):
    for args, env in (([str(tmp_path / "nowhere")], stack_env), ([str(tmp_path)], stack_env),
                      ([], stack_env)):
        result = run_tool(command, *args, env=env, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.mark.parametrize("command", ["list", "check"])
def test_help(command):
    result = run_tool(command, "--help")
    assert "DIR" in result.stdout and "VIRTUAL_ENV" in result.stdout
    assert ("--shadowed" in result.stdout) == (command == "list")


# --- check: conflict and abi -----------------------------------------------------------

def test_major_upgrade_breaks_the_compiled_stack_package(make_layer, stack):
    layer = make_layer()
    pip(layer, "install", "-q", "hepnum==2.0.0")
    code, data = check(layer.root, layer.env)
    assert code == 1 and data["ok"] is False
    conflict = ours(data, "conflict")
    assert [(p["severity"], p["distribution"]) for p in conflict] == [("error", "hepfit")]
    assert "hepnum<1.27" in conflict[0]["message"] and "2.0.0" in conflict[0]["message"]
    dependents = ours(data, "dependents")
    assert [(p["severity"], p["distribution"], p["distributions"]) for p in dependents] == [
        ("error", "hepnum", ["hepfit"])]
    assert "hepnum<1.27" in dependents[0]["message"]
    assert "'hepnum<2'" in dependents[0]["message"]
    human = run_tool("check", str(layer.root), env=layer.env, check=False)
    assert human.returncode == 1
    assert any(line.split()[:2] == ["error", "conflict"] for line in human.stdout.splitlines())
    assert any(line.split()[:2] == ["error", "dependents"]
               for line in human.stdout.splitlines())


def test_minor_upgrade_is_an_abi_warning_only(make_layer):
    layer = make_layer()
    pip(layer, "install", "-q", "--upgrade", "hepnum<2")
    _, data = check(layer.root, layer.env)
    assert not ours(data, "conflict")
    assert [(p["severity"], p["distribution"]) for p in ours(data, "abi")] == [
        ("warning", "hepnum")]
    pip(layer, "uninstall", "-q", "-y", "hepnum")
    assert not ours(check(layer.root, layer.env)[1], "abi", "conflict")


def test_requirements_of_layer_packages_met_by_the_stack(make_layer, tmp_path):
    """A layer package requiring more than the stack gives is a conflict; extras, markers."""
    layer = make_layer()
    wheels = tmp_path / "wheels"
    build_wheel(Dist("hepana", "1.0.0", requires=(
        "hepconf>=1.0",                                   # the stack has 0.9.0
        "hepnum>=1; python_version < '3'",                # not for this interpreter
        "hepio[fast]>=5",                                 # extra asked for...
        "nosuchdist>=1; extra == 'docs'",                 # ...not this one
    )), wheels)
    build_wheel(Dist("hepio", "5.7.0", requires=("hepnum>=9; extra == 'fast'",)), wheels)
    pip(layer, "install", "-q", "--no-deps", "--find-links", str(wheels), "hepana", "hepio==5.7.0")
    _, data = check(layer.root, layer.env)
    found = sorted((p["distribution"], p["severity"]) for p in ours(data, "conflict"))
    assert found == [("hepana", "error"), ("hepio", "error")], data
    messages = " ".join(p["message"] for p in ours(data, "conflict"))
    assert "hepconf>=1.0" in messages and "hepnum>=9" in messages
    assert "nosuchdist" not in messages


def test_missing_requirement_is_a_warning(make_layer, tmp_path):
    layer = make_layer()
    build_wheel(Dist("hepana", "1.0.0", requires=("nosuchdist",)), tmp_path / "w")
    pip(layer, "install", "-q", "--no-deps", "--find-links", str(tmp_path / "w"), "hepana")
    _, data = check(layer.root, layer.env)
    assert [(p["severity"], p["distribution"]) for p in ours(data, "conflict")] == [
        ("warning", "hepana")]


# --- check: the environment ------------------------------------------------------------

def _user_site(home: Path) -> Path:
    site = home / ".local" / "lib" / f"python{SHORT}" / "site-packages"
    site.mkdir(parents=True)
    write_dist_info(site, Dist("hepconf", "0.5.0"), installer="pip")
    write_dist_info(site, Dist("heplocal", "0.1.0"), installer="pip")
    return site


def test_user_site_is_visible_in_a_layer(make_layer, home):
    """A layer keeps the user site on (include-system-site-packages), behind PYTHONPATH."""
    layer = make_layer()
    site = _user_site(home)
    rows = listing(layer.root, layer.env)
    assert rows["heplocal"]["origin"] == "user-site"
    assert rows["heplocal"]["location"] == str(site)
    assert py(layer.python, "import heplocal; print(heplocal.ORIGIN)", layer.env) == str(site)
    # the stack's hepconf is on PYTHONPATH, ahead of the user site
    assert rows["hepconf"]["origin"] == "stack"
    assert [(c["version"], c["origin"]) for c in rows["hepconf"]["shadows"]] == [
        ("0.5.0", "user-site")]
    _, data = check(layer.root, layer.env)
    assert [(p["severity"], p["distribution"]) for p in ours(data, "user-site")] == [
        ("warning", "heplocal")]


def test_user_site_on_pythonpath_shadows_the_stack(make_layer, home):
    layer = make_layer()
    site = _user_site(home)
    env = dict(layer.env, PYTHONPATH=f"{site}:{layer.env['PYTHONPATH']}")
    rows = listing(layer.root, env)
    assert rows["hepconf"]["version"] == imported(layer, "hepconf", env) == "0.5.0"
    assert rows["hepconf"]["origin"] == "user-site"
    assert rows["hepconf"]["shadows"][0]["origin"] == "stack"
    _, data = check(layer.root, env)
    assert sorted(p["distribution"] for p in ours(data, "user-site")) == ["hepconf", "heplocal"]
    assert not ours(data, "python-mismatch")


@pytest.mark.parametrize("shape", ["{}:", ":{}", "{}::{}", "{}:.", "", "{}:./.", ".//:{}", "{}:./"])
def test_current_directory_on_pythonpath(make_layer, shape, tmp_path):
    layer = make_layer()
    stack_path = layer.env["PYTHONPATH"]
    value = shape.format(stack_path, stack_path) if shape else ":"
    env = dict(layer.env, PYTHONPATH=value)
    # it is real: a module in the current directory shadows the stack's hepnum
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "hepnum.py").write_text("__version__ = 'from-cwd'\n")
    assert py(layer.python, "import hepnum; print(hepnum.__version__)", env,
              cwd=tmp_path / "work") == "from-cwd"
    code, data = check(layer.root, env)
    assert code == 1
    cwd = ours(data, "cwd-on-path")
    assert len(cwd) == 1 and cwd[0]["severity"] == "error", data
    assert "PYTHONPATH" in cwd[0]["message"]


def test_site_packages_of_another_python_on_pythonpath(make_layer, tmp_path):
    layer = make_layer()
    other = "3.6" if SHORT != "3.6" else "3.9"
    foreign = tmp_path / "other" / "lib" / f"python{other}" / "site-packages"
    foreign.mkdir(parents=True)
    env = dict(layer.env, PYTHONPATH=f"{layer.env['PYTHONPATH']}:{foreign}")
    code, data = check(layer.root, env)
    mismatch = ours(data, "python-mismatch")
    assert code == 1 and len(mismatch) == 1 and mismatch[0]["severity"] == "error"
    assert str(foreign) in mismatch[0]["message"] and f"Python {other}" in mismatch[0]["message"]


def test_another_stack_set_up_than_the_recorded_one(tmp_path, stack, base_env):
    root = tmp_path / "layer"
    run_tool("create", str(root), "--setup", f". '{stack.setup_script}'", env=base_env)
    # made with --setup, checked where no stack is set up: the record is applied
    rows = listing(root, base_env)
    assert rows["hepnum"]["location"] == str(stack.site_packages)
    assert not ours(check(root, base_env)[1], "python-mismatch", "stack-missing")
    other = tmp_path / "AB" / "lib" / f"python{SHORT}" / "site-packages"
    other.mkdir(parents=True)
    code, data = check(root, dict(base_env, PYTHONPATH=str(other)))
    mismatch = ours(data, "python-mismatch")
    assert code == 1 and len(mismatch) == 1 and str(other) in mismatch[0]["message"]


def test_removed_interpreter(tmp_path, stack_env, stack):
    link = tmp_path / "cvmfs" / "python3"
    link.parent.mkdir()
    link.symlink_to(Path(stack.python).resolve())
    root = tmp_path / "layer"
    run_tool("create", str(root), "--python", str(link), "--without-pip", env=stack_env)
    link.unlink()
    code, data = check(root, stack_env)
    assert code == 1
    missing = ours(data, "stack-missing")
    assert missing and all(p["severity"] == "error" for p in missing)
    assert str(link) in missing[0]["message"]
    human = run_tool("check", str(root), env=stack_env, check=False)
    assert human.returncode == 1 and "stack-missing" in human.stdout
    result = run_tool("list", str(root), env=stack_env, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert str(link) in result.stderr


def test_a_moved_or_copied_layer(make_layer, tmp_path):
    """Its scripts name the old path: check says so (the scripts refuse to activate)."""
    layer = make_layer("made")
    assert not ours(check(layer.root, layer.env)[1], "moved")
    (tmp_path / "link").symlink_to(layer.root)  # the same layer by another path: not moved
    assert not ours(check(tmp_path / "link", layer.env)[1], "moved")
    shutil.copytree(layer.root, tmp_path / "copy", symlinks=True)
    for where, state in (("copy", "another directory"), ("moved", "which is gone")):
        if where == "moved":
            layer.root.rename(tmp_path / "moved")
        code, data = check(tmp_path / where, layer.env)
        assert code == 1
        [problem] = ours(data, "moved")
        assert problem["severity"] == "error"
        assert f"made in {layer.root} ({state})" in problem["message"]
        assert f"layervenv create --clear {tmp_path / where} --from" in problem["message"]


def test_check_and_list_in_a_shell_without_the_stack(make_layer, base_env, stack):
    """A layer made without --setup, looked at from a new shell: 'no problems' and a list
    without one stack package was all they said; now a warning says why."""
    layer = make_layer()
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "hepnum==2.0.0"],
                   env=layer.env, check=True, capture_output=True)
    assert check(layer.root, layer.env)[0] == 1  # with the stack: hepfit breaks
    _, data = check(layer.root, base_env)
    assert not errors(data), data
    [problem] = ours(data, "stack-not-set-up")
    assert problem["severity"] == "warning"
    assert f"PYTHONPATH lacks {stack.site_packages}" in problem["message"]
    result = run_tool("list", str(layer.root), env=base_env)
    assert result.stderr.startswith("layervenv: warning: the stack this layer was made on is "
                                    "not set up in this shell")
    assert result.stderr.count("\n") == 1
    assert "hepfit" not in result.stdout
    assert run_tool("list", str(layer.root), env=layer.env).stderr == ""
    assert not ours(check(layer.root, layer.env)[1], "stack-not-set-up")


def test_removed_stack_directory(tmp_path, stack_env):
    extra = tmp_path / "release" / "lib" / f"python{SHORT}" / "site-packages"
    extra.mkdir(parents=True)
    write_dist_info(extra, Dist("heprelease", "3.0.0"))
    env = dict(stack_env, PYTHONPATH=f"{extra}:{stack_env['PYTHONPATH']}")
    root = tmp_path / "layer"
    run_tool("create", str(root), "--without-pip", env=env)
    assert listing(root, env)["heprelease"]["origin"] == "stack"
    (tmp_path / "release").rename(tmp_path / "release-removed")
    code, data = check(root, env)
    missing = ours(data, "stack-missing")
    assert code == 1 and len(missing) == 1 and str(extra) in missing[0]["message"]
    assert "heprelease" not in listing(root, env)  # the probe still runs


# --- editable installs -----------------------------------------------------------------

@pytest.mark.parametrize(("backend", "requires"), [
    ("setuptools.build_meta", '["setuptools>=70"]'), ("hatchling.build", '["hatchling"]')])
def test_editable_install(make_layer, tmp_path, backend_wheels, stack, backend, requires):
    layer = make_layer()
    project = tmp_path / "hepconf-work"
    (project / "src" / "hepconf").mkdir(parents=True)
    (project / "src" / "hepconf" / "__init__.py").write_text("__version__ = '9.9.0'\n")
    text = (f'[build-system]\nrequires = {requires}\nbuild-backend = "{backend}"\n\n'
            '[project]\nname = "hepconf"\nversion = "9.9.0"\n')
    if backend.startswith("hatchling"):
        text += '\n[tool.hatch.build.targets.wheel]\npackages = ["src/hepconf"]\n'
    (project / "pyproject.toml").write_text(text)
    env = dict(layer.env, PIP_FIND_LINKS=f"{backend_wheels} {layer.env['PIP_FIND_LINKS']}")
    pip(layer, "install", "-q", "-e", str(project), env=env)
    rows = listing(layer.root, layer.env)
    assert rows["hepconf"]["version"] == imported(layer, "hepconf") == "9.9.0"
    assert rows["hepconf"]["origin"] == "editable"
    assert rows["hepconf"]["location"] == str(project)
    # the stack's copy is hidden; setuptools' hepconf.egg-info in src/ is the same project
    assert rows["hepconf"]["shadows"] == [
        {"version": "0.9.0", "location": str(stack.site_packages), "origin": "stack"}]
    assert not ours(check(layer.root, layer.env)[1], "conflict", "abi")


# --- speed -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_stack(tmp_path_factory):
    """The simulated stack plus 1,000 distributions written straight into it."""
    root = tmp_path_factory.mktemp("big") / "LCG_big"
    stack = build_stack(root, STACK_PYTHON)
    for dist in many_dists(1000):
        write_dist_info(stack.site_packages, dist)
    return stack


def test_thousand_distributions(big_stack, tmp_path, home):
    """All 1,000 distributions of a big stack are listed and none is a problem.  How fast
    is measured by benchmarks (inspect.* rows, benchmarks/list_check.py), not here: a
    timed assertion fails on a loaded machine and proves nothing on a quiet one."""
    env = big_stack.env(clean_env(home))
    root = tmp_path / "layer"
    run_tool("create", str(root), env=env)
    rows = json.loads(run_tool("list", str(root), "--format", "json", env=env).stdout)
    assert sum(row["name"].startswith("lcgpkg-") for row in rows) == 1000
    pip_list = subprocess.run([str(root / "bin" / "python"), "-m", "pip", "list",
                               "--format", "json"], env=env, capture_output=True, text=True,
                              check=True).stdout
    assert {row["name"] for row in json.loads(pip_list) if row["name"].startswith("lcgpkg-")
            } == {row["name"] for row in rows if row["name"].startswith("lcgpkg-")}
    result = run_tool("check", str(root), "--format", "json", env=env, check=False)
    assert result.returncode in (0, 1), result.stderr
    assert not [p for p in json.loads(result.stdout)["problems"] if "lcgpkg" in p["message"]]


# --- a real compiled package from PyPI ---------------------------------------------------

@pytest.mark.network
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy 1.26 wheels ship a .pyc
def test_real_numpy_2_in_the_layer_breaks_a_stack_package_built_on_numpy_1(tmp_path, home):
    """numpy 1.26.4 and numexpr 2.8.7 (compiled against numpy 1.x) in the stack, numpy 2
    in the layer: check flags it before anything is imported, and the import really fails."""
    python = Path(STACK_PYTHON).resolve()
    wheels = tmp_path / "download"
    subprocess.run([str(python), "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "-d", str(wheels), "numpy==1.26.4", "numexpr==2.8.7"],
                   check=True, capture_output=True)
    prefix = tmp_path / "stack"
    site = prefix / "lib" / f"python{SHORT}" / "site-packages"
    site.mkdir(parents=True)
    (prefix / "bin").mkdir()
    for wheel in sorted(wheels.glob("*.whl")):
        install_into(wheel, site, prefix / "bin", python)
    subprocess.run([str(python), "-m", "compileall", "-q", str(site)], check=True,
                   capture_output=True)
    before = tree_digest(prefix)
    env = clean_env(home, PYTHONPATH=str(site))
    root = tmp_path / "layer"
    run_tool("create", str(root), env=env)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--only-binary=:all:", "numpy==2.0.2"], env=env, check=True,
                   capture_output=True)
    rows = listing(root, env)
    assert rows["numpy"]["version"] == "2.0.2" and rows["numpy"]["origin"] == "layer"
    assert rows["numpy"]["shadows"][0]["version"] == "1.26.4"
    assert rows["numexpr"]["origin"] == "stack" and rows["numexpr"]["compiled"] is True
    code, data = check(root, env)
    # (the interpreter's own site-packages may add warnings: scipy there depends on numpy)
    dependents = [p for p in ours(data, "dependents") if p["severity"] == "error"]
    assert code == 1 and [(p["distribution"], p["distributions"]) for p in dependents] == [
        ("numpy", ["numexpr"])], data
    assert "numexpr 2.8.7 (built against numpy 1's C API)" in dependents[0]["message"]
    # and it is true: the stack's numexpr cannot be imported with the layer's numpy
    result = subprocess.run([str(root / "bin" / "python"), "-c", "import numexpr"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "NumPy" in result.stderr
    assert tree_digest(prefix) == before


# --- real-world layouts of big stacks ----------------------------------------------------

def _extra_site(tmp_path: Path, name: str = "extra") -> Path:
    """Another stack directory (a ``lib/pythonX.Y/site-packages``) to put on PYTHONPATH."""
    site = tmp_path / name / "lib" / f"python{SHORT}" / "site-packages"
    site.mkdir(parents=True)
    return site


def _on_pythonpath(env: dict[str, str], *entries: Path) -> dict[str, str]:
    return dict(env, PYTHONPATH=os.pathsep.join([*map(str, entries), env["PYTHONPATH"]]))


def _package(site: Path, package: str, version: str) -> None:
    (site / package).mkdir(parents=True, exist_ok=True)
    (site / package / "__init__.py").write_text(f"__version__ = {version!r}\n")


def _egg_info(site: Path, dirname: str, name: str, version: str,
              files: dict[str, str] | None = None) -> Path:
    """A setuptools ``.egg-info`` directory (``setup.py install`` or ``develop``)."""
    info = site / dirname
    info.mkdir(parents=True)
    (info / "PKG-INFO").write_text(f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\n")
    for filename, text in (files or {}).items():
        (info / filename).write_text(text)
    return info


def _zipped_egg(path: Path, name: str, version: str, requires: str = "",
                native: str = "") -> Path:
    """An easy_install zipped egg: the package and ``EGG-INFO/`` in one zip file."""
    import zipfile

    package = name.replace("-", "_")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{package}/__init__.py", f"__version__ = {version!r}\n")
        archive.writestr("EGG-INFO/PKG-INFO",
                         f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\n")
        archive.writestr("EGG-INFO/top_level.txt", f"{package}\n")
        if requires:
            archive.writestr("EGG-INFO/requires.txt", requires)
        if native:
            archive.writestr("EGG-INFO/native_libs.txt", native)
    return path


def test_zipped_eggs_on_pythonpath_and_in_easy_install_pth(make_layer, tmp_path):
    """Zipped eggs are importable (zipimport), so list shows them where they are."""
    layer = make_layer()
    stack_egg = _zipped_egg(tmp_path / f"hepzip-3.1-py{SHORT}.egg", "hepzip", "3.1",
                            requires="hepnum<1.0\n", native="hepzip/_c.so\n")
    site = layer.root / "lib" / f"python{SHORT}" / "site-packages"
    layer_egg = _zipped_egg(site / f"heplayerzip-0.4-py{SHORT}.egg", "heplayerzip", "0.4")
    (site / "easy-install.pth").write_text(f"./{layer_egg.name}\n")
    env = _on_pythonpath(layer.env, stack_egg)
    assert imported(layer, "hepzip", env) == "3.1" and imported(layer, "heplayerzip", env) == "0.4"
    rows = listing(layer.root, env)
    assert (rows["hepzip"]["version"], rows["hepzip"]["origin"], rows["hepzip"]["location"]) == (
        "3.1", "stack", str(stack_egg))
    assert rows["hepzip"]["compiled"] is True
    assert (rows["heplayerzip"]["version"], rows["heplayerzip"]["origin"]) == ("0.4", "layer")
    assert rows["heplayerzip"]["location"] == str(layer_egg)
    # the egg's requirements are read too (the stack's hepnum 1.22.3 does not meet <1.0)
    _, data = check(layer.root, env)
    assert [(p["severity"], p["distribution"]) for p in ours(data, "conflict")] == [
        ("error", "hepzip")], data


def test_metadata_starting_with_a_byte_order_mark(make_layer, tmp_path):
    """Files written by Windows editors or CMake scripts start with a UTF-8 BOM."""
    layer = make_layer()
    site = _extra_site(tmp_path)
    _package(site, "hepbom", "3.1")
    (site / "hepbom.egg-info").write_bytes(  # distutils' single-file egg-info
        b"\xef\xbb\xbfName: HepBom\nVersion: 3.1\n")
    info = site / "hep_bom_two-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_bytes(b"\xef\xbb\xbfName: hep-bom-two\nVersion: 1.0.post1\n")
    rows = listing(layer.root, _on_pythonpath(layer.env, site))
    assert rows["HepBom"]["version"] == "3.1"
    assert rows["hep-bom-two"]["version"] == "1.0.post1"


@pytest.mark.parametrize(("stack_version", "layer_version", "expected"), [
    ("1.22.3", "1.22.3.0", None),                     # the same version, spelt otherwise
    ("9.0.1", "10.0.0", ("dependents", "error", "requires hepmat<10", "'hepmat<10'")),
    ("1.26.4", "2.0.0rc1", ("dependents", "warning", "may break", "hepmatfit 1.0.0")),
    ("9.4-lcg", "10.0.0", ("dependents", "error", "requires hepmat<10", "'hepmat<10'")),
    ("2.1.0", "1.26.4", ("dependents", "warning", "may break", "hepmatfit 1.0.0")),  # down
    ("1.22.3", "1.24.2", ("abi", "warning", "within 1.x", "hepmatfit 1.0.0")),
])
def test_abi_compares_versions_as_versions(make_layer, tmp_path, stack_version, layer_version,
                                           expected):
    """A major change: every dependent is named (an error where its requirement excludes
    the new version); within one major version: the compiled ones, a warning."""
    layer = make_layer()
    site = _extra_site(tmp_path)
    write_dist_info(site, Dist("hepmat", stack_version))
    write_dist_info(site, Dist("hepmatfit", "1.0.0", requires=("hepmat<10",), compiled=True))
    write_dist_info(layer.root / "lib" / f"python{SHORT}" / "site-packages",
                    Dist("hepmat", layer_version), installer="pip")
    _, data = check(layer.root, _on_pythonpath(layer.env, site))
    found = [p for p in ours(data, "abi", "dependents") if p["distribution"] == "hepmat"]
    if expected is None:
        assert found == [], found
        return
    kind, severity, *texts = expected
    assert [(p["kind"], p["severity"], p["distributions"]) for p in found] == [
        (kind, severity, ["hepmatfit"])], found
    assert all(text in found[0]["message"] for text in texts), found


def test_each_problem_is_reported_once(make_layer, tmp_path, stack):
    """A requirement listed twice, a second copy of the stack, a foreign directory and a
    removed one spelt twice on PYTHONPATH: one problem each."""
    layer = make_layer()
    site = _extra_site(tmp_path)
    write_dist_info(site, Dist("hepdup", "1.0.0", compiled=True, requires=(
        "hepnum<1.0", 'hepnum<1.0; python_version >= "3"', "nosuchdist", "nosuchdist>=1")))
    copy = tmp_path / "copy" / "site-packages"
    import shutil
    shutil.copytree(stack.site_packages, copy, symlinks=True)
    foreign = tmp_path / "py36" / "lib" / ("python3.6" if SHORT != "3.6" else "python3.9") \
        / "site-packages"
    foreign.mkdir(parents=True)
    env = _on_pythonpath(layer.env, site, copy, foreign, f"{foreign}/")
    pip(layer, "install", "-q", "hepnum==2.0.0", env=layer.env)
    _, data = check(layer.root, env)
    messages = [(p["kind"], p["severity"], p["message"]) for p in data["problems"]]
    assert len(messages) == len(set(messages)), data
    assert len(ours(data, "python-mismatch")) == 1, data
    assert sorted((p["severity"], p["distribution"], tuple(p["distributions"]))
                  for p in ours(data, "dependents")) == [
        ("error", "hepnum", ("hepdup", "hepfit"))], data
    conflicts = sorted((p["severity"], p["distribution"]) for p in ours(data, "conflict"))
    assert conflicts == [("error", "hepdup"), ("error", "hepfit"), ("warning", "hepdup")], data


def test_a_removed_directory_on_pythonpath_twice_is_missing_once(tmp_path, stack_env):
    extra = _extra_site(tmp_path, "release")
    write_dist_info(extra, Dist("heprelease", "3.0.0"))
    env = _on_pythonpath(stack_env, extra, Path(f"{extra}/"), extra)
    root = tmp_path / "layer"
    run_tool("create", str(root), "--without-pip", env=env)
    (tmp_path / "release").rename(tmp_path / "release-removed")
    code, data = check(root, env)
    assert code == 1 and len(ours(data, "stack-missing")) == 1, data


NOISY = "import sys; sys.stdout.buffer.write(b'caf\\xe9 \\xff'); sys.stdout.flush(); " \
        "sys.stderr.buffer.write(b'\\xff\\xfe warn\\n'); sys.stderr.flush()"


@pytest.mark.parametrize("sitecustomize", [
    NOISY,                                           # bytes that are not UTF-8, no newline
    "print('stack ready')\nraise RuntimeError('broken site \\xe9')\n",
    "import sys\nsys.stdout = open('/dev/null', 'w')\n",
])
def test_a_noisy_or_broken_stack_sitecustomize(make_layer, tmp_path, home, sitecustomize):
    """What a stack's sitecustomize.py or a .pth prints (in any encoding), or how it
    fails, is not the probe's report.  (The tool runs isolated here: its own Python
    would run that sitecustomize too.)"""
    layer = make_layer()
    site = _extra_site(tmp_path)
    (site / "sitecustomize.py").write_text(sitecustomize)
    user = home / ".local" / "lib" / f"python{SHORT}" / "site-packages"
    user.mkdir(parents=True)
    (user / "noisy.pth").write_text(NOISY + "\n")
    env = _on_pythonpath(layer.env, site)
    assert listing(layer.root, env, isolated=True)["hepnum"]["version"] == "1.22.3"
    assert not errors(check(layer.root, env, isolated=True)[1])
    assert run_tool("list", str(layer.root), env=env, isolated=True).stdout.startswith("Name ")


def test_an_interpreter_failing_with_undecodable_output_is_one_line(make_layer, tmp_path):
    layer = make_layer()
    site = _extra_site(tmp_path)
    (site / "sitecustomize.py").write_text(
        "import os\nos.write(2, b'Traceback\\nfatal: caf\\xe9 \\xff\\n')\nos._exit(3)\n")
    env = _on_pythonpath(layer.env, site)
    for command in ("list", "check"):
        result = run_tool(command, str(layer.root), env=env, check=False, isolated=True)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "exit 3" in result.stderr, result.stderr
        assert "fatal: caf" in result.stderr


def _unprivileged(command: list[str], locked: Path) -> list[str]:
    """``command`` as a process that file permissions apply to (``locked`` is a
    ``chmod 000`` directory it must not be able to read).

    The tests run as root here, and root reads a ``chmod 000`` directory anyway: drop
    the two capabilities that let it (root stays the owner of the test's files, which
    keep their owner's permissions, and of the interpreters under /root).
    """
    if os.geteuid() != 0:
        return command
    setpriv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    try:
        probe = subprocess.run([*setpriv, "ls", str(locked)], check=False, capture_output=True)
    except FileNotFoundError:
        pytest.skip("setpriv is not installed: root cannot be kept out of a directory")
    if probe.returncode == 0 or b"setpriv" in probe.stderr:
        pytest.skip("cannot drop root's permission override here (setpriv)")
    return [*setpriv, *command]


def test_unreadable_directories(make_layer, tmp_path, stack_env):
    """A directory on PYTHONPATH, or a distribution's metadata, that cannot be read; a
    recorded stack directory behind a parent that cannot be read."""
    from helpers import tool_command

    release = _extra_site(tmp_path, "release")
    write_dist_info(release, Dist("heprelease", "1.0.0"))
    layer = make_layer("layer", env=_on_pythonpath(stack_env, release))
    locked = _extra_site(tmp_path, "locked")
    write_dist_info(locked, Dist("heplocked", "1.0.0"))
    site = _extra_site(tmp_path)
    write_dist_info(site, Dist("hepok", "1.0.0"))
    secret = write_dist_info(site, Dist("hepsecret", "2.0.0"))
    env = _on_pythonpath(layer.env, site, locked)
    closed = (locked, secret, tmp_path / "release")
    for path in closed:
        path.chmod(0)
    try:
        lines = {}
        for command in ("list", "check"):
            lines[command] = subprocess.run(
                _unprivileged(tool_command(command, str(layer.root), "--format", "json"),
                              locked),
                env=env, capture_output=True, text=True, check=False)
    finally:
        for path in closed:
            path.chmod(0o755)
    listed = lines["list"]
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert "hepok" in rows and not {"heplocked", "hepsecret", "heprelease"} & set(rows)
    assert listed.stderr.count("\n") == 1 and listed.stderr.startswith("layervenv: warning:")
    for path in (locked, secret, release):
        assert str(path) in listed.stderr, listed.stderr
    checked = lines["check"]
    assert checked.returncode == 1, checked.stderr
    data = json.loads(checked.stdout)
    assert_check_shape(data)
    found = sorted((p["severity"], p["message"].split()[0]) for p in ours(data, "unreadable"))
    assert found == [("error", str(locked)), ("warning", str(secret))], data
    missing = ours(data, "stack-missing")
    assert len(missing) == 1 and f"{release} (permission denied)" in missing[0]["message"]


def test_requires_txt_sections_of_an_egg_info(make_layer, tmp_path):
    """setuptools' requires.txt: sections are extras and markers, never unconditional."""
    layer = make_layer()
    site = _extra_site(tmp_path)
    _package(site, "hepold", "0.3")
    _egg_info(site, "hepold-0.3-py3.egg-info", "hepold", "0.3", {"requires.txt": (
        "hepnum>=1\n\n"
        '[:python_version < "3"]\nhepnum>=99\n\n'
        "[plot]\nhepmissing\n\n"
        '[gui:sys_platform == "win32"]\nhepwin>=1\n\n'
        "[:sys_platform == 'win32']\nhepwin2\n\n"
        "[Fast:python_version >= '3']\nhepnum<1\n")})
    env = _on_pythonpath(layer.env, site)
    _, data = check(layer.root, env)
    assert not [p for p in ours(data, "conflict") if p["distribution"] == "hepold"], data
    # a layer distribution asks for the extras: their requirements now count
    wheels = tmp_path / "wheels"
    build_wheel(Dist("hepana", "1.0.0", requires=("hepold[gui,plot,fast]",)), wheels)
    pip(layer, "install", "-q", "--no-deps", "--find-links", str(wheels), "hepana", env=env)
    _, data = check(layer.root, env)
    found = sorted((p["severity"], p["message"].split(" requires ")[1].split(",")[0])
                   for p in ours(data, "conflict") if p["distribution"] == "hepold")
    assert found == [("error", "hepnum<1"), ("warning", "hepmissing")], data


def test_metadata_is_read_up_to_its_headers_only(make_layer, tmp_path):
    """Long descriptions (whole README files, megabytes in big stacks) are never read: a
    METADATA whose body is 4 GiB (sparse) is listed by an interpreter limited to 1 GiB."""
    layer = make_layer()
    site = _extra_site(tmp_path)
    for dist in (Dist("hepbig", "1.0.0", requires=("hepnum<1.0",)),):
        info = write_dist_info(site, dist)
        with open(info / "METADATA", "r+b") as handle:
            handle.seek(0, os.SEEK_END)
            handle.truncate(handle.tell() + (4 << 30))
    egg_info = _egg_info(site, "hepbigegg-2.0-py3.egg-info", "hepbigegg", "2.0")
    with open(egg_info / "PKG-INFO", "ab") as handle:
        handle.write(b"\nA long description.\n")
        handle.truncate(handle.tell() + (4 << 30))
    env = _on_pythonpath(layer.env, site)
    from helpers import tool_command

    for command in ("list", "check"):
        limited = ["sh", "-c", 'ulimit -v 1048576 && exec "$@"', "sh",
                   *tool_command(command, str(layer.root), "--format", "json")]
        result = subprocess.run(limited, env=env, capture_output=True, text=True, check=False)
        assert result.returncode in (0, 1), result.stderr
        if command == "list":
            rows = {row["name"]: row for row in json.loads(result.stdout)}
            assert rows["hepbig"]["version"] == "1.0.0" and rows["hepbigegg"]["version"] == "2.0"
        else:
            assert [p["distribution"] for p in ours(json.loads(result.stdout), "conflict")] == [
                "hepbig"]


def test_an_unparseable_requirement_hides_nothing_else(make_layer, tmp_path):
    """A Requires-Dist line packaging cannot read is reported (a warning: it is not
    checked); the distribution's other requirements still count, for abi too."""
    layer = make_layer()
    site = _extra_site(tmp_path)
    write_dist_info(site, Dist("hepbadreq", "1.0.0", compiled=True, requires=(
        "hepnum >= 1.0.*junk", "hepnum<2", "hepconf>=0.1 extra-words",
        "hepnum>=1.0junk; extra == 'test'")))
    env = _on_pythonpath(layer.env, site)
    pip(layer, "install", "-q", "hepnum==2.0.0", env=layer.env)
    code, data = check(layer.root, env)
    assert code == 1
    assert ("error", "hepbadreq") in [(p["severity"], p["distribution"])
                                      for p in ours(data, "conflict")], data
    dependents = ours(data, "dependents")
    assert len(dependents) == 1 and "hepbadreq 1.0.0 (requires hepnum<2)" in \
        dependents[0]["message"], data
    unread = ours(data, "metadata")
    assert [(p["severity"], p["distribution"]) for p in unread] == [("warning", "hepbadreq")] * 2
    assert sorted(p["message"].split("'")[1] for p in unread) == [
        "hepconf>=0.1 extra-words", "hepnum >= 1.0.*junk"], unread


def test_legacy_editable_install(make_layer, tmp_path, stack):
    """``setup.py develop``: an .egg-link in the layer's site-packages, the project on a
    line of easy-install.pth, NAME.egg-info in the project."""
    layer = make_layer()
    project = tmp_path / "hepconf-work"
    _package(project, "hepconf", "9.9.0")
    _egg_info(project, "hepconf.egg-info", "hepconf", "9.9.0",
              {"top_level.txt": "hepconf\n", "SOURCES.txt": "setup.py\n"})
    site = layer.root / "lib" / f"python{SHORT}" / "site-packages"
    (site / "hepconf.egg-link").write_text(f"{project}\n.")
    (site / "easy-install.pth").write_text(f"{project}\n")
    assert imported(layer, "hepconf") == "9.9.0"
    row = listing(layer.root, layer.env)["hepconf"]
    assert (row["version"], row["origin"], row["location"]) == ("9.9.0", "editable", str(project))
    assert row["editable"] == str(project)
    assert row["shadows"] == [
        {"version": "0.9.0", "location": str(stack.site_packages), "origin": "stack"}]


def test_compiled_packages_installed_by_setup_py(make_layer, tmp_path):
    """``setup.py install`` leaves an .egg-info directory: its .so files are named in
    installed-files.txt, or only sit in the package (no installed-files.txt)."""
    layer = make_layer()
    site = _extra_site(tmp_path)
    so = f".cpython-{SHORT.replace('.', '')}-x86_64-linux-gnu.so"
    _package(site, "hepcext", "1.0")
    (site / "hepcext" / f"_core{so}").write_bytes(b"\x7fELF")
    _egg_info(site, "hepcext-1.0-py3.egg-info", "hepcext", "1.0", {
        "requires.txt": "hepnum\n", "top_level.txt": "hepcext\n",
        "installed-files.txt": f"../hepcext/__init__.py\n../hepcext/_core{so}\n"
                               "PKG-INFO\nrequires.txt\n"})
    _package(site, "hepcpkg", "1.0")
    (site / "hepcpkg" / "sub").mkdir()
    (site / "hepcpkg" / "sub" / f"_fit{so}").write_bytes(b"\x7fELF")
    _egg_info(site, "hepcpkg-1.0-py3.egg-info", "hepcpkg", "1.0",
              {"requires.txt": "hepnum\n", "top_level.txt": "hepcpkg\n"})
    (site / f"hepcmod{so}").write_bytes(b"\x7fELF")
    _egg_info(site, "hepcmod-1.0-py3.egg-info", "hepcmod", "1.0",
              {"requires.txt": "hepnum\n", "top_level.txt": "hepcmod\n"})
    _package(site, "heppure", "1.0")
    _egg_info(site, "heppure-1.0-py3.egg-info", "heppure", "1.0",
              {"requires.txt": "hepnum\n", "top_level.txt": "heppure\n"})
    env = _on_pythonpath(layer.env, site)
    rows = listing(layer.root, env)
    assert {name: rows[name]["compiled"] for name in ("hepcext", "hepcpkg", "hepcmod", "heppure")
            } == {"hepcext": True, "hepcpkg": True, "hepcmod": True, "heppure": False}
    pip(layer, "install", "-q", "hepnum==2.0.0", env=layer.env)
    # a major change: every dependent is named; no C API of hepnum is known, so only
    # hepfit, whose requirement excludes 2.0.0, is an error
    found = {p["severity"]: p["distributions"] for p in ours(check(layer.root, env)[1],
                                                              "dependents")}
    assert found == {"error": ["hepfit"],
                     "warning": ["hepcext", "hepcmod", "hepcpkg", "heppure"]}, found


def _listed_out_of_order(site: Path, name: str, versions: list[str]) -> tuple[str, str]:
    """Two versions of ``name`` whose dist-info directories this file system lists in
    the opposite of sorted order, when it can (ext4 lists by hash, tmpfs newest first)."""
    candidates = [(a, b) for a in versions for b in versions if a < b]
    for older, newer in candidates:
        for version in (older, newer):
            (site / f"{name}-{version}.dist-info").mkdir()
        listed = [e for e in os.listdir(site) if e.startswith(f"{name}-")]
        for version in (older, newer):
            (site / f"{name}-{version}.dist-info").rmdir()
        if listed != sorted(listed):
            return older, newer
    return candidates[0]


def test_two_versions_side_by_side_in_one_directory(make_layer, tmp_path):
    """pip interrupted mid-upgrade leaves two dist-info of one name in one directory:
    list shows the one importlib.metadata (and pip) report, check says what happened."""
    layer = make_layer()
    site = _extra_site(tmp_path)
    older, newer = _listed_out_of_order(site, "hepdup", ["1.0.0", "1.1.0", "1.2.0", "1.3.0",
                                                         "2.0.0", "2.1.0"])
    write_dist_info(site, Dist("hepdup", older))
    write_dist_info(site, Dist("hepdup", newer))
    env = _on_pythonpath(layer.env, site)
    reported = py(layer.python, "import importlib.metadata as m; print(m.version('hepdup'))",
                  env)
    row = listing(layer.root, env)["hepdup"]
    assert row["version"] == reported and row["location"] == str(site)
    other = older if reported == newer else newer
    assert row["shadows"] == [{"version": other, "location": str(site), "origin": "stack"}]
    _, data = check(layer.root, env)
    problems = [p for p in ours(data, "metadata") if p["distribution"] == "hepdup"]
    assert len(problems) == 1 and problems[0]["severity"] == "warning", data
    assert older in problems[0]["message"] and newer in problems[0]["message"]
    assert str(site) in problems[0]["message"]
    # that directory is the stack's: never advise editing it
    assert "remove" not in problems[0]["message"] and "layer" in problems[0]["message"]
