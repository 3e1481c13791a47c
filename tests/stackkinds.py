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

Each builder takes ``next_release=True`` for the next release of the same kind (one
package upgraded, one added: :data:`NEXT_UPGRADED`, :data:`NEXT_ADDED`), the stack a
layer is rebased onto.  Each stack is read-only after it is built; the tests hash it
before and after (:func:`~layervenv.services.simstack.tree_digest`).

The checks every kind goes through (``assert_*``) each compare a command with a
reference of its own: importlib.metadata, ``pip check``, ``find_spec``, the shell's own
environment, the layer's python run directly, real imports in processes of their own.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from helpers import parse_env0, run_tool, shell_path, tool_command
from packaging.utils import canonicalize_name
from packlayer import run_in_job, unpack

from layervenv.inspection.explain import explain
from layervenv.inspection.pipeline import inspect_layer
from layervenv.model.layer import Layer
from layervenv.services.simstack import (
    Dist,
    build_wheel,
    install_into,
    sourced_environment,
    tree_digest,
)

#: Key4hep-like packages, each in its own prefix (real wheels of the test cache).
K4_PACKAGES = ("six", "python_dateutil", "packaging", "pytz", "cycler", "typing_extensions",
               "zipp", "importlib_metadata")
#: A package of the stack and the newer copy a developer's local checkout installs.
K4_OWN = Dist("k4gen", "0.4.0")
K4_LOCAL = Dist("k4gen", "0.5.0")
#: The conda-like Python's own packages.
CONDA_PACKAGES = ("six", "python_dateutil", "packaging", "pytz", "tzdata", "cycler")
#: The next release of a kind (``next_release=True``): one package of the first release
#: upgraded (real wheels: 23.1 in the first, this one in the next) and one added.
NEXT_UPGRADED = Dist("packaging", "24.1")
NEXT_ADDED = Dist("kiwisolver", "1.4.4")


def _wheel(cache: Path, stem: str, version: str = "", where: str = "stack") -> Path:
    found = sorted((cache / where).glob(f"{stem}-{version or '*'}-*.whl"))
    assert found, f"no {stem} {version} wheel in {cache}/{where}"
    return found[0]


def _release(cache: Path, stems: tuple[str, ...], next_release: bool) -> list[Path]:
    """The real wheels of a release: the first one, or the next (:data:`NEXT_UPGRADED`
    from the upgrades, :data:`NEXT_ADDED` added), each from the test cache."""
    wheels = []
    for stem in stems:
        if next_release and stem == NEXT_UPGRADED.name:
            wheels.append(_wheel(cache, stem, NEXT_UPGRADED.version, "upgrades"))
        else:
            wheels.append(_wheel(cache, stem))
    if next_release:
        wheels.append(_wheel(cache, NEXT_ADDED.name, NEXT_ADDED.version))
    return wheels


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


def build_key4hep(root: Path, python: Path, cache: Path, next_release: bool = False) -> Stack:
    """The Key4hep/Spack-like stack at ``root`` (see the module's text); ``next_release``:
    the next release of it (a stack to ``rebase`` onto: :data:`NEXT_UPGRADED` upgraded,
    :data:`NEXT_ADDED` added, each in its own prefix as any other)."""
    short = _short(python)
    view = root / "view" / "bin"
    view.mkdir(parents=True)
    os.symlink(os.path.realpath(python), view / "python3")
    os.symlink("python3", view / "python")
    tag = "cp" + short.replace(".", "")
    build = root.parent / f"{root.name}-build"
    prefixes = []
    wheels = [*_release(cache, K4_PACKAGES, next_release), build_wheel(K4_OWN, build, tag)]
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


def build_conda(root: Path, python: Path, cache: Path, next_release: bool = False) -> Stack:
    """The conda-like Python at ``root`` (see the module's text); ``next_release``: the
    next version of that environment (:data:`NEXT_UPGRADED` upgraded, :data:`NEXT_ADDED`
    added), a prefix of its own as a new conda environment or container image is."""
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
    for wheel in _release(cache, CONDA_PACKAGES, next_release):
        install_into(wheel, site, root / "bin", root / "bin" / "python3")
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


def create_args(stack: Stack) -> list[str]:
    """How ``create`` and ``rebase`` name ``stack``: its setup script (``--setup``), or its
    interpreter (``--python``) for a Python with no setup (conda-like)."""
    if stack.setup_script is None:
        return ["--python", str(stack.python)]
    return ["--setup", f". {shlex.quote(str(stack.setup_script))}"]


def _under(path: str | None, root: Path) -> bool:
    return bool(path) and Path(path).resolve().is_relative_to(root.resolve())


def _own_dists(view: dict[str, object], layer: Path) -> dict[str, str]:
    """The distributions importlib.metadata finds first *in the layer* (name -> version)."""
    return {name: version for name, (version, where) in view["dists"].items()
            if _under(where, layer)}


def assert_shell_works(layer: Path, env: dict[str, str], probe: str, shell: str = "bash",
                       start_env: dict[str, str] | None = None) -> str:
    """``layervenv shell LAYER``, started from ``start_env`` (default: ``env``, the stack's
    shell), starts a real interactive ``shell`` (bash, zsh or tcsh) on a pseudo-terminal
    (tests/test_interactive_shells.py's ``Session``):
    there, ``python`` is the layer's (the shell's own ``command -v``/``which``), its
    ``sys.prefix`` is the layer and ``python PROBE`` prints what the layer's python run
    directly in ``env`` prints (the reference: no tool in between).  ``exit 7`` ends it
    with status 7, its temporary start-up files are gone and the layer is byte for byte
    as before.  Returns what the probe printed in the shell (one line)."""
    # (pexpect is needed here only: imported when a test asks for a shell)
    from test_interactive_shells import PROMPT, Session, pexpect

    scratch = Path(tempfile.mkdtemp(prefix="shell-", dir=layer.parent))
    script = scratch / "probe.py"
    script.write_text(probe + "\n", encoding="utf-8")
    expected = subprocess.run([str(layer / "bin" / "python"), str(script)], env=env,
                              cwd=scratch, capture_output=True, text=True, check=True).stdout
    assert expected.count("\n") == 1, f"the probe prints one line, not {expected!r}"
    before = tree_digest(layer)
    tmp = scratch / "tmp"
    tmp.mkdir()
    session = Session(shell, dict(start_env or env, SHELL=shell_path(shell), TMPDIR=str(tmp)),
                      argv=tool_command("shell", str(layer)))
    try:
        session.run(PROMPT[shell])
        sub = "`{}`" if shell in ("tcsh", "csh") else "$({})"
        found = session.value(sub.format("which python" if "csh" in shell
                                         else "command -v python"))
        assert found == str(layer / "bin" / "python"), found
        prefix = session.value(sub.format("python -c 'import sys; print(sys.prefix)'"))
        assert prefix == str(layer), prefix
        said = session.value(sub.format(f"python {shlex.quote(str(script))}"))
        assert said == expected.strip(), (said, expected)
        session.child.sendline("exit 7")
        session.child.expect(pexpect.EOF)
    finally:
        session.child.close(force=True)
    assert session.child.exitstatus == 7, (session.child.exitstatus, session.child.signalstatus)
    assert list(tmp.iterdir()) == [], "layervenv shell left files behind"
    assert tree_digest(layer) == before, "layervenv shell changed the layer"
    shutil.rmtree(scratch)
    return said


def broken_wheel(directory: Path, name: str, version: str = "99.0") -> Path:
    """A wheel of ``name`` whose top-level module raises ImportError as it is imported
    (tests/test_import_fork.py's ``tiny_wheel``)."""
    from test_import_fork import tiny_wheel

    return tiny_wheel(directory, name, version,
                      f"raise ImportError('{name} {version} is broken (layervenv tests)')\n")


#: Run by the layer's python, one process per distribution: ``import`` each top-level
#: name (argv[2:]), then each public submodule right below it; failures as JSON.
IMPORT_REFERENCE = r"""
import importlib, json, pkgutil, sys
if sys.path and sys.path[0] == "":
    del sys.path[0]
failed = {}
for top in sys.argv[2:]:
    try:
        module = importlib.import_module(top)
    except BaseException as error:
        failed[top] = repr(error)
        continue
    for info in pkgutil.iter_modules(getattr(module, "__path__", None) or []):
        if not info.name.startswith(("_", "test", "conftest", "setup")):
            try:
                importlib.import_module(top + "." + info.name)
            except BaseException as error:
                failed[top + "." + info.name] = repr(error)
print(json.dumps({"dist": sys.argv[1], "failed": failed}))
"""


def import_reference(python: Path, env: dict[str, str], cwd: Path,
                     names: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """Real imports by ``python`` in ``env``, one process per distribution of ``names``
    (canonical name -> its top-level names): each top-level module, then each public
    submodule right below it.  Returns, for each distribution, its modules that failed
    (module -> the error's repr)."""
    def one(item: tuple[str, list[str]]) -> dict:
        out = subprocess.run([str(python), "-c", IMPORT_REFERENCE, item[0], *sorted(item[1])],
                             env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                             check=True).stdout
        return json.loads(out.splitlines()[-1])

    with ThreadPoolExecutor(max_workers=2) as pool:
        return {r["dist"]: r["failed"] for r in pool.map(one, sorted(names.items()))}


def assert_imports_check_agrees(layer: Path, env: dict[str, str], cwd: Path, stack: Stack,
                                shadow: str | None = None) -> dict[str, list[dict]]:
    """``check --imports --format json`` agrees with real imports.

    The scope: every distribution the layer's python sees first (importlib.metadata) in
    the layer or under ``stack.root`` -- the kind's own stack, not the packages of the
    machine's interpreter a fixture happens to be built from.  The reference imports
    each of them (:func:`import_reference`) twice: with the layer's python and with the
    stack's own (``stack.python``), both in ``env``.  ``check`` must report as an
    ``import`` error exactly the distributions the layer breaks: its own that fail, and
    the stack's whose modules fail with the layer but not (or not the same way) with the
    stack's python alone; each ``import`` warning must be one that fails with the stack
    alone too.

    For the time of the check, the layer gets (``pip install --no-deps``) a distribution
    that fails to import (``brokenana``) and, with ``shadow`` (a stack distribution's
    name), a broken copy of that one over the stack's: what imports it then fails too.
    Both are uninstalled again (``pip uninstall``, which touches nothing outside the
    layer).  Returns the ``import`` problems reported in the scope, by distribution."""
    wheels = Path(tempfile.mkdtemp(prefix="broken-", dir=cwd))
    added = [broken_wheel(wheels, "brokenana")]
    if shadow:
        added.append(broken_wheel(wheels, shadow))
    python = layer / "bin" / "python"
    pip_install(layer, env, "--no-deps", *map(str, added))
    try:
        view = importlib_view(python, env, cwd)
        where = {canonicalize_name(k): v[1] for k, v in view["dists"].items()}
        own = {k for k, v in where.items() if _under(v, layer)}
        scope = own | {k for k, v in where.items() if _under(v, stack.root)}
        names: dict[str, list[str]] = {}
        for top, dists in view["tops"].items():
            for dist in {canonicalize_name(d) for d in dists} & scope:
                names.setdefault(dist, []).append(top)
        with_layer = import_reference(python, env, cwd, names)
        alone = import_reference(stack.python, env, cwd,
                                 {k: v for k, v in names.items() if k not in own})
        checked = run_tool("check", str(layer), "--imports", "--format", "json", env=env,
                           check=False)
        assert checked.returncode == 1, checked.stderr  # (brokenana's error at least)
        reported: dict[str, list[dict]] = {}
        for problem in json.loads(checked.stdout)["problems"]:
            key = canonicalize_name(problem.get("distribution") or "")
            if problem["kind"] == "import" and key in scope:
                reported.setdefault(key, []).append(problem)
    finally:
        subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", "brokenana",
                        *([shadow] if shadow else [])], env=env, check=True,
                       capture_output=True)
        shutil.rmtree(wheels)
    after = {canonicalize_name(k): v[1] for k, v in importlib_view(python, env, cwd)["dists"]
             .items()}
    assert "brokenana" not in after and (not shadow or not _under(
        after[canonicalize_name(shadow)], layer)), "the broken packages were not taken out"
    broken = {d for d, failed in with_layer.items() if failed and d in own} | {
        d for d, failed in with_layer.items() if d not in own
        and any(alone[d].get(module) != error for module, error in failed.items())}
    assert "brokenana" in broken and (not shadow or canonicalize_name(shadow) in broken)
    errors = {d for d, found in reported.items() if any(p["severity"] == "error"
                                                         for p in found)}
    assert errors == broken, (reported, with_layer, alone)
    warned = set(reported) - errors
    assert all(alone.get(d) for d in warned), (reported, alone)
    return reported


def assert_rebase_onto(layer: Path, env: dict[str, str], next_stack: Stack,
                       next_env: dict[str, str], cwd: Path,
                       upgraded: Dist = NEXT_UPGRADED, added: Dist = NEXT_ADDED) -> dict:
    """``rebase LAYER --setup ...|--python ...`` (:func:`create_args` of ``next_stack``,
    ``--find-links`` its wheelhouse), run from ``env`` (the shell of the old stack, as a
    user would): afterwards, in ``next_env`` (the next stack's shell), importlib.metadata
    in the layer's python finds every distribution the layer had, at its version, in the
    layer (or, where rebase dropped it, the new stack's copy of that very version); the
    stack's ``upgraded`` and ``added`` distributions from ``next_stack``; and ``list`` and
    ``check`` agree with importlib.metadata and ``pip check``
    (:func:`assert_list_and_check_agree`).  Returns rebase's JSON report."""
    python = layer / "bin" / "python"
    before = importlib_view(python, env, cwd)
    own = _own_dists(before, layer)
    assert own, "the layer has no distribution of its own to keep"
    rebased = run_tool("rebase", str(layer), *create_args(next_stack), "--find-links",
                       str(next_stack.wheelhouse), "--format", "json", env=env)
    report = json.loads(rebased.stdout)
    after = importlib_view(python, next_env, cwd)
    seen = {canonicalize_name(k): v for k, v in after["dists"].items()}
    for name, version in own.items():
        key = canonicalize_name(name)
        assert seen[key][0] == version, (name, version, seen.get(key))
        where = Path(seen[key][1])
        assert _under(str(where), layer) or _under(str(where), next_stack.root), \
            (name, where)
        if not _under(str(where), layer):
            assert key in {canonicalize_name(d) for d in report["dropped"]}, (name, report)
    for dist in (upgraded, added):
        key = canonicalize_name(dist.name)
        assert seen[key][0] == dist.version and _under(seen[key][1], next_stack.root), \
            (dist, seen.get(key))
    assert_list_and_check_agree(layer, next_env, cwd)
    return report


def assert_kernel_answers(layer: Path, env: dict[str, str], probe: str,
                          server_env: dict[str, str] | None = None) -> str:
    """``kernel install LAYER --install-ipykernel`` (ipykernel from the offline jupyter
    wheels, $LAYERVENV_TEST_JUPYTER_WHEELS) from ``env``; then Jupyter's own
    ``KernelManager`` finds the kernelspec where it looks for ``$HOME``'s and starts it
    from ``server_env`` (default: ``env``) -- the tests of tests/test_kernel.py drive it so.
    The kernel runs from the layer (``sys.prefix``) and ``probe`` answers exactly what
    the layer's python run directly in ``env`` prints (the reference).  Returns the
    answer."""
    from test_kernel import KernelManager, ask, client_of, jupyter_wheels, spec_manager

    wheels = jupyter_wheels()
    installed = run_tool("kernel", "install", str(layer), "--install-ipykernel",
                         "--find-links", str(wheels), "--format", "json", env=env)
    name = json.loads(installed.stdout)["name"]
    expected = subprocess.run([str(layer / "bin" / "python"), "-c", probe], env=env,
                              cwd=layer.parent, capture_output=True, text=True,
                              check=True).stdout.strip()
    manager = KernelManager(kernel_name=name, kernel_spec_manager=spec_manager(Path(env["HOME"])))
    manager.start_kernel(env=dict(server_env or env), cwd=str(layer.parent))
    client = None
    try:
        client = client_of(manager)
        assert ask(client, "import sys; print(sys.prefix)") == str(layer)
        answer = ask(client, probe)
        assert answer == expected, (answer, expected)
    finally:
        if client is not None:
            client.stop_channels()
        manager.shutdown_kernel(now=True)
    return answer


__all__ = ["NEXT_ADDED", "NEXT_UPGRADED", "Stack", "assert_activation_restores",
           "assert_explain_agrees", "assert_imports_check_agrees", "assert_kernel_answers",
           "assert_list_and_check_agree", "assert_lock_and_from", "assert_pack_runs",
           "assert_rebase_onto", "assert_shell_works", "bash", "broken_wheel", "build_conda",
           "build_key4hep", "create_args", "import_reference", "importlib_view", "offline",
           "pip_check", "pip_install"]
