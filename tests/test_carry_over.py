"""Replacing a layer (``create --clear``, ``rebase``) keeps every file of the user's, at
any depth: a script in ``bin/``, a data file in ``lib/``, a package copied by hand into
``site-packages``, a link, an empty directory -- with the same bytes, at the same place
(``site-packages`` follows the new Python version).  The reference is the list of files
the test itself made, and a real import of the user's package in the new layer."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import other_python, py, run_tool
from test_rebase import _next_stack, _rebase, installed

from layervenv.boot._layervenv_boot import INDEX_NAME
from layervenv.services.simstack import tree_digest

#: the Python of the test stack, which the layers are made with
_SHORT = "{}.{}".format(*sys.version_info[:2])


def _site(root: Path) -> Path:
    return next((root / "lib").glob("python*/site-packages"))


def _plant(root: Path) -> dict[str, str]:
    """The user's own files, each relative to the layer's site-packages (``@site/``) or its
    root, with a digest of what each holds (a link: its target; a directory: "dir")."""
    site = _site(root)
    made = {
        "bin/myscript": ("file", b"#!/bin/sh\necho mine\n"),
        "lib/mydata.txt": ("file", b"d\n"),
        "notes/deep/er.txt": ("file", b"notes\n"),
        "@site/myown/__init__.py": ("file", b"WHO = 'mine'\n"),
        "@site/myown/data,with comma.txt": ("file", b"comma\n"),
        "@site/mymod.py": ("file", b"X = 1\n"),
        "@site/emptydir": ("dir", b""),
        "@site/zz_mine.pth": ("file", b"# a path of the user's\n"),
        "bin/mylink": ("link", b"myscript"),
    }
    digests = {}
    for rel, (kind, data) in made.items():
        path = site / rel[len("@site/"):] if rel.startswith("@site/") else root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            path.write_bytes(data)
            os.chmod(path, 0o755 if rel.startswith("bin/") else 0o644)
        elif kind == "dir":
            path.mkdir()
        else:
            path.symlink_to(data.decode())
        digests[rel] = _digest(path)
    return digests


def _carried(planted: dict[str, str]) -> list[str]:
    """The entries the report names: the planted ones, a directory holding only the
    user's once (``notes/``, ``site-packages/myown``)."""
    site = f"lib/python{_SHORT}/site-packages/"
    names = set()
    for rel in planted:
        if rel.startswith("notes/"):
            names.add("notes")
        elif rel.startswith("@site/myown/"):
            names.add("@site/myown")
        else:
            names.add(rel)
    return [n.replace("@site/", site) for n in names]


def _layer_digest(root: Path) -> dict[str, str]:
    """Every entry of a layer and what it holds, but what running its Python writes
    (bytecode, the import index's record of the stack's entries)."""
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*"))
            if "__pycache__" not in p.parts and p.name != INDEX_NAME}


def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if path.is_dir():
        return "dir:" + ",".join(sorted(n for n in os.listdir(path)
                                        if n not in (INDEX_NAME, "__pycache__")))
    return f"{oct(path.stat().st_mode & 0o777)}:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _found(root: Path, planted: dict[str, str]) -> dict[str, str]:
    site = _site(root)
    return {rel: _digest(site / rel[len("@site/"):] if rel.startswith("@site/")
                         else root / rel)
            for rel in planted
            if os.path.lexists(site / rel[len("@site/"):] if rel.startswith("@site/")
                               else root / rel)}


def _prove(layer, planted: dict[str, str], env: dict[str, str]) -> None:
    assert _found(layer.root, planted) == planted
    # the user's package imports from the new layer, from its new site-packages
    out = py(layer.python, "import myown, mymod; print(myown.WHO, mymod.X, myown.__file__)", env)
    who, x, where = out.split(maxsplit=2)
    assert (who, x) == ("mine", "1")
    assert where.startswith(str(_site(layer.root)))
    script = subprocess.run([str(layer.root / "bin" / "mylink")], capture_output=True,
                            text=True, check=True)
    assert script.stdout == "mine\n"


def test_clear_keeps_the_users_files_at_any_depth(make_layer):
    layer = make_layer("ana")
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "-U", "hepnum<2"],
                   env=layer.env, check=True, capture_output=True)
    planted = _plant(layer.root)
    py(layer.python, "import mymod", layer.env)  # a __pycache__ of the user's module
    # a file put inside pip's metadata is the distribution's: it goes with it
    info = next(_site(layer.root).glob("hepnum-*.dist-info"))
    (info / "user_note").write_text("n")
    result = run_tool("create", "--clear", str(layer.root), "--format", "json", env=layer.env)
    assert sorted(json.loads(result.stdout)["carried_over"]) == sorted(_carried(planted))
    _prove(layer, planted, layer.env)
    assert "hepnum" not in installed(layer.root)  # --clear: pip's packages are not kept
    assert not list(_site(layer.root).glob("hepnum-*"))


def test_rebase_keeps_the_users_files_at_any_depth(make_layer, tmp_path, base_env):
    python = other_python()
    if python is None:
        pytest.skip("no second Python interpreter (another minor version) on this machine")
    layer = make_layer("ana")
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "-U", "hepnum<2"],
                   env=layer.env, check=True, capture_output=True)
    planted = _plant(layer.root)
    new = _next_stack(tmp_path, python, "LCG_py")
    before = tree_digest(new.root)
    result = json.loads(_rebase(layer, new, "--format", "json").stdout)
    # what create made for the old Python (bin/python3.11, include/python3.11) is not
    # the user's: exactly the planted entries are carried
    assert sorted(result["carried_over"]) == sorted(_carried(planted))
    env = new.env(base_env)
    assert _site(layer.root).parent.name == f"python{new.short_version}"
    _prove(layer, planted, env)
    assert installed(layer.root)["hepnum"][0].startswith("1.")
    assert tree_digest(new.root) == before


def test_a_users_file_where_the_new_layer_writes_one_is_refused(make_layer, tmp_path,
                                                                 base_env):
    """A file of the user's at a path the new layer's ``create`` writes (``bin/python3.12``
    in a 3.11 layer rebased onto 3.12): refused in one line, nothing changed."""
    python = other_python()
    if python is None:
        pytest.skip("no second Python interpreter (another minor version) on this machine")
    layer = make_layer("ana")
    new = _next_stack(tmp_path, python, "LCG_py")
    mine = layer.root / "bin" / f"python{new.short_version}"
    mine.write_text("#!/bin/sh\necho mine\n")
    before = _layer_digest(layer.root)
    refused = _rebase(layer, new, check=False)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"layervenv: error: {mine} is not the layer's, and the "
                                     "new layer has one too")
    assert f"nothing was changed: {layer.root} is still the layer it was" in refused.stderr
    assert _layer_digest(layer.root) == before
    assert mine.read_text() == "#!/bin/sh\necho mine\n"

