"""``layervenv install``: pip and a real uv (from PyPI, cached) install only what the stack lacks.

The reference is the layer's site-packages as a directory listing and
``importlib.metadata`` in the layer's own interpreter (which copy wins), never the
tool's own report; the lock is read with tomllib.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from helpers import missing, run_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from layervenv.services.simstack import Dist, build_wheel

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
UV_WHEELS = REPO / ".cache" / "wheels-uv"


@pytest.fixture(scope="session")
def uv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a real ``uv`` binary, taken out of uv's wheel from PyPI (fetched
    once into .cache/wheels-uv by dev/test; here too when network tests are on)."""
    wheels = sorted(UV_WHEELS.glob("uv-*.whl"))
    if not wheels:
        if os.environ.get("LAYERVENV_NETWORK_TESTS") != "1":
            missing("no uv wheel in .cache/wheels-uv",
                    "dev/test fetches it; or set LAYERVENV_NETWORK_TESTS=1")
        UV_WHEELS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary", ":all:", "-d", str(UV_WHEELS), "uv"], check=True)
        wheels = sorted(UV_WHEELS.glob("uv-*.whl"))
    out = tmp_path_factory.mktemp("uv-bin")
    with zipfile.ZipFile(wheels[-1]) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".data/scripts/uv"))
        (out / "uv").write_bytes(archive.read(member))
    (out / "uv").chmod(stat.S_IRWXU)
    return out


@pytest.fixture
def myana(tmp_path: Path) -> Path:
    """A find-links directory with ``myana`` 1.0, which needs ``hepconf>=0.9`` and ``hepnum``
    (both in the stack at acceptable versions, and newer in the stack's wheelhouse)."""
    links = tmp_path / "links"
    build_wheel(Dist("myana", "1.0", requires=("hepconf>=0.9", "hepnum")), links)
    return links


@pytest.fixture
def env(stack_env: dict[str, str], uv_bin: Path) -> dict[str, str]:
    return dict(stack_env, PATH=f"{uv_bin}{os.pathsep}{stack_env['PATH']}",
                UV_CACHE_DIR=str(Path(stack_env["HOME"]) / "uv-cache"))


def site_contents(root: Path) -> set[str]:
    """Names of the distributions in the layer's own site-packages (a directory listing)."""
    site = next(root.glob("lib/python*/site-packages"))
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def winners(python: Path, env: dict[str, str], *names: str) -> dict[str, tuple[str, str]]:
    """name -> (version, directory) of the copy that wins, by importlib.metadata in the
    layer's own interpreter."""
    code = ("import importlib.metadata as m, json, sys\n"
            "print(json.dumps({n: [m.version(n), str(m.distribution(n)._path.parent)] "
            "for n in sys.argv[1:]}))")
    out = subprocess.run([str(python), "-c", code, *names], env=env, capture_output=True,
                         text=True, check=True).stdout
    return {k: tuple(v) for k, v in json.loads(out).items()}


def install(layer: Path, env: dict[str, str], *args: str) -> dict:
    result = run_tool("install", str(layer), *args, "--format", "json", env=env)
    return json.loads(result.stdout)


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_installs_only_what_the_stack_lacks(make_layer, env, stack, myana, installer) -> None:
    layer = make_layer(env=env)
    before = site_contents(layer.root)
    report = install(layer.root, env, "--installer", installer, "--find-links", str(myana),
                     "myana")
    assert site_contents(layer.root) - before == {"myana"}
    assert report["installed"] == [{"name": "myana", "version": "1.0"}]
    assert report["kept"] == 2  # myana's two requirements, both met by the stack
    seen = winners(layer.python, env, "myana", "hepconf", "hepnum")
    assert seen["myana"][0] == "1.0" and str(layer.root) in seen["myana"][1]
    assert seen["hepconf"] == ("0.9.0", str(stack.site_packages))
    assert seen["hepnum"] == ("1.22.3", str(stack.site_packages))


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_an_upgrade_asked_for_is_installed(make_layer, env, stack, installer) -> None:
    layer = make_layer(env=env)
    before = site_contents(layer.root)
    install(layer.root, env, "--installer", installer, "hepnum>=1.24")
    assert site_contents(layer.root) - before == {"hepnum"}
    version, where = winners(layer.python, env, "hepnum")["hepnum"]
    assert version.split(".")[:2] >= ["1", "24"] and str(layer.root) in where


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_the_stacks_own_version_installs_nothing(make_layer, env, stack, installer) -> None:
    layer = make_layer(env=env)
    before = site_contents(layer.root)
    report = install(layer.root, env, "--installer", installer, "hepconf==0.9.0")
    assert site_contents(layer.root) == before
    assert report["installed"] == []
    assert winners(layer.python, env, "hepconf")["hepconf"] == ("0.9.0",
                                                               str(stack.site_packages))


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_lock_marks_only_what_was_asked(make_layer, env, stack, myana, tmp_path,
                                        installer) -> None:
    """An upgrade pulled in as a dependency is not marked requested (uv would mark it)."""
    links = tmp_path / "links2"
    build_wheel(Dist("myana2", "1.0", requires=("hepconf>=1.0", "hepnum")), links)
    layer = make_layer(env=env)
    install(layer.root, env, "--installer", installer, "--find-links", str(links), "myana2")
    assert {"myana2", "hepconf"} <= site_contents(layer.root)
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(layer.root), "-o", str(lock), "--find-links", str(links), env=env)
    packages = tomllib.loads(lock.read_text())["packages"]
    names = {p["name"] for p in packages}
    assert {"myana2", "hepconf"} <= names
    requested = {p["name"] for p in packages
                 if p.get("tool", {}).get("layervenv", {}).get("requested")}
    assert requested == {"myana2"}
    site = next(layer.root.glob("lib/python*/site-packages"))
    assert [p.name for p in site.glob("hepconf-*.dist-info/REQUESTED")] == []


def test_pip_and_uv_install_the_same_names(make_layer, env, myana) -> None:
    """Same request, two fresh layers: the same distributions land in the layer; the
    times are printed for the record (-s shows them), not checked."""
    got = {}
    for installer in ("pip", "uv"):
        layer = make_layer(f"layer-{installer}", env=env)
        before = site_contents(layer.root)
        start = time.monotonic()
        report = install(layer.root, env, "--installer", installer, "--find-links",
                         str(myana), "myana", "hepio>=5.6")
        print(f"{installer}: {time.monotonic() - start:.2f} s, {report['installed']}")
        got[installer] = site_contents(layer.root) - before
    assert got["pip"] == got["uv"] == {"myana", "hepio"}


@pytest.mark.parametrize("name", ["pip", "uv"])
def test_every_installer_of_the_registry_installs_over_the_stack(make_layer, env, stack, myana,
                                                                monkeypatch, name) -> None:
    """The one interface, called as every command calls it (no CLI): the installer the
    registry gives for ``name`` puts a real wheel into a real layer and only it (its two
    requirements stay the stack's), marked requested, as the layer's own interpreter
    (importlib.metadata) sees it."""
    from layervenv.inspection.pipeline import inspect_layer
    from layervenv.model.layer import Layer
    from layervenv.services.installers import INSTALLERS, InstallTarget, installer_type
    from layervenv.services.packages import Sources

    assert name in INSTALLERS
    monkeypatch.setenv("PATH", env["PATH"])  # uv is found on PATH, as the command finds it
    layer = make_layer(f"via-{name}", env=env)
    before = site_contents(layer.root)
    opened = Layer.open(layer.root)
    seen = inspect_layer(opened, env, need_interpreter=True)
    installer = installer_type(name).ready(Sources(find_links=(str(myana),)))
    notes = installer.install(InstallTarget(opened.python, opened.site_packages, seen.environ,
                                            seen.view), ["myana"], {"myana"})
    assert installer.name == name and notes == []
    assert site_contents(layer.root) - before == {"myana"}
    code = ("import importlib.metadata as m; d = m.distribution('myana'); "
            "print(d.version, d.read_text('REQUESTED') is not None)")
    shown = subprocess.run([str(layer.python), "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout.split()
    assert shown == ["1.0", "True"]
    assert winners(layer.python, env, "hepconf")["hepconf"] == ("0.9.0", str(stack.site_packages))


def test_uv_missing_is_one_line_exit_2(make_layer, stack_env, tmp_path) -> None:
    layer = make_layer()
    env = dict(stack_env, PATH=f"{layer.root / 'bin'}{os.pathsep}/usr/bin:/bin")
    result = run_tool("install", str(layer.root), "--installer", "uv", "hepconf",
                      env=env, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "uv" in result.stderr


def test_the_active_layer_is_the_default(make_layer, stack_env, tmp_path) -> None:
    """No DIR: the layer in $VIRTUAL_ENV, as list and check; a package named like a
    directory here that is not a layer is still a package."""
    layer = make_layer()
    env = dict(stack_env, VIRTUAL_ENV=str(layer.root))
    (tmp_path / "hepconf").mkdir()
    run_tool("install", "hepconf>=1.0", "hepio>=5.6", "--installer", "pip", env=env, cwd=tmp_path)
    assert {"hepconf", "hepio"} <= site_contents(layer.root)
    nothing = run_tool("install", str(layer.root), env=env, check=False)
    assert nothing.returncode == 2 and "at least one package" in nothing.stderr


@settings(max_examples=60, deadline=None)
@given(name=st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True),
       version=st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4}){0,3}((a|b|rc)[0-9]{1,2})?"
                             r"(\.post[0-9])?(\.dev[0-9])?", fullmatch=True),
       requires=st.lists(st.sampled_from(["hepnum", "hepconf>=0.9", "numpy<2; python_version>'3'",
                                          "extra-dep; extra == 'plot'"]), unique=True))
def test_a_stub_wheel_says_what_it_stands_for(tmp_path_factory, name, version, requires):
    """A stub is a wheel whose file name and METADATA (read as importlib.metadata reads
    it) give the stack copy's name, version and requirements, and nothing to install."""
    import importlib.metadata as md

    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    from layervenv.inspection.effective_view import Copy, Distribution
    from layervenv.services.installers import write_stub_wheel

    out = tmp_path_factory.mktemp("stubs")
    copy = Copy(name=name, key=canonicalize_name(name), version=version, origin="stack",
                location="/s", path_entry="/s", metadata="", requires=list(requires),
                compiled=False, requested=False, editable=None)
    assert write_stub_wheel(Distribution(winner=copy), out)
    (wheel,) = out.glob("*.whl")
    parsed = parse_wheel_filename(wheel.name)
    assert parsed[0] == canonicalize_name(name) and parsed[1] == Version(version)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(out / "x")
        assert all(".dist-info/" in n for n in archive.namelist())
    (dist,) = md.distributions(path=[str(out / "x")])
    assert dist.metadata["Name"] == name and Version(dist.version) == Version(version)
    assert (dist.requires or []) == list(requires)


@pytest.mark.network
def test_uv_over_a_real_wheel_stack(real_stack, uv_bin, tmp_path) -> None:
    """A real stack (numpy 1.24, scipy, pandas, awkward, iminuit, ... from PyPI): a package
    needing five of them brings only itself; uv alone would fetch them again."""
    from helpers import clean_env

    env = real_stack.env(clean_env(tmp_path))
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(real_stack.wheelhouse),
               PATH=f"{uv_bin}{os.pathsep}{env['PATH']}", UV_CACHE_DIR=str(tmp_path / "uvc"))
    links = tmp_path / "links"
    build_wheel(Dist("myfit", "0.1", requires=("numpy>=1.20", "iminuit", "awkward>=2",
                                               "pandas", "python-dateutil")), links)
    layer = tmp_path / "layer"
    run_tool("create", str(layer), env=env)
    before = site_contents(layer)
    report = install(layer, env, "--installer", "uv", "--find-links", str(links), "myfit")
    assert site_contents(layer) - before == {"myfit"}
    assert report["kept"] >= 5
    seen = winners(layer / "bin" / "python", env, "numpy", "iminuit", "pandas")
    assert all(str(real_stack.site_packages) == where for _, where in seen.values())
    assert seen["numpy"][0] == real_stack.versions["numpy"]
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(layer), "-o", str(lock), "--find-links", str(links), env=env)
    packages = tomllib.loads(lock.read_text())["packages"]
    assert [p["name"] for p in packages if p["tool"]["layervenv"]["requested"]] == ["myfit"]


def _broken_links(tmp_path: Path) -> Path:
    """A find-links directory whose ``boom`` wheel declares a requirement pip cannot parse:
    pip (a real one) ends with ``ERROR: Exception:`` and a traceback naming the cause."""
    links = tmp_path / "broken"
    links.mkdir()
    with zipfile.ZipFile(links / "boom-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr("boom/__init__.py", "")
        archive.writestr("boom-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: boom\n"
                         "Version: 1.0\nRequires-Dist: foo (>=1.0 ; bar\n")
        archive.writestr("boom-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("boom-1.0.dist-info/RECORD", "")
    return links


def test_a_pip_traceback_shows_its_cause(make_layer, stack_env, tmp_path) -> None:
    """The last line of the message is the exception pip's traceback ends with, not pip's
    ``ERROR: Exception:``; with -v, pip's whole output (the traceback) is there too."""
    layer = make_layer()
    links = _broken_links(tmp_path)
    args = ("install", str(layer.root), "--installer", "pip", "--find-links", str(links), "boom")
    result = run_tool(*args, env=stack_env, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert "InvalidRequirement" in lines[-1] and "(>=1.0 ;" in lines[-1], result.stderr
    assert "Traceback" not in result.stderr and "File \"" not in result.stderr
    verbose = run_tool(*args, "-v", env=stack_env, check=False)
    assert verbose.returncode == result.returncode
    assert "Traceback (most recent call last):" in verbose.stderr
    assert "InvalidRequirement" in verbose.stderr.strip().splitlines()[-1]


def test_a_package_pip_cannot_find_is_named(make_layer, stack_env) -> None:
    """pip's own ERROR lines (no traceback): the one that names the missing package."""
    layer = make_layer()
    result = run_tool("install", str(layer.root), "--installer", "pip", "nosuchpkg-xyz",
                      env=dict(stack_env, PIP_NO_INDEX="1"), check=False)
    assert result.returncode != 0
    assert "No matching distribution found for nosuchpkg-xyz" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_the_stacks_version_shadowed_by_the_layer_is_named(make_layer, env, stack,
                                                           installer) -> None:
    """The layer holds hepnum 1.24.2 over the stack's 1.22.3; asking for 1.22.3 is one line
    (exit 2) saying the stack has it, nothing changes, and the command it offers (run
    here in a real shell) makes the stack's copy win, as importlib.metadata sees."""
    layer = make_layer(env=env)
    install(layer.root, env, "--installer", installer, "hepnum==1.24.2")
    result = run_tool("install", str(layer.root), "--installer", installer, "hepnum==1.22.3",
                      env=env, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "the stack has hepnum 1.22.3" in result.stderr, result.stderr
    assert winners(layer.python, env, "hepnum")["hepnum"][0] == "1.24.2"  # not removed
    offered = result.stderr.split("remove the layer's copy: ", 1)[1].strip()
    subprocess.run(["sh", "-c", offered], env=env, check=True, capture_output=True)
    assert winners(layer.python, env, "hepnum")["hepnum"] == ("1.22.3",
                                                             str(stack.site_packages))


def test_uv_names_a_stack_version_it_cannot_be_told(make_layer, env, tmp_path) -> None:
    """A stack distribution whose version is not PEP 440 (``1.2.3-cms``) cannot be a stub
    for uv: a note names it and says why, instead of leaving it out without a word."""
    extra = tmp_path / "cms-python"
    info = extra / "hepcms-1.2.3-cms.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hepcms\nVersion: 1.2.3-cms\n")
    (extra / "hepcms.py").write_text("")
    stacked = dict(env, PYTHONPATH=f"{extra}{os.pathsep}{env['PYTHONPATH']}")
    layer = make_layer(env=stacked)
    report = install(layer.root, stacked, "--installer", "uv", "hepconf>=1.0")
    assert report["installed"] == [{"name": "hepconf", "version": "1.0.0"}]
    (note,) = [n for n in report["notes"] if "hepcms" in n]
    assert "1.2.3-cms" in note and "PEP 440" in note and "uv" in note
    human = run_tool("install", str(layer.root), "--installer", "uv", "hepio>=5.6",
                     env=stacked).stdout
    assert any(line.startswith("note: hepcms") for line in human.splitlines()), human


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_requirement_for_another_platform_is_not_met_but_skipped(
        make_layer, env, stack, tmp_path, installer) -> None:
    """Requirements whose marker is false here (checked with packaging in the layer's own
    interpreter) are counted apart from those the stack meets, requested or needed."""
    links = tmp_path / "links"
    build_wheel(Dist("myana3", "1.0", requires=("hepconf>=0.9",
                                                 "hepnum; sys_platform == 'nosuch'")), links)
    layer = make_layer(env=env)
    false_here = subprocess.run(
        [str(layer.python), "-c", "from packaging.markers import Marker; "
         "print(Marker(\"sys_platform == 'nosuch'\").evaluate(), "
         "Marker('python_version < \"3\"').evaluate())"],
        env=env, capture_output=True, text=True, check=True).stdout.split()
    assert false_here == ["False", "False"]
    before = site_contents(layer.root)
    report = install(layer.root, env, "--installer", installer, "--find-links", str(links),
                     "myana3")
    assert site_contents(layer.root) - before == {"myana3"}
    assert (report["kept"], report["skipped"]) == (1, 1), report  # hepconf; hepnum
    report = install(layer.root, env, "--installer", installer,
                     'hepio; python_version < "3"')
    assert site_contents(layer.root) - before == {"myana3"}
    assert (report["installed"], report["kept"], report["skipped"]) == ([], 0, 1), report
