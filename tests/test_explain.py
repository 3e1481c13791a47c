"""``layervenv check --explain NAME`` on the simulated stack: the winner is
``importlib.util.find_spec(NAME).origin`` in the layer's own interpreter, and the
distribution is importlib.metadata's; each copy's reason is the right one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import run_tool


def _find_spec(python: Path, name: str, env: dict[str, str], cwd: Path) -> str | None:
    code = ("import sys, importlib.util as u\n"
            "if sys.path[0] == '': del sys.path[0]\n"
            f"s = u.find_spec({name!r}); print('NONE' if s is None else s.origin)")
    out = subprocess.run([str(python), "-c", code], env=env, cwd=cwd, capture_output=True,
                         text=True, check=True).stdout.strip()
    return None if out == "None" else out


def _explain(layer: Path, name: str, env: dict[str, str]) -> dict:
    result = run_tool("check", "--explain", name, str(layer), "--format", "json", env=env,
                      check=False)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_explain_agrees_with_find_spec(make_layer, stack, tmp_path: Path) -> None:
    layer = make_layer()
    env = dict(layer.env)
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "hepnum==2.0.0"],
                   env=env, check=True, capture_output=True)
    # a namespace portion early on PYTHONPATH, a regular package of that name later on
    # (the regular one wins); a namespace split over two directories; a .pth of the layer
    extra = [tmp_path / "ns1", tmp_path / "ns2", tmp_path / "regular", tmp_path / "dev"]
    (extra[0] / "spread").mkdir(parents=True)
    (extra[1] / "spread").mkdir(parents=True)
    (extra[0] / "nsfirst").mkdir()
    (extra[2] / "nsfirst").mkdir(parents=True)
    (extra[2] / "nsfirst" / "__init__.py").write_text("")
    (extra[3] / "devmod.py").parent.mkdir()
    (extra[3] / "devmod.py").write_text("")
    site = next((layer.root / "lib").glob("python*/site-packages"))
    (site / "dev.pth").write_text(str(extra[3]) + "\n")
    env["PYTHONPATH"] = ":".join(map(str, extra[:3])) + ":" + env["PYTHONPATH"]
    # a layer module named like a frozen one (os on 3.11+) does not win: find_spec says
    # "frozen", and so must explain
    (site / "os.py").write_text("X = 1\n")
    (site / "stat.py").write_text("X = 1\n")
    for name in ("hepnum", "hepfit", "hepio", "hepconf", "spread", "nsfirst", "devmod", "json",
                 "os", "stat", "codecs", "sys"):
        shown = _explain(layer.root, name, env)
        assert shown["found"], name
        assert shown["modules"][name]["origin"] == _find_spec(layer.python, name, env,
                                                              tmp_path), name
    hepnum = _explain(layer.root, "hepnum", env)
    assert [(c["version"], c["why"], c["wins"]) for c in hepnum["distribution"]] == [
        ("2.0.0", "layer", True), ("1.22.3", "pythonpath", False)]
    assert "1 shadowed" in hepnum["pip"]
    version = subprocess.run([str(layer.python), "-c", "import importlib.metadata as m; "
                              "print(m.version('hepnum'))"], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version == hepnum["distribution"][0]["version"]
    nsfirst = _explain(layer.root, "nsfirst", env)["modules"]["nsfirst"]["candidates"]
    assert [(c["kind"], c["wins"], c["why"]) for c in nsfirst] == [
        ("namespace", False, "pythonpath-other"), ("package", True, "pythonpath-other")]
    assert [c["why"] for c in _explain(layer.root, "devmod", env)["modules"]["devmod"]
            ["candidates"]] == ["layer-pth"]
    spread = _explain(layer.root, "spread", env)["modules"]["spread"]["candidates"]
    assert [c["wins"] for c in spread] == [True, True]
    human = run_tool("check", "--explain", "hepnum", str(layer.root), env=env).stdout
    assert "wins" in human and "shadowed" in human and "boot hook" in human


def test_explain_errors(make_layer) -> None:
    layer = make_layer()
    missing = run_tool("check", "--explain", "nothere", str(layer.root), env=layer.env,
                       check=False)
    assert missing.returncode == 1 and "nothere" in missing.stdout
    both = run_tool("check", "--explain", "hepnum", "--imports", str(layer.root),
                    env=layer.env, check=False)
    assert both.returncode == 2 and both.stderr.startswith("layervenv: error:")
    assert "Traceback" not in both.stderr
    assert "--explain" in run_tool("check", "--help", env=layer.env).stdout
