"""The probe on every interpreter available here (Python 3.6 to 3.13), and its parsing.

For each interpreter: a layer made with it, a stack directory on PYTHONPATH holding
every metadata layout the probe reads (dist-info, egg-info directory and file, an
``.egg`` on the path, zipped or not, a byte order mark, a long description), and
requirements whose markers only the *layer's* interpreter can decide (the tool itself
runs on another Python).
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import clean_env, run_tool

from layervenv.effective_view import _requires_from_txt
from layervenv.simstack import Dist, write_dist_info

CANDIDATES = sorted(set(glob.glob("/root/.pyenv/versions/3.*/bin/python3")
                        + glob.glob("/usr/bin/python3.[0-9]*")))
PYTHONS = [p for p in CANDIDATES if not p.endswith("-config")] or [None]


def _version_id(python: str | None) -> str:
    return Path(python).parent.parent.name if python else "none"


def _stack_dir(root: Path) -> Path:
    site = root / "lib" / "site-packages"
    site.mkdir(parents=True)
    write_dist_info(site, Dist("hepnum", "1.22.3"))
    write_dist_info(site, Dist("hepfit", "1.0.0", compiled=True, requires=(
        'hepnum<1.27; python_version >= "3.8"',)))
    egg_info = site / "hepold-0.3-py3.egg-info"  # setuptools' egg-info directory
    egg_info.mkdir()
    (egg_info / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: hepold\nVersion: 0.3\n")
    (egg_info / "requires.txt").write_text("hepnum>=1\n\n[plot]\nhepmissing\n")
    (egg_info / "native_libs.txt").write_text("hepold/_c.so\n")
    (site / "hepflat-2.1-py3.6.egg-info").write_text(  # distutils: a single file
        "Metadata-Version: 1.0\nName: hepflat\nVersion: 2.1\n")
    egg = root / "hepegg-4.0-py3.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: hepegg\n"
                                               "Version: 4.0\n")
    with zipfile.ZipFile(root / "hepzip-1.5-py3.egg", "w") as archive:  # a zipped egg
        archive.writestr("hepzip/__init__.py", "")
        archive.writestr("EGG-INFO/PKG-INFO", "\ufeffName: hepzip\nVersion: 1.5\n\nLong.\n")
        archive.writestr("EGG-INFO/requires.txt", "hepnum>=1\n")
    (site / "hepcmod").mkdir()  # setup.py install without a record: the .so tells
    (site / "hepcmod" / "_c.so").write_bytes(b"")
    (site / "hepcmod-1.0-py3.egg-info").mkdir()
    (site / "hepcmod-1.0-py3.egg-info" / "PKG-INFO").write_bytes(
        b"\xef\xbb\xbfName: hepcmod\nVersion: 1.0\n\n" + b"x" * 100000)
    (site / "hepcmod-1.0-py3.egg-info" / "top_level.txt").write_text("hepcmod\n")
    return site


@pytest.mark.parametrize("python", PYTHONS, ids=_version_id)
def test_probe_on_every_interpreter(tmp_path, python):
    if python is None:
        pytest.skip("no other interpreters here")
    site = _stack_dir(tmp_path / "stack")
    egg = tmp_path / "stack" / "hepegg-4.0-py3.egg"
    zipped = tmp_path / "stack" / "hepzip-1.5-py3.egg"
    env = clean_env(tmp_path, PYTHONPATH=f"{site}:{egg}:{zipped}")
    root = tmp_path / "layer"
    run_tool("create", str(root), "--python", python, "--without-pip", env=env)
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    rows = {r["name"]: r for r in json.loads(
        run_tool("list", str(root), "--format", "json", env=env).stdout)}
    assert rows["hepnum"]["location"] == str(site)
    assert rows["hepfit"]["compiled"] is True and rows["hepnum"]["compiled"] is False
    assert rows["hepold"]["version"] == "0.3" and rows["hepold"]["compiled"] is True
    assert rows["hepflat"]["version"] == "2.1"
    assert rows["hepegg"]["location"] == str(egg) and rows["hepegg"]["version"] == "4.0"
    assert rows["hepzip"]["location"] == str(zipped) and rows["hepzip"]["version"] == "1.5"
    assert rows["hepcmod"]["version"] == "1.0" and rows["hepcmod"]["compiled"] is True
    problems = json.loads(run_tool("check", str(root), "--format", "json", env=env,
                                   check=False).stdout)["problems"]
    # markers are the layer interpreter's: hepfit's requirement applies from 3.8 on only
    # (hepnum 1.22.3 meets it anyway); the [plot] extra of hepold is asked for by no one
    assert not [p for p in problems if p["kind"] == "conflict" and "hep" in p["message"]]
    assert version  # the interpreter answered


def test_markers_are_evaluated_for_the_layers_interpreter(tmp_path):
    """A requirement only for Python < 3.8 is a conflict on a 3.6 layer, not on the tool's."""
    old = [p for p in PYTHONS if p and ("/3.6." in p or "/3.7." in p)]
    if not old:
        pytest.skip("no Python < 3.8 here")
    site = tmp_path / "stack" / "lib" / "site-packages"
    site.mkdir(parents=True)
    write_dist_info(site, Dist("hepnum", "2.0.0"))
    write_dist_info(site, Dist("hepfit", "1.0.0", requires=(
        'hepnum<2; python_version < "3.8"',)))
    env = clean_env(tmp_path, PYTHONPATH=str(site))
    for python, expected in ((old[0], True), (None, False)):
        root = tmp_path / f"layer-{expected}"
        args = ("--python", python) if python else ()
        run_tool("create", str(root), *args, "--without-pip", env=env)
        result = run_tool("check", str(root), "--format", "json", env=env, check=False)
        conflicts = [p for p in json.loads(result.stdout)["problems"]
                     if p["kind"] == "conflict" and p.get("distribution") == "hepfit"]
        assert bool(conflicts) is expected, (python, result.stdout)


def test_requires_txt_sections(tmp_path):
    """requires.txt becomes the very lines importlib.metadata makes of it (the reference),
    comment lines left out as pip does."""
    text = ("a>=1\n\n[test]\nb\n# a comment\n\n[:python_version < \"3.8\"]\nc\n\n"
            "[gui:sys_platform == 'x']\nd\ne @ https://x.org/e.zip\n")
    info = tmp_path / "x-1.0.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Name: x\nVersion: 1.0\n")
    (info / "requires.txt").write_text(text)
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps(next(m.distributions(path=[sys.argv[1]])).requires))")
    reference = json.loads(subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                                          capture_output=True, text=True, check=True).stdout)
    assert _requires_from_txt(text) == [r for r in reference if not r.startswith("#")]
    assert len(reference) == 6


def test_interpreter_replaced_by_another_version(tmp_path):
    """The recorded interpreter path now runs another Python: python-mismatch."""
    versions = [p for p in PYTHONS if p and "/3.1" in p]
    if len(versions) < 2:
        pytest.skip("needs two Python 3.1x interpreters")
    link = tmp_path / "stack" / "python3"
    link.parent.mkdir()
    link.symlink_to(versions[0])
    env = clean_env(tmp_path)
    root = tmp_path / "layer"
    run_tool("create", str(root), "--python", str(link), "--without-pip", env=env)
    link.unlink()
    link.symlink_to(versions[1])
    result = run_tool("check", str(root), "--format", "json", env=env, check=False)
    mismatch = [p for p in json.loads(result.stdout)["problems"]
                if p["kind"] == "python-mismatch"]
    assert result.returncode == 1 and len(mismatch) == 1, result.stdout
    assert "recreate" in mismatch[0]["message"]
