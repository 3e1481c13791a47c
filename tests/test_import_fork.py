"""``check --imports`` with the shared modules imported once and a child forked per
distribution, against the old way: one process per distribution
(``LAYERVENV_IMPORTS_FORK=0``).  The reference is that old way's problems, and the
kernel's view of what ran before a target's code (a module that records whether numpy
was already imported when it ran).

On the real-wheel stack (network-marked: its wheels are downloaded once, then cached).
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers import clean_env, run_tool

pytestmark = pytest.mark.network


def tiny_wheel(directory: Path, name: str, version: str, source: str,
               requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel of ``name`` whose module ``name`` is ``source``."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    metadata = "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{name}/__init__.py", source)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\n"
                                             f"Version: {version}\n{metadata}")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: t\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/top_level.txt", f"{name}\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


#: records, as it is imported, whether numpy was imported before its own code ran
RECORDER = ("import os, sys\n"
            "with open(os.environ['RECORDER_OUT'], 'a') as _f:\n"
            "    _f.write('%s\\n' % ('numpy' in sys.modules))\n"
            "import numpy\n")


def _layer(real_stack, tmp_path: Path, *wheels: Path) -> tuple[Path, dict[str, str]]:
    env = real_stack.env(clean_env(tmp_path))
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(real_stack.wheelhouse))
    root = tmp_path / "layer"
    run_tool("create", str(root), env=env)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    *map(str, wheels)], env=env, check=True, capture_output=True)
    return root, env


def _import_problems(root: Path, env: dict[str, str], **extra: str) -> list[tuple]:
    result = run_tool("check", str(root), "--imports", "--format", "json",
                      env=dict(env, **extra), check=False)
    assert result.returncode in (0, 1), result.stderr
    problems = json.loads(result.stdout)["problems"]
    return sorted((p["kind"], p["severity"], p.get("distribution"), p["message"])
                  for p in problems if p["kind"] == "import")


def test_forked_imports_report_what_one_process_each_reports(real_stack, tmp_path):
    """numpy 2 in the layer: imported once, then a child per distribution (the recorder
    sees numpy already there); the problems are the old way's, to the letter."""
    recorder = tiny_wheel(tmp_path / "w", "recorder", "1.0", RECORDER, ("numpy",))
    numpy2 = next(real_stack.wheelhouse.glob("numpy-2.0.2-*.whl"))
    root, env = _layer(real_stack, tmp_path, numpy2, recorder)
    runs = {}
    for fork in ("1", "0"):
        out = tmp_path / f"recorded-{fork}"
        runs[fork] = _import_problems(root, env, RECORDER_OUT=str(out),
                                      LAYERVENV_IMPORTS_FORK=fork)
        runs[fork + "-recorded"] = out.read_text().split()
    assert runs["1-recorded"] == ["True"], runs  # the shared numpy was imported first
    assert runs["0-recorded"] == ["False"], runs  # a fresh process each
    assert runs["1"] == runs["0"], runs
    broken = {p[2] for p in runs["1"] if p[1] == "error"}
    assert {"scipy", "pandas", "awkward"} <= broken, runs["1"]


def test_a_failing_shared_module_is_attributed_as_before(real_stack, tmp_path):
    """The layer's numpy fails to import: the shared import fails, so nothing is forked
    and numpy's failure is numpy's, its dependents' theirs, as one process each says."""
    broken_numpy = tiny_wheel(tmp_path / "w", "numpy", "9.0",
                              "raise RuntimeError('this numpy is broken')\n")
    root, env = _layer(real_stack, tmp_path, broken_numpy)
    forked = _import_problems(root, env, LAYERVENV_IMPORTS_FORK="1")
    alone = _import_problems(root, env, LAYERVENV_IMPORTS_FORK="0")
    assert forked == alone
    numpy = [p for p in forked if p[2] == "numpy"]
    assert numpy and "RuntimeError: this numpy is broken" in numpy[0][3], forked
    assert {"scipy", "pandas"} <= {p[2] for p in forked}, forked
