"""``check`` names a layer distribution that replaces a standard-library module.

Proved against a real import: with the stack on PYTHONPATH the layer comes before the
standard library, so a distribution installing ``argparse`` breaks ``python -m
json.tool`` in the layer (and not on the stack's own Python); ``check`` says so.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import pythons, run_tool
from test_list_check import assert_check_shape

from layervenv.dists.files import top_level_name
from layervenv.inspection.shadows_stdlib import NAMES_310, found_before_namespaces, stdlib_names
from layervenv.services.simstack import Dist, build_wheel

JSON_TOOL = ["-m", "json.tool"]


def _json_tool(python: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *JSON_TOOL], input='{"a": 1}', env=env,
                          capture_output=True, text=True, check=False)


def _shadows(root: Path, env: dict[str, str]) -> list[dict[str, str]]:
    result = run_tool("check", str(root), "--format", "json", env=env, check=False)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    data = json.loads(result.stdout)
    assert_check_shape(data)
    return [p for p in data["problems"] if p["kind"] == "shadows-stdlib"]


def test_a_layer_argparse_that_breaks_json_tool_is_named(make_layer, tmp_path, stack,
                                                         base_env):
    layer = make_layer()
    assert _shadows(layer.root, layer.env) == []  # a fresh layer: nothing to say
    wheels = tmp_path / "wheels"
    build_wheel(Dist("argparse", "1.4.0"), wheels)  # a package argparse without ArgumentParser
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "--find-links",
                    str(wheels), "argparse==1.4.0"], env=layer.env, check=True,
                   capture_output=True)
    # the real import: broken in the layer with the stack set up, fine on the stack itself
    broken = _json_tool(layer.python, layer.env)
    assert broken.returncode != 0 and "ArgumentParser" in broken.stderr, broken.stderr
    assert _json_tool(stack.python, layer.env).returncode == 0
    (problem,) = _shadows(layer.root, layer.env)
    assert problem["severity"] == "warning" and problem["distribution"] == "argparse"
    assert "'argparse'" in problem["message"] and "standard-library module" in problem["message"]
    assert "gets it instead of the standard library's argparse" in problem["message"]
    human = run_tool("check", str(layer.root), env=layer.env, check=False).stdout
    assert "shadows-stdlib" in human and "argparse 1.4.0" in human
    # without PYTHONPATH the standard library comes first: json.tool works, and check
    # says this copy would replace it once a stack is set up
    assert _json_tool(layer.python, base_env).returncode == 0
    (later,) = _shadows(layer.root, base_env)
    assert "comes first now, but with PYTHONPATH set" in later["message"]
    # uninstalled, nothing to say
    subprocess.run([str(layer.python), "-m", "pip", "uninstall", "-y", "-q", "argparse"],
                   env=layer.env, check=True, capture_output=True)
    assert _json_tool(layer.python, layer.env).returncode == 0
    assert _shadows(layer.root, layer.env) == []


@pytest.mark.parametrize("module", ["json", "csv", "zipfile"])
def test_a_shadow_of_what_the_probe_imports_is_named_not_fatal(make_layer, tmp_path, module):
    """A layer distribution named like a module the tool's own probe imports (``json``
    has no ``dumps`` then): the layer's import really gets it, and ``check`` and ``list``
    still run -- they said "failed to start: module 'json' has no attribute 'dumps'"."""
    layer = make_layer()
    wheels = tmp_path / "wheels"
    build_wheel(Dist(module, "0.1"), wheels)
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "--find-links",
                    str(wheels), f"{module}==0.1"], env=layer.env, check=True,
                   capture_output=True)
    seen = subprocess.run([str(layer.python), "-c", f"import {module}; print({module}.__file__)"],
                          env=layer.env, capture_output=True, text=True, check=True)
    assert seen.stdout.startswith(str(layer.root))  # the real import gets the layer's copy
    (problem,) = _shadows(layer.root, layer.env)
    assert problem["distribution"] == module
    listed = run_tool("list", str(layer.root), "--format", "json", env=layer.env)
    assert module in {d["name"] for d in json.loads(listed.stdout)}


@pytest.mark.parametrize(("path", "module"), [
    ("argparse.py", "argparse"), ("argparse/__init__.py", "argparse"),
    ("typing.cpython-311-x86_64-linux-gnu.so", "typing"), ("json/__init__.abi3.so", "json"),
    ("argparse/util.py", "argparse"),  # a namespace portion: imported, but not a shadow
    ("argparse-1.4.0.dist-info/RECORD", None), ("../../bin/json", None),
    ("__pycache__/argparse.cpython-311.pyc", None), ("argparse.pth", None),
    ("hepnum-1.0.data/purelib/x.py", None), ("libjson.so.1", None),
])
def test_top_level_modules_of_a_record(path, module):
    assert top_level_name(tuple(path.split("/"))) == module


@pytest.mark.parametrize(("files", "shadows"), [
    (["json/__init__.py"], True), (["json.py"], True),
    (["json.cpython-311-x86_64-linux-gnu.so"], True), (["json/util.py"], False), ([], False),
])
def test_a_namespace_portion_is_not_a_shadow(tmp_path, files, shadows):
    """Checked against a real import: a regular module in front of the standard library
    replaces its json; a namespace portion there does not."""
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("WHERE = 'layer'\n" if name.endswith(".py") else "")
    code = "import json; print(getattr(json, 'WHERE', 'stdlib'))"
    if not any(f.endswith(".so") for f in files):  # a fake .so cannot be imported
        out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(tmp_path)},
                             capture_output=True, text=True, check=True).stdout.strip()
        assert (out == "layer") == shadows
    assert found_before_namespaces(tmp_path, "json") == shadows


OLD_PYTHONS = [str(found.path) for found in pythons() if (3, 6) <= found.version <= (3, 9)]
#: test-only and build-time modules that ``sys.stdlib_module_names`` leaves out too
NOT_LISTED = re.compile(r"_?test.*|_?xx.*|_ctypes_test|_sysconfigdata.*|_peg_parser")
#: in the 3.10 list for other platforms (Windows, macOS), or not built here
ELSEWHERE = {"msvcrt", "winreg", "winsound", "_winapi", "nt", "msilib", "_msi", "_overlapped",
             "_scproxy", "_aix_support", "_bootsubprocess", "_frozen_importlib",
             "_frozen_importlib_external", "_dbm", "_gdbm", "_tkinter", "tkinter", "turtle",
             "turtledemo", "idlelib", "_posixshmem", "_uuid", "_statistics", "_hashlib",
             "_queue", "_abc", "_py_abc", "_contextvars", "_zoneinfo", "nis", "readline",
             "_curses", "_curses_panel", "curses", "ossaudiodev", "spwd", "_lzma", "lzma",
             "_sqlite3", "sqlite3", "_bz2", "_ssl", "_ctypes", "ctypes", "_decimal"}


@pytest.mark.skipif(not OLD_PYTHONS, reason="no Python 3.6 to 3.9 on this machine")
@pytest.mark.parametrize("python", OLD_PYTHONS, ids=lambda p: Path(p).parent.parent.name)
def test_the_list_for_pythons_before_3_10_is_their_standard_library(python):
    """What the interpreter itself has in its standard library directories and built in:
    every module there is in the list, and every module of the list that exists on Linux
    is there."""
    code = ("import json, os, pkgutil, sys, sysconfig; std = sysconfig.get_paths()['stdlib']; "
            "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], 'have': sorted("
            "set(m.name for m in pkgutil.iter_modules([std, os.path.join(std, 'lib-dynload')]))"
            " | set(sys.builtin_module_names))}))")
    facts = json.loads(subprocess.run([python, "-I", "-c", code], capture_output=True,
                                      text=True, check=True).stdout)
    have = {n for n in facts["have"] if not NOT_LISTED.fullmatch(n)}
    names = stdlib_names({"version": facts["version"]})
    assert have - names == set()
    assert {n for n in names - have if n not in ELSEWHERE} == set()
    assert names != NAMES_310
