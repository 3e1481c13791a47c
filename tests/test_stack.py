"""The stack as part of the layer: ``create --setup``, ``run``, missing or other stacks."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
from helpers import (
    ALL_SHELLS,
    SHELLS,
    parse_env0,
    run_shell,
    run_tool,
    significant,
    split_dumps,
    strace_path,
    tool_command,
)

from layervenv.model.layer import Layer
from layervenv.services.simstack import build_stack, tree_digest

WHERE = ("import hepnum, hepio, os; "
         "print(hepnum.__version__, hepio.__version__, os.environ['ROOTSYS'])")


def _env_i(home: Path) -> dict[str, str]:
    """What ``env -i HOME=$HOME PATH=/usr/bin:/bin`` leaves."""
    return {"HOME": str(home), "PATH": "/usr/bin:/bin"}


@pytest.fixture
def setup_layer(tmp_path, stack, base_env):
    """A layer created with --setup from a shell where no stack is set up."""
    root = tmp_path / "layer"
    run_tool("create", str(root), "--setup", f". '{stack.setup_script}'", env=base_env)
    return root


def test_setup_is_recorded(setup_layer, stack):
    config = Layer.open(setup_layer).config
    assert config.stack.setup == f". '{stack.setup_script}'"
    assert config.stack.python == str(stack.python)
    env = config.stack.stack_environment()
    assert env.prepend["PYTHONPATH"] == [str(stack.site_packages), str(stack.egg)]
    assert env.prepend["PATH"] == [str(stack.root / "bin")]
    assert env.set["SIMSTACK_NAME"] == "LCG_sim"


def test_exported_shell_functions_are_not_recorded(tmp_path, stack, base_env):
    """bash exports functions as ``BASH_FUNC_name%%``: no shell could set that back."""
    root = tmp_path / "layer"
    setup = f". '{stack.setup_script}'; simstack_hello() {{ echo hi; }}; export -f simstack_hello"
    run_tool("create", "--without-pip", str(root), "--setup", setup, env=base_env)
    env = Layer.open(root).config.stack.stack_environment()
    assert env.set["SIMSTACK_NAME"] == "LCG_sim"
    assert not [name for name in env.set if "%" in name or not name.isidentifier()]
    assert run_shell("bash", f". '{root}/bin/activate' && echo $SIMSTACK_NAME",
                     base_env).stdout.split() == ["LCG_sim"]


def test_run_from_an_empty_environment(setup_layer, stack, home):
    wheelhouse = str(stack.wheelhouse)
    out = subprocess.run(tool_command("run", str(setup_layer), "--", "python", "-c", WHERE),
                         env=_env_i(home), capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1.22.3", "5.4.3", str(stack.root)]
    subprocess.run(tool_command("run", str(setup_layer), "--", "python", "-m", "pip", "install",
                                "-q", "--no-index", "--find-links", wheelhouse, "hepnum<2",
                                "--upgrade"),
                   env=_env_i(home), capture_output=True, text=True, check=True)
    out = subprocess.run(tool_command("run", str(setup_layer), "--", "python", "-c", WHERE),
                         env=_env_i(home), capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1.24.2", "5.4.3", str(stack.root)]


def test_exit_status_signals_and_streams_pass_through(setup_layer, home):
    env = _env_i(home)
    status = subprocess.run(tool_command("run", str(setup_layer), "--", "sh", "-c", "exit 7"),
                            env=env, check=False)
    assert status.returncode == 7
    killed = subprocess.run(tool_command("run", str(setup_layer), "--", "python", "-c",
                                         "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"),
                            env=env, check=False)
    assert killed.returncode == -signal.SIGTERM
    echoed = subprocess.run(tool_command("run", str(setup_layer), "--", "cat"), env=env,
                            input="to stdin\n", capture_output=True, text=True, check=True)
    assert echoed.stdout == "to stdin\n"
    missing = subprocess.run(tool_command("run", str(setup_layer), "--", "no-such-cmd"),
                             env=env, capture_output=True, text=True, check=False)
    assert missing.returncode == 127 and missing.stderr.count("\n") == 1


def test_run_gives_the_command_default_signal_dispositions(setup_layer, home):
    """Python ignores SIGPIPE, and exec keeps an ignored signal ignored: ``yes | head``
    must end ``yes`` quietly on SIGPIPE (status 141 in the pipeline), as with ``env``."""
    run = shlex.join(tool_command("run", str(setup_layer), "--", "yes"))
    result = run_shell("bash", f'{run} | head -n 1; echo "status=${{PIPESTATUS[0]}}"',
                       _env_i(home))
    assert result.stdout.split() == ["y", "status=141"]
    assert result.stderr == ""


def test_run_starts_commands_as_execvp_does(setup_layer, tmp_path, home):
    """An executable without ``#!`` is a shell script; one that cannot be run is a
    one-line error with the shell's status 126, a missing one 127."""
    script = tmp_path / "no-shebang"
    script.write_text('echo "from sh: $1"\nexit 4\n')
    script.chmod(0o755)
    env = _env_i(home)
    ran = subprocess.run(tool_command("run", str(setup_layer), "--", str(script), "arg one"),
                         env=env, capture_output=True, text=True, check=False)
    assert (ran.returncode, ran.stdout, ran.stderr) == (4, "from sh: arg one\n", "")
    for command, status in ((str(tmp_path), 126), (str(tmp_path / "gone"), 127)):
        result = subprocess.run(tool_command("run", str(setup_layer), "--", command), env=env,
                                capture_output=True, text=True, check=False)
        assert result.returncode == status, result.stderr
        assert result.stderr.startswith("layervenv: error:")
        assert result.stderr.count("\n") == 1


def test_run_never_falls_through_to_another_command_of_the_same_name(tmp_path, stack_env):
    """A layer's console script whose ``#!`` Python is gone is refused (126) with the
    missing interpreter named: execvp went on along PATH and ran another one (the stack's
    ``stack-tool`` here; for ``pip``, another Python's pip)."""
    layer = tmp_path / "layer"
    run_tool("create", str(layer), "--without-pip", env=stack_env)
    script = layer / "bin" / "stack-tool"
    script.write_text(f"#!{tmp_path / 'gone' / 'python'}\nprint('from the layer')\n")
    script.chmod(0o755)
    result = run_tool("run", str(layer), "--", "stack-tool", env=stack_env, check=False)
    assert result.returncode == 126, result.stdout
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert f"{tmp_path / 'gone' / 'python'} is missing" in result.stderr


def test_run_refuses_a_moved_layer(tmp_path, stack_env):
    """Its console scripts name the old path: ``run DIR -- pip`` ran the stack's pip."""
    run_tool("create", str(tmp_path / "made"), env=stack_env)
    (tmp_path / "made").rename(tmp_path / "moved")
    result = run_tool("run", str(tmp_path / "moved"), "--", "pip", "--version", env=stack_env,
                      check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "was made in" in result.stderr
    assert f"layervenv check {tmp_path / 'moved'}" in result.stderr


def test_run_where_the_stack_is_set_up_adds_only_the_layer(setup_layer, stack, stack_env):
    code = "import os; print(os.environ['PATH']); print(os.environ['PYTHONPATH'])"
    out = run_tool("run", str(setup_layer), "--", "python", "-c", code, env=stack_env).stdout
    path, pythonpath = out.splitlines()
    assert path.split(":").count(str(stack.root / "bin")) == 1
    assert path.split(":")[0] == str(setup_layer / "bin")
    assert pythonpath == stack_env["PYTHONPATH"]


def test_failing_setup_shows_its_output_and_leaves_nothing(tmp_path, base_env):
    target = tmp_path / "layer"
    result = run_tool("create", str(target), "--setup", "echo boom from setup; exit 3",
                      env=base_env, check=False)
    assert result.returncode == 2
    assert "exit 3" in result.stderr and "boom from setup" in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_setup_reading_stdin_or_leaving_a_daemon_does_not_hang(tmp_path, stack, base_env):
    """A setup that reads stdin gets /dev/null (not the user's terminal, where it would
    wait unseen); one that leaves a process running in the background is not waited for."""
    pidfile = tmp_path / "daemon.pid"
    setup = (f". '{stack.setup_script}'; read answer; export ANSWER=\"[$answer]\"; "
             f"cd /; sleep 60 & echo $! > '{pidfile}'")
    read_end, write_end = os.pipe()  # a stdin that never ends, like a quiet terminal
    try:
        result = subprocess.run(tool_command("create", "--without-pip", str(tmp_path / "l"),
                                             "--setup", setup),
                                env=base_env, stdin=read_end, capture_output=True, text=True,
                                timeout=30, check=False)
    finally:
        os.close(read_end)
        os.close(write_end)
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert result.returncode == 0, result.stderr
    recorded = Layer.open(tmp_path / "l").config.stack.stack_environment()
    assert recorded.set["ANSWER"] == "[]"
    assert "PWD" not in recorded.set and "OLDPWD" not in recorded.set


@pytest.mark.parametrize(("setup", "shown", "message"), [
    ("seq 1 100000; exit 3", "100000", "failed (exit 3)"),
    ("echo half-way; exit 0", "half-way", "must not call 'exit'"),
])
def test_setup_failure_shows_the_end_of_its_output(tmp_path, base_env, setup, shown, message):
    target = tmp_path / "layer"
    result = run_tool("create", str(target), "--setup", setup, env=base_env, check=False)
    assert result.returncode == 2 and message in result.stderr
    assert f"  | {shown}\n" in result.stderr and "  | 1\n" not in result.stderr
    assert len(result.stderr.splitlines()) <= 16 and "Traceback" not in result.stderr
    assert not target.exists()


def test_lsetup_without_setupatlas_uses_atlas_local_root_base(tmp_path, stack, base_env):
    alrb = tmp_path / "ATLASLocalRootBase"
    (alrb / "user").mkdir(parents=True)
    (alrb / "user" / "atlasLocalSetup.sh").write_text(
        f"lsetup () {{ . '{stack.setup_script}'; }}\nexport ALRB_READY=1\n")
    env = dict(base_env, ATLAS_LOCAL_ROOT_BASE=str(alrb))
    root = tmp_path / "layer"
    run_tool("create", str(root), "--setup", "lsetup 'views LCG_sim x86_64-el9-gcc13-opt'",
             env=env)
    config = Layer.open(root).config
    assert config.stack.python == str(stack.python)
    assert config.stack.stack_environment().set["ALRB_READY"] == "1"


@pytest.fixture
def release_container(tmp_path, stack, base_env, monkeypatch):
    """An ATLAS release container: no ATLASLocalRootBase, a /release_setup.sh that sets
    the release up (here: the simulated stack) and exports AtlasProject/AtlasVersion.

    The file cannot be put at / on a shared machine, so its path is the one thing moved.
    """
    from layervenv.model import stack as stack_module

    release = tmp_path / "release_setup.sh"
    release.write_text(f". '{stack.setup_script}'\n"
                       "export AtlasProject=AnalysisBase AtlasVersion=25.2.15\n")
    monkeypatch.setattr(stack_module, "RELEASE_SETUP", str(release))
    return dict(base_env, ATLAS_LOCAL_ROOT_BASE=str(tmp_path / "no-alrb"))


def test_asetup_in_a_release_container(release_container, stack):
    """``--setup "asetup AnalysisBase,25.2.15"`` in the container of that release: the
    release is set up by /release_setup.sh, and asetup (not there) is not an error."""
    from layervenv.model.stack import capture_setup

    recorded, after = capture_setup("asetup AnalysisBase,25.2.15", release_container)
    assert recorded.prepend["PYTHONPATH"] == [str(stack.site_packages), str(stack.egg)]
    assert recorded.set["AtlasVersion"] == "25.2.15"
    assert not [name for name in after if name.lower().startswith(("_layervenv", "layervenv"))]


@pytest.mark.parametrize(("command", "says"), [
    ("asetup AnalysisBase,24.2.1", "this release container has AnalysisBase 25.2.15"),
    ("lsetup 'views LCG_105 x86_64-el9-gcc13-opt'", "lsetup needs ATLASLocalRootBase"),
])
def test_what_a_release_container_cannot_set_up(release_container, command, says):
    from layervenv.infra.errors import UserError
    from layervenv.model.stack import capture_setup

    with pytest.raises(UserError, match=says):
        capture_setup(command, release_container)


def test_lsetup_without_atlas_local_root_base_says_so(tmp_path, base_env):
    env = dict(base_env, ATLAS_LOCAL_ROOT_BASE=str(tmp_path / "no-alrb"))
    result = run_tool("create", str(tmp_path / "layer"), "--setup", "lsetup 'views LCG_105'",
                      env=env, check=False)
    assert result.returncode == 2 and "exit 127" in result.stderr
    assert f"lsetup needs ATLASLocalRootBase (setupATLAS), not found at {tmp_path / 'no-alrb'}" \
        in result.stderr


@pytest.fixture
def own_stack(tmp_path, _built_stack):
    """A stack of this test's own, free to be moved away."""
    return build_stack(tmp_path / "own-stack", Path(_built_stack.python).resolve())


def test_moved_away_stack_is_a_one_line_error(tmp_path, own_stack, base_env, home):
    root = tmp_path / "layer"
    run_tool("create", str(root), "--setup", f". '{own_stack.setup_script}'", env=base_env)
    own_stack.root.rename(tmp_path / "gone")
    result = subprocess.run(tool_command("run", str(root), "--", "python", "-c", "pass"),
                            env=_env_i(home), capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "missing" in result.stderr and str(own_stack.python) in result.stderr


def test_a_relative_pythonpath_entry_is_not_a_missing_stack(tmp_path, stack_env, home):
    """``PYTHONPATH=src:$PYTHONPATH`` of a developer names a directory under the current
    one: from elsewhere it is not a stack that went away."""
    root = tmp_path / "layer"
    env = dict(stack_env, PYTHONPATH="src:" + stack_env["PYTHONPATH"])
    run_tool("create", "--without-pip", str(root), env=env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ran = subprocess.run(tool_command("run", str(root), "--", "python", "-c", "print(1)"),
                         env=env, cwd=elsewhere, capture_output=True, text=True, check=False)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "1\n", "")
    checked = run_tool("check", str(root), "--format", "json", env=env, cwd=elsewhere,
                       check=False)
    assert checked.returncode in (0, 1), checked.stderr
    assert "stack-missing" not in {p["kind"] for p in json.loads(checked.stdout)["problems"]}
    activated = run_shell("bash", f". '{root}/bin/activate' && echo ok", env, cwd=elsewhere)
    assert activated.stdout.split() == ["ok"]


def test_run_and_list_leave_another_active_layer_out(tmp_path, stack_env, stack):
    """``layervenv run B`` / ``list B`` in a shell where layer A is active: B only, as
    activating B there would deactivate A first."""
    a, b = tmp_path / "a", tmp_path / "b"
    run_tool("create", "--without-pip", "--export-pythonpath", str(a), env=stack_env)
    run_tool("create", "--without-pip", str(b), env=stack_env)
    show = "import os; print(os.environ['PATH']); print(os.environ['PYTHONPATH'])"
    run_b = shlex.join(tool_command("run", str(b), "--", "python", "-c", show))
    list_b = shlex.join(tool_command("list", str(b), "--format", "json"))
    out = run_shell("bash", f". '{a}/bin/activate'\n{run_b}\n{list_b}", stack_env).stdout
    path, pythonpath, listed = out.split("\n", 2)
    assert path == f"{b / 'bin'}:{stack_env['PATH']}"
    assert pythonpath == stack_env["PYTHONPATH"]
    assert str(a) not in listed


def test_other_stack_set_up_is_refused(tmp_path, setup_layer, _built_stack, base_env):
    other = build_stack(tmp_path / "AB_sim", Path(_built_stack.python).resolve(), name="AB_sim",
                        layout="atlas")
    before = tree_digest(other.root)
    env = other.env(base_env)
    result = run_tool("run", str(setup_layer), "--", "python", "-c", "pass", env=env,
                      check=False)
    assert result.returncode == 2 and "another stack" in result.stderr
    assert result.stderr.count("\n") == 1
    # a layer made on the other stack works there, and sees its files
    root = tmp_path / "ab-layer"
    run_tool("create", str(root), "--setup", f". '{other.setup_script}'", env=base_env)
    out = run_tool("run", str(root), "--", "python", "-c", WHERE, env=env).stdout.split()
    assert out[2] == str(other.root / "InstallArea" / "x86_64-el9-gcc13-opt")
    assert tree_digest(other.root) == before


# --- activation in real shells -------------------------------------------------------


def _round_trip(shell: str, layer: Path, env: dict[str, str], during: str = "") -> dict:
    sh = SHELLS[shell]
    script = "\n".join([sh.dump("BEFORE"), sh.source(layer), during, sh.dump("DURING"),
                        "deactivate", sh.dump("AFTER")])
    return split_dumps(run_shell(shell, script, env).stdout)


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_activation_re_establishes_the_stack_and_removes_it(shell, setup_layer, stack, base_env):
    out = _round_trip(shell, setup_layer, base_env)
    during = out["DURING"]
    assert during["PATH"].split(":")[:2] == [str(setup_layer / "bin"), str(stack.root / "bin")]
    assert during["PYTHONPATH"] == f"{stack.site_packages}:{stack.egg}"
    assert during["SIMSTACK_NAME"] == "LCG_sim"
    assert significant(out["AFTER"]) == significant(out["BEFORE"])


#: values a stack's setup may export, each replayed by activation exactly as it was set
HOSTILE_VALUES = {
    "STACK_TWO_LINES": "line1\n  line2\nline3",
    "STACK_QUOTES": "it's \"q\" $HOME `x` \\ back ! %d é = a=b",
    "STACK_EMPTY": "",
}


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_recorded_values_are_replayed_exactly(shell, tmp_path, stack, base_env):
    """Multi-line values, quotes, ``$``, backslashes, ``!`` and an empty value come back as
    the setup set them, in every shell (the script's indentation must not get into a value
    that spans lines), and deactivate gives back the values set before."""
    setup = tmp_path / "hostile-setup.sh"
    setup.write_text(f". '{stack.setup_script}'\n" + "".join(
        f"export {name}={shlex.quote(value)}\n" for name, value in HOSTILE_VALUES.items()))
    root = tmp_path / "layer"
    run_tool("create", "--without-pip", str(root), "--setup", f". '{setup}'", env=base_env)
    before = dict(base_env, STACK_QUOTES="was 'set' $x !1 \\")
    out = _round_trip(shell, root, before)
    assert {k: out["DURING"].get(k) for k in HOSTILE_VALUES} == HOSTILE_VALUES
    assert significant(out["AFTER"]) == significant(out["BEFORE"])
    assert out["AFTER"]["STACK_QUOTES"] == before["STACK_QUOTES"]


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_activation_where_the_stack_is_set_up_adds_only_the_layer(shell, setup_layer, stack,
                                                                  stack_env):
    out = _round_trip(shell, setup_layer, stack_env)
    during = out["DURING"]
    assert during["PATH"] == f"{setup_layer / 'bin'}:{stack_env['PATH']}"
    assert during["PYTHONPATH"] == stack_env["PYTHONPATH"]
    assert not [k for k in during if k.startswith("_LAYERVENV_") and "STACK" in k]
    assert significant(out["AFTER"]) == significant(out["BEFORE"])


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_switching_layers_leaves_the_first_layers_stack_behind_nothing(shell, tmp_path,
                                                                        setup_layer, stack_env,
                                                                        base_env):
    """Activate A (its stack re-established), then B (made without --setup): A goes with
    its own deactivate, so its stack goes too; B's deactivate gives back A exactly (its
    stack with it), A's the shell of before."""
    other = tmp_path / "other"
    run_tool("create", "--without-pip", str(other), env=stack_env)
    sh = SHELLS[shell]
    script = "\n".join([sh.dump("BEFORE"), sh.source(setup_layer), sh.dump("DURING"),
                        sh.source(other), sh.dump("DURING"), "deactivate", sh.dump("AFTER"),
                        "deactivate", sh.dump("AFTER")])
    result = run_shell(shell, script, base_env)
    # each label twice: the dumps in order, split where the second of a label starts
    halves = result.stdout.split("\0DURING\0")
    assert len(halves) == 3, result.stdout
    before, with_a = (split_dumps(halves[0] + "\0DURING\0" + halves[1])[k]
                      for k in ("BEFORE", "DURING"))
    rest = halves[2].split("\0AFTER\0")
    during = split_dumps("DURING\0" + rest[0])["DURING"]
    back, after = (split_dumps("AFTER\0" + part)["AFTER"] for part in rest[1:])
    assert with_a["VIRTUAL_ENV"] == str(setup_layer)
    assert during["VIRTUAL_ENV"] == str(other)
    assert "SIMSTACK_NAME" not in during and "PYTHONPATH" not in during
    assert significant(back) == significant(with_a), result.stderr
    assert significant(after) == significant(before), result.stderr


@pytest.mark.parametrize("set_up", [False, True], ids=["clean-shell", "stack-set-up"])
@pytest.mark.parametrize("shell", ["tcsh", "csh"])
def test_csh_activation_cost_does_not_grow_with_the_stack(shell, set_up, tmp_path, stack,
                                                          base_env):
    """csh reads every PATH directory again each time PATH is set (its command hash), and
    the csh script splits a path-like value by setting PATH: checking whether each of a
    stack's PYTHONPATH entries is set up must not cost one split (a re-read of every PATH
    directory, a CVMFS directory of thousands of files among them) per entry and phase."""

    extra = [tmp_path / f"pkg{i}" / "python" for i in range(8)]
    for folder in extra:
        folder.mkdir(parents=True)
    setup = tmp_path / "many-entries.sh"
    setup.write_text(f". '{stack.setup_script}'\n" + "".join(
        f"export PYTHONPATH='{folder}':$PYTHONPATH\n" for folder in extra))
    root = tmp_path / "layer"
    run_tool("create", "--without-pip", str(root), "--setup", f". '{setup}'", env=base_env)
    watched = tmp_path / "watched-bin"
    watched.mkdir()
    env = dict(base_env, PATH=f"{watched}:{base_env['PATH']}")
    if set_up:
        env["PYTHONPATH"] = ":".join(str(f) for f in [*reversed(extra), stack.site_packages,
                                                      stack.egg])
    trace = tmp_path / "trace"
    strace = (strace_path(), "-f", "-qq", "-e", "trace=open,openat", "-o", str(trace))
    run_shell(shell, SHELLS[shell].source(root), env, wrapper=strace)
    reads = sum(1 for line in trace.read_text().splitlines() if f'"{watched}"' in line)
    assert reads <= 4


def test_stack_imports_after_activation_in_a_fresh_shell(setup_layer, base_env):
    script = (f". '{setup_layer}/bin/activate'\n"
              "python -c 'import hepnum, hepio; print(hepnum.__version__, hepio.__version__)'")
    assert run_shell("bash", script, base_env).stdout.split() == ["1.22.3", "5.4.3"]


def _status_and(shell: str, layer: Path, then: str) -> str:
    """Source the layer's script, print ``status=N`` and a newline, then run ``then``."""
    sh = SHELLS[shell]
    status = {"posix": "$?", "fish": "$status", "csh": "$status"}[sh.family]
    return f"{sh.source(layer)}\necho status={status}\n{then}"


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_activation_refuses_a_moved_stack(shell, tmp_path, own_stack, base_env):
    root = tmp_path / "layer"
    run_tool("create", "--without-pip", str(root), "--setup", f". '{own_stack.setup_script}'",
             env=base_env)
    own_stack.root.rename(tmp_path / "gone")
    result = run_shell(shell, _status_and(shell, root, "/usr/bin/env -0"), base_env)
    out, _, dumped = result.stdout.partition("\n")
    assert out == "status=1"
    assert result.stderr.count("\n") == 1 and "missing" in result.stderr
    assert significant(parse_env0(dumped)) == significant(
        parse_env0(run_shell(shell, "/usr/bin/env -0", base_env).stdout))


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_activation_refuses_another_stack(shell, tmp_path, setup_layer, _built_stack, base_env):
    other = build_stack(tmp_path / "AB_sim", Path(_built_stack.python).resolve(), name="AB_sim",
                        layout="atlas")
    env = other.env(base_env)
    show = {"posix": 'printf "%s" "${VIRTUAL_ENV-unset}"',
            "fish": "set -q VIRTUAL_ENV; and printf %s $VIRTUAL_ENV; or printf unset",
            "csh": "if ( ! $?VIRTUAL_ENV ) echo -n unset"}[SHELLS[shell].family]
    result = run_shell(shell, _status_and(shell, setup_layer, show), env)
    assert result.stdout == "status=1\nunset"
    assert "another stack" in result.stderr and result.stderr.count("\n") == 1


def test_rerun_setup_runs_the_command_and_restores(tmp_path, stack, base_env):
    setup = tmp_path / "setup-with-function.sh"
    setup.write_text(f". '{stack.setup_script}'\nstackfn () {{ echo from-stack-function; }}\n")
    root = tmp_path / "rerun"
    run_tool("create", "--without-pip", str(root), "--setup", f". '{setup}'", "--rerun-setup",
             env=base_env)
    out = _round_trip("bash", root, base_env, during="stackfn >/dev/null")
    assert out["DURING"]["SIMSTACK_NAME"] == "LCG_sim"
    assert significant(out["AFTER"]) == significant(out["BEFORE"])
    assert "from-stack-function" in run_shell(
        "bash", f". '{root}/bin/activate'; stackfn", base_env).stdout


@pytest.mark.parametrize("shell", ["fish", "tcsh", "csh"])
def test_rerun_setup_layer_replays_the_record_in_other_shells(shell, tmp_path, stack, base_env):
    """A setup command is POSIX shell code: fish and csh replay what it recorded."""
    root = tmp_path / "rerun"
    run_tool("create", "--without-pip", str(root), "--setup", f". '{stack.setup_script}'",
             "--rerun-setup", env=base_env)
    out = _round_trip(shell, root, base_env)
    assert out["DURING"]["SIMSTACK_NAME"] == "LCG_sim"
    assert out["DURING"]["PYTHONPATH"] == f"{stack.site_packages}:{stack.egg}"
    assert significant(out["AFTER"]) == significant(out["BEFORE"])


def test_a_setup_that_brings_no_python_is_noted(tmp_path, stack, base_env):
    """A setup that fails to bring its Python but exits 0 leaves the system's python3
    first: creation says so (the layer would stand on the wrong interpreter)."""
    import json

    without = json.loads(run_tool("create", "--without-pip", str(tmp_path / "none"), "--setup",
                                  "true", "--format", "json", env=base_env).stdout)
    assert len(without["notes"]) == 1
    assert without["notes"][0].startswith("note: the setup command put no python3 on PATH")
    assert without["python"] in without["notes"][0]
    human = run_tool("create", "--without-pip", str(tmp_path / "none2"), "--setup", "true",
                     env=base_env).stdout
    assert "put no python3 on PATH" in human
    with_stack = json.loads(run_tool("create", "--without-pip", str(tmp_path / "lcg"), "--setup",
                                     f". '{stack.setup_script}'", "--format", "json",
                                     env=base_env).stdout)
    assert with_stack["notes"] == []


#: How a second stack's packages directory may be spelt on PYTHONPATH: every one is a stack.
OTHER_STACK_SPELLINGS = ("lib/python{v}/site-packages", "lib64/python{v}/site-packages",
                         "lib/python3/dist-packages", "lib/python{v}/dist-packages",
                         "local/lib/python{v}/dist-packages")


def _second_stack(tmp_path: Path, spelling: str, version: str) -> Path:
    directory = tmp_path / "other-stack" / spelling.format(v=version)
    directory.mkdir(parents=True)
    return directory


@pytest.mark.parametrize("spelling", OTHER_STACK_SPELLINGS)
def test_second_stack_refused_whatever_its_spelling(spelling, tmp_path, setup_layer, stack,
                                                   base_env):
    """activation (bash), run and check treat another stack's directory alike, however it
    is laid out: activation and run refuse in one line, check says python-mismatch."""
    other = _second_stack(tmp_path, spelling, stack.short_version)
    env = dict(base_env, PYTHONPATH=str(other))
    activated = run_shell("bash", _status_and("bash", setup_layer,
                                              'printf "%s" "${VIRTUAL_ENV-unset}"'), env)
    assert activated.stdout == "status=1\nunset"  # the shell's own view: nothing activated
    assert "another stack" in activated.stderr and activated.stderr.count("\n") == 1
    ran = run_tool("run", str(setup_layer), "--", "python", "-c", "pass", env=env, check=False)
    assert ran.returncode == 2 and "another stack" in ran.stderr
    assert ran.stderr.count("\n") == 1
    checked = json.loads(run_tool("check", str(setup_layer), "--format", "json", env=env,
                                  check=False).stdout)
    assert [p for p in checked["problems"]
            if p["kind"] == "python-mismatch" and str(other) in p["message"]], checked


@pytest.mark.parametrize("shell", ALL_SHELLS)
def test_activation_refuses_a_dist_packages_stack(shell, tmp_path, setup_layer, base_env):
    """Debian's spelling, in every shell."""
    other = _second_stack(tmp_path, "lib/python3/dist-packages", "3")
    show = {"posix": 'printf "%s" "${VIRTUAL_ENV-unset}"',
            "fish": "set -q VIRTUAL_ENV; and printf %s $VIRTUAL_ENV; or printf unset",
            "csh": "if ( ! $?VIRTUAL_ENV ) echo -n unset"}[SHELLS[shell].family]
    result = run_shell(shell, _status_and(shell, setup_layer, show),
                       dict(base_env, PYTHONPATH=str(other)))
    assert result.stdout == "status=1\nunset"
    assert "another stack" in result.stderr and result.stderr.count("\n") == 1
