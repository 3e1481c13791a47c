"""The boot hook on every stack interpreter available here (Python 3.6 to 3.13).

For each interpreter: a minimal stack directory on PYTHONPATH holding ``hepnum``
(old), a layer created with that interpreter, a newer ``hepnum`` in the layer, a
``.pth`` path line and a ``.pth`` import-hook finder (what editable installs
write).  The layer's copies must win; the stack must stay importable; the
standard library keeps its place; no empty entry appears on sys.path.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import clean_env, py, pythons, run_tool

#: every Python 3 on this machine (pyenv's, uv's, PATH's: tests/helpers.py finds them)
PYTHONS = [str(found.path) for found in pythons() if found.version[0] == 3] or [None]

REPORT = """
import json, sys, hepnum, hepfinder, hepstackonly
print(json.dumps({"path": sys.path, "hepnum": hepnum.ORIGIN, "finder": hepfinder.ORIGIN,
                  "stack": hepstackonly.ORIGIN, "version": list(sys.version_info[:2])}))
"""

FINDER = '''
import importlib.util, sys
class _Finder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "hepfinder":
            return importlib.util.spec_from_file_location(name, {location!r})
        return None
def install():
    sys.meta_path.append(_Finder)
'''


def _package(where: Path, name: str, origin: str) -> None:
    (where / name).mkdir(parents=True, exist_ok=True)
    (where / name / "__init__.py").write_text(f"ORIGIN = {origin!r}\n")


@pytest.fixture
def mini_stack(tmp_path: Path) -> Path:
    stack = tmp_path / "stack"
    for name in ("hepnum", "hepfinder", "hepstackonly"):
        _package(stack, name, "stack")
    return stack


def _version_id(python: str | None) -> str:
    return Path(python).parent.parent.name if python else "none"


@pytest.mark.parametrize("python", PYTHONS, ids=_version_id)
def test_layer_wins_on_every_interpreter(python, tmp_path, mini_stack):
    if python is None:
        pytest.skip("no interpreter found")
    env = clean_env(tmp_path, PYTHONPATH=f"{mini_stack}:{tmp_path / 'later'}")
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", "--python", python, str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    _package(site, "hepnum", "layer")
    editable = tmp_path / "editable-src"
    _package(editable, "hepnum_extra", "editable")
    (site / "__editable__.demo.pth").write_text(f"{editable}\n")
    _package(tmp_path / "finder-src", "hepfinder", "finder")
    (site / "__editable___demo_finder.py").write_text(
        FINDER.format(location=str(tmp_path / "finder-src" / "hepfinder" / "__init__.py")))
    (site / "__editable__.demo2.pth").write_text(
        "import __editable___demo_finder; __editable___demo_finder.install()\n")

    out = subprocess.run([str(layer / "bin" / "python"), "-c", REPORT], env=env, cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert out.stderr == ""
    report = json.loads(out.stdout)
    path = report["path"]
    assert report["hepnum"] == "layer"
    assert report["finder"] == "finder"
    assert report["stack"] == "stack"
    # order: layer site-packages, then the .pth path, then PYTHONPATH, then the stdlib
    index = {p: i for i, p in enumerate(path)}
    assert index[str(site)] < index[str(editable)] < index[str(mini_stack)]
    stdlib_dir = "/lib/python{}.{}".format(*report["version"])
    stdlib = [i for i, p in enumerate(path) if p.endswith(stdlib_dir)]
    assert stdlib and index[str(mini_stack)] < stdlib[0]
    assert path.count("") == 1 and path[0] == ""  # only the -c entry Python adds itself
    assert os.getcwd() not in path[1:] and str(tmp_path) not in path


def test_hook_disabled_behaves_like_a_plain_venv(tmp_path, mini_stack):
    env = clean_env(tmp_path, PYTHONPATH=str(mini_stack))
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    _package(site, "hepnum", "layer")
    code = "import hepnum; print(hepnum.ORIGIN)"
    python = layer / "bin" / "python"
    assert py(python, code, env) == "layer"
    assert py(python, code, dict(env, LAYERVENV_BOOT_DISABLE="1")) == "stack"


def test_no_pythonpath_keeps_plain_venv_order(tmp_path):
    """Without PYTHONPATH nothing moves: the stdlib stays ahead of the layer."""
    env = clean_env(tmp_path)
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    path = json.loads(subprocess.run(
        [str(layer / "bin" / "python"), "-c", "import sys, json; print(json.dumps(sys.path))"],
        env=env, capture_output=True, text=True, check=True).stdout)
    plain = json.loads(subprocess.run(
        [str(layer / "bin" / "python"), "-c", "import sys, json; print(json.dumps(sys.path))"],
        env=dict(env, LAYERVENV_BOOT_DISABLE="1"), capture_output=True, text=True,
        check=True).stdout)
    assert path == plain


def test_warns_once_about_another_pythons_site_packages(tmp_path, mini_stack):
    foreign = tmp_path / "other" / "lib" / "python2.7" / "site-packages"
    foreign.mkdir(parents=True)
    env = clean_env(tmp_path, PYTHONPATH=f"{mini_stack}:{foreign}")
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    child = ("import subprocess, sys; "
             "subprocess.run([sys.executable, '-c', 'pass'], check=True)")
    result = subprocess.run([str(layer / "bin" / "python"), "-c", child], env=env,
                            capture_output=True, text=True, check=True)
    assert result.stderr.count("another Python") == 1  # parent warns, child stays quiet
    assert str(foreign) in result.stderr
    same = clean_env(tmp_path, PYTHONPATH=str(mini_stack))
    quiet = subprocess.run([str(layer / "bin" / "python"), "-c", "pass"], env=same,
                           capture_output=True, text=True, check=True)
    assert quiet.stderr == ""


@pytest.mark.parametrize("layout", ["lib/python/site-packages", "lib/python3/site-packages",
                                    "lib64/python/site-packages"])
def test_no_warning_for_site_packages_without_a_python_version(tmp_path, mini_stack, layout):
    """``lib/python/site-packages`` or ``lib/python3/site-packages`` names no Python
    version: the docs' rule (run.md) is ``lib/pythonX.Y/site-packages``; the hook warned, and check
    called ``lib/python3`` "site-packages of Python 3"."""
    from layervenv.inspection.stack_problems import python_of_entry

    unversioned = tmp_path / "tool" / layout
    unversioned.mkdir(parents=True)
    env = clean_env(tmp_path, PYTHONPATH=f"{mini_stack}:{unversioned}")
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    result = subprocess.run([str(layer / "bin" / "python"), "-c", "pass"], env=env,
                            capture_output=True, text=True, check=True)
    assert result.stderr == ""
    assert python_of_entry(str(unversioned)) is None
    assert python_of_entry("/x/lib64/python3.13t/site-packages") == "3.13"


@pytest.mark.parametrize("python", PYTHONS, ids=_version_id)
def test_shipped_bytecode_is_what_loads(python, tmp_path):
    """The layer ships the hook's .pyc compiled by its own interpreter, and it is valid:
    with PYTHONDONTWRITEBYTECODE (common on stacks) nothing else would cache it.  Under
    -O and -OO (or PYTHONOPTIMIZE) Python loads .opt-1/.opt-2 pycs: shipped too."""
    if python is None:
        pytest.skip("no interpreter found")
    env = clean_env(tmp_path, PYTHONDONTWRITEBYTECODE="1")
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", "--python", python, str(layer), env=env)
    cache = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages" / "__pycache__"))[0])
    pycs = sorted(p.name for p in cache.iterdir())
    assert {name.split(".")[0] for name in pycs} == {"_layervenv_boot"}
    tag = pycs[0].split(".")[1]
    for flags, suffix in (([], ""), (["-O"], ".opt-1"), (["-OO"], ".opt-2")):
        verbose = subprocess.run([str(layer / "bin" / "python"), *flags, "-v", "-c", "pass"],
                                 env=env, capture_output=True, text=True, check=True).stderr
        expected = cache / f"_layervenv_boot.{tag}{suffix}.pyc"
        assert f"# code object from '{expected}'" in verbose, flags
        assert "bytecode is stale" not in verbose
    assert sorted(p.name for p in cache.iterdir()) == pycs  # nothing written


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "bom"])
def test_pth_lines_are_read_as_site_reads_them(tmp_path, bom):
    """Path lines, BOM dropped, comments, blanks and import lines skipped, UTF-8 paths."""
    from layervenv.boot._layervenv_boot import pth_paths

    (tmp_path / "a.pth").write_bytes(
        bom + "# comment\n\nsrc/é dir  \nimport x; x.go()\n/abs/path\n".encode())
    (tmp_path / ".hidden.pth").write_bytes(b"/never\n")
    (tmp_path / "b.pth").write_bytes(b"\xff\xfe not utf-8\n")
    assert pth_paths(str(tmp_path)) == [str(tmp_path / "src/é dir"), "/abs/path"]


@pytest.mark.parametrize("python", PYTHONS, ids=_version_id)
def test_pip_from_every_interpreter(python, tmp_path):
    """Every interpreter's ensurepip wheel is found: in the stdlib (``_bundled``) or in a
    distribution's wheel directory (Debian's /usr/share/python-wheels)."""
    if python is None:
        pytest.skip("no interpreter found")
    env = clean_env(tmp_path)
    layer = tmp_path / "layer"
    run_tool("create", "--python", python, str(layer), env=env)
    out = subprocess.run([str(layer / "bin" / "python"), "-m", "pip", "--version"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert str(layer) in out


SITECUSTOMIZE = "import sys; sys.path.insert(0, {where!r})\n"
ORIGIN_PATH = """
import json, sys, hepnum, hepstackonly
print(json.dumps({"hepnum": hepnum.ORIGIN, "stack": hepstackonly.ORIGIN, "path": sys.path}))
"""


@pytest.mark.parametrize("python", PYTHONS, ids=_version_id)
def test_layer_wins_over_a_stack_sitecustomize_that_prepends(python, tmp_path, mini_stack):
    """A stack's sitecustomize runs after the hook; what it puts in front of sys.path
    goes right behind the layer, not in front of it."""
    if python is None:
        pytest.skip("no interpreter found")
    prepended = tmp_path / "prepended"
    _package(prepended, "hepnum", "prepended")
    (mini_stack / "sitecustomize.py").write_text(SITECUSTOMIZE.format(where=str(prepended)))
    env = clean_env(tmp_path, PYTHONPATH=str(mini_stack))
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", "--python", python, str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    _package(site, "hepnum", "layer")
    report = json.loads(py(layer / "bin" / "python", ORIGIN_PATH, env))
    assert report["hepnum"] == "layer"
    assert report["stack"] == "stack"
    path = report["path"]
    assert path.index(str(site)) + 1 == path.index(str(prepended))  # right behind the layer
    assert path.index(str(prepended)) < path.index(str(mini_stack))


EGG_INSERT_PTH = """import sys; sys.__plen = len(sys.path)
./hepnum-0.1-py{v}.egg
import sys; new = sys.path[sys.__plen:]; del sys.path[sys.__plen:]; \
p = getattr(sys, '__egginsert', 0); sys.path[p:p] = new; sys.__egginsert = p + len(new)
"""


def _python_with_own_site_packages(root: Path) -> tuple[Path, Path]:
    """A stack interpreter with site-packages of its own: this Python's binary copied
    into a prefix whose standard library is linked entry by entry, as a stack's
    Python installation would be (the real one is not ours to write into)."""
    import sys
    import sysconfig

    short = "{}.{}".format(*sys.version_info[:2])
    real = Path(os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable))
    stdlib = Path(sysconfig.get_paths(vars={"base": sys.base_prefix,
                                            "installed_base": sys.base_prefix})["stdlib"])
    lib = root / "lib" / f"python{short}"
    site_packages = lib / "site-packages"
    site_packages.mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name != "site-packages":
            (lib / entry.name).symlink_to(entry)
    for shared in real.parent.parent.glob("lib/libpython*"):  # an $ORIGIN/../lib rpath
        (root / "lib" / shared.name).symlink_to(shared)
    (root / "bin").mkdir()
    python = root / "bin" / f"python{short}"
    shutil.copy2(real, python)
    return python, site_packages


@pytest.mark.parametrize("layer_egg", [False, True], ids=["stack-egg", "both-eggs"])
@pytest.mark.parametrize("pythonpath", [True, False], ids=["pythonpath", "no-pythonpath"])
def test_layer_wins_over_eggs_a_stack_pth_inserts_in_front(tmp_path, mini_stack, pythonpath,
                                                           layer_egg):
    """easy-install.pth with setuptools' "rewrite" technique (old setuptools, Spack-built
    Pythons) in the stack interpreter's own site-packages inserts its eggs at the front
    of sys.path, after the hook ran: they go behind the layer; the stdlib stays put.
    With such a file in the layer too, the stack's eggs are inserted after the layer's
    (``sys.__egginsert``), inside the layer block: behind it they go as well."""
    import sys

    python, stack_site = _python_with_own_site_packages(tmp_path / "stackpython")
    short = "{}.{}".format(*sys.version_info[:2])
    egg = stack_site / f"hepnum-0.1-py{short}.egg"
    _package(egg, "hepnum", "egg")
    (stack_site / "easy-install.pth").write_text(EGG_INSERT_PTH.format(v=short))
    _package(stack_site, "hepstackonly", "stack")
    env = clean_env(tmp_path, **({"PYTHONPATH": str(mini_stack)} if pythonpath else {}))
    assert py(python, "import hepnum; print(hepnum.ORIGIN)", env) == "egg"  # the stack alone
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", "--python", str(python), str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    _package(site, "hepnum", "layer")
    if layer_egg:
        _package(site / f"hepextra-1.0-py{short}.egg", "hepextra", "layer")
        (site / "easy-install.pth").write_text(
            EGG_INSERT_PTH.format(v=short).replace("hepnum-0.1", "hepextra-1.0"))
    report = json.loads(py(layer / "bin" / "python", ORIGIN_PATH, env))
    assert report["hepnum"] == "layer"
    path = report["path"]
    assert path.index(str(site)) + 1 == path.index(str(egg))
    if layer_egg:
        assert path.index(str(site / f"hepextra-1.0-py{short}.egg")) < path.index(str(site))
    plain = json.loads(py(layer / "bin" / "python", ORIGIN_PATH,
                          dict(env, LAYERVENV_BOOT_DISABLE="1")))["path"]
    stdlib = [p for p in plain if p.startswith(str(tmp_path / "stackpython"))
              and not p.startswith(str(stack_site))]
    if pythonpath:
        assert path.index(str(site)) < path.index(str(mini_stack))
    elif not layer_egg:  # without PYTHONPATH the layer keeps its plain-venv place,
        # behind the stdlib (a layer egg inserted at the front takes the block with it)
        assert [p for p in path if p in stdlib] == stdlib
        assert all(path.index(p) < path.index(str(site)) for p in stdlib)


@pytest.mark.parametrize("python", PYTHONS, ids=_version_id)
def test_user_site_finder_stays_behind_the_layer(python, tmp_path, mini_stack):
    """``site`` runs the layer's .pth files a second time, after the user site's: the hook
    must not take a finder of ~/.local (``pip install --user -e``) for the layer's and put
    it in front of the layer and the stack."""
    if python is None:
        pytest.skip("no interpreter found")
    env = clean_env(tmp_path, PYTHONPATH=str(mini_stack))
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", "--python", python, str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    _package(site, "hepfinder", "layer")
    version = site.parent.name  # pythonX.Y
    user_site = tmp_path / ".local" / "lib" / version / "site-packages"
    user_site.mkdir(parents=True)
    _package(tmp_path / "user-src", "hepfinder", "user-finder")
    (user_site / "__editable___user_finder.py").write_text(
        FINDER.format(location=str(tmp_path / "user-src" / "hepfinder" / "__init__.py")))
    (user_site / "__editable__.user.pth").write_text(
        "import __editable___user_finder; __editable___user_finder.install()\n")
    _package(site, "hepnum", "layer")
    _package(user_site, "hepnum", "user-site")  # a plain copy in ~/.local: behind too
    code = "import hepfinder, hepnum; print(hepfinder.ORIGIN, hepnum.ORIGIN)"
    assert py(layer / "bin" / "python", code, env) == "layer layer"
    assert py(layer / "bin" / "python", code, dict(env, PYTHONPATH="")) == "layer layer"


FLAGS = {
    # flag or variable: which hepnum imports (PYTHONPATH holds the stack's)
    "-s": "layer", "-P": "layer", "PYTHONNOUSERSITE=1": "layer", "PYTHONSAFEPATH=1": "layer",
    "-E": "layer", "-I": "layer",  # PYTHONPATH ignored: the layer is a plain venv
    "-S": "stack",  # no site: the layer's site-packages is not on sys.path at all
    "PYTHONHOME=<base prefix>": "layer",  # some stacks set it
}


@pytest.mark.parametrize("flag", FLAGS)
def test_interpreter_flags(flag, tmp_path, mini_stack):
    """What docs/limitations.md says of -s, -P, -E, -I and -S, that a stack's PYTHONHOME changes
    nothing, and that no flag puts the current directory on sys.path where Python itself
    does not."""
    env = clean_env(tmp_path, PYTHONPATH=str(mini_stack))
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    version = tuple(int(part) for part in site.parent.name[len("python"):].split("."))
    if flag in ("-P", "PYTHONSAFEPATH=1") and version < (3, 11):
        pytest.skip("-P and PYTHONSAFEPATH are Python 3.11+")
    _package(site, "hepnum", "layer")
    args, run_env = [], dict(env)
    if flag.startswith("PYTHONHOME"):
        run_env["PYTHONHOME"] = py(layer / "bin" / "python", "import sys; print(sys.base_prefix)",
                                   env)
    elif "=" in flag:
        name, value = flag.split("=")
        run_env[name] = value
    else:
        args.append(flag)
    code = "import json, sys, hepnum; print(json.dumps([hepnum.ORIGIN, sys.path]))"
    out = subprocess.run([str(layer / "bin" / "python"), *args, "-c", code], env=run_env,
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    origin, path = json.loads(out.stdout)
    assert origin == FLAGS[flag]
    assert str(tmp_path) not in path
    assert path.count("") == (0 if flag in ("-P", "PYTHONSAFEPATH=1", "-I") else 1)


PKGUTIL_INIT = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\nW = {w!r}\n"


@pytest.mark.parametrize("style", ["pep420", "pkgutil"])
def test_namespace_package_split_between_stack_and_layer(style, tmp_path, mini_stack):
    """A namespace package with portions in the stack and in the layer: every portion
    imports, and a module both have comes from the layer (pkgutil style: the layer's
    ``__init__`` too)."""
    env = clean_env(tmp_path, PYTHONPATH=str(mini_stack))
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    for root, origin, only in ((mini_stack, "stack", "a"), (site, "layer", "b")):
        (root / "hepns").mkdir()
        (root / "hepns" / "common.py").write_text(f"O = {origin!r}\n")
        (root / "hepns" / f"{only}.py").write_text(f"O = {origin!r}\n")
        if style == "pkgutil":
            (root / "hepns" / "__init__.py").write_text(PKGUTIL_INIT.format(w=origin))
    code = "import hepns.common, hepns.a, hepns.b; print(hepns.common.O, hepns.a.O, hepns.b.O)"
    assert py(layer / "bin" / "python", code, env) == "layer stack layer"
    if style == "pkgutil":
        assert py(layer / "bin" / "python", "import hepns; print(hepns.W)", env) == "layer"


@pytest.mark.parametrize("spelling", ["exact", "trailing-slash"])
def test_layer_site_packages_on_pythonpath_is_not_duplicated(spelling, tmp_path, mini_stack):
    """--export-pythonpath puts the layer's site-packages first on PYTHONPATH: it is on
    sys.path once, its .pth paths right behind it, then the stack."""
    env = clean_env(tmp_path)
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    _package(site, "hepnum", "layer")
    editable = tmp_path / "editable-src"
    editable.mkdir()
    (site / "__editable__.demo.pth").write_text(f"{editable}\n")
    entry = str(site) + ("/" if spelling == "trailing-slash" else "")
    env["PYTHONPATH"] = f"{entry}:{mini_stack}"
    report = json.loads(py(layer / "bin" / "python", ORIGIN_PATH, env))
    assert report["hepnum"] == "layer"
    path = report["path"]
    assert path.count(str(site)) == 1 and path.count(str(editable)) == 1
    assert path.index(str(site)) + 1 == path.index(str(editable)) < path.index(str(mini_stack))


def test_stack_reached_through_a_symlink(tmp_path, mini_stack):
    """A stack on PYTHONPATH through a symlink (/cvmfs views link into releases): the
    layer wins, and the stack stays on sys.path under the name PYTHONPATH gives it."""
    linked = tmp_path / "view"
    linked.symlink_to(mini_stack)
    env = clean_env(tmp_path, PYTHONPATH=f"{linked}/")
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    _package(site, "hepnum", "layer")
    report = json.loads(py(layer / "bin" / "python", ORIGIN_PATH, env))
    assert (report["hepnum"], report["stack"]) == ("layer", "stack")
    path = report["path"]
    assert path.index(str(site)) + 1 == path.index(str(linked))
    assert str(mini_stack) not in path


MULTIPROCESSING = """
import json, multiprocessing, sys
def origin(_):
    import hepnum
    return hepnum.ORIGIN
def child_origin(method):
    with multiprocessing.get_context(method).Pool(1) as pool:
        return pool.map(origin, [0])[0]
if __name__ == "__main__":
    print(json.dumps({m: child_origin(m) for m in ("spawn", "forkserver", "fork")}))
"""


def test_multiprocessing_children_see_the_layer(tmp_path, mini_stack):
    """spawn and forkserver start fresh interpreters (sys.executable): the hook runs there
    too; fork inherits sys.path."""
    env = clean_env(tmp_path, PYTHONPATH=str(mini_stack))
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), env=env)
    site = Path(glob.glob(str(layer / "lib" / "python*" / "site-packages"))[0])
    _package(site, "hepnum", "layer")
    script = tmp_path / "mp.py"
    script.write_text(MULTIPROCESSING)
    out = subprocess.run([str(layer / "bin" / "python"), str(script)], env=env,
                         capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout) == {"spawn": "layer", "forkserver": "layer", "fork": "layer"}


@pytest.mark.parametrize("stderr", ["closed", "full"])
@pytest.mark.parametrize("python", PYTHONS, ids=_version_id)
def test_the_hook_never_writes_to_stdout(python, stderr, tmp_path, mini_stack):
    """With stderr closed (``2>&-``) or failing (``2>/dev/full``), the warning about
    another Python's site-packages goes nowhere: it once raised, and ``site`` printed
    the traceback to stdout, into the program's output."""
    foreign = tmp_path / "other" / "lib" / "python2.7" / "site-packages"
    foreign.mkdir(parents=True)
    env = clean_env(tmp_path, PYTHONPATH=f"{mini_stack}:{foreign}")
    layer = tmp_path / "layer"
    run_tool("create", "--without-pip", str(layer), *(["--python", python] if python else []),
             env=env)
    redirect = "2>&-" if stderr == "closed" else "2>/dev/full"
    result = subprocess.run(
        ["sh", "-c", f'exec "$0" -c "import hepnum; print(hepnum.ORIGIN)" {redirect}',
         str(layer / "bin" / "python")], env=env, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, "stack\n")


def test_a_failing_hook_writes_nothing_to_stdout(monkeypatch, capsys):
    """The hook's own guard, with no stderr at all: it swallows, it does not raise."""
    from layervenv.boot import _layervenv_boot as hook

    for stream in (None, open(os.devnull, "w")):  # noqa: SIM115
        if stream is not None:
            stream.close()  # writing raises ValueError
        monkeypatch.setattr("sys.stderr", stream)
        assert hook._guarded(lambda: 1 / 0) is None
        monkeypatch.undo()
    assert capsys.readouterr().out == ""
