"""``layervenv pack``: an archive a job unpacks anywhere and uses with only the stack.

Every test unpacks with the real ``tar`` and runs ``bin/layervenv-run`` from an empty
environment (``env -i``), and asks the job's own interpreter (importlib.metadata, a
real import) or a real shell what it sees.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import POSIX_SHELLS, SHELLS, run_shell, run_tool
from packlayer import (
    PROJECT_MARK,
    PROJECT_VERSION,
    Packed,
    make_batch_layer,
    pack_layer,
    packed_layer,
    report,
    run_in_job,
    unpack,
)

from layervenv.boot._layervenv_boot import INDEX_NAME
from layervenv.model.layer import Layer, LayerConfig
from layervenv.model.stack import StackRecord
from layervenv.services.packing import PLACEHOLDER, rendered_files, script_header, unsafe_characters
from layervenv.services.simstack import Dist, SimStack, build_stack, build_wheel

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, _built_stack: SimStack) -> Packed:
    return packed_layer(tmp_path_factory, _built_stack)


def test_job_sees_layer_stack_and_snapshot(packed, tmp_path, stack):
    layer, archive, result = packed.layer, packed.archive, packed.result
    assert [(s["name"], s["version"]) for s in result["snapshots"]] == [
        ("hepconf", PROJECT_VERSION)]
    os.rename(layer.parent / "project", layer.parent / "away")  # the worker cannot see it
    try:
        _job_sees(archive, tmp_path, stack)
    finally:
        os.rename(layer.parent / "away", layer.parent / "project")


def _job_sees(archive, tmp_path, stack):
    unpacked = unpack(archive, tmp_path / "job dir with spaces")
    seen = report(unpacked)
    assert seen["prefix"] == str(unpacked)
    assert seen["hepnum"] == seen["hepnum_module"] == "1.24.2"  # the layer's upgrade wins
    assert seen["hepnum_file"].startswith(str(unpacked))
    assert seen["hepfit_file"].startswith(str(stack.site_packages))  # the stack imports
    assert seen["hepconf"] == PROJECT_VERSION and seen["hepconf_mark"] == PROJECT_MARK
    assert seen["hepconf_file"].startswith(str(unpacked / "lib"))  # a normal install
    # layervenv.toml names the new path (read with tomllib, not with layervenv)
    config = tomllib.loads((unpacked / "layervenv.toml").read_text())
    assert config["layervenv"]["path"] == str(unpacked)
    # pip's console script runs the unpacked layer's pip (the path has a space: trampoline)
    pip = run_in_job(unpacked, "pip", "--version")
    assert pip.returncode == 0, pip.stderr
    assert str(unpacked / "lib") in pip.stdout


@pytest.mark.parametrize("shell", [*POSIX_SHELLS, "fish", "tcsh", "csh"])
def test_activation_after_first_run(packed, tmp_path, shell):
    archive = packed.archive
    unpacked = unpack(archive, tmp_path / "jobs")
    assert run_in_job(unpacked, "true").returncode == 0
    syntax = SHELLS[shell]
    script = "\n".join([
        syntax.source(unpacked),
        "python -c 'import hepnum, sys; print(hepnum.__version__, sys.prefix)'",
        "deactivate",
    ])
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = run_shell(shell, script, env).stdout.split()
    assert out == ["1.24.2", str(unpacked)]


def test_exit_status_signals_and_streams_are_the_commands(packed, tmp_path):
    archive = packed.archive
    unpacked = unpack(archive, tmp_path / "jobs")
    result = run_in_job(unpacked, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")
    killed = run_in_job(unpacked, "sh", "-c", "kill -TERM $$")
    assert killed.returncode == -15
    # no PATH in the job: the shell's default one, behind the layer's bin
    tools = run_in_job(unpacked, "sh", "-c", 'command -v python; command -v tar; echo "$PATH"')
    python, tar, path = tools.stdout.splitlines()
    assert (python, tar) == (str(unpacked / "bin" / "python"), shutil.which("tar"))
    assert path.split(":")[0] == str(unpacked / "bin")
    missing = run_in_job(unpacked, "no-such-command-here")
    assert missing.returncode == 127
    # after the first run, no Python starts before COMMAND: the marker names this archive
    # (its identity, read here from the archive with tarfile) and this path
    assert (unpacked / ".layervenv-pack" / "unpacked").read_text() == \
        f"{_identity(archive)} {unpacked}\n"


def _identity(archive: Path) -> str:
    """The archive's identity as its first file and its manifest name it (tarfile)."""
    with tarfile.open(archive) as tar:
        first = next(m for m in tar.getmembers() if m.isfile())
        assert first.name.endswith("/.layervenv-pack/id")
        identity = tar.extractfile(first).read().decode().strip()
        manifest = json.loads(tar.extractfile(tar.getmembers()[-1]).read())
    assert manifest["archive"] == identity and len(identity) == 64
    return identity


def test_archive_is_reproducible_and_transferable(packed, tmp_path, stack):
    layer, archive = packed.layer, packed.archive
    again = tmp_path / "again.tar.gz"
    human = run_tool("pack", str(layer), "-o", str(again), env=packed.env).stdout
    assert f"snapshot of editable hepconf {PROJECT_VERSION} from {layer.parent / 'project'}" \
        in human
    assert hashlib.sha256(archive.read_bytes()).digest() == \
        hashlib.sha256(again.read_bytes()).digest()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[-1] == "ana/.layervenv-pack/manifest.json"
    # the identity is the first file, the manifest the last; the rest sorted
    assert names[:3] == ["ana", "ana/.layervenv-pack", "ana/.layervenv-pack/id"]
    assert names[3:-1] == sorted(names[3:-1], key=lambda n: n.split("/"))
    owners = {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members}
    assert owners == {(0, 0, "", "", 946684800)}
    # no link to a directory (HTCondor's file transfer drops them): lib64 is made again
    assert "ana/lib64" not in names
    assert not any("__editable__" in n or (n.endswith(".pth") and "hepconf" in n) for n in names)
    assert (layer / "lib64").is_symlink()
    unpacked = unpack(archive, tmp_path / "jobs")
    assert run_in_job(unpacked, "true").returncode == 0
    assert os.readlink(unpacked / "lib64") == "lib"


def test_bytecode_stays_valid_after_unpacking(packed, tmp_path):
    """Normalised mtimes must not make every job recompile (PYTHONDONTWRITEBYTECODE)."""
    archive = packed.archive
    unpacked = unpack(archive, tmp_path / "jobs")
    code = ("import importlib.util, os, _layervenv_boot as m; "
            "data = open(importlib.util.cache_from_source(m.__file__), 'rb').read(); "
            "print(int.from_bytes(data[8:12], 'little') == int(os.stat(m.__file__).st_mtime))")
    result = run_in_job(unpacked, "python", "-c", code)
    assert result.stdout.strip() == "True", result.stderr


VERSION = ("python", "-c", "import hepnum; print(hepnum.__version__)")


def test_concurrent_first_runs(packed, tmp_path):
    """A job array on a shared directory: many first runs at once all work."""
    archive = packed.archive
    trials, width = 4, 8
    for trial in range(trials):
        unpacked = unpack(archive, tmp_path / f"shared{trial}")
        with ThreadPoolExecutor(width) as pool:
            results = list(pool.map(lambda where: run_in_job(where, *VERSION),
                                    [unpacked] * width))
        assert [(r.returncode, r.stdout, r.stderr) for r in results] == \
            [(0, "1.24.2\n", "")] * width
        # (the import index is the layer's own: the boot hook records the stack's entries)
        leftovers = [p for p in unpacked.rglob("*.layervenv-*")
                     if p.name not in (".layervenv-pack", INDEX_NAME)]
        assert leftovers == []


def test_truncated_archive_is_never_used(packed, tmp_path):
    archive = packed.archive
    data = archive.read_bytes()
    for fraction in (0.3, 0.6, 0.95):
        cut = tmp_path / f"cut{fraction}.tar.gz"
        cut.write_bytes(data[: int(len(data) * fraction)])
        dest = tmp_path / f"dest{fraction}"
        dest.mkdir()
        tar = subprocess.run(["tar", "-xzf", str(cut), "-C", str(dest)], capture_output=True)
        assert tar.returncode != 0  # tar says so itself
        launcher = dest / "ana" / "bin" / "layervenv-run"
        result = run_in_job(dest / "ana", "python", "-c", "print('ran')")
        if launcher.exists():
            assert result.returncode == 2 and result.stdout == ""
            assert result.stderr.count("\n") == 1 and "incomplete" in result.stderr
        else:
            assert result.returncode != 0
    # a file cut short in a directory that has its manifest is refused too
    unpacked = unpack(archive, tmp_path / "whole")
    victim = next((unpacked / "lib").rglob("hepnum/__init__.py"))
    victim.write_bytes(victim.read_bytes()[:5])
    result = run_in_job(unpacked, "true")
    assert result.returncode == 2 and "cut short" in result.stderr, result.stderr
    assert not (unpacked / "bin" / "activate").exists()


def test_a_path_the_scripts_cannot_hold_is_refused(packed, tmp_path):
    archive = packed.archive
    unpacked = unpack(archive, tmp_path / "it's here")
    result = run_in_job(unpacked, "true")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "\"'\"" in result.stderr


@pytest.fixture
def own_stack(tmp_path):
    """A stack of this test's own, which it may break (the shared one must stay intact)."""
    stack = build_stack(tmp_path / "stack" / "LCG_own", Path(sys._base_executable))
    return stack


def _layer_on(stack, tmp_path, base_env):
    env = stack.env(base_env)
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(stack.wheelhouse))
    layer = make_batch_layer(tmp_path / "home", stack, env, editable=False)
    archive = tmp_path / "ana.tar.gz"
    pack_layer(layer, archive, env)
    return unpack(archive, tmp_path / "job")


def test_missing_stack(own_stack, tmp_path, base_env):
    unpacked = _layer_on(own_stack, tmp_path, base_env)
    os.rename(own_stack.site_packages, own_stack.site_packages.with_name("gone"))
    result = run_in_job(unpacked, "python", "-c", "print('ran')")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "stack of this layer is missing" in result.stderr
    os.rename(own_stack.site_packages.with_name("gone"), own_stack.site_packages)
    os.rename(own_stack.root, own_stack.root.with_name("elsewhere"))  # CVMFS not mounted
    result = run_in_job(unpacked, "python", "-c", "print('ran')")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "interpreter" in result.stderr


def test_another_release(own_stack, tmp_path, base_env):
    from helpers import other_python

    unpacked = _layer_on(own_stack, tmp_path, base_env)
    # another build of the release: a distribution more on the stack -> one warning, runs
    extra = own_stack.site_packages / "newpkg-1.0.dist-info"
    extra.mkdir()
    result = run_in_job(unpacked, "python", "-c", "import hepnum; print(hepnum.__version__)")
    assert (result.returncode, result.stdout) == (0, "1.24.2\n")
    assert result.stderr.count("\n") == 1 and "warning" in result.stderr
    assert "fingerprint" in result.stderr
    # another Python at the stack's path: refused before anything runs
    other = other_python()
    if other is None:
        pytest.skip("no interpreter of another Python version")
    os.unlink(own_stack.python)
    os.symlink(other, own_stack.python)
    (unpacked / ".layervenv-pack" / "unpacked").unlink()  # a fresh unpack of it
    result = run_in_job(unpacked, "python", "-c", "print('ran')")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "made on Python" in result.stderr


@dataclass
class Versions:
    """One layer packed twice: ``old`` (hepnum 1.24.2), then ``new`` (hepnum 2.0.0 and
    ``hepnew``, whose console script ``hepnew-run`` the old archive does not have)."""

    old: Path
    new: Path


@pytest.fixture
def two_versions(own_stack, tmp_path, base_env) -> Versions:
    env = own_stack.env(base_env)
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(own_stack.wheelhouse))
    layer = make_batch_layer(tmp_path / "home", own_stack, env, editable=False)
    old = tmp_path / "v1" / "ana.tar.gz"
    old.parent.mkdir()
    pack_layer(layer, old, env)
    wheel = build_wheel(Dist("hepnew", "1.0", scripts=("hepnew-run",)), tmp_path / "wheels")
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q",
                    "hepnum==2.0.0", str(wheel)], env=env, check=True, capture_output=True)
    new = tmp_path / "v2" / "ana.tar.gz"
    new.parent.mkdir()
    pack_layer(layer, new, env)
    return Versions(old, new)


#: what a job sees of hepnum: every distribution of that name in the layer, and the module
SEEN = ("import json, sys, hepnum; from importlib import metadata; print(json.dumps(sorted("
        "d.version for d in metadata.distributions() if d.metadata['Name'] == 'hepnum' "
        "and str(d.locate_file('')).startswith(sys.prefix)) + [hepnum.__version__]))")


def test_a_newer_archive_over_an_older_unpack(two_versions, tmp_path):
    """The newer archive unpacked where the older one was used is put in place again:
    its new console script runs, the older one's distribution is gone, a file of the
    user's in the directory stays."""
    dest = tmp_path / "job"
    unpacked = unpack(two_versions.old, dest)
    assert json.loads(run_in_job(unpacked, "python", "-c", SEEN).stdout) == \
        ["1.24.2", "1.24.2"]
    (unpacked / "results.txt").write_text("the user's\n")
    assert unpack(two_versions.new, dest) == unpacked
    script = run_in_job(unpacked, "hepnew-run")
    assert script.returncode == 0, script.stderr
    assert script.stdout.split()[:2] == ["hepnew", "1.0"]
    seen = run_in_job(unpacked, "python", "-c", SEEN)
    assert json.loads(seen.stdout) == ["2.0.0", "2.0.0"], seen.stderr
    assert not list(unpacked.glob("lib/python*/site-packages/hepnum-1.24.2.dist-info"))
    assert (unpacked / "results.txt").read_text() == "the user's\n"
    assert (unpacked / ".layervenv-pack" / "unpacked").read_text() == \
        f"{_identity(two_versions.new)} {unpacked}\n"
    # and back: the older archive over the newer unpack drops hepnew's script
    unpack(two_versions.old, dest)
    assert json.loads(run_in_job(unpacked, "python", "-c", SEEN).stdout) == \
        ["1.24.2", "1.24.2"]
    assert run_in_job(unpacked, "hepnew-run").returncode == 127


def test_a_truncated_update_is_refused(two_versions, tmp_path):
    """The newer archive cut short over a used older unpack: refused in one line that
    says what to do, never run with files of both; unpacked whole, it runs."""
    data = two_versions.new.read_bytes()
    for fraction in (0.3, 0.6, 0.95):
        dest = tmp_path / f"job{fraction}"
        unpacked = unpack(two_versions.old, dest)
        assert run_in_job(unpacked, "true").returncode == 0
        cut = tmp_path / f"cut{fraction}.tar.gz"
        cut.write_bytes(data[: int(len(data) * fraction)])
        tar = subprocess.run(["tar", "-xzf", str(cut), "-C", str(dest)], capture_output=True)
        assert tar.returncode != 0  # tar says so itself
        for command in (("python", "-c", SEEN), ("true",)):  # and on every run
            result = run_in_job(unpacked, *command)
            assert (result.returncode, result.stdout) == (2, ""), (fraction, result)
            assert result.stderr.count("\n") == 1, result.stderr
            assert "unpack the archive again, completely" in result.stderr
        unpack(two_versions.new, dest)
        seen = run_in_job(unpacked, "python", "-c", SEEN)
        assert json.loads(seen.stdout) == ["2.0.0", "2.0.0"], seen.stderr


def test_later_runs_refuse_another_python_at_the_recorded_path(own_stack, tmp_path,
                                                               base_env):
    """The stack's interpreter path (a link, as in a view) swapped to another Python X.Y
    after the first run: every later run refuses in one line; swapped back, it runs."""
    from helpers import other_python

    other = other_python()
    if other is None:
        pytest.fail("no interpreter of another Python version")
    unpacked = _layer_on(own_stack, tmp_path, base_env)
    code = ("python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])")
    here = run_in_job(unpacked, *code)
    assert here.returncode == 0 and here.stdout.strip() != other.name[len("python"):]
    was = os.readlink(own_stack.python)
    os.unlink(own_stack.python)
    os.symlink(other, own_stack.python)
    for _ in range(2):
        result = run_in_job(unpacked, *code)
        assert (result.returncode, result.stdout) == (2, ""), result
        assert result.stderr.count("\n") == 1 and "made on Python" in result.stderr
    os.unlink(own_stack.python)
    os.symlink(was, own_stack.python)
    assert run_in_job(unpacked, *code).stdout == here.stdout


def test_launcher_reached_through_links(packed, tmp_path):
    """``ln -s DEST/ana/bin/layervenv-run ~/bin/ana-run``: an absolute link, a relative
    link to that link, and the link found on PATH by a real shell."""
    unpacked = unpack(packed.archive, tmp_path / "jobs")
    home_bin = tmp_path / "home" / "bin"
    home_bin.mkdir(parents=True)
    (home_bin / "ana-run").symlink_to(unpacked / "bin" / "layervenv-run")
    other = tmp_path / "home" / "other"
    other.mkdir()
    (other / "r").symlink_to("../bin/ana-run")
    prefix = "import sys; print(sys.prefix)"
    for launcher in (home_bin / "ana-run", other / "r"):
        result = subprocess.run([str(launcher), "python", "-c", prefix], env={},
                                capture_output=True, text=True, check=False)
        assert (result.returncode, result.stdout, result.stderr) == \
            (0, f"{unpacked}\n", ""), launcher
    result = subprocess.run(["sh", "-c", f'ana-run python -c "{prefix}"'],
                            env={"PATH": f"{home_bin}:/usr/bin:/bin"}, capture_output=True,
                            text=True, check=False, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{unpacked}\n", "")


def test_pack_errors_are_one_line(packed, tmp_path, base_env):
    result = run_tool("pack", str(tmp_path / "nope"), env=base_env, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    unwritable = run_tool("pack", str(packed.layer), "-o", str(tmp_path / "no" / "x.tar.gz"),
                          env=packed.env, check=False)
    assert unwritable.returncode == 2 and unwritable.stderr.count("\n") == 1
    assert unwritable.stdout == "" and "Traceback" not in unwritable.stderr
    help_text = run_tool("pack", "--help", env=base_env).stdout
    assert "layervenv-run" in help_text


def test_first_runs_killed_half_way(packed, tmp_path):
    """A job killed during its first run leaves a directory the next run completes.

    The whole job is killed (its process group: the launcher and the stack's Python of
    the first run).  Half the trials kill at moments spread over a first run, the other
    half at moments spread over its writing (from the first file it writes, seen by
    polling, to its marker; both timed on a run first).  A kill landed *during* the first
    run when the job had not ended by itself (killed by the signal) and no marker is
    there after it; *while writing* when a file the first run writes (the manifest's
    templates) is there too.  The shares are printed and a minimum asserted.
    """
    archive = packed.archive
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile(tar.getmembers()[-1]).read())
    written = [e["path"] for e in manifest["templates"]]

    def started(unpacked: Path) -> subprocess.Popen:
        return subprocess.Popen([str(unpacked / "bin" / "layervenv-run"), "true"], env={},
                                start_new_session=True)

    def has_written(root: Path) -> bool:
        return any((root / rel).exists() for rel in written)

    def poll(condition, process) -> float:
        begin = time.perf_counter()
        while not condition() and process.poll() is None:
            time.sleep(0.0005)
        return time.perf_counter() - begin

    timed = unpack(archive, tmp_path / "timed")
    process = started(timed)
    first_write = poll(functools.partial(has_written, timed), process)
    window = poll(lambda: (timed / ".layervenv-pack" / "unpacked").exists(), process)
    total = first_write + window
    assert process.wait() == 0
    trials = 20
    outcomes = {"during": 0, "while writing": 0, "after": 0}
    for trial in range(trials):
        unpacked = unpack(archive, tmp_path / f"k{trial}")
        process = started(unpacked)
        share = 0.7 * (trial // 2) / (trials // 2)  # the ends are hit least reliably
        if trial % 2:
            poll(functools.partial(has_written, unpacked), process)
            time.sleep(0.5 * window * share)
        else:
            time.sleep(total * share)
        os.killpg(process.pid, signal.SIGKILL)
        status = process.wait()
        if status == -signal.SIGKILL and not (unpacked / ".layervenv-pack" / "unpacked").exists():
            outcomes["during"] += 1
            if has_written(unpacked):
                outcomes["while writing"] += 1
        else:
            outcomes["after"] += 1
        result = run_in_job(unpacked, *VERSION)
        assert (result.returncode, result.stdout, result.stderr) == (0, "1.24.2\n", "")
    print(f"first run: {total:.3f} s, writing {window:.3f} s; {trials} kills: {outcomes}")
    assert outcomes["during"] >= trials // 2, outcomes
    assert outcomes["while writing"] >= trials // 10, outcomes


# --- the placeholder: rendering for it and replacing it is rendering for the path -------

@functools.lru_cache(maxsize=1)
def _templates() -> tuple[Layer, dict[str, bytes], str]:
    layer = Layer(root=Path("/made/here/ana"), config=LayerConfig(
        stack=StackRecord(python="/stack/bin/python3", python_version="3.11.7",
                          environment={"prepend": {"PYTHONPATH": ["/stack/lib/site"]},
                                       "set": {"STACKVAR": "x"}}),
        prompt="ana", purelib="lib/python3.11/site-packages", path="/made/here/ana"))
    templates = rendered_files(layer, PLACEHOLDER)
    return layer, templates, unsafe_characters(layer, templates)


def test_unsafe_characters_are_the_quoted_ones():
    """' (every shell's quotes), \\ (fish's, TOML's), ! (csh), " (TOML), and what a layer
    path can never hold."""
    assert set(_templates()[2]) == set("\0\n:!'\\\"")


#: directory names a job's path may hold: every probed character but the seven the
#: worker refuses (written out here, not taken from the tool)
ODD_DIRS = ["a b\tc \u00e9", "$HOME`id`;&|<>", "*?[a]{b,c}(x)", "#~%=@^+,-._", "-lead ~x {} $"]
#: what the activated layer's python sees, printed as JSON; the same line in every shell
ACTIVE_SEEN = ("python -c 'import json, os, sys, shutil; print(json.dumps([sys.prefix, "
        "os.environ.get(\"VIRTUAL_ENV\"), shutil.which(\"python\")]))'")


@pytest.mark.parametrize("where", [ODD_DIRS[:2], ODD_DIRS[2:4], ODD_DIRS[4:]],
                         ids=["spaces-tab-accent-shell", "globs-punctuation", "leading"])
def test_rendered_scripts_work_in_real_shells_at_odd_paths(packed, tmp_path, where):
    """The templates, made for the placeholder and finished on the worker, at paths with
    odd characters: every shell's activation gives the unpacked layer's python and
    VIRTUAL_ENV, and deactivate gives PATH back; the console scripts and
    ``layervenv.toml`` (read with tomllib) name the path."""
    dest = tmp_path.joinpath(*where)
    unpacked = unpack(packed.archive, dest)
    first = run_in_job(unpacked, "pip", "--version")
    assert first.returncode == 0 and str(unpacked / "lib") in first.stdout, first.stderr
    config = tomllib.loads((unpacked / "layervenv.toml").read_text())
    assert config["layervenv"]["path"] == str(unpacked)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    python = str(unpacked / "bin" / "python")
    for shell in (*POSIX_SHELLS, "fish", "tcsh", "csh"):
        script = "\n".join([SHELLS[shell].source(unpacked), ACTIVE_SEEN, "deactivate",
                            "printenv PATH"])
        out = run_shell(shell, script, env).stdout.splitlines()
        assert out == [json.dumps([str(unpacked), str(unpacked), python]), "/usr/bin:/bin"], \
            (shell, out)


@pytest.mark.parametrize("root", ["/short/ana", "/with space/ana", "/long" + "x" * 130])
def test_worker_shebang_is_the_installers(root):
    from installer.scripts import Script

    from layervenv.boot.layervenv_unpack import shebang

    executable = f"{root}/bin/python"
    _, data = Script("x", "mod", "main", "console").generate(executable, "posix")
    assert data.startswith(shebang(executable))
    assert script_header(data, root) == (len(shebang(executable)), "bin/python")


@pytest.mark.parametrize("version", ["3.6", "3.13"])
def test_unpacked_on_the_oldest_and_newest_python(version, tmp_path, base_env):
    """The worker-side code and the bytecode headers on the stack's own Python."""
    from helpers import find_python

    found = find_python(version)
    if found is None:
        pytest.skip(f"no Python {version} here")
    layer = tmp_path / "old"
    run_tool("create", str(layer), "--python", str(found), env=base_env)
    run_tool("pack", str(layer), "-o", str(tmp_path / "old.tar.gz"), env=base_env)
    unpacked = unpack(tmp_path / "old.tar.gz", tmp_path / "job dir")
    code = ("import os, sys, _layervenv_boot as m; "
            "at = 4 if sys.version_info < (3, 7) else 8; "  # the PEP 552 flags word
            "data = open(m.__cached__, 'rb').read(); "
            "valid = int.from_bytes(data[at:at + 4], 'little') == "
            "int(os.stat(m.__file__).st_mtime); "
            "print('%d.%d' % sys.version_info[:2], sys.prefix, valid, sep='|')")
    result = run_in_job(unpacked, "python", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split("|") == [version, str(unpacked), "True"]
    pip = run_in_job(unpacked, "pip", "--version")
    assert pip.returncode == 0 and str(unpacked) in pip.stdout, pip.stderr


def test_packs_of_one_layer_at_once(packed, tmp_path):
    """Three packs of one layer at once (each snapshots the editable project with pip):
    each makes its archive or is refused in one line naming the pack that holds the
    layer -- never a failed build -- and the archives made are the same bytes."""
    from helpers import tool_command

    archives = [tmp_path / f"p{i}.tar.gz" for i in range(3)]
    procs = [subprocess.Popen(tool_command("pack", "-q", str(packed.layer), "-o", str(a)),
                              env=packed.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for a in archives]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    made = [a for a, (status, _) in zip(archives, results) if status == 0]
    assert made
    for status, errors in results:
        assert (status, errors) == (0, "") or (
            status == 2 and errors.count("\n") == 1
            and "is being changed by layervenv pack (pid" in errors), errors
    assert len({a.read_bytes() for a in made}) == 1
    assert [a for a in archives if a not in made and a.exists()] == []


def test_a_pip_install_racing_pack_is_refused(packed, tmp_path, backend_wheels):
    """A real ``pip install`` in the layer (it takes no lock) while ``pack`` runs: the
    pack is refused in one line with no archive, or its archive holds the package whole
    or not at all (judged from the archive with tarfile).  Most trials hit the window."""
    import random

    from helpers import tool_command

    pip = [str(packed.layer / "bin" / "python"), "-m", "pip", "--disable-pip-version-check",
           "-q"]
    install = [*pip, "install", "--no-deps", "--find-links", str(backend_wheels), "editables"]
    trials, outcomes = 10, {"refused": 0, "without": 0, "with": 0}
    rng = random.Random(22)
    for trial in range(trials):
        archive = tmp_path / f"race{trial}.tar.gz"
        packing = subprocess.Popen(tool_command("pack", "-q", str(packed.layer), "-o",
                                                str(archive)),
                                   env=packed.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0, 1.0))
        subprocess.run(install, env=packed.env, check=True, capture_output=True)
        _, errors = packing.communicate(timeout=300)
        if packing.returncode == 2:
            assert errors.count("\n") == 1 and "changed while it was being packed" in errors, \
                errors
            assert not archive.exists()
            outcomes["refused"] += 1
        else:
            assert packing.returncode == 0, errors
            with tarfile.open(archive) as tar:
                names = set(tar.getnames())
            info = [n for n in names if n.endswith(".dist-info") and "/editables-" in n]
            module = {n for n in names if "/site-packages/editables/" in n}
            assert bool(info) == bool(module), sorted(info)
            outcomes["with" if info else "without"] += 1
        subprocess.run([*pip, "uninstall", "-y", "editables"], env=packed.env, check=True,
                       capture_output=True)
    print(f"pack racing pip install, {trials} trials: {outcomes}")
    assert outcomes["refused"] >= trials // 2, outcomes


#: an in-tree build backend (stdlib only): the wheel holds a data file whose name has a
#: comma; the editable wheel a ``.pth`` whose name has one, pointing at the project
COMMA_BACKEND = '''
import base64, csv, hashlib, io, os, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
INFO = "commas-1.0.dist-info"


def _wheel(directory, files):
    files[INFO + "/METADATA"] = "Metadata-Version: 2.1\\nName: commas\\nVersion: 1.0\\n"
    files[INFO + "/WHEEL"] = ("Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\n"
                              "Tag: py3-none-any\\n")
    rows = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        rows.append([path, "sha256=" + digest.decode(), str(len(data))])
    stream = io.StringIO()
    csv.writer(stream, lineterminator="\\n").writerows(rows + [[INFO + "/RECORD", "", ""]])
    name = "commas-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(INFO + "/RECORD", stream.getvalue())
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.path.join(HERE, "src", "commas", "__init__.py")) as source:
        code = source.read()
    return _wheel(wheel_directory, {"commas/__init__.py": code,
                                    "commas/da,ta \\"1\\".txt": "read after unpack\\n"})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"commas,editable.pth": os.path.join(HERE, "src") + "\\n"})
'''

COMMA_READER = """
import json, commas
from importlib import metadata
from pathlib import Path
files = [str(f) for f in metadata.files("commas")]
data = [f for f in metadata.files("commas") if f.name.startswith("da,")]
print(json.dumps({"module": commas.__file__, "files": files,
                  "text": Path(data[0].locate()).read_text() if data else None}))
"""


def test_a_path_with_a_comma_in_a_record_is_packed_right(own_stack, tmp_path, base_env):
    """A snapshot holding a file whose name has a comma unpacks with it, as
    ``importlib.metadata`` lists it; the editable install's own file (a ``.pth`` with a
    comma) is left out, as every file its RECORD lists (it was read with rsplit)."""
    env = own_stack.env(base_env)
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(own_stack.wheelhouse))
    layer = make_batch_layer(tmp_path / "home", own_stack, env, editable=False)
    project = tmp_path / "home" / "commas"
    (project / "src" / "commas").mkdir(parents=True)
    (project / "src" / "commas" / "__init__.py").write_text("MARK = 'snapshot'\n")
    (project / "backend.py").write_text(COMMA_BACKEND)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n')
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--no-build-isolation", "-e", str(project)],
                   env=env, check=True, capture_output=True)
    assert list(layer.glob("lib/python*/site-packages/commas,editable.pth"))
    archive = tmp_path / "ana.tar.gz"
    pack_layer(layer, archive, env)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert not [n for n in names if n.endswith("commas,editable.pth")]
    assert [n for n in names if n.endswith('commas/da,ta "1".txt')]
    unpacked = unpack(archive, tmp_path / "job")
    result = run_in_job(unpacked, "python", "-c", COMMA_READER)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["module"].startswith(str(unpacked / "lib"))
    assert 'commas/da,ta "1".txt' in seen["files"] and seen["text"] == "read after unpack\n"
