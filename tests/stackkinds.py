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
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
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
    make_prefix,
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

    def base(self, base: dict[str, str]) -> dict[str, str]:
        """A shell of this site where nothing is set up yet (what a kind needs there, say
        ALRB's location; without what the caller's own shell must not bring in)."""
        return dict(base)

    def create_args(self) -> list[str]:
        """How ``create`` and ``rebase`` name this stack: its setup script (``--setup``),
        or its interpreter (``--python``) for a Python with no setup (conda-like)."""
        if self.setup_script is None:
            return ["--python", str(self.python)]
        return ["--setup", f". {shlex.quote(str(self.setup_script))}"]

    def for_user(self, where: Path) -> Stack:
        """The stack as a user at ``where`` sets it up: itself, but for a kind that needs a
        user area of its own (CMSSW's ``cmsrel``)."""
        return self


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


def own_python(root: Path, python: Path) -> Path:
    """An interpreter prefix of its own at ``root``: ``bin/pythonX.Y`` (a copy of the real
    executable), its standard library linked entry by entry (a real directory, so a file
    can be added to it: CMSSW's ``sitecustomize.py``), an empty ``site-packages``.
    Returns that ``site-packages``."""
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
    return site


def build_conda(root: Path, python: Path, cache: Path, next_release: bool = False) -> Stack:
    """The conda-like Python at ``root`` (see the module's text); ``next_release``: the
    next version of that environment (:data:`NEXT_UPGRADED` upgraded, :data:`NEXT_ADDED`
    added), a prefix of its own as a new conda environment or container image is."""
    site = own_python(root, python)
    for wheel in _release(cache, CONDA_PACKAGES, next_release):
        install_into(wheel, site, root / "bin", root / "bin" / "python3")
    (root / "conda-meta").mkdir()
    (root / "conda-meta" / "history").write_text("# a conda-like prefix (layervenv tests)\n")
    _byte_compile(root / "bin" / "python3", site)
    _read_only(root)
    return Stack("conda", root, root / "bin" / "python3", None, cache / "upgrades")


#: Lmod's init scripts, where Debian's ``lmod`` package (and Lmod's own install) put them.
LMOD_HOMES = ("/usr/share/lmod/lmod", "/opt/apps/lmod/lmod", "/usr/local/lmod/lmod")
#: The EasyBuild release whose own code writes the module files and ``sitecustomize.py``.
EASYBUILD = ("easybuild-framework==5.4.1", "easybuild-easyblocks==5.4.1")
#: Packages of the Lmod stack, one EasyBuild module (and prefix) each; the first four
#: are loaded by the setup, ``cycler`` is loaded later, while a layer is active.
LMOD_PACKAGES = ("six", "python_dateutil", "packaging", "pytz", "cycler")

EB_PYTHON = """\
easyblock = 'Bundle'
name = 'Python'
version = '{version}'
homepage = 'https://www.python.org'
description = "Python (a copy of the test's interpreter, with EasyBuild's sitecustomize.py)"
toolchain = SYSTEM
"""
EB_PACKAGE = """\
easyblock = 'Tarball'
name = '{name}'
version = '{version}'
homepage = 'https://pypi.org/project/{name}'
description = "{name} (installed from its real wheel)"
toolchain = SYSTEM
dependencies = [('Python', '{python}')]
"""


def lmod_init(shell: str = "bash") -> Path | None:
    """Lmod's init script for ``shell`` (it defines ``module``), or None: no Lmod here."""
    homes = [os.environ["LMOD_PKG"]] if os.environ.get("LMOD_PKG") else []
    for home in (*homes, *LMOD_HOMES):
        script = Path(home) / "init" / shell
        if script.is_file():
            return script
    return None


def easybuild_sdists(cache: Path) -> list[Path]:
    """EasyBuild's sdists (framework, easyblocks) in ``cache``, downloaded with ``pip
    download`` on first use (dev/test fetches them into ``.cache/easybuild``)."""
    sdists = sorted(cache.glob("easybuild_*-5.4.1.tar.gz"))
    if len(sdists) < 2:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary=:all:", "--disable-pip-version-check", "-d", str(cache),
                        *EASYBUILD], check=True)
        sdists = sorted(cache.glob("easybuild_*-5.4.1.tar.gz"))
    return sdists


def _unpack_easybuild(sdists: list[Path], into: Path) -> str:
    """EasyBuild's code, unpacked from its sdists (PyPI's own): the PYTHONPATH to run it."""
    paths = []
    for sdist in sdists:
        with tarfile.open(sdist) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(into, filter="data")
            else:
                archive.extractall(into)
        paths.append(str(into / sdist.name[:-len(".tar.gz")]))
    return os.pathsep.join(paths)


@dataclass
class LmodStack(Stack):
    """An Lmod module tree written by EasyBuild: ``module use`` it, ``module load`` them."""

    modulepath: Path | None = None
    modules: tuple[str, ...] = ()  # what the setup loads
    later: str = ""  # a module a test loads while a layer is active
    search_path: str = "PYTHONPATH"  # or EBPYTHONPREFIXES

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """The environment after :meth:`setup_line` in bash."""
        out = subprocess.run(["bash", "--noprofile", "--norc", "-c",
                              f"{self.setup_line()} >/dev/null 2>&1 && env -0"],
                             env=base, capture_output=True, text=True, check=True).stdout
        return parse_env0(out)

    def setup_line(self) -> str:
        """The ``--setup`` of a layer over these modules: Lmod's init, then the modules."""
        init, tree = shlex.quote(str(lmod_init())), shlex.quote(str(self.modulepath))
        return f". {init}; module use {tree}; module load {' '.join(self.modules)}"

    def base(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` without any Lmod state of the caller's own shell (:func:`lmod_free`)."""
        return lmod_free(base)

    def create_args(self) -> list[str]:
        return ["--setup", self.setup_line()]


def lmod_free(env: dict[str, str]) -> dict[str, str]:
    """``env`` without any Lmod or EasyBuild state (a site's login shell may bring some)."""
    return {k: v for k, v in env.items()
            if not k.startswith(("LMOD", "__LMOD", "_ModuleTable", "EB"))
            and k not in {"MODULEPATH", "MODULEPATH_ROOT", "MODULESHOME", "LOADEDMODULES",
                          "_LMFILES_", "BASH_ENV", "BASH_FUNC_module%%", "BASH_FUNC_ml%%"}}


def build_lmod(root: Path, python: Path, cache: Path, easybuild: list[Path],
               search_path: str = "PYTHONPATH", next_release: bool = False) -> LmodStack:
    """An EasyBuild-installed software tree at ``root`` and its Lmod module files, written by
    EasyBuild 5 itself (``eb --module-only`` over prefixes we fill from real wheels):

    - ``Python/<version>``: a prefix of its own (as :func:`build_conda`) whose site-packages
      holds EasyBuild's ``sitecustomize.py`` (the text of its python easyblock), which adds
      ``$EBPYTHONPREFIXES``' site-packages *after* a venv's;
    - one module and prefix per package; with ``search_path="PYTHONPATH"`` (EasyBuild's
      default, what older sites have) its module prepends its site-packages to PYTHONPATH,
      with ``"EBPYTHONPREFIXES"`` it prepends its prefix to ``$EBPYTHONPREFIXES``.

    ``easybuild``: :func:`easybuild_sdists`' answer.  ``next_release``: the site's next
    software release, a module tree of its own (:data:`NEXT_UPGRADED` upgraded,
    :data:`NEXT_ADDED` added and loaded by the setup)."""
    init = lmod_init()
    assert init is not None, "Lmod is not installed"
    short = _short(python)
    version = subprocess.run([str(python), "-I", "-S", "-c",
                              "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    software = root / "software"
    prefix = software / "Python" / version
    site = own_python(prefix, python)
    build = root.parent / f"{root.name}-build"
    configs = build / "easyconfigs"
    configs.mkdir(parents=True)
    code = _unpack_easybuild(easybuild, build)
    sitecustomize = subprocess.run(
        [str(python), "-I", "-c", "import sys; sys.path[:0] = sys.argv[1].split(':'); "
         "from easybuild.easyblocks.p.python import SITECUSTOMIZE; print(SITECUSTOMIZE, end='')",
         code], capture_output=True, text=True, check=True).stdout
    (site / "sitecustomize.py").write_text(sitecustomize, encoding="utf-8")
    (configs / f"Python-{version}.eb").write_text(EB_PYTHON.format(version=version))
    modules, later = [], ""
    for wheel in _release(cache, LMOD_PACKAGES, next_release):
        stem, release = wheel.name.split("-")[:2]
        name = canonicalize_name(stem)
        home = software / name / release
        into = home / "lib" / f"python{short}" / "site-packages"
        into.mkdir(parents=True)
        install_into(wheel, into, home / "bin", prefix / "bin" / "python3")
        (configs / f"{name}-{release}.eb").write_text(
            EB_PACKAGE.format(name=name, version=release, python=version))
        modules.append(f"{name}/{release}")
        if stem == LMOD_PACKAGES[-1]:
            later = modules[-1]
    _byte_compile(prefix / "bin" / "python3", software)
    eb = [str(python), "-m", "easybuild.main", "--allow-use-as-root-and-accept-consequences",
          "--module-only", "--force", "--modules-tool=Lmod", "--module-syntax=Lua",
          f"--prefer-python-search-path={search_path}", f"--installpath={root}",
          f"--prefix={build}", f"--buildpath={build / 'build'}", f"--tmpdir={build / 'tmp'}",
          f"--robot={configs}", *(str(configs / f"{m.replace('/', '-')}.eb") for m in modules)]
    env = dict(os.environ, HOME=str(build), PYTHONPATH=code)
    env.pop("PYTHONHOME", None)
    subprocess.run(["bash", "--noprofile", "--norc", "-c", '. "$1" && shift && exec "$@"', "eb",
                    str(init), *eb], env=env, check=True, capture_output=True)
    shutil.rmtree(build)
    _read_only(root)
    return LmodStack(f"lmod-{search_path.lower()}", root, prefix / "bin" / "python3", None,
                     cache / "upgrades", modulepath=root / "modules" / "all",
                     modules=tuple(m for m in modules if m != later), later=later,
                     search_path=search_path)


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


# --- CMSSW -------------------------------------------------------------------------------

#: The SCRAM architecture and release of the CMSSW-like stack.
CMS_ARCH = "el9_amd64_gcc12"
CMS_RELEASE = "CMSSW_14_0_0"
CMS_NEXT_RELEASE = "CMSSW_14_0_1"
#: Externals (py3-* packages of cmsdist), each in its own prefix, real wheels.
CMS_EXTERNALS = ("six", "python_dateutil", "packaging", "pytz", "cycler", "typing_extensions")
#: A distribution the release's own python/ directory holds, and a newer one for a layer.
CMS_OWN = Dist("cmstools", "1.0.0")
CMS_NEWER = Dist("cmstools", "1.1.0")

#: What CMSSW's Python runs at start-up.  cmsdist's python3.spec writes it into the
#: interpreter's ``lib/pythonX.Y/`` (the standard library's directory, not site-packages):
#: each PYTHON3PATH entry goes to ``site.addsitedir``, which *appends* it to sys.path,
#: after the interpreter's own site-packages (and a venv's), and reads its .pth files.
CMS_SITECUSTOMIZE = """\
# CMSSW's Python (cms-sw/cmsdist python3.spec): PYTHON3PATH, one site directory each.
import os
if "PYTHON3PATH" in os.environ:
    import site
    for _entry in os.environ["PYTHON3PATH"].split(os.pathsep):
        site.addsitedir(_entry)
"""

#: ``scramv1``: the two commands the tests use.  ``project`` makes a user area (what
#: ``cmsrel`` does); ``runtime -sh`` prints the runtime environment of the area around the
#: current directory (what ``cmsenv`` evaluates): it takes its own earlier additions out
#: first (remembered in SCRAMRT_*), so it can be re-run, and puts a scram-venv's ``bin``
#: (``$CMSSW_BASE/venv/$SCRAM_ARCH``) first on PATH when there is one.
CMS_SCRAM = """\
#!/bin/bash
# scramv1 stand-in (layervenv tests): project NAME | runtime -sh
cms={root}
case "$1" in
project)
    name=${{@: -1}}
    release="$cms/$SCRAM_ARCH/cms/cmssw/$name"
    [ -d "$release" ] || {{ echo "ERROR: no release $name for $SCRAM_ARCH" >&2; exit 1; }}
    mkdir -p "$name/.SCRAM/$SCRAM_ARCH" "$name/src" "$name/python" \\
        "$name/lib/$SCRAM_ARCH" "$name/bin/$SCRAM_ARCH"
    printf 'RELEASETOP=%s\\n' "$release" > "$name/.SCRAM/$SCRAM_ARCH/Environment"
    ;;
runtime)
    [ "$2" = -sh ] || {{ echo "scramv1 stand-in: runtime -sh only" >&2; exit 1; }}
    top=$PWD
    while [ ! -f "$top/.SCRAM/$SCRAM_ARCH/Environment" ]; do
        [ "$top" = / ] && {{ echo "ERROR: not in a SCRAM area" >&2; exit 1; }}
        top=$(dirname "$top")
    done
    . "$top/.SCRAM/$SCRAM_ARCH/Environment"
    without () {{  # VALUE ENTRIES: VALUE without ENTRIES
        local out= entry IFS=:
        for entry in $1; do
            case ":$2:" in *":$entry:"*) ;; *) out=${{out:+$out:}}$entry ;; esac
        done
        printf %s "$out"
    }}
    venv=
    [ -f "$top/venv/$SCRAM_ARCH/pyvenv.cfg" ] && venv="$top/venv/$SCRAM_ARCH/bin:"
    add_path="$venv$top/bin/$SCRAM_ARCH:$RELEASETOP/bin/$SCRAM_ARCH:{python_home}/bin"
    add_ld="$top/lib/$SCRAM_ARCH:$RELEASETOP/lib/$SCRAM_ARCH:{python_home}/lib"
    add_py="$top/python:$top/lib/$SCRAM_ARCH:$RELEASETOP/python"
    add_py="$add_py:$RELEASETOP/lib/$SCRAM_ARCH:{toolconf}"
    rest=$(without "$PATH" "$SCRAMRT_PATH")
    printf 'export PATH=%q;\\n' "$add_path${{rest:+:$rest}}"
    rest=$(without "$LD_LIBRARY_PATH" "$SCRAMRT_LD_LIBRARY_PATH")
    printf 'export LD_LIBRARY_PATH=%q;\\n' "$add_ld${{rest:+:$rest}}"
    rest=$(without "$PYTHON3PATH" "$SCRAMRT_PYTHON3PATH")
    printf 'export PYTHON3PATH=%q;\\n' "$add_py${{rest:+:$rest}}"
    printf 'export SCRAMRT_PATH=%q SCRAMRT_LD_LIBRARY_PATH=%q SCRAMRT_PYTHON3PATH=%q;\\n' \\
        "$add_path" "$add_ld" "$add_py"
    printf 'export CMSSW_BASE=%q CMSSW_RELEASE_BASE=%q CMSSW_VERSION=%q SCRAMRT_SET=%q;\\n' \\
        "$top" "$RELEASETOP" "${{RELEASETOP##*/}}" "$top:$SCRAM_ARCH"
    ;;
*) echo "scramv1 stand-in: project or runtime -sh" >&2; exit 1 ;;
esac
"""

#: ``cmsset_default.sh``: scramv1 on PATH, SCRAM_ARCH, and cmsenv/cmsrel as the aliases
#: they are (a non-interactive bash does not expand them: a ``--setup`` says
#: ``eval "$(scramv1 runtime -sh)"``).
CMS_SET_DEFAULT = """\
# cmsset_default.sh (layervenv tests' stand-in for /cvmfs/cms.cern.ch/cmsset_default.sh)
export CMS_PATH={root}
export SCRAM_ARCH=${{SCRAM_ARCH:-{arch}}}
case ":$PATH:" in
    *":$CMS_PATH/common:"*) ;;
    *) export PATH="$CMS_PATH/common${{PATH:+:$PATH}}" ;;
esac
alias cmsenv='eval `scramv1 runtime -sh`'
alias cmsrel='scramv1 project CMSSW'
"""


@dataclass
class CmsStack(Stack):
    """The CMSSW-like stack: ``setup_script`` is ``cmsset_default.sh``; a user area is
    made with :meth:`cmsrel` and set up with :meth:`cmsenv`."""

    release: str = CMS_RELEASE
    arch: str = CMS_ARCH
    area: Path | None = None  # a user area (:meth:`for_user`): env and create_args use it

    def cmsrel(self, where: Path) -> Path:
        """``cmsrel CMSSW_X`` in ``where``: the user area (``$CMSSW_BASE``)."""
        where.mkdir(parents=True, exist_ok=True)
        bash(f". {shlex.quote(str(self.setup_script))}; scramv1 project CMSSW {self.release}",
             {"PATH": "/usr/bin:/bin", "HOME": str(where)}, cwd=where)
        return where / self.release

    def setup_command(self, area: Path) -> str:
        """The ``--setup`` a CMS user passes: cmsset_default.sh, then what cmsenv evaluates
        in the area (an alias is not expanded in the non-interactive bash of --setup)."""
        return (f"source {shlex.quote(str(self.setup_script))} && "
                f"cd {shlex.quote(str(area / 'src'))} && eval \"$(scramv1 runtime -sh)\"")

    def cmsenv(self, base: dict[str, str], area: Path) -> dict[str, str]:
        """The environment after ``cmsset_default.sh`` and ``cmsenv`` in ``area/src``."""
        return parse_env0(bash(self.setup_command(area) + "; env -0", base))

    def for_user(self, where: Path) -> CmsStack:
        """The stack with a user area of this release made in ``where`` (``cmsrel``)."""
        return replace(self, area=self.cmsrel(where))

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """After ``cmsenv`` in the user area (:meth:`for_user`); without one, after
        ``cmsset_default.sh`` only."""
        return super().env(base) if self.area is None else self.cmsenv(base, self.area)

    def create_args(self) -> list[str]:
        """The documented ``--setup`` of the user area (:meth:`setup_command`)."""
        return super().create_args() if self.area is None else \
            ["--setup", self.setup_command(self.area)]


def build_cmssw(root: Path, python: Path, cache: Path, next_release: bool = False) -> CmsStack:
    """A CMSSW-like stack at ``root`` (``/cvmfs/cms.cern.ch``), as cmsdist builds one:

    - CMS's own Python: an interpreter prefix of its own (:func:`own_python`) under
      ``ARCH/external/python3/VERSION`` with CMS's ``sitecustomize.py`` in its standard
      library's directory (cms-sw/cmsdist ``python3.spec``, which writes it there:
      ``site.addsitedir`` for each PYTHON3PATH entry, appended after site-packages);
    - externals (real 2023 wheels), one prefix each (``ARCH/external/py3-NAME/VER``), not
      on PYTHON3PATH one by one: cmssw-tool-conf's ``python-paths`` site-packages holds a
      ``tool-deps.pth`` naming them all (cms-sw/cmsdist ``scram/tool-conf-src.file``), and
      that one directory is on PYTHON3PATH;
    - the release ``ARCH/cms/cmssw/CMSSW_X``: ``python/`` (a package and a distribution of
      its own, :data:`CMS_OWN`), ``lib/ARCH`` (a library), ``bin/ARCH``;
    - ``common/scramv1`` and ``cmsset_default.sh`` (:data:`CMS_SCRAM`,
      :data:`CMS_SET_DEFAULT`).

    ``cmsenv`` sets PYTHON3PATH (not PYTHONPATH) to the user area's and the release's
    ``python`` and ``lib/ARCH`` and the tool-conf directory, plus PATH, LD_LIBRARY_PATH,
    CMSSW_BASE (the user's area, made by :meth:`CmsStack.cmsrel`), SCRAM_ARCH.
    ``scram-venv`` makes a venv with ``include-system-site-packages = true`` under
    ``$CMSSW_BASE/venv/$SCRAM_ARCH`` and cmsenv puts its ``bin`` first on PATH
    (cms-sw.github.io/venv.html); a layer made there takes its place.

    ``next_release``: the next release, :data:`CMS_NEXT_RELEASE`, with its externals (a
    cmsdist build of its own: :data:`NEXT_UPGRADED` upgraded, :data:`NEXT_ADDED` added).
    """
    name = CMS_NEXT_RELEASE if next_release else CMS_RELEASE
    short = _short(python)
    arch = root / CMS_ARCH
    home = arch / "external" / "python3" / f"{platform_version(python)}-cms"
    site = own_python(home, python)
    (site.parent / "sitecustomize.py").write_text(CMS_SITECUSTOMIZE, encoding="utf-8")
    # its bytecode goes into a __pycache__ of this prefix's own (the linked one is the
    # real interpreter's): the real one's files linked into it
    cached = site.parent / "__pycache__"
    real_cache = Path(os.readlink(cached))
    cached.unlink()
    cached.mkdir()
    for item in real_cache.iterdir():
        os.symlink(item, cached / item.name)
    cms_python = home / "bin" / "python3"
    build = root.parent / f"{root.name}-build"
    externals = []
    for wheel in _release(cache, CMS_EXTERNALS, next_release):
        stem = wheel.name.split("-")[0]
        prefix = arch / "external" / f"py3-{stem.replace('_', '-')}" / wheel.name.split("-")[1]
        ext_site = prefix / "lib" / f"python{short}" / "site-packages"
        ext_site.mkdir(parents=True)
        install_into(wheel, ext_site, prefix / "bin", cms_python)
        externals.append(ext_site)
    toolconf = arch / "cms" / "cmssw-tool-conf" / "60.0" / "lib" / f"python{short}"
    toolconf = toolconf / "site-packages"
    toolconf.mkdir(parents=True)
    (toolconf / "tool-deps.pth").write_text("".join(f"{e}\n" for e in externals), encoding="utf-8")
    release = arch / "cms" / "cmssw" / name
    for sub in ("python", f"lib/{CMS_ARCH}", f"bin/{CMS_ARCH}", f".SCRAM/{CMS_ARCH}"):
        (release / sub).mkdir(parents=True)
    (release / f"lib/{CMS_ARCH}" / "libFWCoreFramework.so").write_bytes(b"")
    (release / "python" / "FWCore" / "ParameterSet").mkdir(parents=True)
    (release / "python" / "FWCore" / "__init__.py").write_text("")
    (release / "python" / "FWCore" / "ParameterSet" / "__init__.py").write_text("")
    (release / "python" / "FWCore" / "ParameterSet" / "Config.py").write_text(
        "class Process:\n    def __init__(self, name):\n        self.name = name\n")
    tag = "cp" + short.replace(".", "")
    install_into(build_wheel(CMS_OWN, build, tag), release / "python",
                 release / f"bin/{CMS_ARCH}", cms_python)
    wheelhouse = root.parent / f"{root.name}-wheelhouse"
    wheelhouse.mkdir()
    build_wheel(CMS_NEWER, wheelhouse, tag)
    for wheel in (cache / "upgrades").glob("*.whl"):
        os.symlink(wheel, wheelhouse / wheel.name)
    shutil.rmtree(build)
    common = root / "common"
    common.mkdir()
    (common / "scramv1").write_text(CMS_SCRAM.format(
        root=shlex.quote(str(root)), python_home=shlex.quote(str(home)),
        toolconf=shlex.quote(str(toolconf))), encoding="utf-8")
    (common / "scramv1").chmod(0o755)
    os.symlink("scramv1", common / "scram")
    setup = root / "cmsset_default.sh"
    setup.write_text(CMS_SET_DEFAULT.format(root=shlex.quote(str(root)), arch=CMS_ARCH),
                     encoding="utf-8")
    _byte_compile(cms_python, *externals, release / "python", site.parent / "sitecustomize.py")
    _read_only(root)
    return CmsStack("cmssw", root, cms_python, setup, wheelhouse, release=name)


def platform_version(python: Path) -> str:
    """``3.11.7`` of ``python``."""
    return subprocess.run([str(python), "-I", "-S", "-c",
                           "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()


# --- ATLAS ---------------------------------------------------------------------------------

ATLAS_PLATFORM = "x86_64-el9-gcc13-opt"
#: The LCG externals of the release (real wheels), as an LCG view holds them.
ATLAS_EXTERNALS = ("six", "python_dateutil", "packaging", "pytz", "cycler")
#: The releases: 25.2.1 and the next one, whose own distribution is upgraded.
ATLAS_RELEASES = ("25.2.1", "25.2.2")

#: ALRB's ``user/atlasLocalSetup.sh``: defines ``asetup`` (and ``lsetup``) as functions;
#: ``asetup AnalysisBase,VERSION`` sources that release's setup.
ATLAS_LOCAL_SETUP = """\
# atlasLocalSetup.sh (layervenv tests' stand-in for ATLASLocalRootBase)
export ALRB_availableTools="asetup views"
asetup () {{
    local project=${{1%%,*}} version=${{1#*,}}
    local setup={sw}/$project/$version/InstallArea/{platform}/setup.sh
    [ -f "$setup" ] || {{ echo "asetup: no release $1" >&2; return 1; }}
    . "$setup"
}}
lsetup () {{ echo "lsetup: not in this stand-in: $*" >&2; return 1; }}
"""

ATLAS_RELEASE_SETUP = """\
# the release's setup (what asetup sources)
export AtlasProject=AnalysisBase AtlasVersion={version} AtlasBuildBranch=25.2
export ROOTSYS={view}
export PATH="{area}/bin:{view}/bin${{PATH:+:$PATH}}"
export LD_LIBRARY_PATH="{area}/lib:{view}/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"
export PYTHONPATH="{area}/python:{area}/lib:{site}${{PYTHONPATH:+:$PYTHONPATH}}"
"""


@dataclass
class AtlasStack(Stack):
    """The ATLAS-like stack: ``setup_script`` is ALRB's ``atlasLocalSetup.sh``."""

    alrb: Path | None = None
    releases: tuple[str, ...] = ATLAS_RELEASES
    release: str = ATLAS_RELEASES[0]  # the one env and create_args set up (asetup)

    def setup_command(self, version: str) -> str:
        """The ``--setup`` an ATLAS user passes (setupATLAS is an alias in users' .bashrc:
        layervenv's --setup defines it from ATLAS_LOCAL_ROOT_BASE)."""
        return f"setupATLAS; asetup AnalysisBase,{version}"

    def base(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with ALRB's location, as users' .bashrc exports it."""
        return dict(base, ATLAS_LOCAL_ROOT_BASE=str(self.alrb))

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """After ``setupATLAS; asetup AnalysisBase,RELEASE`` (:attr:`release`)."""
        return self.asetup(base, self.release)

    def create_args(self) -> list[str]:
        return ["--setup", self.setup_command(self.release)]

    def next_release(self) -> AtlasStack:
        """The same stack, set up with the next release (``asetup AnalysisBase,25.2.2``)."""
        return replace(self, release=self.releases[self.releases.index(self.release) + 1])

    def asetup(self, base: dict[str, str], version: str) -> dict[str, str]:
        """The environment after ``setupATLAS; asetup AnalysisBase,VERSION``."""
        local = shlex.quote(str(self.setup_script))
        return parse_env0(bash(f". {local}; asetup AnalysisBase,{version}; env -0",
                               self.base(base)))


def build_atlas(root: Path, python: Path, cache: Path) -> AtlasStack:
    """An ATLAS-like stack at ``root`` (``/cvmfs``): ATLASLocalRootBase (its
    ``user/atlasLocalSetup.sh`` defines ``asetup``), an LCG view
    (``sft.cern.ch/lcg/views/LCG_105/PLATFORM``, made by simstack's :func:`make_prefix`,
    real wheels, its ``bin/python3`` the interpreter) and two AnalysisBase releases
    (``atlas.cern.ch/repo/sw/software/25.2/AnalysisBase/VERSION/InstallArea/PLATFORM``:
    ``python/`` with a package and a distribution of the release's own, ``lib/`` with a
    compiled-looking one, a ``setup.sh`` putting both and the view on PYTHONPATH)."""
    view = make_prefix(root / "sft.cern.ch" / "lcg" / "views" / "LCG_105" / ATLAS_PLATFORM,
                       python)
    for stem in ATLAS_EXTERNALS:
        view.install(_wheel(cache, stem))
    view.byte_compile()
    sw = root / "atlas.cern.ch" / "repo" / "sw" / "software" / "25.2"
    build = root.parent / f"{root.name}-build"
    wheelhouse = root.parent / f"{root.name}-wheelhouse"
    wheelhouse.mkdir()
    for wheel in (cache / "upgrades").glob("*.whl"):
        os.symlink(wheel, wheelhouse / wheel.name)
    for version in ATLAS_RELEASES:
        area = sw / "AnalysisBase" / version / "InstallArea" / ATLAS_PLATFORM
        for sub in ("python/AnaAlgorithm", "lib", "bin"):
            (area / sub).mkdir(parents=True)
        (area / "python" / "AnaAlgorithm" / "__init__.py").write_text(
            f"RELEASE = {version!r}\n")
        (area / "lib" / "libAnaAlgorithmLib.so").write_bytes(b"")
        install_into(build_wheel(Dist("atlasutil", version), build, view.tag),
                     area / "python", area / "bin", view.python)
        install_into(build_wheel(Dist("xaodcore", version, compiled=True), build, view.tag),
                     area / "lib", area / "bin", view.python)
        _byte_compile(view.python, area / "python", area / "lib")
        (area / "setup.sh").write_text(ATLAS_RELEASE_SETUP.format(
            version=version, area=shlex.quote(str(area)), view=shlex.quote(str(view.prefix)),
            site=shlex.quote(str(view.site_packages))), encoding="utf-8")
    shutil.rmtree(build)
    alrb = root / "atlas.cern.ch" / "repo" / "ATLASLocalRootBase"
    (alrb / "user").mkdir(parents=True)
    local = alrb / "user" / "atlasLocalSetup.sh"
    local.write_text(ATLAS_LOCAL_SETUP.format(sw=shlex.quote(str(sw)), platform=ATLAS_PLATFORM),
                     encoding="utf-8")
    _read_only(root)
    return AtlasStack("atlas", root, view.python, local, wheelhouse, alrb=alrb)


def create_args(stack: Stack) -> list[str]:
    """How ``create`` and ``rebase`` name ``stack`` (each kind knows: :meth:`Stack.create_args`)."""
    return stack.create_args()


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


def import_reference(python: Path, env: dict[str, str], cwd: Path,
                     names: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """Real imports by ``python`` in ``env``, one process per distribution of ``names``
    (canonical name -> its top-level names): each top-level module, then each public
    submodule right below it (tests/test_check_breakage.py's ``IMPORT_ALL``).  Returns,
    for each distribution, its modules that failed (module -> the error's repr)."""
    from test_check_breakage import IMPORT_ALL

    def one(item: tuple[str, list[str]]) -> tuple[str, dict[str, str]]:
        out = cwd / f"imports-{item[0]}.json"
        subprocess.run([str(python), "-c", IMPORT_ALL, str(out), *sorted(item[1])],
                       env=env, cwd=cwd, capture_output=True, timeout=120, check=True)
        failed = json.loads(out.read_text(encoding="utf-8"))
        out.unlink()
        return item[0], failed

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, sorted(names.items())))


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
