"""Stacks of the kinds the README names, built from real parts (see docs/stacks/).

- :func:`build_key4hep`: a Key4hep/Spack-like stack: every package (real 2023 wheels from
  the test cache, installed with ``installer``) in its own Spack-style prefix, one
  PYTHONPATH entry each; a ``setup.sh`` that also sets LD_LIBRARY_PATH and
  ROOT_INCLUDE_PATH and defines ``k4_local_repo`` (prepends the install area of the
  current directory, as Key4hep's does for a local checkout).
- :func:`build_conda`: a conda-like (or container) Python: a prefix with its own
  ``bin/python3.11`` (a copy of the real executable), its standard library (linked,
  file by file at the top, from the real one: same bytes, no gigabyte copy) and its
  own ``site-packages`` holding real wheels; no PYTHONPATH at all.  A ``python -m venv``
  would not do: a venv made from a venv's python does not see the first venv's
  packages, while a conda env is a prefix of its own, as this is.
- a group's layer: a layer over the Key4hep-like stack, with packages, made read-only
  (``chmod -R a-w``); a personal layer is made from the shell where the group layer is
  activated (the group layer made with ``--export-pythonpath``).

Each stack is read-only after it is built; the tests hash it before and after
(:func:`~layervenv.services.simstack.tree_digest`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from helpers import parse_env0, run_tool
from packaging.utils import canonicalize_name
from packlayer import run_in_job, unpack

from layervenv.inspection.explain import explain
from layervenv.inspection.pipeline import inspect_layer
from layervenv.model.layer import Layer
from layervenv.services.simstack import Dist, build_wheel, install_into, sourced_environment

#: Key4hep-like packages, each in its own prefix (real wheels of the test cache).
K4_PACKAGES = ("six", "python_dateutil", "packaging", "pytz", "cycler", "typing_extensions",
               "zipp", "importlib_metadata")
#: A package of the stack and the newer copy a developer's local checkout installs.
K4_OWN = Dist("k4gen", "0.4.0")
K4_LOCAL = Dist("k4gen", "0.5.0")
#: The conda-like Python's own packages.
CONDA_PACKAGES = ("six", "python_dateutil", "packaging", "pytz", "tzdata", "cycler")


def _wheel(cache: Path, stem: str) -> Path:
    found = sorted((cache / "stack").glob(f"{stem}-*.whl"))
    assert found, f"no {stem} wheel in {cache}/stack"
    return found[0]


def _short(python: Path) -> str:
    return subprocess.run([str(python), "-I", "-S", "-c",
                           "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _read_only(root: Path) -> None:
    """``chmod -R a-w``, as a stack on CVMFS is (root can still write: the hash is the proof)."""
    subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)


def _byte_compile(python: Path, *roots: Path) -> None:
    subprocess.run([str(python), "-I", "-m", "compileall", "-q", *map(str, roots)],
                   check=True, stdout=subprocess.DEVNULL)


@dataclass
class Stack:
    """A built stack: its root (hashed), its interpreter and how it is set up."""

    kind: str
    root: Path
    python: Path
    setup_script: Path | None
    wheelhouse: Path
    local_repo: Path | None = None  # Key4hep: a checkout whose install area k4_local_repo adds

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """The environment after sourcing the setup (none for a conda-like Python: its
        ``bin`` first on PATH, as ``conda activate`` or a container does)."""
        if self.setup_script is None:
            return dict(base, PATH=f"{self.python.parent}{os.pathsep}{base.get('PATH', '')}")
        return sourced_environment(self.setup_script, base)


K4_SETUP = """\
# Key4hep-like setup (one PYTHONPATH entry per Spack package), as key4hep/setup.sh
_k4={root}
export PATH="$_k4/view/bin${{PATH:+:$PATH}}"
export LD_LIBRARY_PATH="{libs}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"
export ROOT_INCLUDE_PATH="{includes}${{ROOT_INCLUDE_PATH:+:$ROOT_INCLUDE_PATH}}"
export PYTHONPATH="{pythonpath}${{PYTHONPATH:+:$PYTHONPATH}}"
export KEY4HEP_STACK="$_k4/setup.sh"
unset _k4
# k4_local_repo: put the install area of the checkout in the current directory first
k4_local_repo () {{
    _here=$(pwd)/install
    export PATH="$_here/bin:$PATH"
    export LD_LIBRARY_PATH="$_here/lib:$LD_LIBRARY_PATH"
    export ROOT_INCLUDE_PATH="$_here/include:$ROOT_INCLUDE_PATH"
    export PYTHONPATH="$_here/lib/python{short}/site-packages:$PYTHONPATH"
    unset _here
}}
"""


def build_key4hep(root: Path, python: Path, cache: Path) -> Stack:
    """The Key4hep/Spack-like stack at ``root`` (see the module's text)."""
    short = _short(python)
    view = root / "view" / "bin"
    view.mkdir(parents=True)
    os.symlink(os.path.realpath(python), view / "python3")
    os.symlink("python3", view / "python")
    tag = "cp" + short.replace(".", "")
    build = root.parent / f"{root.name}-build"
    prefixes = []
    wheels = [_wheel(cache, stem) for stem in K4_PACKAGES] + [build_wheel(K4_OWN, build, tag)]
    for wheel in wheels:
        stem = wheel.name.split("-")[0].lower()
        prefix = root / "opt" / f"py-{stem}-{wheel.name.split('-')[1]}-abcdef"
        site = prefix / "lib" / f"python{short}" / "site-packages"
        site.mkdir(parents=True)
        (prefix / "lib" / f"lib{stem}.so").write_bytes(b"")
        (prefix / "include").mkdir()
        install_into(wheel, site, prefix / "bin", view / "python3")
        prefixes.append(prefix)
    _byte_compile(python, root / "opt")
    # a developer's checkout, built and installed into its install area
    local = root.parent / f"{root.name}-checkout"
    area = local / "install" / "lib" / f"python{short}" / "site-packages"
    area.mkdir(parents=True)
    install_into(build_wheel(K4_LOCAL, build, tag), area, local / "install" / "bin",
                 view / "python3")
    shutil.rmtree(build)
    site_of = [p / "lib" / f"python{short}" / "site-packages" for p in prefixes]
    setup = root / "setup.sh"
    setup.write_text(K4_SETUP.format(
        root=str(root), short=short,
        libs=":".join(str(p / "lib") for p in prefixes),
        includes=":".join(str(p / "include") for p in prefixes),
        pythonpath=":".join(map(str, site_of))), encoding="utf-8")
    wheelhouse = cache / "upgrades"
    _read_only(root)
    return Stack("key4hep", root, view / "python3", setup, wheelhouse, local)


def build_conda(root: Path, python: Path, cache: Path) -> Stack:
    """The conda-like Python at ``root`` (see the module's text)."""
    real = Path(os.path.realpath(python))
    base = real.parent.parent
    short = _short(python)
    (root / "bin").mkdir(parents=True)
    shutil.copy2(real, root / "bin" / f"python{short}")
    os.symlink(f"python{short}", root / "bin" / "python3")
    os.symlink(f"python{short}", root / "bin" / "python")
    stdlib = root / "lib" / f"python{short}"
    stdlib.mkdir(parents=True)
    for item in (base / "lib" / f"python{short}").iterdir():
        if item.name not in ("site-packages", "test"):
            os.symlink(item, stdlib / item.name)
    for item in (base / "lib").glob("libpython*"):
        os.symlink(item, root / "lib" / item.name)
    site = stdlib / "site-packages"
    site.mkdir()
    for stem in CONDA_PACKAGES:
        install_into(_wheel(cache, stem), site, root / "bin", root / "bin" / "python3")
    (root / "conda-meta").mkdir()
    (root / "conda-meta" / "history").write_text("# a conda-like prefix (layervenv tests)\n")
    _byte_compile(root / "bin" / "python3", site)
    _read_only(root)
    return Stack("conda", root, root / "bin" / "python3", None, cache / "upgrades")


def importlib_view(python: Path, env: dict[str, str], cwd: Path) -> dict[str, object]:
    """The reference, asked of ``python`` in ``env``: every distribution importlib.metadata
    finds first (name -> version, location), the top-level names it maps, and where
    ``importlib.util.find_spec`` finds each of them (origin; None for a namespace)."""
    code = (
        "import json, sys, importlib.metadata as m, importlib.util as u\n"
        "if sys.path and sys.path[0] == '': del sys.path[0]\n"
        "seen = {}\n"
        "for d in m.distributions():\n"
        "    key = d.metadata['Name'].lower().replace('_', '-').replace('.', '-')\n"
        "    seen.setdefault(key, (d.version, str(d.locate_file(''))))\n"
        "tops = {t: ds for t, ds in m.packages_distributions().items() if t.isidentifier()}\n"
        "specs = {}\n"
        "for t in tops:\n"
        "    s = u.find_spec(t)\n"
        "    specs[t] = None if s is None else s.origin\n"
        "print(json.dumps({'dists': seen, 'tops': tops, 'specs': specs}))\n"
    )
    out = subprocess.run([str(python), "-c", code], env=env, cwd=cwd, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def pip_check(python: Path, env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run([str(python), "-m", "pip", "check", "--disable-pip-version-check"],
                            env=env, capture_output=True, text=True, check=False)
    return result.returncode, result.stdout


# --- the checks every kind goes through (tests/test_stack_*.py) -----------------------

def offline(env: dict[str, str], stack: Stack) -> dict[str, str]:
    return dict(env, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(stack.wheelhouse),
                PIP_DISABLE_PIP_VERSION_CHECK="1")


def pip_install(layer: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "install", "-q", *args],
                   env=env, check=True, capture_output=True)


def bash(script: str, env: dict[str, str], cwd: Path | None = None) -> str:
    return subprocess.run(["bash", "--noprofile", "--norc", "-c", script], env=env, cwd=cwd,
                          capture_output=True, text=True, check=True).stdout


def assert_list_and_check_agree(layer: Path, env: dict[str, str], cwd: Path) -> dict:
    """``list`` is importlib.metadata's first copy of each name; ``check`` is ok exactly
    when ``pip check`` (by the layer's python) is."""
    ref = importlib_view(layer / "bin" / "python", env, cwd)
    rows = json.loads(run_tool("list", str(layer), "--format", "json", env=env).stdout)
    listed = {canonicalize_name(r["name"]): r["version"] for r in rows}
    assert listed == {canonicalize_name(k): v[0] for k, v in ref["dists"].items()}
    status, said = pip_check(layer / "bin" / "python", env)
    checked = run_tool("check", str(layer), "--format", "json", env=env, check=False)
    conflicts = [p for p in json.loads(checked.stdout)["problems"] if p["kind"] == "conflict"]
    assert bool(conflicts) == (status != 0), (conflicts, said)
    return ref


def assert_explain_agrees(layer: Path, env: dict[str, str], cwd: Path) -> int:
    """``check --explain`` of every top-level name gives find_spec's origin; its winning
    distribution is importlib.metadata's.  Returns how many names were explained."""
    ref = importlib_view(layer / "bin" / "python", env, cwd)
    opened = Layer.open(layer)
    once = inspect_layer(opened, env, need_interpreter=True)  # one probe for every name
    for top, origin in ref["specs"].items():
        explained = explain(opened, top, inspection=once)
        assert explained.module_origin(top) == origin, (top, explained.human())
        for dist in ref["tops"][top]:
            key = dist.lower().replace("_", "-").replace(".", "-")
            copies = explain(opened, dist, inspection=once).distribution
            assert copies and copies[0].copy.version == ref["dists"][key][0], (dist, copies)
    # and one through the command line, as JSON
    top = sorted(ref["specs"])[0]
    shown = json.loads(run_tool("check", "--explain", top, str(layer), "--format", "json",
                                env=env).stdout)
    assert shown["modules"][top]["origin"] == ref["specs"][top]
    return len(ref["specs"])


def assert_activation_restores(layer: Path, env: dict[str, str], probe: str) -> str:
    """Activate in bash, run ``probe`` with the layer's python, deactivate: the environment
    is exactly the one before."""
    act = shlex.quote(str(layer / "bin" / "activate"))
    out = bash(f"env -0 > before; . {act}; python -c {shlex.quote(probe)}; deactivate; "
                "env -0 > after", env, cwd=layer.parent)
    before = parse_env0((layer.parent / "before").read_text())
    after = parse_env0((layer.parent / "after").read_text())
    noise = {"_", "SHLVL", "PWD", "OLDPWD"}
    assert {k: v for k, v in after.items() if k not in noise} == \
        {k: v for k, v in before.items() if k not in noise}
    return out


def assert_lock_and_from(layer: Path, env: dict[str, str], tmp_path: Path, cwd: Path) -> None:
    lock = tmp_path / "layer.lock"
    run_tool("lock", str(layer), "-o", str(lock), env=env)
    again = tmp_path / "again"
    run_tool("create", str(again), "--from", str(lock), env=env)
    old = importlib_view(layer / "bin" / "python", env, cwd)["dists"]
    new = importlib_view(again / "bin" / "python", env, cwd)["dists"]
    assert {k: v[0] for k, v in new.items()} == {k: v[0] for k, v in old.items()}


def assert_pack_runs(layer: Path, env: dict[str, str], tmp_path: Path, probe: str) -> str:
    archive = tmp_path / "layer.tar.gz"
    run_tool("pack", str(layer), "-o", str(archive), env=env)
    unpacked = unpack(archive, tmp_path / "job")
    result = run_in_job(unpacked, "python", "-c", probe)  # env -i
    assert result.returncode == 0, result.stderr
    return result.stdout


__all__ = ["Stack", "assert_activation_restores", "assert_explain_agrees",
           "assert_list_and_check_agree", "assert_lock_and_from", "assert_pack_runs", "bash",
           "build_conda", "build_key4hep", "importlib_view", "offline", "pip_check",
           "pip_install"]
