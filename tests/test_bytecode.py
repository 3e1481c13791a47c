"""No bytecode tax: every way a package enters a layer leaves ``__pycache__`` for the
layer's interpreter, and ``check`` says when some is missing, with a fix that works.

The reference is the layer's own interpreter: ``importlib.util.cache_from_source`` names
the ``.pyc`` it looks for, and its header (magic number, source time and size) is
compared with the source as the import system compares them; the files come from the
RECORDs read here with ``csv``.  A read-only layer is shown to compile nothing with
``python -v`` (each module's code comes from its ``.pyc``) and an unchanged tree.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

from helpers import run_tool
from test_install import env, myana, uv_bin  # noqa: F401  (fixtures)

from layervenv.services.simstack import STACK_DISTS, Dist, build_stack

#: run in the layer's python: the sources (argv) whose bytecode the import system would
#: not use as it is (missing, or another magic number, time or size)
STALE = r"""
import importlib.util, json, os, struct, sys
bad = []
for source in sys.argv[1:]:
    pyc = importlib.util.cache_from_source(source)
    try:
        with open(pyc, "rb") as handle:
            head = handle.read(16)
    except OSError:
        bad.append(source)
        continue
    st = os.stat(source)
    flags, mtime, size = struct.unpack("<III", head[4:16])
    if head[:4] != importlib.util.MAGIC_NUMBER or (flags == 0 and (
            mtime != int(st.st_mtime) & 0xFFFFFFFF or size != st.st_size & 0xFFFFFFFF)):
        bad.append(source)
print(json.dumps(bad))
"""


def site(root: Path) -> Path:
    return next(root.glob("lib/python*/site-packages"))


def recorded_sources(root: Path) -> list[str]:
    """The ``.py`` files inside site-packages that the layer's RECORDs list."""
    packages = site(root)
    found = []
    for record in packages.glob("*.dist-info/RECORD"):
        with open(record, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                path = os.path.normpath(packages / row[0]) if row else ""
                if path.endswith(".py") and path.startswith(str(packages) + os.sep):
                    found.append(path)
    return sorted(found)


def without_bytecode(root: Path, environ: dict[str, str], names: tuple[str, ...] = ()
                     ) -> list[str]:
    """The RECORDed sources (of the distributions ``names``, else all) the layer's Python
    has no usable bytecode for; fails when there are none to look at."""
    sources = [s for s in recorded_sources(root)
               if not names or any(f"/{name}/" in s or s.endswith(f"/{name}.py")
                                   for name in names)]
    assert sources, f"no sources of {names or 'any distribution'} in {root}"
    out = subprocess.run([str(root / "bin" / "python"), "-I", "-c", STALE, *sources], env=environ,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_create_leaves_bytecode_cold_warm_and_without_cache(make_layer, stack_env, tmp_path):
    """The seeded pip and the boot hook: with the cache filled now, filled before (linked
    bytecode), and with no usable cache (installer, then compiled)."""
    for name, environ in (("cold", stack_env), ("warm", stack_env),
                          ("nocache", dict(stack_env, LAYERVENV_CACHE_DIR=str(tmp_path / "f")))):
        (tmp_path / "f").write_text("a file: no cache here\n")
        layer = make_layer(name, env=environ)
        assert without_bytecode(layer.root, environ, ("pip",)) == [], name
        hook = site(layer.root) / "_layervenv_boot.py"
        assert not json.loads(subprocess.run(
            [str(layer.python), "-I", "-c", STALE, str(hook)], env=environ, capture_output=True,
            text=True, check=True).stdout)


def test_pip_install_leaves_bytecode(make_layer):
    layer = make_layer()
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "hepio==5.6.0"],
                   env=layer.env, check=True, capture_output=True)
    assert without_bytecode(layer.root, layer.env, ("hepio",)) == []


def test_install_with_uv_or_pip_leaves_bytecode(make_layer, env, myana):  # noqa: F811
    """uv writes no bytecode by itself; pip with PIP_NO_COMPILE neither."""
    for installer, extra in (("uv", {}), ("pip", {"PIP_NO_COMPILE": "1"})):
        layer = make_layer(installer, env=env)
        run_tool("install", str(layer.root), "myana", "--installer", installer,
                 "--find-links", str(myana), env=dict(env, **extra))
        assert without_bytecode(layer.root, env, ("myana",)) == [], installer


def test_create_from_a_lock_and_rebase_leave_bytecode(make_layer, stack_env, tmp_path,
                                                      _built_stack):
    layer = make_layer("ana")
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "hepio==5.6.0"],
                   env=layer.env, check=True, capture_output=True)
    lock = tmp_path / "pylock.toml"
    run_tool("lock", str(layer.root), "-o", str(lock), env=stack_env)
    run_tool("create", str(tmp_path / "again"), "--from", str(lock), env=stack_env)
    assert without_bytecode(tmp_path / "again", stack_env, ("hepio", "pip")) == []
    nxt = build_stack(tmp_path / "LCG_next", Path(_built_stack.python).resolve(),
                      name="LCG_next", dists=tuple(
                          Dist(d.name, "1.0.0") if d.name == "hepconf" else d
                          for d in STACK_DISTS))
    offline = {k: v for k, v in stack_env.items() if k != "PIP_FIND_LINKS"}
    run_tool("rebase", str(layer.root), "--setup", f". '{nxt.setup_script}'",
             "--find-links", str(nxt.wheelhouse), env=offline)
    assert without_bytecode(layer.root, stack_env, ("hepio", "pip")) == []


def test_check_names_missing_bytecode_and_its_fix_works(make_layer):
    layer = make_layer()
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "hepio==5.6.0"],
                   env=layer.env, check=True, capture_output=True)

    def bytecode_problems() -> list[dict]:
        out = run_tool("check", str(layer.root), "--format", "json", env=layer.env,
                       check=False).stdout
        return [p for p in json.loads(out)["problems"] if p["kind"] == "bytecode"]

    assert bytecode_problems() == []
    gone = [p for p in site(layer.root).rglob("__pycache__") if "hepio" in str(p)]
    assert gone
    for folder in gone:
        shutil.rmtree(folder)
    found = bytecode_problems()
    assert len(found) == 1 and found[0]["severity"] == "warning"
    assert found[0]["distribution"] == "hepio"
    assert without_bytecode(layer.root, layer.env, ("hepio",))  # the reference agrees
    fix = found[0]["message"].rsplit("compile them: ", 1)[1]
    subprocess.run(["sh", "-c", fix], env=layer.env, check=True)  # as-is, in a shell
    assert without_bytecode(layer.root, layer.env, ("hepio",)) == []
    assert bytecode_problems() == []


def test_a_read_only_layer_compiles_nothing(make_layer):
    """Imports from the layer take every module's code from its ``.pyc`` (``python -v``
    names it) and write nothing: what a read-only layer needs."""
    layer = make_layer()
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "hepio==5.6.0"],
                   env=layer.env, check=True, capture_output=True)
    before = sorted((str(p), p.stat().st_mtime_ns) for p in layer.root.rglob("*"))
    ran = subprocess.run([str(layer.python), "-v", "-c", "import hepio, pip._internal.cli.main"],
                         env=layer.env, capture_output=True, text=True, check=True)
    root = str(layer.root)
    loaded = [line for line in ran.stderr.splitlines()
              if line.startswith("# code object from") and root in line]
    assert len(loaded) > 50 and all(line.endswith(".pyc'") for line in loaded), loaded[:5]
    assert not [line for line in ran.stderr.splitlines() if line.startswith("# wrote")]
    assert sorted((str(p), p.stat().st_mtime_ns) for p in layer.root.rglob("*")) == before
