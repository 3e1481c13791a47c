"""Fixtures: a simulated read-only stack (checked byte for byte after each test) and layers."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import cached_wheels, clean_env, missing, run_tool
from realstack import DebianStack, RealStack, build_real_stack, debian_stack
from realstack import wheel_cache as real_wheel_cache
from stackkinds import (
    AtlasStack,
    LmodStack,
    Stack,
    build_atlas,
    build_cmssw,
    build_conda,
    build_key4hep,
    build_lmod,
    easybuild_sdists,
    lmod_init,
)

from layervenv.services.simstack import SimStack, build_stack, tree_digest

# The tests that send SIGINT play a terminal's Ctrl-C: the processes they start must not
# inherit an ignored SIGINT from the way the suite itself was started (a background job of
# a non-interactive shell, as a CI runner may start it, ignores SIGINT, and so does every
# process it starts: the tool then rightly leaves SIGINT ignored and runs to its end).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: The interpreter the simulated stack brings (the real one behind the test Python).
STACK_PYTHON = Path(getattr(sys, "_base_executable", None) or sys.executable)


@pytest.fixture(scope="session")
def _built_stack(tmp_path_factory: pytest.TempPathFactory) -> SimStack:
    root = tmp_path_factory.mktemp("stacks") / "LCG_sim"
    return build_stack(root, STACK_PYTHON)


@pytest.fixture
def stack(_built_stack: SimStack) -> Iterator[SimStack]:
    """The simulated stack; the test fails if one byte under it changed."""
    before = tree_digest(_built_stack.root)
    yield _built_stack
    assert tree_digest(_built_stack.root) == before, "the stack was modified"


@pytest.fixture(scope="session")
def real_wheels() -> Path:
    """The real wheels' cache: ``stack/`` (what the real stack holds) and ``upgrades/``
    (numpy 2.0.2, ...), for the stack's interpreter; downloaded on first use."""
    base = os.environ.get("LAYERVENV_TEST_WHEELS")
    cache_base = Path(base) if base else Path(__file__).resolve().parent.parent / ".cache/wheels"
    return real_wheel_cache(cache_base, STACK_PYTHON)


@pytest.fixture(scope="session")
def _built_real_stack(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path
                      ) -> tuple[RealStack, str]:
    root = tmp_path_factory.mktemp("stacks") / "LCG_real"
    stack = build_real_stack(root, STACK_PYTHON, real_wheels)
    return stack, tree_digest(stack.root)


@pytest.fixture
def real_stack(_built_real_stack: tuple[RealStack, str]) -> Iterator[RealStack]:
    """A stack of ~20 real 2023 wheels (numpy 1.24, scipy, pandas, awkward, ...) laid out
    like an LCG view, with a wheelhouse of real upgrades (numpy 2, ...); downloaded once
    into $LAYERVENV_TEST_WHEELS/real-cpXY.  Tests using it are network-marked.  The test
    fails if one byte under it changed."""
    stack, before = _built_real_stack
    yield stack
    assert tree_digest(stack.root) == before, "the real stack was modified"


@pytest.fixture(scope="session")
def debian_system_stack(tmp_path_factory: pytest.TempPathFactory) -> DebianStack:
    """Debian's /usr/lib/python3/dist-packages (python3-numpy, python3-scipy; dev/test
    installs them) with /usr/bin/python3, set up by a script putting it on PYTHONPATH."""
    found = debian_stack(tmp_path_factory.mktemp("debian"))
    if found is None:
        missing("Debian's python3-numpy and python3-scipy are not installed",
                "dev/test installs them")
    return found


@pytest.fixture(scope="session", autouse=True)
def _one_tool_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One per-user cache of layervenv (pip's wheel entries, their bytecode) for the whole
    session of a worker, instead of one in every test's empty HOME: compiling pip's
    bytecode into a cold cache costs a second of CPU, which every test's first ``create``
    paid.  Tests of the cache itself name theirs (LAYERVENV_CACHE_DIR)."""
    if os.environ.get("LAYERVENV_CACHE_DIR"):
        yield
        return
    os.environ["LAYERVENV_CACHE_DIR"] = str(tmp_path_factory.mktemp("tool-cache"))
    try:
        yield
    finally:
        del os.environ["LAYERVENV_CACHE_DIR"]


@pytest.fixture
def backend_wheels() -> Path:
    """Wheels of the build backends (setuptools, hatchling), fetched once by dev/test."""
    return cached_wheels()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty HOME, so that ~/.local of the machine never leaks in."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def base_env(home: Path) -> dict[str, str]:
    """A clean environment with no stack set up."""
    return clean_env(home)


@pytest.fixture
def stack_env(stack: SimStack, base_env: dict[str, str]) -> dict[str, str]:
    """The environment after ``. setup.sh`` of the simulated stack, pip kept offline."""
    env = stack.env(base_env)
    env["PIP_NO_INDEX"] = "1"
    env["PIP_FIND_LINKS"] = str(stack.wheelhouse)
    return env


@dataclass
class LayerHandle:
    root: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def activate(self) -> Path:
        return self.root / "bin" / "activate"


@pytest.fixture
def make_layer(tmp_path: Path, stack_env: dict[str, str]):
    """Create a layer over the simulated stack with the real CLI."""

    def make(name: str = "layer", *args: str, env: dict[str, str] | None = None) -> LayerHandle:
        env = env or stack_env
        root = tmp_path / name
        run_tool("create", str(root), *args, env=env)
        return LayerHandle(root=root, env=env)

    return make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Network tests run only where LAYERVENV_NETWORK_TESTS=1 (CI sets it)."""
    if os.environ.get("LAYERVENV_NETWORK_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs PyPI; set LAYERVENV_NETWORK_TESTS=1")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


REPO = Path(__file__).resolve().parent.parent


def wheel_cache() -> Path:
    """Where downloaded wheels are kept for offline reruns (dev/test fills it)."""
    return Path(os.environ.get("LAYERVENV_TEST_WHEELS") or REPO / ".cache" / "wheels")


@pytest.fixture(scope="session")
def zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """layervenv.pyz built by dev/build-zipapp from this checkout (as CI builds it)."""
    import subprocess

    out = tmp_path_factory.mktemp("zipapp") / "layervenv.pyz"
    subprocess.run([sys.executable, str(REPO / "dev" / "build-zipapp"), str(out),
                    "--wheels", str(wheel_cache())], check=True, capture_output=True)
    return out


# --- the kinds of stack of docs/stacks/ (tests/stackkinds.py), read-only, hashed ---------

def hashed(stack: Stack, failure: str) -> Iterator[Stack]:
    """Yield ``stack``; then fail with ``failure`` if one byte under its root changed."""
    before = tree_digest(stack.root)
    yield stack
    assert tree_digest(stack.root) == before, failure


@pytest.fixture(scope="session")
def key4hep(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    stack = build_key4hep(tmp_path_factory.mktemp("k4") / "key4hep", STACK_PYTHON, real_wheels)
    yield from hashed(stack, "the Key4hep-like stack was modified")


@pytest.fixture(scope="session")
def conda(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    stack = build_conda(tmp_path_factory.mktemp("conda") / "env", STACK_PYTHON, real_wheels)
    yield from hashed(stack, "the conda-like Python was modified")


def _lmod(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path, search_path: str,
          next_release: bool = False) -> Iterator[LmodStack]:
    """An Lmod module tree written by EasyBuild 5's own code (tests/stackkinds.py,
    build_lmod), one module per package, whose modules prepend ``search_path``: PYTHONPATH
    (older sites) or EBPYTHONPREFIXES (read by EasyBuild's sitecustomize.py); hashed."""
    if lmod_init() is None:
        missing("Lmod is not installed", "dev/test installs Debian's lmod")
    base = os.environ.get("LAYERVENV_TEST_EASYBUILD")
    cache = Path(base) if base else Path(__file__).resolve().parent.parent / ".cache/easybuild"
    where = tmp_path_factory.mktemp("lmodnext" if next_release else "lmod")
    stack = build_lmod(where / search_path.lower(), STACK_PYTHON, real_wheels,
                       easybuild_sdists(cache), search_path, next_release=next_release)
    yield from hashed(stack, "the Lmod/EasyBuild stack was modified")


@pytest.fixture(scope="session")
def lmod_pythonpath(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    """Lmod modules that prepend PYTHONPATH (EasyBuild's default, older sites)."""
    yield from _lmod(tmp_path_factory, real_wheels, "PYTHONPATH")


@pytest.fixture(scope="session")
def lmod_ebpythonprefixes(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    """Lmod modules that prepend EBPYTHONPREFIXES, read by EasyBuild's sitecustomize.py."""
    yield from _lmod(tmp_path_factory, real_wheels, "EBPYTHONPREFIXES")


@pytest.fixture(scope="session", params=["PYTHONPATH", "EBPYTHONPREFIXES"])
def lmod(request: pytest.FixtureRequest) -> LmodStack:
    """Both variants of the Lmod/EasyBuild stack, one after the other."""
    return request.getfixturevalue(f"lmod_{request.param.lower()}")


@pytest.fixture(scope="session")
def lmod_pythonpath_next(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    """The site's next software release (PYTHONPATH modules): a stack to ``rebase`` onto."""
    yield from _lmod(tmp_path_factory, real_wheels, "PYTHONPATH", next_release=True)


@pytest.fixture(scope="session")
def lmod_ebpythonprefixes_next(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    """The site's next software release (EBPYTHONPREFIXES modules)."""
    yield from _lmod(tmp_path_factory, real_wheels, "EBPYTHONPREFIXES", next_release=True)


@pytest.fixture(scope="session")
def cmssw(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    stack = build_cmssw(tmp_path_factory.mktemp("cms") / "cms.cern.ch", STACK_PYTHON,
                        real_wheels)
    yield from hashed(stack, "the CMSSW-like stack was modified")


@pytest.fixture(scope="session")
def atlas(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    stack = build_atlas(tmp_path_factory.mktemp("atlas") / "cvmfs", STACK_PYTHON, real_wheels)
    yield from hashed(stack, "the ATLAS-like stack was modified")


@pytest.fixture(scope="session")
def key4hep_next(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    """The next release of the Key4hep-like stack (a stack to ``rebase`` onto)."""
    stack = build_key4hep(tmp_path_factory.mktemp("k4next") / "key4hep", STACK_PYTHON,
                          real_wheels, next_release=True)
    yield from hashed(stack, "the next Key4hep-like stack was modified")


@pytest.fixture(scope="session")
def conda_next(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    """The next version of the conda-like Python (a prefix to ``rebase`` onto)."""
    stack = build_conda(tmp_path_factory.mktemp("condanext") / "env", STACK_PYTHON,
                        real_wheels, next_release=True)
    yield from hashed(stack, "the next conda-like Python was modified")


@pytest.fixture(scope="session")
def cmssw_next(tmp_path_factory: pytest.TempPathFactory, real_wheels: Path):
    """The next CMSSW-like release (CMSSW_14_0_1, its externals moved on)."""
    stack = build_cmssw(tmp_path_factory.mktemp("cmsnext") / "cms.cern.ch", STACK_PYTHON,
                        real_wheels, next_release=True)
    yield from hashed(stack, "the next CMSSW-like stack was modified")


@pytest.fixture(scope="session")
def atlas_next(atlas: AtlasStack) -> AtlasStack:
    """The ATLAS-like stack set up with the next release, AnalysisBase 25.2.2 (the same
    tree, hashed by ``atlas``)."""
    return atlas.next_release()
