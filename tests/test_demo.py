"""``layervenv demo``: the README's first command, run as a new user would run it."""

from __future__ import annotations

from helpers import clean_env, run_tool

from layervenv.services.simstack import tree_digest


def test_demo_runs_offline_and_every_claim_holds(tmp_path):
    env = clean_env(tmp_path, PIP_NO_INDEX="1")
    work = tmp_path / "demo"
    result = run_tool("demo", "--workdir", str(work), env=env)
    out = result.stdout
    assert out.rstrip().endswith("all claims hold")
    assert "FAILED" not in out
    assert out.count("[ok]") >= 10
    # the story it tells: the plain venv loses, the layer wins, list and check say why
    assert "the plain venv still imports the stack's 1.22.3" in out
    assert "shadows 1.22.3 (stack)" in out
    assert (work / "layer" / "layervenv.toml").is_file()
    # run again in the same place (to play with it after --keep, say): refused, kept as is
    before = tree_digest(work)
    again = run_tool("demo", "--workdir", str(work), env=env, check=False)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.count("\n") == 1 and "is not empty" in again.stderr
    assert tree_digest(work) == before


def test_demo_mistakes_are_one_line(tmp_path):
    env = clean_env(tmp_path, PIP_NO_INDEX="1")
    (tmp_path / "file").write_text("")
    for args, says in ((["--python", str(tmp_path / "no-python")], "not an executable Python"),
                       (["--workdir", str(tmp_path / "file")], "is not a directory"),
                       (["--workdir", str(tmp_path / "file" / "sub")], "cannot create")):
        result = run_tool("demo", *args, env=env, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
