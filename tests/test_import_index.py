"""The import index: every name resolves as Python resolves it, at O(1) system calls.

The boot hook lets ``FileFinder`` trust its own listing of each read-only PYTHONPATH
directory (``LAYERVENV_IMPORT_INDEX``).  The reference is Python itself: the same layer,
the same stack, with ``LAYERVENV_IMPORT_INDEX=0`` (Python's own finders, untouched).
For every top-level name importable from ``sys.path`` (every entry's listing and the
standard library's names) and a sample of submodules, ``importlib.util.find_spec`` and
``PathFinder.find_spec`` give the same origin, loader and search locations with the
index as without it: on a 300-entry Spack-like stack, a stack with namespace packages
split over entries and shadowed names, the simulated LCG stack, Debian's
``dist-packages``, and generated stacks (hypothesis), on Python 3.6, 3.11 and 3.13.
strace shows what the index is for: a lookup costs no system call per entry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import clean_env, find_python, run_tool, strace_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layervenv.boot import _layervenv_boot as hook
from layervenv.services.simstack import build_stack

VERSIONS = ("3.6", "3.11", "3.13")

#: Run in the layer: every top-level name on sys.path, plus submodules of the packages
#: under the roots given; each name's spec through importlib.util and PathFinder.
PROBE = r'''
import importlib.machinery, importlib.util, json, os, sys
roots, extra = json.loads(sys.argv[1]), json.loads(sys.argv[2])
suffixes = importlib.machinery.all_suffixes()
def names_in(folder):
    try:
        items = os.listdir(folder)
    except OSError:
        return set()
    found = set()
    for item in items:
        base = item
        for suffix in suffixes:
            if item.endswith(suffix):
                base = item[:-len(suffix)]
                break
        if base.isidentifier():
            found.add(base)
    return found
top = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)
for entry in list(sys.path):
    top |= names_in(entry or ".")
subs = set(extra)
for entry in sys.path:
    if any(entry.startswith(root) for root in roots):
        for name in sorted(names_in(entry)):
            if os.path.isdir(os.path.join(entry, name)):
                subs |= set(name + "." + sub for sub in names_in(os.path.join(entry, name)))
def describe(spec):
    if spec is None:
        return None
    locations = spec.submodule_search_locations
    return [spec.origin, type(spec.loader).__name__,
            None if locations is None else list(locations)]
result = {}
for name in sorted(top) + sorted(subs):
    row = []
    try:
        row.append(describe(importlib.machinery.PathFinder.find_spec(name)
                            if "." not in name else None))
    except Exception as error:
        row.append(type(error).__name__)
    try:
        row.append(describe(importlib.util.find_spec(name)))
    except Exception as error:
        row.append(type(error).__name__)
    result[name] = row
indexed = sum(type(f).__name__ == "IndexedFileFinder" for f in sys.path_importer_cache.values())
print(json.dumps({"specs": result, "indexed": indexed}))
'''


def make_read_only(root: Path) -> None:
    """Directories without write bits, as an installed stack (the index trusts them)."""
    for top, dirs, _ in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(top, name), 0o555)


def make_writable(root: Path) -> None:
    for top, dirs, _ in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(top, name), 0o755)


def spack_stack(root: Path, version: str, entries: int) -> list[str]:
    """One prefix per package with its own site-packages holding ``pkgN``."""
    dirs = []
    for index in range(entries):
        folder = root / f"pkg{index}" / "lib" / f"python{version}" / "site-packages"
        (folder / f"pkg{index}").mkdir(parents=True)
        (folder / f"pkg{index}" / "__init__.py").write_text("x = 1\n", encoding="utf-8")
        (folder / f"pkg{index}" / "sub.py").write_text("", encoding="utf-8")
        dirs.append(str(folder))
    return dirs


def namespace_stack(root: Path) -> list[str]:
    """Namespace packages split over entries, and names that shadow one another."""
    entries = [root / f"e{i}" for i in range(4)]
    files = {
        "e0/nsp/part_a.py": "", "e2/nsp/part_b.py": "", "e3/nsp/sub/deep.py": "",
        "e0/nsp2/x.py": "", "e2/nsp2/__init__.py": "",  # a portion, then a package
        "e0/shadow.py": "", "e1/shadow/__init__.py": "",  # module first, package behind
        "e1/both/__init__.py": "", "e1/both.py": "",  # the package wins in one entry
        "e1/lonely.py": "", "e3/lonely/__init__.py": "",
        "e2/colorsys/__init__.py": "",  # a stack shadowing the standard library
        "e3/odd.py/__init__.py": "",  # a directory with a module's name
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return [str(e) for e in entries]


def probe(python: Path, env: dict[str, str], roots: list[str], extra: list[str],
          index: bool, cwd: Path) -> dict:
    env = dict(env, LAYERVENV_IMPORT_INDEX="1" if index else "0")
    result = subprocess.run([str(python), "-c", PROBE, json.dumps(roots), json.dumps(extra)],
                            env=env, capture_output=True, text=True, cwd=cwd, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_same_resolution(python: Path, env: dict[str, str], roots: list[str],
                           cwd: Path, extra: list[str] = (), least_indexed: int = 1) -> int:
    """The same specs with and without the index; the index in use. Returns the names."""
    on = probe(python, env, roots, list(extra), True, cwd)
    off = probe(python, env, roots, list(extra), False, cwd)
    assert off["indexed"] == 0
    assert on["indexed"] >= least_indexed, "the index was not used"
    assert on["specs"].keys() == off["specs"].keys()
    differ = {n: (on["specs"][n], off["specs"][n]) for n in on["specs"]
              if on["specs"][n] != off["specs"][n]}
    assert not differ
    return len(on["specs"])


def layer_for(tmp: Path, python: Path, env: dict[str, str]) -> Path:
    layer = tmp / f"layer{python.name}"
    run_tool("create", str(layer), "--without-pip", "--python", str(python), env=env)
    return layer / "bin" / "python"


def version_of(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(params=VERSIONS)
def interpreter(request) -> Path:
    found = find_python(request.param)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"Python {request.param} is not installed")
        pytest.skip(f"Python {request.param} is not installed")
    return found


def test_every_name_resolves_as_without_the_index(interpreter, tmp_path):
    """300 Spack-like entries, namespace packages split over entries, shadowed names and
    the simulated LCG stack: the same spec for every name with the index as without."""
    version = version_of(interpreter)
    roots = [tmp_path / "spack", tmp_path / "ns", tmp_path / "lcg"]
    spack = spack_stack(roots[0], version, 300)
    namespaces = namespace_stack(roots[1])
    lcg = build_stack(roots[2], interpreter)
    lcg_path = lcg.env(clean_env(tmp_path))["PYTHONPATH"].split(os.pathsep)
    try:
        for root in roots:
            make_read_only(root)
        env = clean_env(tmp_path, PYTHONPATH=os.pathsep.join(namespaces + lcg_path + spack))
        python = layer_for(tmp_path, interpreter, env)
        count = assert_same_resolution(
            python, env, [str(r) for r in roots], tmp_path, least_indexed=300,
            extra=["nsp.part_a", "nsp.part_b", "nsp.sub.deep", "nsp2.x", "email.mime",
                   "odd.py"])
        print(f"{interpreter}: {count} names, the same with and without the index")
        assert count > 300 + 100
    finally:
        for root in roots:
            make_writable(root)


DEBIAN = Path("/usr/lib/python3/dist-packages")


@pytest.mark.skipif(not (DEBIAN / "numpy").is_dir() or not Path("/usr/bin/python3").exists(),
                    reason="no Debian Python with its dist-packages here")
def test_debian_dist_packages_resolve_as_without_the_index(tmp_path):
    """Debian's Python: its dist-packages (numpy and ~100 others) behind 300 entries."""
    python = Path("/usr/bin/python3")
    spack = spack_stack(tmp_path / "spack", version_of(python), 300)
    try:
        make_read_only(tmp_path / "spack")
        env = clean_env(tmp_path, PYTHONPATH=os.pathsep.join(spack))
        layer = layer_for(tmp_path, python, env)
        count = assert_same_resolution(layer, env, [str(DEBIAN)], tmp_path, least_indexed=300,
                                       extra=["numpy.linalg", "numpy.fft"])
        print(f"Debian: {count} names, the same with and without the index")
    finally:
        make_writable(tmp_path / "spack")


@pytest.mark.network
def test_real_wheel_stack_resolves_as_without_the_index(real_stack, tmp_path):
    """The suite's real-wheel stack (numpy, scipy, pandas, awkward ... from PyPI, laid out
    as an LCG view), made read-only as it is on CVMFS, behind 300 entries: the same spec
    for every name and the submodules tried, with the index as without.  The stack's
    directory modes are put back exactly (the fixture hashes it)."""
    modes = {top: os.stat(top).st_mode for top, _, _ in os.walk(real_stack.root)}
    spack = spack_stack(tmp_path / "spack", real_stack.short_version, 300)
    try:
        for top in modes:
            os.chmod(top, 0o555)
        make_read_only(tmp_path / "spack")
        base = real_stack.env(clean_env(tmp_path))
        env = dict(base, PYTHONPATH=os.pathsep.join([base["PYTHONPATH"], *spack]))
        layer = layer_for(tmp_path, real_stack.python, env)
        count = assert_same_resolution(
            layer, env, [str(real_stack.site_packages)], tmp_path, least_indexed=300,
            extra=["numpy.linalg", "numpy.fft", "scipy.sparse", "scipy.linalg",
                   "pandas.core", "awkward.operations"])
        print(f"real wheels: {count} names, the same with and without the index")
    finally:
        for top, mode in modes.items():
            os.chmod(top, mode)
        make_writable(tmp_path / "spack")


def traced_stats(strace: str, python: Path, code: str, env: dict[str, str], root: Path,
                 cwd: Path) -> int:
    """System calls naming a path under ``root`` while ``python -c code`` runs."""
    out = cwd / "trace.out"
    subprocess.run([strace, "-f", "-qq", "-o", str(out), "-e",
                    "trace=stat,newfstatat,statx,lstat,openat,getdents64,access",
                    str(python), "-c", code], env=env, check=True, cwd=cwd)
    return sum(str(root) in line for line in out.read_text().splitlines())


def test_a_lookup_costs_no_system_call_per_entry(tmp_path):
    """Five missing names cost 5 x 100 stats of the entries without the index, none with."""
    strace = strace_path()
    python = Path(sys.executable)
    spack = spack_stack(tmp_path / "spack", version_of(python), 100)
    try:
        make_read_only(tmp_path / "spack")
        env = clean_env(tmp_path, PYTHONPATH=os.pathsep.join(spack))
        layer = layer_for(tmp_path, python, env)
        subprocess.run([str(layer), "-c", "pass"], env=env, check=True)  # index written
        missing = "; ".join(f"import importlib.util as u; u.find_spec('nothere{i}')"
                            for i in range(5))
        costs = {}
        for index in ("1", "0"):
            variant = dict(env, LAYERVENV_IMPORT_INDEX=index)
            base = traced_stats(strace, layer, "import importlib.util", variant,
                                tmp_path / "spack", tmp_path)
            costs[index] = traced_stats(strace, layer, missing, variant,
                                        tmp_path / "spack", tmp_path) - base
        print(f"system calls on the stack for 5 missing names: {costs}")
        assert costs["0"] >= 5 * 100
        assert costs["1"] == 0
    finally:
        make_writable(tmp_path / "spack")


CHECK_NEW = r'''
import importlib, importlib.util, os, sys
where = sys.argv[1]
before = importlib.util.find_spec("latecomer")
with open(os.path.join(where, "latecomer.py"), "w") as handle:
    handle.write("")
importlib.invalidate_caches()
after = importlib.util.find_spec("latecomer")
print(before is None, after is not None and after.origin == os.path.join(where, "latecomer.py"))
'''


def test_invalidate_caches_sees_a_new_module(tmp_path):
    """``importlib.invalidate_caches()`` makes the index look again (root can write into
    a directory without write bits: what a stack's maintainer would do)."""
    if os.geteuid() != 0:
        pytest.skip("only root can write into a directory without write bits")
    python = Path(sys.executable)
    spack = spack_stack(tmp_path / "spack", version_of(python), 3)
    try:
        make_read_only(tmp_path / "spack")
        env = clean_env(tmp_path, PYTHONPATH=os.pathsep.join(spack))
        layer = layer_for(tmp_path, python, env)
        out = subprocess.run([str(layer), "-c", CHECK_NEW, spack[1]], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        assert out == ["True", "True"]
    finally:
        make_writable(tmp_path / "spack")


def test_writable_entries_keep_pythons_finders(tmp_path):
    """A directory the user may write (their own code on PYTHONPATH) is never trusted;
    the layer's index records it as such."""
    python = Path(sys.executable)
    spack = spack_stack(tmp_path / "spack", version_of(python), 3)
    env = clean_env(tmp_path, PYTHONPATH=os.pathsep.join(spack))
    layer = layer_for(tmp_path, python, env)
    code = ("import sys; print(sum(type(f).__name__ == 'IndexedFileFinder' "
            "for f in sys.path_importer_cache.values()))")
    assert subprocess.run([str(layer), "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip() == "0"
    site = next((layer.parent.parent / "lib").glob("python*/site-packages"))
    flags = hook.read_index(str(site / hook.INDEX_NAME))
    assert flags == {entry: False for entry in spack}


KINDS = ("none", "package", "namespace", "module", "extension", "bytecode", "dir_named_py",
         "plain_file")
NAMES = ("alpha", "beta", "gamma")


def lay_out(entry: Path, name: str, kind: str) -> None:
    if kind == "package":
        (entry / name).mkdir(exist_ok=True)
        (entry / name / "__init__.py").write_text("", encoding="utf-8")
        (entry / name / "sub.py").write_text("", encoding="utf-8")
    elif kind == "namespace":
        (entry / name).mkdir(exist_ok=True)
        (entry / name / f"sub_{entry.name}.py").write_text("", encoding="utf-8")
    elif kind == "module":
        (entry / f"{name}.py").write_text("", encoding="utf-8")
    elif kind == "extension":
        (entry / f"{name}.abi3.so").write_bytes(b"not loaded by find_spec")
    elif kind == "bytecode":
        (entry / f"{name}.pyc").write_bytes(b"not loaded by find_spec")
    elif kind == "dir_named_py":
        (entry / f"{name}.py").mkdir(exist_ok=True)
    elif kind == "plain_file":
        (entry / name).write_text("", encoding="utf-8")


STACKS = st.lists(st.dictionaries(st.sampled_from(NAMES), st.sampled_from(KINDS)),
                  min_size=1, max_size=4)


@pytest.fixture(scope="module", params=VERSIONS)
def generated_layer(request, tmp_path_factory):
    found = find_python(request.param)
    if found is None:
        pytest.skip(f"Python {request.param} is not installed")
    tmp = tmp_path_factory.mktemp("generated")
    return found, layer_for(tmp, found, clean_env(tmp)), tmp


def test_generated_stacks_resolve_as_without_the_index(generated_layer):
    """Names in several entries, shadowed, as packages, namespace portions, modules,
    extension modules, bytecode only, or files that are none of these."""
    interpreter, python, tmp = generated_layer
    made = []

    @settings(max_examples=15, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(STACKS)
    def check(layout):
        root = tmp / f"stack{len(made)}"
        made.append(root)
        entries = []
        for number, names in enumerate(layout):
            entry = root / f"entry{number}"
            entry.mkdir(parents=True)
            for name, kind in names.items():
                lay_out(entry, name, kind)
            entries.append(str(entry))
        make_read_only(root)
        try:
            env = clean_env(tmp, PYTHONPATH=os.pathsep.join(entries))
            extra = [f"{n}.{s}" for n in NAMES for s in
                     ["sub", *(f"sub_entry{i}" for i in range(len(entries)))]]
            assert_same_resolution(python, env, [str(root)], tmp, extra=[*NAMES, *extra],
                                   least_indexed=len(entries))
        finally:
            make_writable(root)

    check()
    print(f"{interpreter}: {len(made)} generated stacks")


def index_problems(layer_python: Path, env: dict[str, str]) -> list[str]:
    result = run_tool("check", str(layer_python.parent.parent), "--format", "json",
                      env=env, check=False)
    data = json.loads(result.stdout)
    return [p["message"] for p in data["problems"] if p["kind"] == "import-index"]


def test_check_reports_the_index_off_or_stale(tmp_path):
    """``check``: nothing once a process wrote the index; a warning with the index off,
    and one when a directory the index trusts is no longer read-only."""
    python = Path(sys.executable)
    spack = spack_stack(tmp_path / "spack", version_of(python), 3)
    try:
        make_read_only(tmp_path / "spack")
        env = clean_env(tmp_path, PYTHONPATH=os.pathsep.join(spack))
        layer = layer_for(tmp_path, python, env)
        subprocess.run([str(layer), "-c", "pass"], env=env, check=True)
        assert index_problems(layer, env) == []
        off = index_problems(layer, dict(env, LAYERVENV_IMPORT_INDEX="0"))
        assert len(off) == 1 and "3 metadata operations" in off[0]
        os.chmod(spack[1], 0o755)
        if os.access(spack[1], os.W_OK):
            stale = index_problems(layer, env)
            assert len(stale) == 1 and f"{spack[1]} is no longer read-only" in stale[0]
    finally:
        make_writable(tmp_path / "spack")


def test_entries_gone_leave_the_index_when_it_is_written(tmp_path):
    """A pip build's temporary environment is on PYTHONPATH in pip's build subprocesses,
    which run the layer's Python: once that directory is gone, the next process that
    writes the index (a new entry) leaves it out, so the index does not grow by a line
    per build; an entry still there stays, as it was judged."""
    python = Path(sys.executable)
    spack = spack_stack(tmp_path / "spack", version_of(python), 2)
    build_env = tmp_path / "pip-build-env-x" / "site"
    build_env.mkdir(parents=True)
    env = clean_env(tmp_path, PYTHONPATH=os.pathsep.join([*spack[:1], str(build_env)]))
    layer = layer_for(tmp_path, python, env)
    site = next((layer.parent.parent / "lib").glob("python*/site-packages"))
    index = site / hook.INDEX_NAME
    subprocess.run([str(layer), "-c", "pass"], env=env, check=True)
    assert set(hook.read_index(str(index))) == {spack[0], str(build_env)}
    shutil.rmtree(build_env.parent)
    later = dict(env, PYTHONPATH=os.pathsep.join(spack))  # spack[1] is new: a write
    subprocess.run([str(layer), "-c", "pass"], env=later, check=True)
    assert hook.read_index(str(index)) == {entry: False for entry in spack}
