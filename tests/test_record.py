"""RECORD, top-level names and editable detection: the tool's one reading of each
(``layervenv.dists``) and the probe's stdlib copy, held to independent references --
``importlib.metadata``, files written with ``csv``, a real import in a subprocess,
wheels installed by pip."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from helpers import cached_wheels

from layervenv.dists.direct_url import editable_project, is_editable, read_direct_url
from layervenv.dists.files import is_extension_module, top_level_modules
from layervenv.dists.record import installed_paths, read_record
from layervenv.interp import probe

#: file names a RECORD must carry through quoting: commas, quotes, spaces, non-ASCII
HOSTILE = ["plain.py", "with,comma.py", 'with"quote.py', "with space/a b.txt",
           "naïve/ünïcødé.py", "both,\"and\" space.txt", "trailing,.py", "ends with ,,"]


def _dist_info(site: Path, paths: list[str]) -> Path:
    """A dist-info whose RECORD ``csv`` writes (as pip and installer do)."""
    info = site / "hostile-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile\nVersion: 1.0\n")
    stream = io.StringIO()
    csv.writer(stream, lineterminator="\n").writerows(
        [[p, "sha256=x", "1"] for p in paths] + [[f"{info.name}/RECORD", "", ""]])
    (info / "RECORD").write_text(stream.getvalue(), encoding="utf-8")
    return info


def test_hostile_record_is_read_alike_by_the_tool_the_probe_and_importlib(tmp_path):
    info = _dist_info(tmp_path, HOSTILE)
    (reference,) = metadata.distributions(path=[str(tmp_path)])
    expected = [str(f) for f in reference.files or []]
    assert len(expected) == len(HOSTILE) + 1
    assert [row.path for row in read_record(info)] == expected
    assert probe.record_paths((info / "RECORD").read_text(encoding="utf-8")) == expected
    assert installed_paths(info) == [Path(f.locate()) for f in reference.files or []]


def test_the_probe_reads_a_quoted_extension_in_a_record(tmp_path):
    """A compiled file whose quoted path holds a comma makes the distribution compiled."""
    _dist_info(tmp_path, ["pkg/__init__.py", "pkg/odd,name.cpython-311-x86_64-linux-gnu.so"])
    (found,), _ = probe.scan(str(tmp_path))
    assert found["compiled"] is True


@pytest.mark.parametrize("direct", [
    {"url": "file:///src/a%20b", "dir_info": {"editable": True}},
    {"url": "file:///src/p", "dir_info": {"editable": False}},
    {"url": "file:///src/p", "dir_info": {}},
    {"url": "file:///src/p", "dir_info": "editable"},
    {"url": "https://x/p.tar.gz", "archive_info": {}},
    {"url": "git+https://x/p", "vcs_info": {"vcs": "git", "commit_id": "0" * 40}},
    ["not", "an", "object"], "damaged {",
])
def test_editable_detection_agrees_with_the_probe(tmp_path, direct):
    info = _dist_info(tmp_path, ["p.py"])
    text = direct if isinstance(direct, str) else json.dumps(direct)
    (info / "direct_url.json").write_text(text, encoding="utf-8")
    (found,), _ = probe.scan(str(tmp_path))
    # PEP 610: editable only with a dir_info object whose editable is true
    pep610 = isinstance(direct, dict) and direct.get("dir_info") == {"editable": True}
    assert is_editable(read_direct_url(info)) is pep610
    assert (found["editable"] is not None) is pep610
    if pep610:
        assert editable_project(read_direct_url(info)) == "/src/a b"


def _wheel(where: Path, name: str, files: dict[str, str]) -> Path:
    """A wheel written here with ``zipfile`` and ``csv``."""
    info = f"{name}-1.0.dist-info"
    files = {**files, f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    stream = io.StringIO()
    csv.writer(stream, lineterminator="\n").writerows(
        [[p, "", ""] for p in files] + [[f"{info}/RECORD", "", ""]])
    wheel = where / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", stream.getvalue())
    return wheel


#: what a real import finds in the directory: every candidate name the path finder
#: resolves there (modules, packages, namespace portions)
IMPORTABLE = """
import json, os, sys
from importlib.machinery import PathFinder
site = sys.argv[1]
names = {n.split(".", 1)[0] for n in os.listdir(site)}
print(json.dumps(sorted(n for n in names if n.isidentifier()
                        and PathFinder.find_spec(n, [site]) is not None)))
"""


def _built(tmp_path: Path) -> list[Path]:
    return [_wheel(tmp_path, "odd", {
        "alpha/__init__.py": "", "beta.py": "", "nsp/sub/mod.py": "", "gamma.pth": "",
        "epsilon.cpython-311-x86_64-linux-gnu.so": "", "libdelta.so.1": "",
        "odd-1.0.data/purelib/zeta.py": "",  # (data: pip --target puts it in the site)
        "odd.libs/libz.so": "",
    })]


def _real() -> list[Path]:
    wheels = cached_wheels()
    return [next(wheels.glob(f"{name}-*.whl")) for name in ("setuptools", "editables", "pyparsing")]


@pytest.mark.parametrize("source", [_built, "real"])
def test_top_level_names_are_what_import_finds(tmp_path, source):
    wheels = _real() if source == "real" else source(tmp_path)
    for wheel in wheels:
        site = tmp_path / "site" / wheel.name
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                        "--no-compile", "--target", str(site), str(wheel)],
                       check=True, capture_output=True)
        truth = json.loads(subprocess.run([sys.executable, "-c", IMPORTABLE, str(site)],
                                          check=True, capture_output=True, text=True).stdout)
        (dist_info,) = site.glob("*.dist-info")
        assert top_level_modules(str(dist_info)) == truth, wheel.name


def test_extension_modules_are_what_the_interpreter_loads():
    from importlib.machinery import EXTENSION_SUFFIXES

    for suffix in EXTENSION_SUFFIXES:
        assert is_extension_module("x" + suffix)
    for leaf in ("libx.so.1", "libx.dylib", "x.py", "x.pyc", "x.so.txt"):
        assert not is_extension_module(leaf)
