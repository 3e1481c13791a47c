"""``layervenv lock`` and ``layervenv create --from``: a layer again, exactly, or refused."""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers import find_python, missing, other_python, py, run_tool
from test_editable import _project

from layervenv.model.layer import Layer
from layervenv.model.lockfile import layer_distributions
from layervenv.services.simstack import STACK_DISTS, Dist, build_stack, build_wheel, tree_digest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VERSIONS = "import hepnum, hepconf, hepio; print(hepnum.__version__, hepconf.__version__, " \
           "hepio.__version__)"


def installed(root: Path) -> dict[str, tuple[str, bool]]:
    """``{name: (version, requested)}`` of a layer's own site-packages."""
    site = next((root / "lib").glob("python*/site-packages"))
    return {d.name: (d.version, d.requested) for d in layer_distributions(site)}


@pytest.fixture
def upgraded(make_layer):
    """A layer with newer hepnum and hepconf from the wheelhouse than the stack's."""
    layer = make_layer()
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "-U", "hepnum<2",
                    "hepconf==1.0.0"], env=layer.env, check=True, capture_output=True)
    return layer


def _lock(layer, tmp_path, *extra: str) -> Path:
    out = tmp_path / "pylock.toml"
    run_tool("lock", str(layer.root), "-o", str(out), *extra, env=layer.env)
    return out


def test_lock_without_the_place_the_packages_came_from_says_so(upgraded, tmp_path):
    """Offline with no --find-links: pip's words, then what to give lock (no traceback)."""
    env = {k: v for k, v in upgraded.env.items() if k != "PIP_FIND_LINKS"}
    result = run_tool("lock", str(upgraded.root), "-o", str(tmp_path / "pylock.toml"), env=env,
                      check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("layervenv: error: finding the files of hepconf, hepnum")
    assert result.stderr.rstrip().endswith("or pip's own configuration)")
    assert "--find-links DIR_OR_URL" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "pylock.toml").exists()


def test_lock_is_pep751_and_lists_only_the_layer(upgraded, tmp_path, stack):
    data = tomllib.loads(_lock(upgraded, tmp_path).read_text())
    assert data["lock-version"] == "1.0" and data["created-by"] == "layervenv"
    packages = {p["name"]: p for p in data["packages"]}
    assert [p["name"] for p in data["packages"]] == sorted(packages) == ["hepconf", "hepnum",
                                                                         "pip"]
    assert packages["hepnum"]["version"] == "1.24.2"
    assert packages["hepconf"]["version"] == "1.0.0"
    for name in ("hepnum", "hepconf"):
        (wheel,) = packages[name]["wheels"]
        assert Path(wheel["path"]).parent == stack.wheelhouse
        assert wheel["hashes"]["sha256"] == hashlib.sha256(
            Path(wheel["path"]).read_bytes()).hexdigest()
        assert packages[name]["tool"]["layervenv"]["requested"] is True
    assert packages["pip"]["tool"]["layervenv"]["requested"] is False
    assert "ensurepip" in packages["pip"]["wheels"][0]["path"]
    tool = data["tool"]["layervenv"]
    assert tool["python"] == str(stack.python)
    assert tool["python-version"].startswith(stack.short_version)
    assert tool["implementation"] == "cpython"
    # the stack's distributions, as the layer's interpreter sees them, not the layer's
    dists = tool["stack-distributions"]
    assert (dists["hepnum"], dists["hepconf"], dists["hepfit"], dists["hepio"]) == \
           ("1.22.3", "0.9.0", "1.0.0", "5.4.3")
    lines = "\n".join(sorted(f"{n}=={v}" for n, v in dists.items()))
    assert tool["stack-fingerprint"] == hashlib.sha256(lines.encode()).hexdigest()


def test_lock_defaults_to_the_active_layer_and_pylock_toml(upgraded, tmp_path):
    env = dict(upgraded.env, VIRTUAL_ENV=str(upgraded.root))
    run_tool("lock", env=env, cwd=tmp_path)
    assert tomllib.loads((tmp_path / "pylock.toml").read_text())["packages"]
    missing = run_tool("lock", env=upgraded.env, cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "VIRTUAL_ENV" in missing.stderr


def test_recreate_from_the_lock_exactly(upgraded, tmp_path, stack_env):
    lock = _lock(upgraded, tmp_path)
    before = installed(upgraded.root)
    assert before["hepnum"] == ("1.24.2", True)
    shutil.rmtree(upgraded.root)
    result = run_tool("create", str(upgraded.root), "--from", str(lock), "--format", "json",
                      env=stack_env)
    data = json.loads(result.stdout)
    assert (data["packages"]["hepnum"], data["packages"]["hepconf"]) == ("1.24.2", "1.0.0")
    assert installed(upgraded.root) == before
    assert py(upgraded.python, VERSIONS, stack_env).split() == ["1.24.2", "1.0.0", "5.4.3"]
    # console scripts point at the layer's final path, not at the staging directory
    script = upgraded.root / "bin" / "hepnum-info"
    assert script.read_text().splitlines()[0] == f"#!{upgraded.root}/bin/python"
    out = subprocess.run([str(script)], env=stack_env, capture_output=True, text=True,
                         check=True).stdout
    assert out.split()[1] == "1.24.2"
    # pip of the re-created layer works and sees the same versions
    pip = subprocess.run([str(upgraded.python), "-m", "pip", "list", "--path",
                          str(next((upgraded.root / "lib").glob("python*/site-packages")))],
                         env=stack_env, capture_output=True, text=True, check=True).stdout
    assert "hepnum" in pip and "1.24.2" in pip
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_recreate_fetches_moved_wheels_with_their_hashes(upgraded, tmp_path, stack_env):
    copy = tmp_path / "wheels-copy"
    shutil.copytree(upgraded.env["PIP_FIND_LINKS"], copy)
    env = {k: v for k, v in stack_env.items() if k != "PIP_FIND_LINKS"}
    lock = _lock(upgraded, tmp_path, "--find-links", str(copy))
    text = lock.read_text()
    lock.write_text(text.replace(stack_env["PIP_FIND_LINKS"], str(tmp_path / "gone")))
    target = tmp_path / "again"
    run_tool("create", str(target), "--from", str(lock), "--find-links", str(copy), env=env)
    assert installed(target) == installed(upgraded.root)
    # a file with the locked name but other bytes is refused by the hash check
    bad = tmp_path / "bad-wheels"
    bad.mkdir()
    src = next(copy.glob("hepconf-1.0.0-*.whl"))
    shutil.copy(src, bad / src.name)
    with open(bad / src.name, "ab") as handle:
        handle.write(b"\0")
    for wheel in copy.glob("hepnum-1.24.2-*.whl"):
        shutil.copy(wheel, bad / wheel.name)
    refused = run_tool("create", str(tmp_path / "tampered"), "--from", str(lock),
                       "--find-links", str(bad), env=env, check=False)
    assert refused.returncode == 2 and "hash" in refused.stderr.lower(), refused.stderr
    assert not (tmp_path / "tampered").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def drifted_stack(tmp_path, _built_stack):
    """A second stack, identical but for one distribution (hepconf 0.9.1)."""
    dists = tuple(Dist(d.name, "0.9.1") if d.name == "hepconf" else d for d in STACK_DISTS)
    other = build_stack(tmp_path / "LCG_drift", Path(_built_stack.python).resolve(),
                        name="LCG_drift", dists=dists)
    before = tree_digest(other.root)
    yield other
    assert tree_digest(other.root) == before, "the second stack was modified"


def test_drifted_stack_is_listed_and_refused(upgraded, tmp_path, drifted_stack, base_env):
    lock = _lock(upgraded, tmp_path)
    env = drifted_stack.env(base_env)
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(drifted_stack.wheelhouse))
    target = tmp_path / "drifted"
    refused = run_tool("create", str(target), "--from", str(lock), env=env, check=False)
    assert refused.returncode == 1, refused.stderr
    assert "changed  hepconf 0.9.0 -> 0.9.1" in refused.stderr
    assert "--allow-stack-drift" in refused.stderr and "Traceback" not in refused.stderr
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    allowed = run_tool("create", str(target), "--from", str(lock), "--allow-stack-drift",
                       env=env)
    assert "hepconf 0.9.0 -> 0.9.1" in allowed.stdout
    assert installed(target) == installed(upgraded.root)
    # the same stack as the lock's proceeds without the option
    run_tool("create", str(tmp_path / "same"), "--from", str(lock), env=upgraded.env)


def test_another_implementation_is_drift(upgraded, tmp_path):
    """A lock made on another implementation of the same Python version (PyPy 3.11 vs
    CPython 3.11) is a different stack: its compiled wheels and stack do not fit."""
    lock = _lock(upgraded, tmp_path)
    data = tomllib.loads(lock.read_text())
    here = data["tool"]["layervenv"]["implementation"]
    version = data["tool"]["layervenv"]["python-version"]
    lock.write_text(lock.read_text().replace(f'implementation = "{here}"',
                                             'implementation = "pypy"'))
    target = tmp_path / "other-implementation"
    refused = run_tool("create", str(target), "--from", str(lock), env=upgraded.env,
                       check=False)
    assert refused.returncode == 1, refused.stderr
    assert f"python   pypy {version} -> {here} {version}" in refused.stderr
    assert not target.exists()


def test_recreate_with_the_recorded_setup(tmp_path, stack, base_env):
    """The lock's setup command is the default stack of create --from, and the layer's
    own choices (--rerun-setup, --export-pythonpath, --prompt) are made again."""
    root = tmp_path / "layer"
    run_tool("create", str(root), "--setup", f". '{stack.setup_script}'", "--rerun-setup",
             "--export-pythonpath", "--prompt", "my ana", env=base_env)
    env = dict(base_env, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(stack.wheelhouse))
    run_tool("run", str(root), "--", "python", "-m", "pip", "install", "-q", "hepio==5.6.0",
             env=env)
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(root), "-o", str(lock), env=env)  # the stack is not set up here
    assert tomllib.loads(lock.read_text())["tool"]["layervenv"]["setup"] == \
           f". '{stack.setup_script}'"
    shutil.rmtree(root)
    tool = tomllib.loads(lock.read_text())["tool"]["layervenv"]
    assert (tool["rerun-setup"], tool["export-pythonpath"], tool["prompt"]) == (True, True,
                                                                               "my ana")
    # no --setup: the lock's, which no layer beside it uses (the one locked is gone)
    run_tool("create", str(root), "--from", str(lock), "--trust-setup", env=env)
    assert installed(root)["hepio"] == ("5.6.0", True)
    config = Layer.open(root).config
    assert config.stack.rerun_setup and config.export_pythonpath and config.prompt == "my ana"
    assert "prompt = my ana" in (root / "pyvenv.cfg").read_text()
    out = run_tool("run", str(root), "--", "python", "-c", VERSIONS, env=env).stdout.split()
    assert out == ["1.22.3", "0.9.0", "5.6.0"]


def test_editable_install_is_locked_and_recreated(make_layer, tmp_path, stack_env,
                                                  backend_wheels):
    layer = make_layer()
    project = _project(tmp_path / "proj", "setuptools", "src")
    with open(project / "pyproject.toml", "a") as handle:
        handle.write('\n[project.scripts]\nhepconf-where = "hepconf:where"\n')
    (project / "src" / "hepconf" / "__init__.py").write_text(
        "__version__ = '9.9.0'\ndef where():\n    print(__file__)\n")
    env = dict(stack_env, PIP_FIND_LINKS=f"{backend_wheels} {stack_env['PIP_FIND_LINKS']}")
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "-e", str(project)],
                   env=env, check=True, capture_output=True)
    lock = _lock(layer, tmp_path)
    entry = next(p for p in tomllib.loads(lock.read_text())["packages"]
                 if p["name"] == "hepconf")
    assert entry["directory"] == {"path": str(project), "editable": True}
    assert "version" not in entry  # PEP 751: a source tree's version is not locked
    assert entry["tool"]["layervenv"]["requested"] is True
    before = installed(layer.root)
    shutil.rmtree(layer.root)
    run_tool("create", str(layer.root), "--from", str(lock), "--find-links", str(backend_wheels),
             "--trust-build", env=stack_env)
    assert installed(layer.root) == before
    assert py(layer.python, "import hepconf; print(hepconf.__file__)",
              stack_env).startswith(str(project))
    script = layer.root / "bin" / "hepconf-where"
    assert f"{tmp_path}/." not in script.read_text()  # no staging path left in it
    out = subprocess.run([str(script)], env=stack_env, capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith(str(project))
    # pip can uninstall it: the RECORD matches the re-pointed script
    subprocess.run([str(layer.python), "-m", "pip", "uninstall", "-y", "hepconf"], env=env,
                   check=True, capture_output=True)
    assert not script.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_legacy_editable_install_is_named_as_not_locked(upgraded, tmp_path):
    """``setup.py develop`` (setuptools < 80) leaves an .egg-link and a line in
    easy-install.pth; its metadata stays in the project, so the lock cannot hold it: the
    lock says so instead of leaving it out without a word."""
    project = tmp_path / "hepplot-work"
    (project / "hepplot").mkdir(parents=True)
    (project / "hepplot" / "__init__.py").write_text("__version__ = '0.0.1'\n")
    (project / "hepplot.egg-info").mkdir()
    (project / "hepplot.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 1.1\nName: hepplot\nVersion: 0.0.1\n")
    site = next((upgraded.root / "lib").glob("python*/site-packages"))
    (site / "hepplot.egg-link").write_text(f"{project}\n.")
    (site / "easy-install.pth").write_text(f"{project}\n")
    assert py(upgraded.python, "import hepplot; print(hepplot.__version__)",
              upgraded.env) == "0.0.1"
    out = tmp_path / "pylock.toml"
    said = json.loads(run_tool("lock", str(upgraded.root), "-o", str(out), "--format", "json",
                               env=upgraded.env).stdout)
    assert "hepplot" not in said["packages"]
    assert [n for n in said["notes"] if n.startswith("not locked: hepplot,")]
    human = run_tool("lock", str(upgraded.root), "-o", str(out), env=upgraded.env).stdout
    assert "not locked: hepplot, installed with setup.py develop" in human


def test_seeded_pip_is_removed_by_its_record(make_layer):
    from layervenv.dists.scheme import InstallScheme
    from layervenv.services.packages import StagingTarget

    layer = make_layer("seeded")
    site = next((layer.root / "lib").glob("python*/site-packages"))
    purelib = str(site.relative_to(layer.root))
    target = StagingTarget(InstallScheme(layer.root, layer.root, purelib, purelib, "bin",
                                         "include"))
    target.remove("pip")
    assert sorted(p.name for p in site.iterdir() if p.name != "__pycache__") == [
        "_layervenv_boot.py", "~layervenv.pth", "~layervenv.start"]
    assert sorted(p.name for p in (layer.root / "bin").iterdir() if "pip" in p.name) == []
    assert (layer.root / "bin" / "activate").is_file()


def test_requested_pip_is_marked(upgraded, tmp_path, stack_env):
    lock = _lock(upgraded, tmp_path)
    text = lock.read_text()
    head, pip = text.split('name = "pip"')
    lock.write_text(head + 'name = "pip"' + pip.replace("requested = false", "requested = true",
                                                         1))
    target = tmp_path / "again"
    run_tool("create", str(target), "--from", str(lock), env=stack_env)
    assert installed(target)["pip"][1] is True
    assert installed(target)["hepnum"] == ("1.24.2", True)


def test_lock_needs_pip_22_2(tmp_path, _built_stack, base_env):
    python = find_python("3.7")
    if python is None:
        pytest.skip("no Python 3.7 (bundling pip 22.0) on this machine")
    old = build_stack(tmp_path / "LCG_37", python, name="LCG_37")
    env = dict(old.env(base_env), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(old.wheelhouse))
    root = tmp_path / "layer"
    run_tool("create", str(root), env=env)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q",
                    "hepconf==1.0.0"], env=env, check=True, capture_output=True)
    result = run_tool("lock", str(root), "-o", str(tmp_path / "p.toml"), env=env, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "pip >= 22.2 is needed" in result.stderr
    assert not (tmp_path / "p.toml").exists()


def _pythons_with_a_wheel_pkg_dir() -> list[str]:
    """System Pythons whose ensurepip wheels live outside the stdlib (Debian, Fedora)."""
    found = []
    for python in sorted(glob.glob("/usr/bin/python3.[0-9]*")):
        if python.endswith("-config"):
            continue
        out = subprocess.run([python, "-c", "import sysconfig; "
                              "print(sysconfig.get_config_var('WHEEL_PKG_DIR') or '')"],
                             capture_output=True, text=True, check=False).stdout.strip()
        if out and glob.glob(f"{out}/pip-*.whl"):
            found.append(python)
    return found


def test_lock_finds_the_pip_seeded_from_a_distributions_wheel_dir(tmp_path, base_env):
    """On Debian's or Fedora's Python, the seeded pip came from WHEEL_PKG_DIR
    (/usr/share/python-wheels), not from ensurepip/_bundled: lock must find it there
    instead of asking the (offline) index for it."""
    pythons = _pythons_with_a_wheel_pkg_dir()
    if not pythons:
        pytest.skip("no Python here keeps ensurepip's wheels in a WHEEL_PKG_DIR")
    system = build_stack(tmp_path / "LCG_sys", Path(pythons[0]), name="LCG_sys")
    env = dict(system.env(base_env), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(system.wheelhouse))
    root = tmp_path / "layer"
    run_tool("create", str(root), env=env)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q",
                    "hepconf==1.0.0"], env=env, check=True, capture_output=True)
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(root), "-o", str(lock), env=env)
    packages = {p["name"]: p for p in tomllib.loads(lock.read_text())["packages"]}
    (pip,) = packages["pip"]["wheels"]
    assert "ensurepip" not in pip["path"] and Path(pip["path"]).is_file()
    shutil.rmtree(root)
    run_tool("create", str(root), "--from", str(lock), env=env)
    assert installed(root)["hepconf"] == ("1.0.0", True) and set(installed(root)) == {
        "hepconf", "pip"}


def test_lock_names_wheels_as_files_and_paths_as_they_are(tmp_path, stack_env):
    """A wheel's name in the lock is its file name, not its URL's percent-encoding (``+``
    of a local version is ``%2B`` in pip's URL); a layer and a find-links directory
    with spaces, quotes and non-ASCII in their paths lock and re-create."""
    wheels = tmp_path / "wh é 'x'"
    build_wheel(Dist("hepplot", "0.3.0+lcg1"), wheels)
    root = tmp_path / "lay é 'q\""
    run_tool("create", str(root), env=stack_env)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--find-links",
                    str(wheels), "hepplot"], env=stack_env, check=True, capture_output=True)
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(root), "-o", str(lock), "--find-links", str(wheels), env=stack_env)
    packages = {p["name"]: p for p in tomllib.loads(lock.read_text())["packages"]}
    (wheel,) = packages["hepplot"]["wheels"]
    assert wheel["name"] == "hepplot-0.3.0+lcg1-py3-none-any.whl"
    assert wheel["path"] == str(wheels / wheel["name"])
    shutil.rmtree(root)
    run_tool("create", str(root), "--from", str(lock), env=stack_env)
    assert installed(root)["hepplot"] == ("0.3.0+lcg1", True)


def _hatch_project(root: Path, name: str, version: str = "0.1.0") -> Path:
    """A small project built with hatchling, with a console script."""
    (root / "src" / name).mkdir(parents=True)
    (root / "src" / name / "__init__.py").write_text(
        f"__version__ = {version!r}\ndef main():\n    print(__name__, __version__, __file__)\n")
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
        f'[project.scripts]\n{name}-main = "{name}:main"\n\n'
        f'[tool.hatch.build.targets.wheel]\npackages = ["src/{name}"]\n')
    return root


def _git_repo(root: Path) -> str:
    """``root`` as a git repository with one commit; returns the commit id."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def direct_layer(make_layer, tmp_path, stack_env, backend_wheels):
    """A layer with one package from each kind of direct URL (PEP 610): a git checkout,
    a local wheel file (an archive), and a local project directory (not editable)."""
    if shutil.which("git") is None:
        missing("git is not installed", "dev/test's machine has it: apt-get install git")
    layer = make_layer("direct")
    env = dict(stack_env, PIP_FIND_LINKS=f"{backend_wheels} {stack_env['PIP_FIND_LINKS']}")
    repo = _hatch_project(tmp_path / "repo", "hepgit")
    commit = _git_repo(repo)
    archive = build_wheel(Dist("hepplot", "0.3.0"), tmp_path / "dist")
    folder = _hatch_project(tmp_path / "folder", "hepdir")
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", f"git+{repo.as_uri()}",
                    str(archive), str(folder)], env=env, check=True, capture_output=True)
    layer.env = env
    return layer, commit


def test_direct_urls_are_locked_recreated_and_locked_again_identically(direct_layer, tmp_path):
    """VCS, archive and directory sources re-create the same layer, and that layer's
    lock is byte for byte the first one: the re-created packages keep their PEP 610
    record (``direct_url.json``), as pip would have written it."""
    layer, commit = direct_layer
    lock = _lock(layer, tmp_path)
    packages = {p["name"]: p for p in tomllib.loads(lock.read_text())["packages"]}
    assert packages["hepgit"]["vcs"] == {"type": "git", "path": str(tmp_path / "repo"),
                                         "commit-id": commit}
    assert packages["hepplot"]["archive"]["path"] == str(next((tmp_path / "dist").iterdir()))
    assert packages["hepdir"]["directory"] == {"path": str(tmp_path / "folder"),
                                               "editable": False}
    # PEP 751: no version for a source tree (it may change under it); an archive has one
    assert "version" not in packages["hepgit"] and "version" not in packages["hepdir"]
    assert packages["hepplot"]["version"] == "0.3.0"
    before = installed(layer.root)
    again = tmp_path / "again"
    created = json.loads(run_tool("create", str(again), "--from", str(lock), "--format", "json",
                                  "--trust-build", env=layer.env).stdout)
    assert created["packages"]["hepdir"] == created["packages"]["hepgit"] == "0.1.0"
    assert installed(again) == before
    out = subprocess.run([str(again / "bin" / "hepgit-main")], env=layer.env,
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[2].startswith(str(again))
    relock = tmp_path / "relock" / "pylock.toml"
    relock.parent.mkdir()
    run_tool("lock", str(again), "-o", str(relock), env=layer.env)
    assert relock.read_text() == lock.read_text()
    assert hidden_files(tmp_path) == []


def hidden_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def _sdist(directory: Path, name: str, version: str) -> Path:
    """An sdist of a hatchling project (a version published without a wheel)."""
    project = _hatch_project(directory / "build" / f"{name}-{version}", name, version)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{name}-{version}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(project, arcname=project.name)
    shutil.rmtree(directory / "build")
    return out


def test_a_package_installed_from_an_sdist_is_locked_as_sdist(make_layer, tmp_path, stack_env,
                                                              backend_wheels):
    """A version with no wheel anywhere (pip built it from its sdist) is locked as a PEP 751
    ``sdist``, not refused as 'no wheel found', and built again by create --from: from
    the locked file, or found by name where it moved."""
    sdists = tmp_path / "sdists"
    _sdist(sdists, "hepsrc", "0.2.0")
    env = dict(stack_env, PIP_FIND_LINKS=f"{backend_wheels} {stack_env['PIP_FIND_LINKS']}")
    layer = make_layer()
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "--find-links",
                    str(sdists), "hepsrc", "hepconf==1.0.0"], env=env, check=True,
                   capture_output=True)
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(layer.root), "-o", str(lock), "--find-links", str(sdists), env=env)
    packages = {p["name"]: p for p in tomllib.loads(lock.read_text())["packages"]}
    assert packages["hepsrc"]["sdist"] == {
        "name": "hepsrc-0.2.0.tar.gz", "path": str(sdists / "hepsrc-0.2.0.tar.gz"),
        "hashes": {"sha256": hashlib.sha256((sdists / "hepsrc-0.2.0.tar.gz").read_bytes())
                   .hexdigest()}}
    assert "wheels" not in packages["hepsrc"] and "wheels" in packages["hepconf"]
    before = installed(layer.root)
    run_tool("create", str(tmp_path / "again"), "--from", str(lock), "--trust-build", env=env)
    assert installed(tmp_path / "again") == before
    moved = tmp_path / "moved"
    sdists.rename(moved)
    run_tool("create", str(tmp_path / "third"), "--from", str(lock), "--find-links", str(moved),
             "--trust-build", env=env)
    assert installed(tmp_path / "third") == before
    assert py(tmp_path / "third" / "bin" / "python", "import hepsrc; print(hepsrc.__version__)",
              env) == "0.2.0"


def test_lock_to_standard_output(upgraded, tmp_path):
    """``-o -`` writes the lock, and only the lock, to standard output (as ``pip lock -o
    -``), not to a file named '-'; the summary goes to standard error."""
    result = run_tool("lock", str(upgraded.root), "-o", "-", env=upgraded.env, cwd=tmp_path)
    assert result.stdout == _lock(upgraded, tmp_path).read_text()
    assert "locked 3 packages" in result.stderr and "standard output" in result.stderr
    assert not (tmp_path / "-").exists()
    refused = run_tool("lock", str(upgraded.root), "-o", "-", "--format", "json",
                       env=upgraded.env, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and not refused.stdout


def test_relative_paths_in_a_lock_are_relative_to_the_lock(upgraded, tmp_path, stack_env):
    """PEP 751: a relative ``path`` is relative to the lock file, not to the current
    directory: a lock kept beside its wheels is re-created from anywhere, with no index
    and no find-links."""
    lock = _lock(upgraded, tmp_path)
    project = tmp_path / "project"
    (project / "wheels").mkdir(parents=True)
    text = lock.read_text()
    for wheel in Path(stack_env["PIP_FIND_LINKS"]).glob("*.whl"):
        shutil.copy(wheel, project / "wheels" / wheel.name)
        text = text.replace(f'"{wheel}"', f'"wheels/{wheel.name}"')
    assert 'path = "wheels/hepnum-1.24.2' in text
    (project / "pylock.toml").write_text(text)
    env = {k: v for k, v in stack_env.items() if k != "PIP_FIND_LINKS"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_tool("create", str(tmp_path / "again"), "--from", str(project / "pylock.toml"), env=env,
             cwd=elsewhere)
    assert installed(tmp_path / "again") == installed(upgraded.root)


PIP_LOCK = """lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "hepnum"
version = "1.24.2"

[[packages.wheels]]
name = "hepnum-1.24.2-py3-none-any.whl"
url = "https://example.invalid/hepnum-1.24.2-py3-none-any.whl"
[packages.wheels.hashes]
sha256 = "00"
"""
STACK = '\n[tool.layervenv]\npython-version = "3.11.7"\nstack-distributions = {}\n'


@pytest.mark.parametrize(("text", "said"), [
    (None, "no such lock file"),
    ("this is [not toml", "is not valid TOML"),
    ('[project]\nname = "x"\n', "is not a PEP 751 lock"),
    (PIP_LOCK, "was not written by layervenv lock"),  # pip lock, uv export: no stack record
    ('lock-version = "1.0"\ntool = 3\n', "was not written by layervenv lock"),
    ('lock-version = "1.0"\n[tool.layervenv]\nstack-distributions = 4\n', "was not written"),
    ('lock-version = "1.0"\npackages = 5\n' + STACK, "the lock is refused"),
    ('lock-version = "1.0"\npackages = [5]\n' + STACK, "the lock is refused"),
    ('lock-version = "1.0"\n[[packages]]\nversion = "1"\n' + STACK, "the lock is refused"),
    (PIP_LOCK.replace('sha256 = "00"', 'x = 1\n[[packages.wheels]]\nhashes = 3') + STACK,
     "the lock is refused"),
    ('lock-version = "1.0"\n[[packages]]\nname = "x"\ntool = 5\n' + STACK, "the lock is refused"),
    ('lock-version = "1.0"' + STACK + 'requested-from-stack = 4\n', "the lock is refused"),
], ids=["missing", "not-toml", "pyproject", "pip-lock", "tool-not-a-table", "no-stack",
        "packages-not-an-array", "entry-not-a-table", "no-name", "hashes-not-a-table",
        "tool-of-a-package", "requested-from-stack"])
def test_a_lock_that_is_not_ours_or_damaged_is_one_line(text, said, tmp_path, stack_env):
    """create --from on something that is no layervenv lock: one line, exit 2, nothing made."""
    lock = tmp_path / "pylock.toml"
    if text is not None:
        lock.write_text(text)
    target = tmp_path / "layer"
    result = run_tool("create", str(target), "--from", str(lock), env=stack_env, check=False)
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and not target.exists()


def test_locked_wheels_for_another_python_are_refused_even_with_drift_allowed(
        make_layer, tmp_path, base_env, _built_stack):
    """--allow-stack-drift onto another Python: a locked compiled wheel (cp3X) would be
    installed into a layer of another version without a word (``installer`` does not
    check tags) and fail at import; it is refused in one line, nothing is created."""
    python = other_python()
    if python is None:
        pytest.skip("no second Python interpreter (another minor version) on this machine")
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    wheels = tmp_path / "compiled"
    build_wheel(Dist("hepfast", "1.0.0", compiled=True), wheels, tag)
    layer = make_layer()
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "--find-links", str(wheels),
                    "hepfast"], env=layer.env, check=True, capture_output=True)
    lock = _lock(layer, tmp_path, "--find-links", str(wheels))
    other = build_stack(tmp_path / "LCG_py", python, name="LCG_py")
    env = dict(other.env(base_env), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(other.wheelhouse))
    target = tmp_path / "other"
    refused = run_tool("create", str(target), "--from", str(lock), "--allow-stack-drift",
                       "--find-links", str(wheels), env=env, check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "locked wheels of hepfast are not for Python" in refused.stderr
    assert not target.exists() and hidden_files(tmp_path) == []


def test_lock_refuses_a_shell_without_the_layers_stack(upgraded, tmp_path, base_env,
                                                       drifted_stack):
    """A layer made without --setup relies on the shell for its stack: where that stack
    is not set up (or another one is), lock would record the wrong stack and create
    --from would then refuse the right one as drifted; it stops in one line instead."""
    for env in (dict(base_env), drifted_stack.env(base_env)):
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=upgraded.env["PIP_FIND_LINKS"])
        out = tmp_path / "pylock.toml"
        result = run_tool("lock", str(upgraded.root), "-o", str(out), env=env, check=False)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "is not set up in this shell" in result.stderr and not out.exists()
