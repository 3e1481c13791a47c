"""Layers on the kinds of stack the README names (tests/stackkinds.py), end to end.

On each: ``create``, activation in a real bash (deactivate restores exactly), ``run``,
``list`` and ``check`` against importlib.metadata and ``pip check`` run by the layer's
python, ``lock`` -> ``create --from``, ``pack`` -> ``layervenv-run`` from ``env -i``, and
``check --explain`` for every top-level name, held to ``importlib.util.find_spec`` in the
layer's own interpreter.  The stack is hashed before and after.  The commands are those
of docs/stacks/.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import (
    SHELLS,
    clean_env,
    parse_env0,
    run_shell,
    run_tool,
    significant,
    split_dumps,
    tool_command,
)
from packlayer import run_in_job, unpack
from stackkinds import (
    NEXT_ADDED,
    Stack,
    assert_activation_restores,
    assert_explain_agrees,
    assert_imports_check_agrees,
    assert_kernel_answers,
    assert_list_and_check_agree,
    assert_lock_and_from,
    assert_pack_runs,
    assert_shell_works,
    bash,
    create_args,
    importlib_view,
    offline,
    pip_check,
    pip_install,
)

from layervenv.inspection.explain import explain
from layervenv.model.layer import Layer
from layervenv.services.simstack import Dist, build_wheel, tree_digest

network = pytest.mark.network  # the real wheels are downloaded once into the test cache


# --- Key4hep / Spack -----------------------------------------------------------------------

K4_PROBE = ("import packaging, six, dateutil, k4gen; "
            "print(packaging.__version__, k4gen.__version__, six.__file__)")


@network
def test_key4hep(key4hep: Stack, tmp_path: Path) -> None:
    base = clean_env(tmp_path)
    once = key4hep.env(base)
    env = offline(key4hep.env(once), key4hep)  # the setup sourced twice
    assert env["PYTHONPATH"].count("py-six-") == 2
    layer = tmp_path / "ana"
    setup = shlex.quote(str(key4hep.setup_script))
    run_tool("create", str(layer), "--setup", f". {setup}", env=env)
    pip_install(layer, env, "--no-deps", "packaging==24.1")  # over the stack's 23.1
    # activation: the layer's packaging wins, the stack's six is imported
    out = assert_activation_restores(layer, env, K4_PROBE)
    assert out.split()[:2] == ["24.1", "0.4.0"] and str(key4hep.root) in out.split()[2]
    # run, from a shell where the stack is not set up: the recorded stack is used
    out = run_tool("run", str(layer), "python", "-c", K4_PROBE, env=base).stdout
    assert out.split()[:2] == ["24.1", "0.4.0"]
    # k4_local_repo after the layer is activated: the checkout's k4gen wins over the
    # stack's, the layer still wins over both
    act = shlex.quote(str(layer / "bin" / "activate"))
    out = bash(f". {setup}; . {setup}; . {act}; k4_local_repo; python -c {shlex.quote(K4_PROBE)}",
                offline(base, key4hep), cwd=key4hep.local_repo)
    assert out.split()[:2] == ["24.1", "0.5.0"]
    ref = assert_list_and_check_agree(layer, env, tmp_path)
    assert ref["dists"]["packaging"][0] == "24.1"
    area = next((key4hep.local_repo / "install" / "lib").glob("python*/site-packages"))
    local = dict(env, PYTHONPATH=f"{area}:{env['PYTHONPATH']}")
    assert assert_explain_agrees(layer, env, tmp_path) >= 9
    assert assert_explain_agrees(layer, local, tmp_path) >= 9
    said = explain(Layer.open(layer), "k4gen", environ=local)
    assert [c.reason.code for c in said.distribution] == ["pythonpath-other", "pythonpath"]
    said = explain(Layer.open(layer), "packaging", environ=env).distribution
    # the layer's, the stack's, the interpreter's own (include-system-site-packages)
    assert [c.reason.code for c in said] == ["layer", "pythonpath", "interpreter-site"]
    assert_lock_and_from(layer, env, tmp_path, tmp_path)
    out = assert_pack_runs(layer, env, tmp_path, K4_PROBE)
    assert out.split()[:2] == ["24.1", "0.4.0"]


# --- conda-like / container Python ------------------------------------------------------

CONDA_PROBE = "import packaging, six, dateutil; print(packaging.__version__, six.__file__)"


@network
def test_conda_like(conda: Stack, tmp_path: Path) -> None:
    base = clean_env(tmp_path)
    env = offline(conda.env(base), conda)
    assert "PYTHONPATH" not in env
    layer = tmp_path / "ana"
    run_tool("create", str(layer), "--python", str(conda.python), env=env)
    pip_install(layer, env, "--no-deps", "packaging==24.1")
    out = assert_activation_restores(layer, env, CONDA_PROBE)
    assert out.split()[0] == "24.1" and out.split()[1].startswith(str(conda.root))
    out = run_tool("run", str(layer), "python", "-c", CONDA_PROBE, env=base).stdout
    assert out.split()[0] == "24.1" and out.split()[1].startswith(str(conda.root))
    assert_list_and_check_agree(layer, env, tmp_path)
    assert assert_explain_agrees(layer, env, tmp_path) >= 6
    assert [c.reason.code for c in explain(Layer.open(layer), "packaging", environ=env)
            .distribution] == ["layer", "interpreter-site"]
    assert_lock_and_from(layer, env, tmp_path, tmp_path)
    out = assert_pack_runs(layer, env, tmp_path, CONDA_PROBE)
    assert out.split()[0] == "24.1" and out.split()[1].startswith(str(conda.root))


# --- a group's layer -----------------------------------------------------------------------

GROUP_PROBE = ("import packaging, cycler, six; "
               "print(packaging.__version__, cycler.__file__, six.__file__)")


def _group_and_personal(key4hep: Stack, tmp_path: Path, over: bool = True
                        ) -> tuple[Path, Path, dict[str, str]]:
    """The group layer (read-only, packaging 18.0 and kiwisolver over the stack) and a
    personal layer (packaging 24.1) made in a shell where the group layer is activated
    (with ``--over "$VIRTUAL_ENV"``: the group layer part of its stack); that shell's
    environment."""
    env = offline(key4hep.env(clean_env(tmp_path)), key4hep)
    group = tmp_path / "group"
    run_tool("create", str(group), "--export-pythonpath", env=env)
    pip_install(group, env, "--no-deps", "packaging==18.0")
    pip_install(group, dict(env, PIP_FIND_LINKS=str(key4hep.wheelhouse.parent / "stack")),
         "--no-deps", "kiwisolver")
    if over:  # the group's own tool, which needs the group's packaging (< 20)
        pip_install(group, env, "--no-deps", str(build_wheel(GROUP_TOOL, tmp_path / "wheels")))
    subprocess.run(["chmod", "-R", "a-w", str(group)], check=True)
    me = tmp_path / "me"
    act = shlex.quote(str(group / "bin" / "activate"))
    create = tool_command("create", str(me), *(["--over"] if over else []), isolated=True)
    bash(f". {act}; " + shlex.join(create) + (' "$VIRTUAL_ENV"' if over else ""), env)
    in_group = parse_env0(bash(f". {act}; env -0", env))
    pip_install(me, in_group, "--no-deps", "packaging==24.1")  # personal wins over the group's
    return group, me, in_group


@network
def test_group_layer(key4hep: Stack, tmp_path: Path) -> None:
    """What works: in the shell where the group layer is active, the personal layer's
    python sees both layers and the stack, the personal copy first; --explain agrees with
    find_spec and names the group's layer."""
    group, me, in_group = _group_and_personal(key4hep, tmp_path, over=False)
    group_digest = tree_digest(group)
    out = subprocess.run([str(me / "bin" / "python"), "-c", GROUP_PROBE + "\nimport kiwisolver;"
                          " print(kiwisolver.__file__)"], env=in_group, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == "24.1" and out[1].startswith(str(key4hep.root)) \
        and out[2].startswith(str(key4hep.root)) and out[3].startswith(str(group))
    # --explain of a stack name agrees (the group's packages: see the xfail below)
    said = explain(Layer.open(me), "six", environ=in_group)
    assert said.distribution[0].reason.code == "pythonpath"
    assert tree_digest(group) == group_digest


#: the group's own tool: a console script in the group layer's bin
GROUP_TOOL = Dist("groupana", "1.0", requires=("packaging<20",), scripts=("groupana",))
GROUP_KIWI = GROUP_PROBE + "\nimport kiwisolver; print(kiwisolver.__file__)"


@network
def test_group_layer_is_part_of_the_stack(key4hep: Stack, tmp_path: Path) -> None:
    """``create --over GROUP`` (docs/stacks/group-layer.md): the group layer is part of the
    personal layer's stack, in the shell where it is active and in one where only the
    stack is set up: explain, list, check, run, activation, lock -> create --from and pack
    see both layers, the personal copy first; the group layer is never written."""
    group, me, in_group = _group_and_personal(key4hep, tmp_path)
    group_digest = tree_digest(group)
    stack_only = offline(key4hep.env(clean_env(tmp_path)), key4hep)
    assert assert_explain_agrees(me, in_group, tmp_path) >= 9
    assert assert_explain_agrees(me, stack_only, tmp_path) >= 9
    said = explain(Layer.open(me), "packaging", environ=in_group).distribution
    assert [c.reason.code for c in said][:3] == ["layer", "group-layer", "pythonpath"]
    assert str(group) in said[1].reason.text  # named as the group's layer
    # where only the stack is set up, the reference is the personal layer activated in bash
    activated = parse_env0(bash(f". {shlex.quote(str(me / 'bin' / 'activate'))}; env -0",
                                stack_only))
    assert str(group) in activated["PYTHONPATH"]
    for env in (in_group, activated):
        ref = assert_list_and_check_agree(me, env, tmp_path)
        assert ref["dists"]["packaging"][0] == "24.1"
        assert ref["dists"]["kiwisolver"][1].startswith(str(group))
        # list names the layer each copy comes from
        rows = {r["name"].lower(): r for r in json.loads(
            run_tool("list", str(me), "--format", "json", env=env).stdout)}
        assert rows["packaging"]["layer"] == str(me)
        assert next(c["location"] for c in rows["packaging"]["shadows"]).startswith(str(group))
        assert rows["kiwisolver"]["layer"] == str(group) and rows["six"]["layer"] is None
    table = run_tool("list", str(me), env=stack_only).stdout
    assert re.search(r"^kiwisolver\s+\S+\s+group\s+" + re.escape(str(group)), table, re.M)
    # run, activation, and the layer's python run directly (not activated: in a shell
    # where only the stack is set up, and in the group's shell, where its site-packages
    # is first on PYTHONPATH): the group is there, behind the personal layer
    direct = [subprocess.run([str(me / "bin" / "python"), "-c", GROUP_KIWI], env=env,
                             capture_output=True, text=True, check=True).stdout
              for env in (stack_only, in_group)]
    for out in (run_tool("run", str(me), "python", "-c", GROUP_KIWI, env=stack_only).stdout,
                assert_activation_restores(me, stack_only, GROUP_KIWI), *direct):
        version, _cycler, six, kiwi = out.split()
        assert version == "24.1" and kiwi.startswith(str(group)) \
            and six.startswith(str(key4hep.root))
    # the group's tool is on PATH, behind the layer's bin
    out = run_tool("run", str(me), "groupana", env=stack_only).stdout
    assert "1.0" in out and str(group) in out
    # check: the personal packaging breaks the group tool's requirement (packaging<20), as
    # pip check in the personal layer says
    checked = json.loads(run_tool("check", str(me), "--format", "json", env=stack_only,
                                  check=False).stdout)
    assert any(p["kind"] == "conflict" and "groupana" in p["message"]
               for p in checked["problems"]), checked
    assert "groupana" in pip_check(me / "bin" / "python", activated)[1]
    # lock records the group layer; create --from stands on it again, or refuses without it
    lock = (tmp_path / "me.lock")
    run_tool("lock", str(me), "-o", str(lock), env=in_group)
    assert str(group) in lock.read_text()
    assert_lock_and_from(me, stack_only, tmp_path, tmp_path)
    assert Layer.open(tmp_path / "again").config.stack.over_layers()[0].root == str(group)
    elsewhere = tmp_path / "elsewhere.lock"
    elsewhere.write_text(lock.read_text().replace(str(group), str(tmp_path / "gone")))
    refused = run_tool("create", str(tmp_path / "third"), "--from", str(elsewhere),
                       env=stack_only, check=False)
    assert refused.returncode == 2 and "group layer" in refused.stderr \
        and "Traceback" not in refused.stderr and not (tmp_path / "third").exists()
    # rebase --python refuses (it would drop the group's packages), naming --over
    refused = run_tool("rebase", str(me), "--python", str(key4hep.python), env=stack_only,
                       check=False)
    assert refused.returncode == 2 and "--over" in refused.stderr
    # pack: the worker has the group layer at its path, as it has the stack (set up by the
    # job, as the group layer was made without --setup); the launcher puts the group in
    archive = tmp_path / "me.tar.gz"
    run_tool("pack", str(me), "-o", str(archive), env=stack_only)
    job = key4hep.env({"PATH": "/usr/bin:/bin"})
    result = run_in_job(unpack(archive, tmp_path / "job"), "python", "-c", GROUP_KIWI, env=job)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "24.1" and result.stdout.split()[3].startswith(str(group))
    assert tree_digest(group) == group_digest


#: a package the group's next layer provides, and a personal layer had at that version
GROUP_SHARED = Dist("groupshared", "1.0")
SYS_PATH = "import json, sys; print(json.dumps(sys.path))"


def _group_layer_over_next(key4hep_next: Stack, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The group's next layer, over the next release (read-only): packaging 18.0 (its
    tool's pin), the group's tool and :data:`GROUP_SHARED`; the next stack's shell."""
    env = offline(key4hep_next.env(clean_env(tmp_path)), key4hep_next)
    group2 = tmp_path / "ana2"
    run_tool("create", str(group2), "--export-pythonpath", env=env)
    pip_install(group2, env, "--no-deps", "packaging==18.0",
                str(build_wheel(GROUP_TOOL, tmp_path / "wheels")),
                str(build_wheel(GROUP_SHARED, tmp_path / "wheels")))
    subprocess.run(["chmod", "-R", "a-w", str(group2)], check=True)
    return group2, env


def _inside(path: str | None, root: Path) -> bool:
    return bool(path) and Path(path).resolve().is_relative_to(root.resolve())


@network
def test_rebase_onto_the_groups_next_layer(key4hep: Stack, key4hep_next: Stack,
                                           tmp_path: Path) -> None:
    """``rebase ME --over GROUP2`` (docs/stacks/group-layer.md), run where the next release
    is set up and the personal layer is active: the personal layer stands on the group's
    next layer as ``create --over GROUP2`` makes one.  importlib.metadata in its python
    (run directly where only the next release is set up) sees the personal packaging
    24.1 first, the group's next layer, the next release; what GROUP2 provides at the
    same version is dropped; the user's file is carried over; list and check agree with
    importlib.metadata and pip check; the old group layer is named nowhere in the layer;
    neither group layer is written.  Then the one-line refusals."""
    group, me, in_group = _group_and_personal(key4hep, tmp_path)
    build_wheel(GROUP_SHARED, tmp_path / "wheels")
    pip_install(me, dict(in_group, PIP_FIND_LINKS=str(tmp_path / "wheels")), "--no-deps",
                "groupshared==1.0")
    (me / "notes.txt").write_text("mine\n", encoding="utf-8")
    group2, stack_only = _group_layer_over_next(key4hep_next, tmp_path)
    digests = {g: tree_digest(g) for g in (group, group2)}
    # the user's shell: the next release set up, the personal layer activated in it
    active = parse_env0(bash(f". {shlex.quote(str(me / 'bin' / 'activate'))}; env -0",
                             stack_only))
    report = json.loads(run_tool("rebase", "--over", str(group2), "--find-links",
                                 str(tmp_path / "wheels"), "--format", "json",
                                 env=active).stdout)
    assert report["new_stack"] == f"the group layer {group2}" and report["carried_over"] \
        == ["notes.txt"] and set(report["dropped"]) == {"groupshared"}, report
    assert (me / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    # the reference: importlib.metadata in the personal layer's python, run directly
    seen = {k: (v, where) for k, (v, where) in
            importlib_view(me / "bin" / "python", stack_only, tmp_path)["dists"].items()}
    assert seen["packaging"][0] == "24.1" and _inside(seen["packaging"][1], me), seen
    for name in ("groupana", "groupshared"):
        assert seen[name][0] == "1.0" and _inside(seen[name][1], group2), (name, seen)
    for name in ("kiwisolver", "six"):  # kiwisolver: added by the next release
        assert _inside(seen[name][1], key4hep_next.root), (name, seen)
    assert seen["kiwisolver"][0] == NEXT_ADDED.version
    path = json.loads(subprocess.run([str(me / "bin" / "python"), "-c", SYS_PATH],
                                     env=stack_only, capture_output=True, text=True,
                                     check=True).stdout)
    site2 = Layer.open(group2).site_packages
    assert path.index(str(site2)) == path.index(str(Layer.open(me).site_packages)) + 1, path
    assert not any(_inside(p, group) or _inside(p, key4hep.root) for p in path), path
    assert not any(_inside(where, group) for _, where in seen.values())
    # the layer's record: as create --over GROUP2 records it; the old group nowhere
    again = tmp_path / "fresh"
    run_tool("create", str(again), "--over", str(group2), env=stack_only)
    assert Layer.open(me).config.stack == Layer.open(again).config.stack
    site = Layer.open(me).site_packages
    assert (site / "~layervenv-over.pth").read_text(encoding="utf-8").split() == [str(site2)]
    for file in [me / "layervenv.toml", *(f for f in site.rglob("*") if f.is_file())]:
        assert str(group).encode() not in file.read_bytes(), file
    # list and check agree with importlib.metadata and pip check (groupana's packaging<20
    # is broken by the personal packaging, as before)
    assert_list_and_check_agree(me, stack_only, tmp_path)
    assert "groupana" in pip_check(me / "bin" / "python", stack_only)[1]
    assert {g: tree_digest(g) for g in (group, group2)} == digests
    # refused in one line, nothing changed
    before = tree_digest(me)
    for args, said in ((["--over", str(tmp_path / "nothing")], "no layer there"),
                       (["--over", str(me)], "itself"),
                       (["--over", str(group2), "--python", str(key4hep_next.python)],
                        "--python cannot be given"),
                       (["--python", str(key4hep_next.python)], "--over NEW_GROUP")):
        refused = run_tool("rebase", str(me), *args, env=stack_only, check=False)
        assert refused.returncode == 2 and said in refused.stderr \
            and len(refused.stderr.strip().splitlines()) == 1, (args, refused.stderr)
    assert tree_digest(me) == before


@network
def test_rebase_stays_on_the_group_layer_the_group_rebased(key4hep: Stack, key4hep_next: Stack,
                                                           tmp_path: Path) -> None:
    """``rebase ME`` with no option, on a layer over a group layer the group has since
    rebased onto the next release (same path, another stack record): ME stands on that
    group layer as it is now, recorded as ``create --over GROUP`` records it, its own
    packaging first, nothing of the old release on its path; the group layer is not
    written by it."""
    group, me, _ = _group_and_personal(key4hep, tmp_path)
    stack_only = offline(key4hep_next.env(clean_env(tmp_path)), key4hep_next)
    subprocess.run(["chmod", "-R", "u+w", str(group)], check=True)
    run_tool("rebase", str(group), "--python", str(key4hep_next.python), "--find-links",
             str(tmp_path / "wheels"), env=stack_only)
    subprocess.run(["chmod", "-R", "a-w", str(group)], check=True)
    digest = tree_digest(group)
    assert Layer.open(me).config.stack.python == str(key4hep.python)  # the old record
    run_tool("rebase", str(me), env=stack_only)
    run_tool("create", str(tmp_path / "fresh"), "--over", str(group), env=stack_only)
    assert Layer.open(me).config.stack == Layer.open(tmp_path / "fresh").config.stack
    seen = importlib_view(me / "bin" / "python", stack_only, tmp_path)["dists"]
    assert seen["packaging"][0] == "24.1" and _inside(seen["packaging"][1], me), seen
    assert _inside(seen["groupana"][1], group) and _inside(seen["six"][1], key4hep_next.root)
    path = json.loads(subprocess.run([str(me / "bin" / "python"), "-c", SYS_PATH],
                                     env=stack_only, capture_output=True, text=True,
                                     check=True).stdout)
    assert not any(_inside(p, key4hep.root) for p in path), path
    assert key4hep.root.as_posix().encode() not in (me / "layervenv.toml").read_bytes()
    assert tree_digest(group) == digest


GROUP_LINE = ("import packaging, kiwisolver, six; "
              "print(packaging.__version__, kiwisolver.__file__, six.__file__)")


def _personal_over_group(out: str, me: Path, group: Path, key4hep: Stack) -> None:
    """GROUP_LINE's answer: the personal packaging, the group's kiwisolver, the stack's six."""
    version, kiwi, six = out.split()
    assert version == "24.1" and kiwi.startswith(str(group)) \
        and six.startswith(str(key4hep.root)), out


@network
def test_group_layer_in_zsh_tcsh_shell_kernel_and_imports(key4hep: Stack, tmp_path: Path
                                                          ) -> None:
    """The rest of the group layer's row of docs/stacks/index.md, from a shell where only
    the stack is set up: activation in zsh and tcsh (deactivate restores exactly),
    ``layervenv shell`` in bash, zsh and tcsh, ``check --imports`` against real imports,
    and a kernel that answers -- each time the personal copy first, the group's next."""
    group, me, _ = _group_and_personal(key4hep, tmp_path)
    group_digest = tree_digest(group)
    stack_only = offline(key4hep.env(clean_env(tmp_path)), key4hep)
    for shell in ("zsh", "tcsh"):
        syntax = SHELLS[shell]
        into = tmp_path / f"probe-{shell}.txt"
        script = "\n".join([syntax.dump("BEFORE"), syntax.source(me),
                            f"python -c {syntax.quote(GROUP_LINE)} > {syntax.quote(str(into))}",
                            "deactivate", syntax.dump("AFTER")])
        dumps = split_dumps(run_shell(shell, script, stack_only).stdout)
        assert significant(dumps["AFTER"]) == significant(dumps["BEFORE"]), shell
        _personal_over_group(into.read_text(), me, group, key4hep)
    for shell in ("bash", "zsh", "tcsh"):
        _personal_over_group(assert_shell_works(me, stack_only, GROUP_LINE, shell=shell),
                             me, group, key4hep)
    activated = parse_env0(bash(f". {shlex.quote(str(me / 'bin' / 'activate'))}; env -0",
                                stack_only))
    both = Stack("group", Path(os.path.commonpath([key4hep.root, tmp_path])), key4hep.python,
                 None, key4hep.wheelhouse)
    reported = assert_imports_check_agrees(me, activated, tmp_path, both, shadow="zipp")
    assert {"brokenana", "zipp", "importlib-metadata"} <= set(reported), reported
    _personal_over_group(assert_kernel_answers(me, stack_only, GROUP_LINE), me, group,
                         key4hep)
    assert tree_digest(group) == group_digest


# --- zsh and tcsh ---------------------------------------------------------------------------

@network
@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
@pytest.mark.parametrize("kind", ["key4hep", "conda", "cmssw", "atlas"])
def test_activation_in_zsh_and_tcsh(kind: str, shell: str, request: pytest.FixtureRequest,
                                    tmp_path: Path) -> None:
    """Activated in zsh and tcsh, the layer's copy wins and the stack's is imported;
    deactivate gives back exactly the environment of before.  The stack was set up in
    bash (its setup scripts are bash's: cmsenv, asetup) and the environment passed on,
    as a user's ``zsh`` or ``tcsh`` started from that shell has it.  (Lmod: its own init
    for zsh and tcsh, tests/test_stack_lmod.py's test_module_load_and_purge_while_active.)"""
    stack: Stack = request.getfixturevalue(kind)
    stack = stack.for_user(tmp_path / "work")
    env = offline(stack.env(stack.base(clean_env(tmp_path))), stack)
    layer = tmp_path / "ana"
    run_tool("create", str(layer), *create_args(stack), env=env)
    pip_install(layer, env, "--no-deps", "packaging==24.1")
    syntax = SHELLS[shell]
    probe = syntax.quote("import packaging, six; print(packaging.__version__, six.__file__)")
    into = syntax.quote(str(tmp_path / "probe.txt"))
    script = "\n".join([syntax.dump("BEFORE"), syntax.source(layer),
                        f"python -c {probe} > {into}",
                        "deactivate", syntax.dump("AFTER")])
    out = run_shell(shell, script, env).stdout
    dumps = split_dumps(out)
    assert significant(dumps["AFTER"]) == significant(dumps["BEFORE"])
    version, six = (tmp_path / "probe.txt").read_text().split()
    assert version == "24.1" and six.startswith(str(stack.root))
