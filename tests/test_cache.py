"""The per-user cache of ``create``: the unpacked pip wheel and the interpreter probe.

Real layers, real pip: a cache filled by concurrent creates is whole (its files are the
wheel's bytes), every layer's pip runs; a cache on another filesystem is copied from; a
read-only or unusable cache changes nothing; pip upgraded or uninstalled in one layer
leaves the cache and the other layers as they were; the interpreter's cached answer
follows the interpreter when it is replaced.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from helpers import clean_env, find_python, py, pythons, run_tool

from layervenv.infra.cache import LAYOUT
from layervenv.services.simstack import tree_digest

PYTHON = os.path.realpath(sys.executable)
BUNDLED = sorted(Path(PYTHON).parent.parent.glob("lib/python3*/ensurepip/_bundled/pip-*.whl"))
_PY313 = find_python("3.13")
NEWER_PIP = sorted(Path(os.path.realpath(_PY313)).parent.parent.glob(
    "lib/python3.13/ensurepip/_bundled/pip-*-py3-none-any.whl")) if _PY313 else []


def create(layer: Path, env: dict[str, str], python: str = PYTHON) -> None:
    run_tool("create", "--python", python, str(layer), env=env)


def cache_env(tmp_path: Path, cache: Path) -> dict[str, str]:
    return clean_env(tmp_path, LAYERVENV_CACHE_DIR=str(cache))


def site(layer: Path) -> Path:
    return next(layer.glob("lib/python3*/site-packages"))


def pip_works(layer: Path, env: dict[str, str]) -> None:
    """pip runs from the layer, as itself, and lists what the layer sees."""
    version = subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "--version"],
                             env=env, capture_output=True, text=True, check=True).stdout
    assert f"from {site(layer)}/pip " in version, version
    listed = subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "list"], env=env,
                            capture_output=True, text=True, check=True).stdout
    assert any(line.split()[:1] == ["pip"] for line in listed.splitlines()), listed
    assert subprocess.run([str(layer / "bin" / "pip"), "--version"], env=env,
                          capture_output=True, check=False).returncode == 0


def entry_matches_wheel(cache: Path) -> None:
    """The cache holds one entry per wheel, nothing half-made, and every cached file is
    byte for byte the wheel's (read from the wheel itself with zipfile)."""
    wheels = cache / LAYOUT / "wheels"
    entries = [p for p in wheels.iterdir()]
    assert [p.name for p in entries if p.name.startswith(".")] == []  # no temp leftovers
    assert len(entries) == 1
    (wheel,) = BUNDLED[-1:]
    facts = json.loads((entries[0] / "contents.json").read_text())
    with zipfile.ZipFile(wheel) as archive:  # pip's wheel: everything goes to purelib
        members = [m for m in archive.namelist()
                   if not m.endswith("/") and not m.endswith(".dist-info/RECORD")]
        assert sorted(path for _, path, *_ in facts["files"]) == sorted(members)
        for member in members:
            cached = entries[0] / "files" / "purelib" / member
            assert cached.read_bytes() == archive.read(member), member
    assert {script for script, *_ in facts["scripts"]} >= {"pip", "pip3"}


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
def test_concurrent_creates_fill_one_whole_cache(tmp_path):
    """TRIALS x PARALLEL creates, each trial on an empty cache filled by all at once."""
    trials, parallel = 4, 4
    for trial in range(trials):
        cache = tmp_path / f"cache{trial}"
        env = cache_env(tmp_path, cache)
        layers = [tmp_path / f"t{trial}-layer{i}" for i in range(parallel)]
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            list(pool.map(create, layers, [env] * parallel))
        entry_matches_wheel(cache)
        for layer in layers:
            pip_works(layer, env)
            linked = site(layer) / "pip" / "__init__.py"
            assert linked.stat().st_nlink >= 2  # a hard link into the cache
    assert len(list(tmp_path.glob("t*-layer*"))) == trials * parallel


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
def test_cache_on_another_filesystem_is_copied(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip("no writable /dev/shm (a tmpfs) for a cache on another filesystem")
    cache = Path(tempfile.mkdtemp(prefix="layervenv-cache-", dir=shm))
    try:
        if os.stat(cache).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("/dev/shm is on the same filesystem as the test directory")
        env = cache_env(tmp_path, cache)
        for name in ("one", "two"):  # cold, then warm
            create(tmp_path / name, env)
            pip_works(tmp_path / name, env)
            copied = site(tmp_path / name) / "pip" / "__init__.py"
            assert copied.stat().st_nlink == 1 and copied.stat().st_mode & 0o200
        entry_matches_wheel(cache)
    finally:
        shutil.rmtree(cache)


def mounted_tmpfs(where: Path) -> bool:
    where.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(where)],
                          capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
def test_read_only_cache(tmp_path):
    """A read-only cache: empty, it stays empty; filled, it is used and stays unchanged."""
    empty, filled = tmp_path / "empty", tmp_path / "filled"
    if not (mounted_tmpfs(empty) and mounted_tmpfs(filled)):
        pytest.skip("cannot mount a tmpfs here (needs root in a mount namespace) to make "
                    "a cache read-only for root too")
    try:
        create(tmp_path / "filler", cache_env(tmp_path, filled))
        for mount in (empty, filled):
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = tree_digest(filled)
        for cache in (empty, filled):
            env = cache_env(tmp_path, cache)
            layer = tmp_path / f"layer-{cache.name}"
            result = run_tool("create", "--python", PYTHON, str(layer), env=env)
            assert result.stderr == ""
            pip_works(layer, env)
        assert list(empty.iterdir()) == []
        assert tree_digest(filled) == before
    finally:
        for mount in (empty, filled):
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
def test_unusable_cache_location_falls_back(tmp_path):
    """A cache path that cannot be a directory (a file is in the way): no cache, no error."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    env = cache_env(tmp_path, blocker / "cache")
    result = run_tool("create", "--python", PYTHON, str(tmp_path / "layer"), env=env)
    assert result.stderr == ""
    pip_works(tmp_path / "layer", env)
    assert (site(tmp_path / "layer") / "pip" / "__init__.py").stat().st_nlink == 1


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
@pytest.mark.parametrize(("name", "umask"), [("layer", 0o022), ("layer", 0o077),
                                             ("a layer", 0o022), ("long-" + "x" * 120, 0o022)])
def test_linked_layer_is_the_installed_layer(tmp_path, name, umask):
    """The same layer made from the cache and without one (installer from the wheel):
    the same files with the same bytes, the same RECORD, INSTALLER and scripts -- where
    the scripts' ``#!`` line is the interpreter's path, written without installer, and
    where installer writes a ``/bin/sh`` one (a space, a path too long for ``#!``)."""
    layer = tmp_path / name
    trees, modes = [], []
    for cache in (tmp_path / "file" / "no-cache", tmp_path / "cache", tmp_path / "cache"):
        (tmp_path / "file").write_text("in the way\n")
        previous = os.umask(umask)  # the tool inherits it
        try:
            run_tool("create", "--python", PYTHON, str(layer), env=cache_env(tmp_path, cache))
        finally:
            os.umask(previous)
        files = {}
        for path in sorted(p for p in layer.rglob("*") if p.is_file() and
                           "__pycache__" not in p.parts and p.name != "layervenv.toml"):
            files[str(path.relative_to(layer))] = path.read_bytes()
        trees.append(files)
        modes.append({script.name: script.stat().st_mode for script in (layer / "bin").iterdir()
                      if script.name.startswith("pip")})
        pip = (layer / "bin" / "pip").read_bytes()
        assert pip.startswith(b"#!/bin/sh\n" if name != "layer" else b"#!" + bytes(layer))
        shutil.rmtree(layer)
    assert modes[0] == modes[1] == modes[2] and len(modes[0]) == 3
    assert trees[0] == trees[1] == trees[2]  # RECORD too, byte for byte


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
@pytest.mark.parametrize(("name", "imported"), [("layer", False), ("a layer", True)])
def test_a_layer_from_the_cache_does_without_installer(tmp_path, name, imported):
    """From a filled cache, ``create`` does not import installer (nor email and
    configparser, a quarter of its start-up) where the scripts' ``#!`` line is the plain
    path; where installer writes another, installer writes it."""
    from helpers import SRC

    env = cache_env(tmp_path, tmp_path / "cache")
    create(tmp_path / "first", env)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from layervenv.app.main import main; "
            "status = main(['create', '-q', '--python', sys.argv[2], sys.argv[3]]); "
            "print(status, 'installer' in sys.modules, 'email.parser' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(SRC), PYTHON,
                             str(tmp_path / name)], env=env, capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["0", str(imported), str(imported)]
    pip_works(tmp_path / name, env)


@pytest.mark.skipif(not (BUNDLED and NEWER_PIP), reason="needs a bundled pip and a newer "
                    "pip wheel (Python 3.13's ensurepip)")
def test_pip_upgrade_and_uninstall_touch_neither_cache_nor_other_layers(tmp_path):
    cache = tmp_path / "cache"
    env = cache_env(tmp_path, cache)
    one, two = tmp_path / "one", tmp_path / "two"
    create(one, env)
    create(two, env)
    cache_before, two_before = tree_digest(cache), tree_digest(two)
    newer = NEWER_PIP[-1]
    subprocess.run([str(one / "bin" / "python"), "-m", "pip", "install", "--no-index",
                    "--upgrade", str(newer)], env=env, capture_output=True, check=True)
    version = newer.name.split("-")[1]
    assert py(one / "bin" / "python", "import pip; print(pip.__version__)", env) == version
    assert tree_digest(cache) == cache_before and tree_digest(two) == two_before
    subprocess.run([str(one / "bin" / "python"), "-m", "pip", "uninstall", "-y", "pip"],
                   env=env, capture_output=True, check=True)
    assert not (site(one) / "pip").exists()
    assert tree_digest(cache) == cache_before and tree_digest(two) == two_before
    pip_works(two, env)
    assert py(two / "bin" / "python", "import pip; print(pip.__version__)",
              env) == BUNDLED[-1].name.split("-")[1]
    entry_matches_wheel(cache)


def test_interpreter_answer_follows_a_replaced_interpreter(tmp_path):
    """A stack's python3 replaced in place by another Python: the next layer is made on
    the new one, not on the cached answer for the old one."""
    others = [found for found in map(find_python, ("3.12", "3.13")) if found]
    if not others:
        pytest.skip("needs a Python 3.12 or 3.13 (found through pyenv, uv or PATH)")
    stack_python = tmp_path / "stack" / "bin" / "python3"
    stack_python.parent.mkdir(parents=True)
    shutil.copy2(PYTHON, stack_python)
    env = cache_env(tmp_path, tmp_path / "cache")
    version = "{}.{}".format(*sys.version_info[:2])
    for name in ("first", "again"):  # the second from the cached answer
        run_tool("create", "--without-pip", "--python", str(stack_python),
                 str(tmp_path / name), env=env)
        assert py(tmp_path / name / "bin" / "python",
                  "import sys; print('%d.%d' % sys.version_info[:2])", env) == version
    assert len(list((tmp_path / "cache" / LAYOUT / "interpreters").iterdir())) == 1
    replacement = tmp_path / "stack" / "bin" / "python3.new"
    shutil.copy2(others[-1], replacement)
    os.replace(replacement, stack_python)
    run_tool("create", "--without-pip", "--python", str(stack_python), str(tmp_path / "new"),
             env=env)
    new_version = others[-1].name.removeprefix("python")  # python3.13
    assert py(tmp_path / "new" / "bin" / "python",
              "import sys; print('%d.%d' % sys.version_info[:2])", env) == new_version
    assert (tmp_path / "new" / "lib" / f"python{new_version}" / "site-packages").is_dir()


def _wheel_pip_scripts(python: str) -> set[str] | None:
    """The pip* console scripts ``python``'s bundled pip wheel names, if it has one."""
    found = sorted(Path(python).resolve().parent.parent.glob(
        "lib/python3*/ensurepip/_bundled/pip-*.whl"))
    if not found:
        return None
    with zipfile.ZipFile(found[-1]) as wheel:
        points = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
        return {line.split("=")[0].strip() for line in wheel.read(points).decode().splitlines()
                if line.startswith("pip")}


_FOUND = {str(found.path): found.version for found in pythons() if found.version[0] == 3}
#: newest first (pip 18 of Python 3.6 is not the case of interest)
_PYTHONS = list(reversed(_FOUND))


def _version(python: str) -> str:
    return "{}.{}".format(*_FOUND[python])  # 3.10


#: interpreters whose bundled pip names another Python's pipX.Y (3.10's says pip3.9),
#: and none at all (pip 24's wheels: pip and pip3 only)
OTHER_PIPS = [p for p in (
    next((p for p in _PYTHONS if any(n.startswith("pip3.") and n != f"pip{_version(p)}"
                                     for n in _wheel_pip_scripts(p) or ())), None),
    next((p for p in _PYTHONS if _wheel_pip_scripts(p) == {"pip", "pip3"}), None),
) if p is not None]


@pytest.mark.skipif(not OTHER_PIPS, reason="no interpreter whose bundled pip wheel names "
                    "another Python's pipX.Y or none")
@pytest.mark.parametrize("python", OTHER_PIPS or [None])
@pytest.mark.parametrize("cached", [False, True])
def test_pip_scripts_name_the_layers_python(tmp_path, cached, python):
    """pip's versioned scripts are named after the layer's Python, as pip names them when
    it installs itself (the reference: ``python -m venv``, whose ensurepip runs pip), from
    the cache and without one; pip's own uninstall then removes every one of them."""
    cache = tmp_path / "cache" if cached else tmp_path / "file" / "no-cache"
    (tmp_path / "file").write_text("in the way\n")
    env = cache_env(tmp_path, cache)
    layer = tmp_path / "layer"
    create(layer, env, python)
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, env=env)
    scripts = sorted(p.name for p in (layer / "bin").iterdir() if p.name.startswith("pip"))
    assert scripts == sorted(p.name for p in (venv / "bin").iterdir()
                             if p.name.startswith("pip"))
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y",
                    "pip"], check=True, env=env)
    assert [p.name for p in (layer / "bin").iterdir() if p.name.startswith("pip")] == []


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
def test_an_interrupted_fill_leaves_no_partial_entry(tmp_path):
    """Ctrl-C while the cache is being filled: the command stops (status 130) or
    finishes, and the cache holds a whole entry or none -- never a half-unpacked
    ``.tmp-*`` that nothing would remove.  KILL_TRIALS runs, the signal spread from the
    end of the tool's start-up to the end of a cold create (timed again by a run that
    finished before its signal: a shared machine's first timing may be a slow moment)."""
    import signal
    import time

    from helpers import tool_command

    start = time.perf_counter()
    subprocess.run(tool_command("--version"), check=True, capture_output=True)
    # (a Ctrl-C before the tool's first line is Python's: a KeyboardInterrupt traceback)
    started = time.perf_counter() - start
    start = time.perf_counter()
    create(tmp_path / "timed", cache_env(tmp_path, tmp_path / "timing"))
    cold = time.perf_counter() - start
    stopped = in_fill = trials = 0
    # up to three rounds of KILL_TRIALS: the timing adapts to a run that finished first
    # (a loaded machine times its first create slow); done once enough landed
    for trial in range(3 * KILL_TRIALS):
        if trial >= KILL_TRIALS and stopped >= KILL_TRIALS * STOPPED_SHARE and in_fill >= 1:
            break
        trials += 1
        cache = tmp_path / f"cache{trial}"
        env = cache_env(tmp_path, cache)
        begun = time.perf_counter()
        child = subprocess.Popen(tool_command("create", "-q", "--python", PYTHON,
                                              str(tmp_path / f"layer{trial}")),
                                 env=env, stderr=subprocess.PIPE, text=True)
        delay = started + (cold - started) * (trial % KILL_TRIALS + 1) / (KILL_TRIALS + 1)
        while child.poll() is None and time.perf_counter() - begun < delay:
            time.sleep(0.005)
        if child.poll() is not None:  # finished first: a cold create takes this long
            cold = max(time.perf_counter() - begun, started)
        child.send_signal(signal.SIGINT)
        _, errors = child.communicate(timeout=60)
        assert child.returncode in (0, 130), errors
        assert "Traceback" not in errors
        stopped += child.returncode == 130
        wheels = cache / LAYOUT / "wheels"
        leftovers = [p.name for p in wheels.iterdir()] if wheels.is_dir() else []
        assert [n for n in leftovers if n.startswith(".tmp-")] == [], (trial, leftovers)
        for name in leftovers:
            assert (wheels / name / "contents.json").is_file()
        # stopped once the cache's section was made and before its entry was whole
        in_fill += child.returncode == 130 and wheels.is_dir() and not leftovers
    print(f"{trials} trials: {stopped} stopped by the signal ({in_fill} of them with the "
          "cache's entry begun, not whole), the others finished")
    # signals that all came too early or too late (a fast or a slow machine) prove nothing
    assert stopped >= KILL_TRIALS * STOPPED_SHARE and in_fill >= 1, (stopped, in_fill)


#: Ctrl-C trials of the test above
KILL_TRIALS = 12
#: the least share of them the signal must stop (5 to 9 of 12 here)
STOPPED_SHARE = 1 / 3


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
@pytest.mark.parametrize("damage", ["file-gone", "contents-truncated", "script-garbled",
                                    "a-file", "dangling-link"])
def test_a_damaged_entry_is_filled_again(tmp_path, damage):
    """A damaged cache entry (a file of it deleted, its contents.json cut short, a
    cached script that is not base64): the create that finds it makes a whole layer
    without it, and the next one links from a new, whole entry."""
    env = cache_env(tmp_path, tmp_path / "cache")
    create(tmp_path / "first", env)
    wheels = tmp_path / "cache" / LAYOUT / "wheels"
    (entry,) = list(wheels.iterdir())
    contents = entry / "contents.json"
    os.chmod(entry, 0o755)
    if damage == "file-gone":
        victim = next(p for p in (entry / "files").rglob("*.py"))
        os.chmod(victim.parent, 0o755)
        victim.unlink()
    elif damage == "contents-truncated":
        contents.write_bytes(contents.read_bytes()[:100])
    elif damage == "script-garbled":
        facts = json.loads(contents.read_text())
        facts["scripts"][0][4] = "!!!"
        contents.write_text(json.dumps(facts))
    else:  # not a directory where the entry goes
        shutil.rmtree(entry)
        if damage == "a-file":
            entry.write_text("junk\n")
        else:
            entry.symlink_to(tmp_path / "nowhere")
    for name in ("second", "third"):
        create(tmp_path / name, env)
        pip_works(tmp_path / name, env)
        assert sorted(p.name for p in (tmp_path / name / "bin").iterdir()
                      if p.name.startswith("pip")) == sorted(
            p.name for p in (tmp_path / "first" / "bin").iterdir() if p.name.startswith("pip"))
    assert [p.name for p in wheels.iterdir() if p.name.startswith(".tmp-")] == []
    entry_matches_wheel(tmp_path / "cache")
    # the third was linked from the new entry
    assert (site(tmp_path / "third") / "pip" / "__init__.py").stat().st_nlink > 1


@pytest.mark.skipif(not BUNDLED, reason="the test interpreter has no bundled pip wheel")
def test_concurrent_creates_on_a_damaged_entry(tmp_path):
    """TRIALS x PARALLEL creates at once, each trial on an entry with a file deleted:
    every layer whole (pip runs; every file its RECORD names is there); the damaged
    entry is gone (each create that links from it sets it aside), the cache holds one
    whole entry or none, and no ``.tmp-*`` (empty ones were left); the next create
    links from one whole entry."""
    trials, parallel = 3, 6
    refilled = 0
    for trial in range(trials):
        cache = tmp_path / f"cache{trial}"
        env = cache_env(tmp_path, cache)
        create(tmp_path / f"t{trial}-first", env)
        (entry,) = list((cache / LAYOUT / "wheels").iterdir())
        victim = next(p for p in (entry / "files").rglob("*.py"))
        os.chmod(victim.parent, 0o755)
        victim.unlink()
        layers = [tmp_path / f"t{trial}-layer{i}" for i in range(parallel)]
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            list(pool.map(create, layers, [env] * parallel))
        for layer in layers:
            pip_works(layer, env)
            (record,) = site(layer).glob("pip-*.dist-info/RECORD")
            for line in record.read_text().splitlines():
                assert (record.parent.parent / line.split(",")[0]).exists(), line
        wheels = cache / LAYOUT / "wheels"
        assert [p.name for p in wheels.iterdir() if p.name.startswith(".")] == []
        left = list(wheels.iterdir())
        assert len(left) <= 1, left
        if left:  # filled again during the race: whole (the damaged one lacks a file)
            entry_matches_wheel(cache)
            refilled += 1
        after = tmp_path / f"t{trial}-after"
        create(after, env)  # whatever the race left, from here on the cache is whole
        entry_matches_wheel(cache)
        assert (site(after) / "pip" / "__init__.py").stat().st_nlink > 1  # linked from it
        assert (site(after) / victim.relative_to(entry / "files" / "purelib")).is_file()
        pip_works(after, env)
    print(f"{trials} trials: {refilled} refilled the entry during the race, "
          f"{trials - refilled} left none")
