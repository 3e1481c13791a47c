"""A lock is a file people share: nothing in it runs unseen, every field is checked.

Hostile locks are real locks of a real layer with one field changed, so that without
the check they would go on (past the drift check, into pip).  Each is refused in one
line, exit 2, before anything runs or is created; the stack is hashed before and after
(the ``stack`` fixture).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from helpers import clean_env, missing, run_tool, tool_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from layervenv.infra.errors import UserError
from layervenv.model.layer import Layer
from layervenv.model.lockfile import Lock
from layervenv.model.lockschema import NAME, requirement_line
from layervenv.services.simstack import Dist, build_wheel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture(scope="module")
def real_lock(tmp_path_factory, _built_stack) -> tuple[dict[str, Any], dict[str, str]]:
    """The lock of a layer with hepnum 1.24.2 and hepconf 1.0.0 from the wheelhouse."""
    root = tmp_path_factory.mktemp("locked")
    home = root / "home"
    home.mkdir()
    env = _built_stack.env(clean_env(home))
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(_built_stack.wheelhouse))
    layer = root / "layer"
    run_tool("create", str(layer), env=env)
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q",
                    "hepnum==1.24.2", "hepconf==1.0.0"], env=env, check=True,
                   capture_output=True)
    run_tool("lock", str(layer), "-o", str(root / "pylock.toml"), env=env)
    return tomllib.loads((root / "pylock.toml").read_text()), env


def package(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in data["packages"] if p["name"] == name)


def not_here(data: dict[str, Any], gone: Path) -> dict[str, Any]:
    """The lock with hepnum's wheel moved away: fetched by pip, from a requirements line
    (as when the lock is used on another machine)."""
    data = copy.deepcopy(data)
    wheel = package(data, "hepnum")["wheels"][0]
    wheel["path"] = str(gone / Path(wheel["path"]).name)
    return data


def write_lock(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(data))
    return path


def refused(result: subprocess.CompletedProcess[str], *said: str) -> None:
    """One line on stderr, exit 2, no traceback, nothing on stdout."""
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    for words in said:
        assert words in result.stderr, result.stderr


def nothing_made(tmp_path: Path) -> None:
    """No layer, no staging directory left beside it."""
    assert not (tmp_path / "layer").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def evil_project(root: Path, marker: Path) -> Path:
    """A real local project whose build backend (in the tree, no download) writes
    ``marker`` as soon as pip asks it anything."""
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "evilbackend"\nbackend-path = ["."]\n'
        '[project]\nname = "evilproj"\nversion = "1.0"\n')
    (root / "evilbackend.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "def get_requires_for_build_wheel(config_settings=None):\n    return []\n"
        "get_requires_for_build_editable = get_requires_for_build_wheel\n")
    (root / "setup.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return root


# ---------------------------------------------------------------------------------------
# The setup command of a lock
# ---------------------------------------------------------------------------------------

@pytest.fixture
def setup_lock(tmp_path, stack, base_env) -> tuple[Path, dict[str, Any], dict[str, str]]:
    """A real lock of a layer made with --setup (the layer itself removed), its data,
    and an environment where the stack is not set up."""
    made = tmp_path / "made" / "layer"
    run_tool("create", str(made), "--setup", f". '{stack.setup_script}'", env=base_env)
    lock = tmp_path / "made.toml"
    run_tool("lock", str(made), "-o", str(lock), env=base_env)
    shutil.rmtree(made.parent)
    env = dict(base_env, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(stack.wheelhouse))
    return lock, tomllib.loads(lock.read_text()), env


@pytest.mark.parametrize("rerun", [False, True], ids=["setup", "rerun-setup"])
def test_a_locks_setup_is_shown_and_runs_only_when_trusted(setup_lock, tmp_path, rerun):
    """A hostile setup (``...; touch MARKER``) is shown and refused, nothing run or made;
    --trust-setup runs it (so the refusal is what kept it from running); a --setup of
    the user's own replaces it."""
    _lock, data, env = setup_lock
    marker = tmp_path / "marker"
    data["tool"]["layervenv"]["setup"] += f"; touch '{marker}'"
    if rerun:
        data["tool"]["layervenv"]["rerun-setup"] = True
    lock = write_lock(tmp_path / "hostile.toml", data)
    target = tmp_path / "layer"
    result = run_tool("create", str(target), "--from", str(lock), env=env, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    first, shown = result.stderr.splitlines()
    assert first.startswith("layervenv: error: the lock's setup command below would run")
    assert "--trust-setup" in first and ("every activation" in first) == rerun
    assert shown == "  " + data["tool"]["layervenv"]["setup"]
    assert not marker.exists()
    nothing_made(tmp_path)

    own = run_tool("create", str(target), "--from", str(lock), "--setup",
                   data["tool"]["layervenv"]["setup"].split(";")[0], env=env)
    assert not marker.exists() and "setup command" not in own.stdout
    shutil.rmtree(target)

    trusted = run_tool("create", str(target), "--from", str(lock), "--trust-setup", env=env)
    assert marker.exists()
    assert "ran the lock's setup command" in trusted.stdout
    marker.unlink()
    if rerun:  # activation runs it again: the user said so
        subprocess.run(["bash", "-c", f". '{target}/bin/activate'"], env=env, check=True)
        assert marker.exists()


def test_a_setup_hidden_by_control_characters_is_shown_escaped(setup_lock, tmp_path):
    """A carriage return or an escape code could hide a part of the command on a
    terminal: it is shown escaped."""
    _lock, data, env = setup_lock
    marker = tmp_path / "marker"
    data["tool"]["layervenv"]["setup"] = f"touch '{marker}'\r\x1b[2Kasetup Analysis,25.2.15"
    result = run_tool("create", str(tmp_path / "layer"), "--from",
                      str(write_lock(tmp_path / "hostile.toml", data)), env=env, check=False)
    assert result.returncode == 2
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert repr(data["tool"]["layervenv"]["setup"]) in result.stderr
    assert not marker.exists()
    nothing_made(tmp_path)
    # a command of several lines: each shown indented under the error
    data["tool"]["layervenv"]["setup"] = f"true\ntouch '{marker}'"
    result = run_tool("create", str(tmp_path / "layer"), "--from",
                      str(write_lock(tmp_path / "hostile.toml", data)), env=env, check=False)
    assert result.stderr.splitlines()[1:] == ["  true", f"  touch '{marker}'"]
    assert not marker.exists()
    nothing_made(tmp_path)


def test_a_setup_a_layer_of_yours_beside_it_uses_runs_without_asking(setup_lock, tmp_path,
                                                                     base_env):
    """"Already used": the same command, byte for byte, recorded by a layer of this user
    in the target's directory (or the target itself, with --clear)."""
    lock, data, env = setup_lock
    setup = data["tool"]["layervenv"]["setup"]
    home = tmp_path / "layers"
    run_tool("create", str(home / "mine"), "--setup", setup, env=base_env)
    made = run_tool("create", str(home / "again"), "--from", str(lock), env=env)
    assert f"the one {home / 'mine'} uses" in made.stdout
    # --clear of a layer made with it
    run_tool("create", str(home / "again"), "--clear", "--from", str(lock), env=env)
    # one character more is another command
    data["tool"]["layervenv"]["setup"] = setup + " "
    other = write_lock(tmp_path / "other.toml", data)
    refused_here = run_tool("create", str(home / "third"), "--from", str(other), env=env,
                            check=False)
    assert refused_here.returncode == 2 and "--trust-setup" in refused_here.stderr
    # another user's layer does not count
    data["tool"]["layervenv"]["setup"] = setup
    elsewhere = tmp_path / "shared"
    run_tool("create", str(elsewhere / "theirs"), "--setup", setup, env=base_env)
    os.chown(elsewhere / "theirs" / "layervenv.toml", 4242, 4242)
    theirs = run_tool("create", str(elsewhere / "mine"), "--from", str(lock), env=env,
                      check=False)
    assert theirs.returncode == 2 and "--trust-setup" in theirs.stderr
    assert not (elsewhere / "mine").exists()


def _lock_over_a_group(tmp_path: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A group layer, a layer over it (``create --over``) and that layer's lock."""
    group, mine = tmp_path / "group", tmp_path / "made"
    run_tool("create", str(group), env=env)
    run_tool("create", str(mine), "--over", str(group), env=env)
    lock = tmp_path / "made.toml"
    run_tool("lock", str(mine), "-o", str(lock), env=env)
    return group, lock


def test_a_locks_group_layer_of_someone_else_runs_only_when_asked(tmp_path, stack_env):
    """A lock's ``over`` names a group layer (``create --over``): its recorded Python
    runs and its site-packages is imported from (its ``sitecustomize.py``), so a lock
    naming a directory of someone else's is refused, naming it, nothing run or made;
    --over GROUP or --trust-setup take it (the markers prove it would have run), and so
    does a lock over a group layer of the user's own."""
    env = stack_env
    group, lock = _lock_over_a_group(tmp_path, env)
    run_tool("create", str(tmp_path / "again"), "--from", str(lock), env=env)  # yours
    # someone else's directory, a real layer made to look like the group layer
    theirs = tmp_path / "shared" / "theirs"
    run_tool("create", str(theirs), env=env)
    markers = tmp_path / "ran-python", tmp_path / "ran-sitecustomize"
    wrapper = theirs / "bin" / "stackpython"
    python = Layer.open(group).config.stack.python
    wrapper.write_text(f"#!/bin/sh\necho >> '{markers[0]}'\nexec '{python}' \"$@\"\n")
    wrapper.chmod(0o755)
    config = theirs / "layervenv.toml"
    config.write_text(config.read_text().replace(f'python = "{python}"',
                                                 f'python = "{wrapper}"'))
    site = Layer.open(theirs).site_packages
    (site / "sitecustomize.py").write_text(f"open({str(markers[1])!r}, 'a').write('x')\n")
    for path in (theirs, *theirs.rglob("*")):
        os.chown(path, 4242, 4242, follow_symlinks=False)
    hostile = tmp_path / "hostile.toml"
    hostile.write_text(lock.read_text().replace(str(group), str(theirs)))
    target = tmp_path / "shared" / "mine"
    refused(run_tool("create", str(target), "--from", str(hostile), env=env, check=False),
            str(theirs), f"--over {theirs}", "--trust-setup")
    assert not any(m.exists() for m in markers) and not target.exists()
    run_tool("create", str(target), "--from", str(hostile), "--trust-setup",
             "--allow-stack-drift", env=env, check=False)
    assert all(m.exists() for m in markers)


def test_a_group_layer_path_of_two_lines_is_refused(tmp_path, stack_env):
    """The group layer's site-packages becomes a line of the new layer's ``.pth``, which
    ``site`` reads in every process: a lock whose ``over`` paths hold a line break (a
    second line, ``import ...``, would be code) is refused in one line, --trust-setup or
    not; nothing is made and nothing runs."""
    env = stack_env
    group, lock = _lock_over_a_group(tmp_path, env)
    marker = tmp_path / "ran"
    code = f"import os; os.system('touch {marker}')"
    text = lock.read_text()
    assert text.count(f'"{group}"') == 1, text  # the lock names the group layer's root
    hostile = tmp_path / "hostile.toml"
    hostile.write_text(text.replace(f'"{group}"', f'"{group}\\n{code}"'))
    for trust in ([], ["--trust-setup", "--allow-stack-drift"]):
        target = tmp_path / f"mine{len(trust)}"
        result = run_tool("create", str(target), "--from", str(hostile), *trust, env=env,
                          check=False)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert not target.exists() and not marker.exists()


def test_trust_setup_needs_from(tmp_path, stack_env):
    refused(run_tool("create", str(tmp_path / "layer"), "--trust-setup", env=stack_env,
                     check=False), "--trust-setup needs --from FILE")


# ---------------------------------------------------------------------------------------
# Projects a lock would build: their setup.py is code too
# ---------------------------------------------------------------------------------------

def marking_project(root: Path, marker: Path) -> Path:
    """A plain setuptools project that appends to ``marker`` each time its ``setup.py``
    runs, as any build of it does."""
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    (root / "hepmark.py").write_text("VALUE = 'mark'\n")
    (root / "setup.py").write_text(
        f"open({str(marker)!r}, 'a').write('built\\n')\n"
        "from setuptools import setup\n"
        "setup(name='hepmark', version='0.3', py_modules=['hepmark'])\n")
    return root


@pytest.mark.parametrize("how", ["directory", "editable", "vcs"])
def test_a_lock_builds_projects_only_with_trust_build(how, tmp_path, stack, base_env,
                                                      backend_wheels):
    """A real lock of a layer holding a project installed from a directory (plainly or
    editable) or a git commit: ``create --from`` refuses in one line naming it and its
    source, with nothing built (the marker its setup.py writes never appears) and
    nothing created; with --trust-build it is built, and the layer has it."""
    marker = tmp_path / "marker"
    project = marking_project(tmp_path / "hepmark", marker)
    env = dict(base_env, PIP_NO_INDEX="1",
               PIP_FIND_LINKS=f"{stack.wheelhouse} {backend_wheels}")
    made = tmp_path / "made" / "layer"
    run_tool("create", str(made), "--setup", f". '{stack.setup_script}'", env=env)
    source = str(project)
    if how == "vcs":
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(project)]
        for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "one"]):
            subprocess.run([*git, *args], check=True, capture_output=True)
        source = f"git+{project.as_uri()}"
    pip = [str(made / "bin" / "python"), "-m", "pip", "install", "-q"]
    done = subprocess.run([*pip, *(["-e"] if how == "editable" else []), source],
                          env=stack.env(env), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(made), "-o", str(lock), env=env)
    entry = package(tomllib.loads(lock.read_text()), "hepmark")
    assert ("vcs" if how == "vcs" else "directory") in entry
    shutil.rmtree(made.parent)
    marker.unlink()

    home = tmp_path / "layers"
    home.mkdir()
    target = home / "layer"
    result = run_tool("create", str(target), "--from", str(lock), "--trust-setup", env=env,
                      check=False)
    refused(result, "would build 1 package from source", "--trust-build",
            "hepmark (", str(project), "nothing was run or created")
    assert ("git+" in result.stderr) == (how == "vcs")
    assert not marker.exists()
    nothing_made(home)

    made_now = run_tool("create", str(target), "--from", str(lock), "--trust-setup",
                        "--trust-build", env=env)
    assert marker.exists()
    assert "built from source (--trust-build): hepmark (" in made_now.stdout
    found = subprocess.run(
        [str(target / "bin" / "python"), "-c",
         "import importlib.metadata as m, hepmark; print(m.version('hepmark'), hepmark.VALUE)"],
        env=env, check=True, capture_output=True, text=True).stdout.split()
    assert found == ["0.3", "mark"]


def test_only_what_is_built_needs_trust_build(real_lock, tmp_path, stack):
    """An sdist is built (refused without --trust-build); a wheel named by an archive
    URL, like locked wheels, is only unpacked (no flag needed)."""
    data, env = real_lock
    wheel = next(stack.wheelhouse.glob("hepnum-1.24.2-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    as_sdist = copy.deepcopy(data)
    entry = package(as_sdist, "hepnum")
    del entry["wheels"]
    entry["sdist"] = {"name": "hepnum-1.24.2.tar.gz", "url": "https://example.org/hepnum.tar.gz",
                      "hashes": {"sha256": digest}}
    result = run_tool("create", str(tmp_path / "layer"), "--from",
                      str(write_lock(tmp_path / "sdist.toml", as_sdist)), env=env, check=False)
    refused(result, "hepnum (sdist https://example.org/hepnum.tar.gz)", "--trust-build")
    nothing_made(tmp_path)
    as_archive = copy.deepcopy(data)
    entry = package(as_archive, "hepnum")
    del entry["wheels"]
    entry["archive"] = {"url": wheel.as_uri(), "hashes": {"sha256": digest}}
    run_tool("create", str(tmp_path / "layer"), "--from",
             str(write_lock(tmp_path / "archive.toml", as_archive)), env=env)
    assert (tmp_path / "layer" / "lib").exists()


def test_trust_build_needs_from(tmp_path, stack_env):
    refused(run_tool("create", str(tmp_path / "layer"), "--trust-build", env=stack_env,
                     check=False), "--trust-build needs --from FILE")


# ---------------------------------------------------------------------------------------
# Every field checked
# ---------------------------------------------------------------------------------------

def _set(path: list[Any], value: Any):
    def change(data: dict[str, Any], _evil: Path) -> None:
        where: Any = data
        for key in path[:-1]:
            where = package(where, key) if isinstance(where, dict) and key in (
                "hepnum", "hepconf", "pip") else where[key]
        where[path[-1]] = value
    return change


def _source(key: str, table: dict[str, Any]):
    """hepnum locked from ``key`` (``vcs``, ``archive``) instead of its wheel."""
    def change(data: dict[str, Any], _evil: Path) -> None:
        entry = package(data, "hepnum")
        del entry["wheels"]
        entry[key] = table
    return change


HOSTILE = {
    "version-newline-e": (lambda d, evil: package(d, "hepnum").update(
        version=f"1.24.2\n-e {evil}"), "packages[1] (hepnum).version"),
    "version-index-url": (_set(["hepnum", "version"], "1.24.2 --index-url http://127.0.0.1:9/"),
                          "is empty or holds whitespace"),
    "version-r-file": (_set(["hepnum", "version"], "1.24.2\n-r /etc/passwd"), ".version"),
    "version-trailing-newline": (_set(["hepnum", "version"], "1.24.2\n"), ".version"),
    "version-not-pep440": (_set(["hepnum", "version"], "1.24.2;rm"), "is not a version"),
    # a PEP 440 version, 40,000 characters long
    "version-40000": (_set(["hepnum", "version"], "1." + "0" * 40_000),
                      "(hepnum).version is longer than 200 characters (40002)"),
    "stack-version-40000": (lambda d, _: d["tool"]["layervenv"]["stack-distributions"].update(
        hepio="5." + "4" * 40_000), "is longer than 200 characters (40002)"),
    # the stack's own fields, shown when the stack differs (a 40 KB line, before)
    "python-version-40000": (lambda d, _: d["tool"]["layervenv"].update(
        **{"python-version": "3.11." + "7" * 40_000}),
        "tool.layervenv.python-version is longer than 200 characters (40005)"),
    "implementation-40000": (lambda d, _: d["tool"]["layervenv"].update(
        implementation="c" * 40_000), "implementation is longer than 200 characters"),
    "python-path-40000": (lambda d, _: d["tool"]["layervenv"].update(
        python="/" + "p" * 40_000), "tool.layervenv.python is longer than 4096 characters"),
    "name-index-url": (_set(["hepnum", "name"], "hepnum --index-url=http://127.0.0.1:9/"),
                       "is not a package name"),
    "name-option": (_set(["hepnum", "name"], "-rhepnum"), "is not a package name"),
    "name-newline": (_set(["hepnum", "name"], "hepnum\n-e /tmp"), "is not a package name"),
    "url-newline": (lambda d, evil: package(d, "hepnum")["wheels"][0].update(
        url=f"https://example.invalid/x.whl\n-e {evil}"), "holds a control character"),
    "url-scheme": (lambda d, evil: package(d, "hepnum")["wheels"][0].update(
        url="ftp://example.invalid/x.whl"), "is not a URL of https, http, file"),
    "path-newline": (lambda d, evil: package(d, "hepnum")["wheels"][0].update(
        path=f"/x.whl\n-e {evil}"), "holds a control character"),
    # pip took y.whl for a wheel's file name and failed with a traceback of its own
    "wheel-url-not-a-wheel": (lambda d, evil: package(d, "hepnum")["wheels"][0].update(
        url="https://example.invalid/y.whl"), "does not end with a wheel file name"),
    "hash-short": (lambda d, evil: package(d, "hepnum")["wheels"][0]["hashes"].update(
        sha256="abc"), "is not a lower-case hex digest"),
    "hash-option": (lambda d, evil: package(d, "hepnum")["wheels"][0]["hashes"].update(
        sha256="0" * 64 + " --index-url=http://127.0.0.1:9/"), "hex digest"),
    "hash-missing": (lambda d, evil: package(d, "hepnum")["wheels"][0].update(
        hashes={}), "has no sha256"),
    "wheel-name": (lambda d, evil: package(d, "hepnum")["wheels"][0].update(
        name="../../hepnum.whl"), ".name"),
    "unknown-package-key": (_set(["hepnum", "install-command"], "rm -rf ~"),
                            "packages[1] (hepnum).install-command is an unknown key"),
    "unknown-tool-key": (lambda d, evil: d["tool"]["layervenv"].update(
        **{"post-create": "curl x | sh"}), "tool.layervenv.post-create is an unknown key"),
    "unknown-top-key": (lambda d, evil: d.update(hooks=["x"]), "hooks is an unknown key"),
    "version-not-string": (_set(["hepnum", "version"], 1), "is not a string"),
    "requested-not-bool": (lambda d, evil: package(d, "hepnum")["tool"]["layervenv"].update(
        requested="yes"), "is not true or false"),
    "rerun-not-bool": (lambda d, evil: d["tool"]["layervenv"].update(
        **{"rerun-setup": "true"}), "is not true or false"),
    "setup-not-string": (lambda d, evil: d["tool"]["layervenv"].update(setup=["x"]),
                         "is not a string"),
    "prompt-escape": (lambda d, evil: d["tool"]["layervenv"].update(prompt="\x1b]0;x\x07"),
                      "holds a control character"),
    "stack-version-newline": (lambda d, evil: d["tool"]["layervenv"]["stack-distributions"]
                              .update(hepnum="1.22.3\nx"), "holds a control character"),
    "requested-from-stack": (lambda d, evil: d["tool"]["layervenv"].update(
        **{"requested-from-stack": ["hepio==5.4.3 --pre"]}), "requested-from-stack[0]"),
    "two-sources": (lambda d, evil: package(d, "hepnum").update(
        directory={"path": str(evil)}), "has more than one source"),
    "no-source": (lambda d, evil: package(d, "hepnum").pop("wheels"), "names no source"),
    "vcs-type": (_source("vcs", {"type": "cvs", "url": "https://example.invalid/x"}),
                 "vcs.type is not one of git"),
    "subdirectory-escapes": (_source("archive", {"url": "https://example.invalid/x.zip",
                                                 "subdirectory": "../..", "hashes": {}}),
                             "leaves its tree"),
    "revision-option": (_source("vcs", {"type": "git", "url": "https://example.invalid/x",
                                        "requested-revision": "-u evil"}), "is not a revision"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_lock_field_is_refused_before_anything_runs(case, real_lock, tmp_path, stack):
    data, env = real_lock
    data = not_here(data, tmp_path / "gone")
    marker = tmp_path / "marker"
    evil = evil_project(tmp_path / "evilproj", marker)
    change, said = HOSTILE[case]
    change(data, evil)
    lock = write_lock(tmp_path / "pylock.toml", data)
    result = run_tool("create", str(tmp_path / "layer"), "--from", str(lock), env=env,
                      check=False)
    refused(result, said, "the lock is refused (nothing was run or created)")
    assert not marker.exists()
    nothing_made(tmp_path)


def test_the_real_lock_itself_is_accepted(real_lock, tmp_path, stack):
    """The hostile cases above are refused for their one change: the lock they come
    from makes a layer, hepnum fetched by pip."""
    data, env = real_lock
    lock = write_lock(tmp_path / "pylock.toml", not_here(data, tmp_path / "gone"))
    run_tool("create", str(tmp_path / "layer"), "--from", str(lock), env=env)
    assert (tmp_path / "layer" / "lib").exists()


HOSTILE_PARTS = st.sampled_from([
    "\n", "\r", "\t", " ", "\x00", "\x1b[2J", "\u2028", "\x85", "-e ", "-r /etc/passwd",
    "--index-url=http://127.0.0.1:9/", " --hash=sha256:" + "0" * 64, "#egg=x", ";", "@",
    " ; python_version<'4'", "file:///etc", "../", "==", "1.0", "hepnum", "https://x/y.whl",
])
HOSTILE_TEXT = st.lists(st.one_of(HOSTILE_PARTS, st.text(max_size=6)), min_size=1,
                        max_size=5).map("".join)


@functools.cache
def _pip_session() -> Any:
    from pip._internal.network.session import PipSession

    return PipSession()


def pip_reads(lines: list[str], path: Path) -> list[Any]:
    """What pip itself makes of ``lines`` as a requirements file: its own parser
    (``parse_requirements``, the one ``pip install -r`` runs) and its own constructor of
    the requirement it installs -- the judge of "harmless", not the tool's pattern."""
    from pip._internal.req.constructors import install_req_from_parsed_requirement
    from pip._internal.req.req_file import parse_requirements

    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    parsed = list(parse_requirements(str(path), session=_pip_session()))
    assert len(parsed) == len(lines), (lines, parsed)  # an option line yields none
    for one in parsed:
        assert not one.is_editable and not one.constraint, one.requirement
        assert set(one.options or {}) <= {"hashes"}, one.options  # no per-line option
    return [install_req_from_parsed_requirement(one) for one in parsed]


def _read(path: Path, data: dict[str, Any]) -> Lock | None:
    """The lock, or None when it is refused; anything else (a traceback) fails the test."""
    write_lock(path, data)
    try:
        return Lock.read(path)
    except UserError as error:
        message = str(error)
        assert "\n" not in message and "\r" not in message and "\x1b" not in message
        return None


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=HOSTILE_TEXT, version=HOSTILE_TEXT, url=HOSTILE_TEXT,
       field=st.sampled_from(["name", "version", "url", "path", "sha256"]))
def test_hostile_strings_are_refused_or_harmless(tmp_path, name, version, url, field):
    """Whatever string a lock holds in a name, version, URL, path or hash: refused in
    one line (a UserError), or read as a value that gives pip one plain requirement."""
    data = {"lock-version": "1.0", "created-by": "layervenv",
            "tool": {"layervenv": {"python-version": "3.11.7", "stack-distributions": {}}},
            "packages": [{"name": "hepnum", "version": "1.24.2", "wheels": [{
                "name": "hepnum-1.24.2-py3-none-any.whl",
                "url": "https://example.invalid/hepnum-1.24.2-py3-none-any.whl",
                "hashes": {"sha256": "0" * 64}}]}]}
    entry = data["packages"][0]
    wheel = entry["wheels"][0]
    value = {"name": name, "version": version}.get(field, url)
    if field in ("name", "version"):
        entry[field] = value
    elif field == "sha256":
        wheel["hashes"]["sha256"] = value
    else:
        wheel[field] = value
    lock = _read(tmp_path / "pylock.toml", data)
    if lock is None:
        return
    (locked,) = lock.packages
    where = locked.wheels[0].get("url") or Path(locked.wheels[0]["path"]).as_uri()
    digest = locked.wheels[0]["hashes"]["sha256"]
    lines = [f"{locked.name}=={locked.version} --hash=sha256:{digest}",
             f"{where} --hash=sha256:{digest}"]
    for line in lines:  # what the tool would write, it lets through
        assert requirement_line(line) == line
    by_name, by_url = pip_reads(lines, tmp_path / "requirements.txt")
    for req in (by_name, by_url):  # one plain requirement each, pinned by the hash
        assert req.hash_options == {"sha256": [digest]}, req.hash_options
        assert req.markers is None and not req.editable and not (req.req and req.req.extras)
    assert by_name.link is None
    assert canonicalize_name(by_name.req.name) == canonicalize_name(locked.name)
    assert str(by_name.req.specifier) == f"=={locked.version}"
    assert by_url.link is not None and by_url.link.url == where, (by_url.link, where)
    assert NAME.fullmatch(locked.name)


def test_a_deeply_nested_value_is_refused_in_one_line(real_lock, tmp_path, stack):
    """TOML's parser recurses into each nested array: a value nested 5,000 deep (in a
    table of another tool's, which the checks leave alone) is one line, not a
    RecursionError's traceback."""
    data, env = real_lock
    lock = write_lock(tmp_path / "pylock.toml", data)
    with open(lock, "a", encoding="utf-8") as handle:
        handle.write("\n[tool.deep]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_tool("create", str(tmp_path / "layer"), "--from", str(lock), env=env,
                      check=False)
    refused(result, "nests arrays or tables too deeply", "nothing was run or created")
    nothing_made(tmp_path)


VERSION_LIKE = st.one_of(
    st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,4}){0,3}((a|b|rc)[0-9]{1,3})?(\.post[0-9])?"
                  r"(\.dev[0-9])?(\+[a-z0-9]{1,8}(\.[a-z0-9]{1,8})*)?\Z"),
    st.integers(0, 400).map(lambda n: "1." + "0" * n),  # about the length limit
    st.integers(0, 300).map(lambda n: "1.0+" + "a" * n),
    HOSTILE_TEXT, st.text(max_size=12))


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=VERSION_LIKE)
def test_a_version_is_taken_exactly_when_packaging_parses_it(tmp_path, version):
    """packaging's own parser is the judge: a locked version is taken if and only if
    ``packaging.version.Version`` parses it, written with nothing around it (no
    whitespace, control character), and at most 200 characters long."""
    from packaging.version import InvalidVersion, Version

    data = {"lock-version": "1.0", "created-by": "layervenv",
            "tool": {"layervenv": {"python-version": "3.11.7", "stack-distributions": {}}},
            "packages": [{"name": "hepnum", "version": version, "wheels": [{
                "name": "hepnum-1.24.2-py3-none-any.whl",
                "url": "https://example.invalid/hepnum-1.24.2-py3-none-any.whl",
                "hashes": {"sha256": "0" * 64}}]}]}
    try:
        Version(version)
        parses = True
    except InvalidVersion:
        parses = False
    plain = version.isprintable() and not any(c.isspace() for c in version)
    expected = parses and plain and len(version) <= 200
    assert (_read(tmp_path / "pylock.toml", data) is not None) == expected, repr(version)


def test_the_last_guard_refuses_an_option_line():
    """Before a requirements file is written, every line is checked again."""
    for line in ("-e /x", "hepnum==1.0\n-e /x", "hepnum==1.0 --index-url=http://x/",
                 "--hash=sha256:" + "0" * 64, "hepnum==1.0 --hash=sha256:00"):
        with pytest.raises(UserError):
            requirement_line(line)
    assert requirement_line("hepnum==1.0 --hash=sha256:" + "a" * 64)
    assert requirement_line("git+https://example.invalid/x@abc#subdirectory=sub")


# ---------------------------------------------------------------------------------------
# Locked files that are not what they say
# ---------------------------------------------------------------------------------------

def _local_file(data: dict[str, Any], name: str, path: Path) -> None:
    """Point the locked wheel of ``name`` at ``path``, with its real sha256 (so it is used
    as the locked file: the hash matches)."""
    wheel = package(data, name)["wheels"][0]
    wheel.pop("url", None)
    wheel.update(path=str(path), hashes={"sha256": hashlib.sha256(path.read_bytes()).hexdigest()})


def test_a_locked_wheel_that_is_not_a_zip_is_one_line(real_lock, tmp_path, stack):
    data, env = copy.deepcopy(real_lock[0]), real_lock[1]
    fake = tmp_path / "hepnum-1.24.2-py3-none-any.whl"
    fake.write_bytes(b"this is not a zip file\n")
    _local_file(data, "hepnum", fake)
    result = run_tool("create", str(tmp_path / "layer"), "--from",
                      str(write_lock(tmp_path / "pylock.toml", data)), env=env, check=False)
    refused(result, "cannot install hepnum-1.24.2-py3-none-any.whl", "not a zip")
    nothing_made(tmp_path)


def traversing_wheel(outdir: Path, member: str) -> Path:
    """A wheel of hepnum 1.24.2 with one more file, ``member`` (``../`` in it)."""
    good = build_wheel(Dist("hepnum", "1.24.2"), outdir / "good")
    bad = outdir / good.name
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bad, "w") as target:
        record = source.read("hepnum-1.24.2.dist-info/RECORD").decode()
        for item in source.infolist():
            if not item.filename.endswith("RECORD"):
                target.writestr(item, source.read(item))
        target.writestr(member, b"escaped\n")
        target.writestr("hepnum-1.24.2.dist-info/RECORD", record + f"{member},,\n")
    return bad


@pytest.mark.parametrize("member", [
    "../../../../../../../../{out}/escaped.py",
    "hepnum-1.24.2.data/data/../../escaped.py",
    "hepnum-1.24.2.data/scripts/../../../escaped.py",
    "/{out}/escaped.py",
], ids=["purelib", "data", "scripts", "absolute"])
def test_a_wheel_with_paths_out_of_the_layer_is_refused(member, real_lock, tmp_path, stack):
    """Checked entry by entry before installing, whatever ``installer`` version does."""
    data, env = copy.deepcopy(real_lock[0]), real_lock[1]
    out = tmp_path / "out"
    out.mkdir()
    member = member.format(out=str(out).lstrip("/"))
    _local_file(data, "hepnum", traversing_wheel(tmp_path / "wheels", member))
    result = run_tool("create", str(tmp_path / "layer"), "--from",
                      str(write_lock(tmp_path / "pylock.toml", data)), env=env, check=False)
    refused(result, "cannot install hepnum-1.24.2-py3-none-any.whl", "outside")
    assert list(out.iterdir()) == [] and not (tmp_path / "escaped.py").exists()
    nothing_made(tmp_path)


# ---------------------------------------------------------------------------------------
# lock into a read-only directory
# ---------------------------------------------------------------------------------------

def test_lock_into_a_read_only_directory_is_one_line(real_lock, tmp_path):
    """As on CVMFS: the temporary file cannot be made, nor removed (EROFS, not ENOENT).
    A read-only tmpfs mounted in a user namespace of its own."""
    unshare = shutil.which("unshare")
    if unshare is None:
        missing("unshare is not installed", "util-linux has it")
    probe = subprocess.run([unshare, "-rm", "sh", "-c", "mount -t tmpfs -o ro none /mnt"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no read-only mount in a user namespace here: {probe.stderr.strip()}")
    _data, env = real_lock
    readonly = tmp_path / "cvmfs"
    readonly.mkdir()
    made = tmp_path / "made"
    run_tool("create", str(made), env=env)
    command = " ".join(f"'{a}'" for a in tool_command("lock", str(made), "-o",
                                                     str(readonly / "pylock.toml")))
    result = subprocess.run([unshare, "-rm", "sh", "-c",
                             f"mount -t tmpfs -o ro none '{readonly}' && exec {command}"],
                            env=env, capture_output=True, text=True, check=False)
    refused(result, f"cannot write {readonly / 'pylock.toml'}: Read-only file system")
