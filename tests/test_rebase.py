"""``layervenv rebase``: a layer moved onto another stack, swapped in only when complete."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import other_python, py, run_shell, run_tool, tool_command
from test_editable import _project
from test_lock import direct_layer  # noqa: F401 (a fixture)

from layervenv.model.layer import Layer
from layervenv.model.lockfile import layer_distributions
from layervenv.services.simstack import STACK_DISTS, Dist, build_stack, build_wheel, tree_digest

VERSIONS = ("import hepnum, hepconf, hepio, sys; print(hepnum.__version__, hepconf.__version__, "
            "hepio.__version__, '%d.%d' % sys.version_info[:2], hepconf.__file__)")
#: The next release: hepconf 1.0.0 is now part of the stack itself.
NEXT_DISTS = tuple(Dist(d.name, "1.0.0") if d.name == "hepconf" else d for d in STACK_DISTS)


def installed(root: Path) -> dict[str, tuple[str, bool]]:
    site = next((root / "lib").glob("python*/site-packages"))
    return {d.name: (d.version, d.requested) for d in layer_distributions(site)}


def hidden(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


@pytest.fixture
def old_layer(make_layer):
    """A layer on the shared stack with hepnum 1.24.2, hepconf 1.0.0, hepio 5.6.0 requested."""
    layer = make_layer("ana", "--prompt", "my-ana", "--export-pythonpath")
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "-U", "hepnum<2",
                    "hepconf==1.0.0", "hepio==5.6.0"], env=layer.env, check=True,
                   capture_output=True)
    return layer


def _next_stack(root: Path, python: Path, name: str = "LCG_next"):
    return build_stack(root / name, python, name=name, dists=NEXT_DISTS)


@pytest.fixture
def next_stack(tmp_path, _built_stack):
    other = _next_stack(tmp_path, Path(_built_stack.python).resolve())
    before = tree_digest(other.root)
    yield other
    assert tree_digest(other.root) == before, "the new stack was modified"


def _rebase_env(env: dict[str, str]) -> dict[str, str]:
    """Offline, with no wheelhouse of pip's own: --find-links says where."""
    return {k: v for k, v in env.items() if k != "PIP_FIND_LINKS"}


def _rebase(layer, new, *extra: str, check: bool = True):
    return run_tool("rebase", str(layer.root), "--setup", f". '{new.setup_script}'",
                    "--find-links", str(new.wheelhouse), *extra, env=_rebase_env(layer.env),
                    check=check)


def test_rebase_drops_what_the_new_stack_provides(old_layer, next_stack, base_env, tmp_path):
    result = json.loads(_rebase(old_layer, next_stack, "--format", "json").stdout)
    assert result["dropped"] == {"hepconf": {"layer": "1.0.0", "stack": "1.0.0"}}
    assert result["moved"] == {} and result["unpinned"] == {}
    # the layer checked while staged is where it will be: not a "moved" layer
    assert not [p for p in result["new_problems"] if ": moved: " in p], result["new_problems"]
    assert installed(old_layer.root) == {"hepnum": ("1.24.2", True), "hepio": ("5.6.0", True),
                                         "pip": installed(old_layer.root)["pip"]}
    config = Layer.open(old_layer.root).config
    assert config.stack.setup == f". '{next_stack.setup_script}'"
    assert config.prompt == "my-ana" and config.export_pythonpath
    assert "prompt = my-ana" in (old_layer.root / "pyvenv.cfg").read_text()
    env = next_stack.env(base_env)
    out = py(old_layer.python, VERSIONS, env).split()
    assert out[:3] == ["1.24.2", "1.0.0", "5.6.0"]
    assert out[4].startswith(str(next_stack.root))  # hepconf now comes from the stack
    # layervenv run re-establishes the new stack from the record
    ran = run_tool("run", str(old_layer.root), "--", "hepnum-info", env=base_env).stdout.split()
    assert ran[1] == "1.24.2" and ran[2].startswith(str(old_layer.root))
    assert hidden(tmp_path) == []


def test_rebase_human_report_and_back(old_layer, next_stack, stack, tmp_path, base_env):
    out = _rebase(old_layer, next_stack).stdout
    assert "dropped  hepconf 1.0.0: the new stack provides 1.0.0" in out
    assert "kept     hepio 5.6.0, hepnum 1.24.2" in out
    assert Layer.open(old_layer.root).config.requested_from_stack == ["hepconf==1.0.0"]
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(old_layer.root), "-o", str(lock), "--find-links",
             str(next_stack.wheelhouse), env=dict(base_env, PIP_NO_INDEX="1"))
    assert 'requested-from-stack = [\n    "hepconf==1.0.0",\n]' in lock.read_text()
    # back onto the first stack: the user's hepconf 1.0.0 comes back into the layer
    back = _rebase(old_layer, stack).stdout
    assert "added    hepconf 1.0.0" in back
    assert installed(old_layer.root)["hepconf"] == ("1.0.0", True)
    assert Layer.open(old_layer.root).config.requested_from_stack == []


def test_a_pin_that_no_longer_resolves_becomes_the_newest(old_layer, next_stack):
    for wheel in next_stack.wheelhouse.glob("hepnum-1.24.2-*.whl"):
        wheel.unlink()
    out = _rebase(old_layer, next_stack).stdout
    assert "moved    hepnum 1.24.2 -> 2.0.0" in out and "newest compatible" in out
    # and pip's reason, as pip itself words it
    assert "No matching distribution found for hepnum==1.24.2" in out.split("moved", 1)[1]
    assert installed(old_layer.root)["hepnum"] == ("2.0.0", True)


def test_rebase_onto_another_python(old_layer, tmp_path, base_env):
    python = other_python()
    if python is None:
        pytest.skip("no second Python interpreter (another minor version) on this machine")
    new = _next_stack(tmp_path, python, "LCG_py")
    before = tree_digest(new.root)
    result = json.loads(_rebase(old_layer, new, "--format", "json").stdout)
    assert result["python"][1].startswith(new.short_version)
    assert result["python"][0] != result["python"][1]
    assert list(result["dropped"]) == ["hepconf"]
    assert (old_layer.root / "lib" / f"python{new.short_version}" / "site-packages").is_dir()
    assert not any((old_layer.root / "lib").glob(f"python{sys.version_info[0]}."
                                                  f"{sys.version_info[1]}"))
    out = py(old_layer.python, VERSIONS, new.env(base_env)).split()
    assert out[:4] == ["1.24.2", "1.0.0", "5.6.0", new.short_version]
    pip = subprocess.run([str(old_layer.python), "-m", "pip", "--version"],
                         env=new.env(base_env), capture_output=True, text=True, check=True)
    assert f"python {new.short_version}" in pip.stdout
    assert tree_digest(new.root) == before


def test_an_unavailable_pin_falls_back_to_the_stack_and_says_so(old_layer, next_stack):
    for wheel in next_stack.wheelhouse.glob("hepio-*.whl"):
        wheel.unlink()
    out = _rebase(old_layer, next_stack).stdout
    # the cause is pip's (the wheel is nowhere pip looks), not a conflict on the new stack
    (line,) = [line for line in out.splitlines() if line.startswith("  dropped  hepio")]
    assert line == ("  dropped  hepio 5.6.0: the new stack provides 5.4.3 (5.6.0 does not "
                    "resolve on the new stack: ERROR: No matching distribution found for "
                    "hepio==5.6.0)"), line
    assert "hepio" not in installed(old_layer.root)


def test_failed_rebase_leaves_the_old_layer_untouched(old_layer, next_stack, tmp_path):
    extra = tmp_path / "extra-wheels"
    build_wheel(Dist("hepplot", "0.3.0"), extra)
    subprocess.run([str(old_layer.python), "-m", "pip", "install", "-q", "--find-links",
                    str(extra), "hepplot"], env=old_layer.env, check=True, capture_output=True)
    before = tree_digest(old_layer.root)
    result = _rebase(old_layer, next_stack, check=False)  # hepplot is not in its wheelhouse
    assert result.returncode == 2, result.stdout
    assert "hepplot" in result.stderr and "Traceback" not in result.stderr
    assert tree_digest(old_layer.root) == before
    assert hidden(tmp_path) == []
    assert Layer.open(old_layer.root).config.stack.setup == ""
    out = py(old_layer.python, VERSIONS + "; import hepplot", old_layer.env).split()
    assert out[:3] == ["1.24.2", "1.0.0", "5.6.0"]


def test_interrupted_rebase_leaves_the_old_or_the_new_layer(old_layer, next_stack, tmp_path):
    """Ctrl-C at several moments: the old layer byte for byte, or the complete new one."""
    setup = f". '{next_stack.setup_script}'"
    for delay in (0.3, 0.8, 1.3, 8.0):
        before = tree_digest(old_layer.root)
        proc = subprocess.Popen(tool_command("rebase", str(old_layer.root), "--setup", setup,
                                             "--find-links", str(next_stack.wheelhouse)),
                                env=_rebase_env(old_layer.env), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert hidden(tmp_path) == []
        if proc.returncode != 0:
            assert tree_digest(old_layer.root) == before
        else:
            assert Layer.open(old_layer.root).config.stack.setup == setup
        assert installed(old_layer.root)["hepnum"] == ("1.24.2", True)


@pytest.mark.parametrize("how", ["PIP_FIND_LINKS", "pip.conf"])
def test_rebase_uses_the_users_pip_configuration(old_layer, next_stack, stack, base_env,
                                                 tmp_path, how):
    """The packages came from a wheel directory that only the user's pip configuration
    names (PIP_FIND_LINKS, or find-links in $XDG_CONFIG_HOME/pip/pip.conf), offline:
    rebase, with no --find-links, finds them there as the user's own pip did; the new
    setup command's clean environment does not lose it."""
    env = {k: v for k, v in old_layer.env.items() if not k.startswith("PIP_")}
    if how == "PIP_FIND_LINKS":
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(stack.wheelhouse))
    else:
        config = tmp_path / "config"
        (config / "pip").mkdir(parents=True)
        (config / "pip" / "pip.conf").write_text(
            f"[global]\nno-index = true\nfind-links = {stack.wheelhouse}\n")
        env["XDG_CONFIG_HOME"] = str(config)
    result = run_tool("rebase", str(old_layer.root), "--setup", f". '{next_stack.setup_script}'",
                      "--format", "json", env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["unpinned"] == {}
    out = py(old_layer.python, VERSIONS, next_stack.env(base_env)).split()
    assert out[:3] == ["1.24.2", "1.0.0", "5.6.0"]
    assert out[4].startswith(str(next_stack.root))  # hepconf now comes from the stack


def test_rebase_needs_a_new_stack(old_layer):
    result = run_tool("rebase", str(old_layer.root), env=old_layer.env, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--setup" in result.stderr


def test_rebase_keeps_an_editable_project(make_layer, next_stack, tmp_path,
                                          backend_wheels):
    layer = make_layer()
    project = _project(tmp_path / "proj", "hatchling", "src")
    env = dict(layer.env, PIP_FIND_LINKS=f"{backend_wheels} {layer.env['PIP_FIND_LINKS']}")
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "-e", str(project)],
                   env=env, check=True, capture_output=True)
    run_tool("rebase", str(layer.root), "--setup", f". '{next_stack.setup_script}'",
             "--find-links", str(next_stack.wheelhouse), "--find-links", str(backend_wheels),
             env=_rebase_env(layer.env))
    assert installed(layer.root)["hepconf"] == ("9.9.0", True)
    where = py(layer.python, "import hepconf; print(hepconf.__file__)", next_stack.env(layer.env))
    assert where.startswith(str(project))


def test_rebase_installs_direct_urls_again_from_where_they_came(
        direct_layer, next_stack, tmp_path, backend_wheels):  # noqa: F811
    """Requested packages from a git checkout, a wheel file and a project directory are
    not on any index: they are installed again from their PEP 610 URL (not refused as
    'no matching distribution'), and keep that record for the next lock or rebase."""
    layer, commit = direct_layer
    before = installed(layer.root)
    run_tool("rebase", str(layer.root), "--setup", f". '{next_stack.setup_script}'",
             "--find-links", str(next_stack.wheelhouse), "--find-links", str(backend_wheels),
             env=_rebase_env(layer.env))
    after = installed(layer.root)
    assert {n: after[n] for n in ("hepgit", "hepplot", "hepdir")} == \
           {n: before[n] for n in ("hepgit", "hepplot", "hepdir")}
    site = next((layer.root / "lib").glob("python*/site-packages"))
    record = json.loads(next(site.glob("hepgit-*.dist-info")).joinpath(
        "direct_url.json").read_text())
    assert record["vcs_info"]["commit_id"] == commit
    assert record["url"] == (tmp_path / "repo").as_uri()
    assert json.loads(next(site.glob("hepdir-*.dist-info")).joinpath(
        "direct_url.json").read_text())["url"] == (tmp_path / "folder").as_uri()
    assert hidden(tmp_path) == []


def test_rebase_of_the_layer_active_in_this_shell(stack, next_stack, base_env, tmp_path):
    """Rebased from the shell it is active in (DIR defaults to it): the path stays, the
    report says to activate it again, and after that the shell is on the new stack."""
    root = tmp_path / "ana"
    run_tool("create", str(root), "--setup", f". '{stack.setup_script}'", env=base_env)
    env = dict(base_env, PIP_NO_INDEX="1")
    run_tool("run", str(root), "--", "python", "-m", "pip", "install", "-q", "--find-links",
             str(stack.wheelhouse), "hepconf==1.0.0", "hepio==5.6.0", env=env)
    rebase = shlex.join(tool_command("rebase", "--setup", f". '{next_stack.setup_script}'",
                                     "--find-links", str(next_stack.wheelhouse)))
    where = "python -c 'import hepconf, hepio; print(hepconf.__file__, hepio.__file__)'"
    script = (f". '{root}/bin/activate'\n{where}\n{rebase}\n"
              f"deactivate\n. '{root}/bin/activate'\n{where}\ndeactivate\n")
    out = run_shell("bash", script, env).stdout.splitlines()
    assert out[0].startswith(str(root)) and out[0].split()[1].startswith(str(root))
    assert "the layer is active in this shell" in "\n".join(out)
    hepconf, hepio = out[-1].split()
    assert hepconf.startswith(str(next_stack.root)) and hepio.startswith(str(root))
    assert hidden(tmp_path) == []


def test_rebase_with_python_says_the_setup_is_no_longer_recorded(stack, next_stack, base_env,
                                                                 tmp_path):
    """--python instead of --setup: the new layer stands on this shell's stack, and the
    report says that the old setup command is gone from the record."""
    root = tmp_path / "ana"
    run_tool("create", str(root), "--setup", f". '{stack.setup_script}'", env=base_env)
    env = dict(next_stack.env(base_env), PIP_NO_INDEX="1")
    out = run_tool("rebase", str(root), "--python", str(next_stack.python), "--find-links",
                   str(next_stack.wheelhouse), env=env).stdout
    assert f"the old setup command is no longer recorded (. '{stack.setup_script}')" in out
    assert Layer.open(root).config.stack.setup == ""


def test_rebase_reports_what_check_reports(old_layer, next_stack, base_env):
    """One registry of checks: a leftover beside the layer (an interrupted run's) is among
    rebase's problems, as check names it after the rebase."""
    leftover = old_layer.root.parent / f".{old_layer.root.name}.layervenv-999999-abcd"
    (leftover / "bin").mkdir(parents=True)
    said = json.loads(_rebase(old_layer, next_stack, "--format", "json").stdout)
    # (in a shell without a stack: the layer's recorded one, the new stack, is set up)
    checked = run_tool("check", str(old_layer.root), "--format", "json", env=base_env,
                       check=False)
    kinds = {p["kind"] for p in json.loads(checked.stdout)["problems"]}
    assert "leftover" in kinds
    assert {line.split(": ")[1] for line in said["problems"]} == kinds
