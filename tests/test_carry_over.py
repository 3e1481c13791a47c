"""Replacing a layer (``create --clear``, ``rebase``) keeps every file of the user's, at
any depth: a script in ``bin/``, a data file in ``lib/``, a package copied by hand into
``site-packages``, a link, an empty directory -- with the same bytes, at the same place
(``site-packages`` follows the new Python version).  The reference is the list of files
the test itself made, and a real import of the user's package in the new layer."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from helpers import other_python, py, run_tool
from test_rebase import _next_stack, _rebase, installed

from layervenv.services.simstack import tree_digest


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


def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if path.is_dir():
        return "dir:" + ",".join(sorted(os.listdir(path)))
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
    result = run_tool("create", "--clear", str(layer.root), env=layer.env)
    assert "kept" in result.stdout + result.stderr
    _prove(layer, planted, layer.env)
    assert "hepnum" not in installed(layer.root)  # --clear: pip's packages are not kept


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
    _rebase(layer, new)
    env = new.env(base_env)
    assert _site(layer.root).parent.name == f"python{new.short_version}"
    _prove(layer, planted, env)
    assert installed(layer.root)["hepnum"][0].startswith("1.")
    assert tree_digest(new.root) == before
