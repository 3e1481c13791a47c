"""The distribution itself: ``python -m build`` and ``twine check`` pass, offline.

The build backend (setuptools) comes from the wheel cache that dev/test fills, so the
isolated build environment needs no index.
"""

from __future__ import annotations

import email
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, wheel_cache
from helpers import missing


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        missing(f"{module} is not installed", "the test extra has it")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _needs("build")
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("src")
    # a clean copy of what git tracks: the build never writes into the checkout
    archive = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, archive):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((REPO / name).read_bytes())
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheel_cache())}
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                   env=env, check=True, capture_output=True)
    return out


def _twine() -> list[str]:
    """twine from its own venv (dev/test: LAYERVENV_TWINE), else the test Python's."""
    twine = os.environ.get("LAYERVENV_TWINE") or str(REPO / ".cache" / "tools" / "bin" / "twine")
    if os.access(twine, os.X_OK):
        return [twine]
    _needs("twine")
    return [sys.executable, "-m", "twine"]


def test_build_and_twine_check_pass(dist):
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"]
    result = subprocess.run([*_twine(), "check", "--strict", *map(str, files)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_says_what_and_whose_it_is(dist):
    """METADATA read as the email message it is: URLs, classifiers, authors, keywords,
    the license file; every module of the source tree is in the wheel."""
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = email.message_from_bytes(archive.read(next(
            n for n in names if n.endswith(".dist-info/METADATA"))))
    urls = dict(v.split(", ", 1) for v in meta.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    assert "License :: OSI Approved :: BSD License" in meta.get_all("Classifier")
    assert meta["Author"] == "The layervenv developers" and meta["Keywords"]
    assert any(n.endswith("/LICENSE") and ".dist-info/" in n for n in names)
    modules = {p.relative_to(REPO / "src").as_posix()
               for p in (REPO / "src" / "layervenv").rglob("*.py")}
    assert modules <= set(names)
