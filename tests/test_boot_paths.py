"""The boot hook's sys.path contract for arbitrary PYTHONPATH lists (hypothesis).

The hook avoids normalising every entry (one ``abspath`` per entry, several times over,
made start-up grow with every PYTHONPATH entry of a Spack-built stack); these tests
check that the shortcuts change no answer:

- in-process, against ``os.path.normcase(os.path.abspath(p))`` for random spellings
  (relative, ``.``/``..`` parts, ``//``, trailing slashes, empty entries, duplicates);
- in a real layer, for random PYTHONPATH lists of real directories spelled those ways
  (and through a symlink), against the order Python itself gives with the hook
  disabled and the README's "How it works" contract.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from helpers import clean_env, run_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layervenv.boot import PTH_NAME
from layervenv.boot import _layervenv_boot as hook


def key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


PART = st.sampled_from(["a", "b", "lib", "python3.11", "site-packages", ".", "..", "",
                        ".hidden", "x.y", "...", "sp ace"])
SPELLED = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    st.sampled_from(["/", "//", "", "./", "../"]),
    st.lists(PART, min_size=0, max_size=6),
    st.sampled_from(["", "/", "/.", "/.."]),
)
CLEAN = st.lists(st.sampled_from(["opt", "spack", "pkg1", "lib", "python3.11",
                                  "site-packages", "x-1.2"]), min_size=1, max_size=6).map(
    lambda parts: "/" + "/".join(parts))
ENTRY = st.one_of(SPELLED, CLEAN)


@settings(max_examples=500, deadline=None)
@given(st.lists(ENTRY, max_size=12), st.booleans())
def test_keys_shortcuts_give_the_keys(paths, use_known):
    """Whatever the spelling, ``_keys`` is the list of ``normcase(abspath(p))``;
    ``known`` as ``site`` keeps it (keys of entries) only ever confirms an entry."""
    known = {key(p) for p in paths} | {"/unrelated"} if use_known else None
    assert hook._keys(paths, known) == [key(p) for p in paths]


@settings(max_examples=300, deadline=None)
@given(st.lists(ENTRY, min_size=1, max_size=12))
def test_pythonpath_keys_shortcut(entries):
    value = os.pathsep.join(entries)
    expected = {key(e) for e in entries} if value else set()  # "" is no PYTHONPATH
    assert hook._pythonpath_keys(value) == expected


VERSIONED = st.builds(
    lambda lib, version, leaf: f"/opt/{lib}/{version}/{leaf}",
    st.sampled_from(["lib", "lib64", "share", "x/lib"]),
    st.sampled_from(["python3.11", "python3.11t", "python3.9", "python3.13t", "python3",
                     "python", "python3.111", "pythonX.Y"]),
    st.sampled_from(["site-packages", "site-packages-x", "dist-packages", "site-packages/sub"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(VERSIONED, CLEAN), min_size=1, max_size=10))
def test_foreign_python_shortcut(entries):
    """The whole-string shortcut finds exactly the entries the per-entry rule finds."""
    mine = "{}.{}".format(*sys.version_info[:2])
    value = os.pathsep.join(entries)
    expected = [e for e in entries if hook.site_packages_version(e) not in (None, mine)]
    with mock.patch.dict(os.environ, {"PYTHONPATH": value}):
        assert hook.foreign_python_entries() == expected


def reference_order(path: list[str], layer: set[str], pythonpath: list[str]) -> list[str]:
    """The contract, written out: the layer's entries, in their order, go just before
    the first entry that is the layer's or from PYTHONPATH; nothing else moves."""
    env = {key(e) for e in pythonpath}
    anchor = next((i for i, p in enumerate(path) if key(p) in env | layer), None)
    if anchor is None:
        return list(path)
    block = [p for p in path if key(p) in layer]
    return path[:anchor] + block + [p for p in path[anchor:] if key(p) not in layer]


@settings(max_examples=500, deadline=None)
@given(st.lists(ENTRY, max_size=12), st.lists(ENTRY, max_size=6),
       st.lists(ENTRY, min_size=1, max_size=3))
def test_reorder_follows_the_contract(path, pythonpath, layer_entries):
    """``reorder_sys_path`` on a random sys.path (duplicates included)."""
    path = path + layer_entries if len(path) % 2 else layer_entries + path
    layer = {key(p) for p in layer_entries}
    saved = list(sys.path)
    try:
        sys.path[:] = path
        with mock.patch.dict(os.environ, {"PYTHONPATH": os.pathsep.join(pythonpath)}):
            hook.reorder_sys_path(layer)
        result = list(sys.path)
    finally:
        sys.path[:] = saved
    assert result == reference_order(path, layer, pythonpath if pythonpath else [])


def test_own_pth_name_matches():
    assert hook.OWN_PTH == PTH_NAME


# --- a real layer ------------------------------------------------------------------------

REPORT = "import json, sys, hepnum; print(json.dumps([sys.path, hepnum.ORIGIN]))"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A layer over a stack of a few directories (one holding ``hepnum``, also in the
    layer), a symlink to one of them, and an editable-style ``.pth`` path line."""
    root = tmp_path_factory.mktemp("boot-paths")
    stack = root / "stack"
    dirs = []
    for index in range(4):
        folder = stack / f"pkg{index}" / "lib" / "python3.11" / "site-packages"
        folder.mkdir(parents=True)
        dirs.append(folder)
    (dirs[1] / "hepnum").mkdir()
    (dirs[1] / "hepnum" / "__init__.py").write_text("ORIGIN = 'stack'\n")
    (root / "view").symlink_to(dirs[2])
    env = clean_env(root)
    layer = root / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    site = next(layer.glob("lib/python*/site-packages"))
    (site / "hepnum").mkdir()
    (site / "hepnum" / "__init__.py").write_text("ORIGIN = 'layer'\n")
    editable = root / "editable-src"
    editable.mkdir()
    (site / "__editable__.demo.pth").write_text(f"{editable}\n")
    return {"root": root, "dirs": dirs, "view": root / "view", "layer": layer,
            "site": site, "editable": editable, "env": env}


def spellings(real: dict) -> st.SearchStrategy[str]:
    """A real directory of the stack (or the layer's site-packages), spelled some way."""
    root: Path = real["root"]
    targets = [*real["dirs"], real["view"], real["site"]]

    def spell(target: Path, how: str) -> str:
        text = str(target)
        return {"plain": text, "slash": text + "/", "dot": text + "/.",
                "double": text.replace("/stack/", "/stack//"),
                "updown": f"{target.parent}/../{target.parent.name}/{target.name}",
                "relative": os.path.relpath(text, root)}[how]

    return st.builds(spell, st.sampled_from(targets),
                     st.sampled_from(["plain", "slash", "dot", "double", "updown",
                                      "relative"]))


def sys_path(real: dict, pythonpath: list[str], disabled: bool) -> tuple[list[str], str]:
    env = dict(real["env"], PYTHONPATH=os.pathsep.join(pythonpath))
    if disabled:
        env["LAYERVENV_BOOT_DISABLE"] = "1"
    out = subprocess.run([str(real["layer"] / "bin" / "python"), "-c", REPORT], env=env,
                         cwd=real["root"], capture_output=True, text=True, check=True)
    assert out.stderr == ""
    path, origin = json.loads(out.stdout)
    return path, origin


def test_real_layer_random_pythonpath(real):
    """For random PYTHONPATH lists: the order is Python's own (the hook disabled) with the
    layer's site-packages and its .pth path moved, once each, just before the first
    PYTHONPATH entry; nothing added or lost; ``hepnum`` is the layer's."""
    root: Path = real["root"]
    site, editable = str(real["site"]), str(real["editable"])
    examples = []

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(spellings(real), min_size=1, max_size=8))
    def check(pythonpath):
        examples.append(pythonpath)
        plain, _ = sys_path(real, pythonpath, disabled=True)
        path, origin = sys_path(real, pythonpath, disabled=False)
        assert origin == "layer"
        assert sorted(path) == sorted(plain)  # nothing added, nothing lost
        assert path.count(site) == 1 and path.count(editable) == 1
        assert path.count("") == 1 and path[0] == ""
        with_cwd = [os.path.join(root, e) for e in pythonpath]
        assert path == reference_order(plain, {key(site), key(editable)}, with_cwd)
        assert path.index(site) + 1 == path.index(editable)
        on_path = {key(p) for p in path}
        assert all(key(e) in on_path for e in with_cwd)  # the stack stays importable

    check()
    assert len(examples) >= 20
