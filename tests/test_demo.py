"""``layervenv demo``: the README's first command, run as a new user would run it."""

from __future__ import annotations

from helpers import clean_env, run_tool


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
