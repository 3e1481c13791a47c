"""The rest of the command matrix on each kind of stack (tests/stackkinds.py): ``shell``,
``check --imports``, ``rebase`` onto the next release, ``kernel install``.

One layer per kind (module-scoped: made once, ``packaging`` 24.1 and ``pytz`` 2019.3 over
the stack's 23.1 and 2023.3) serves the shell, the imports and the kernel; ``check
--imports`` puts its broken packages in and takes them out again, and the kernel only
adds ipykernel and what it needs (so it runs last).  ``rebase`` changes the layer's
stack: it has a layer of its own.  Every check compares with a reference of its own (the
layer's python run directly, real imports, importlib.metadata, ``pip check``); the
stacks (and the next releases) are hashed before and after by their fixtures.  The
kinds: Key4hep, conda, Lmod/EasyBuild (PYTHONPATH and EBPYTHONPREFIXES modules), CMSSW
(the layer over a user area's cmsenv) and ATLAS (``asetup``); each stack type says how
``create`` and ``rebase`` name it (``Stack.create_args``).  The commands are those of
docs/stacks/; docs/stacks/index.md's table names these tests (tests/test_docs.py checks
that they exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import clean_env, run_tool
from packaging.utils import canonicalize_name
from stackkinds import (
    NEXT_ADDED,
    NEXT_UPGRADED,
    Stack,
    assert_imports_check_agrees,
    assert_kernel_answers,
    assert_rebase_onto,
    assert_shell_works,
    create_args,
    offline,
    pip_install,
)

from layervenv.services.simstack import Dist

pytestmark = pytest.mark.network  # the real wheels are downloaded once into the test cache

#: the kinds, by fixture name (tests/conftest.py); ``NAME_next`` is the next release of each
KINDS = ["key4hep", "conda", "lmod_pythonpath", "lmod_ebpythonprefixes", "cmssw", "atlas"]
#: the layer's own copies (pinned below the stack's, one of them upgraded in the next
#: release) and one the stack provides
OWN = ("packaging==24.1", "pytz==2019.3")
PROBE = ("import packaging, pytz, six; "
         "print(packaging.__version__, pytz.__version__, packaging.__file__, six.__file__)")


@dataclass
class Kind:
    name: str
    stack: Stack
    base: dict[str, str]  # a shell where nothing is set up
    env: dict[str, str]  # the stack's shell (pip offline)
    layer: Path


def _under(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


def assert_layer_wins(out: str, kind: Kind) -> None:
    """PROBE's line: the layer's packaging and pytz, the stack's six."""
    packaging, pytz, packaging_file, six_file = out.split()
    assert (packaging, pytz) == ("24.1", "2019.3"), out
    assert _under(packaging_file, kind.layer) and _under(six_file, kind.stack.root), out


def _layer(name: str, stack: Stack, tmp: Path) -> Kind:
    home = tmp / "home"
    home.mkdir()
    stack = stack.for_user(tmp / "work")  # (CMSSW: a user area, cmsrel)
    base = stack.base(clean_env(home))
    env = offline(stack.env(base), stack)
    layer = tmp / "ana"
    run_tool("create", str(layer), *create_args(stack), env=env)
    pip_install(layer, env, "--no-deps", *OWN)
    return Kind(name, stack, base, env, layer)


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Kind:
    """The kind's stack and one layer on it, made once for the module's tests."""
    stack: Stack = request.getfixturevalue(request.param)
    return _layer(request.param, stack, tmp_path_factory.mktemp(f"matrix-{request.param}"))


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_shell(kind: Kind, shell: str) -> None:
    """``layervenv shell`` started where nothing is set up: the stack is there again (the
    recorded setup, or the conda-like interpreter), the layer's copies win."""
    out = assert_shell_works(kind.layer, kind.env, PROBE, shell=shell, start_env=kind.base)
    assert_layer_wins(out, kind)


#: a stack distribution the layer shadows with a broken copy, and one of the stack's
#: that imports it (declared: Requires-Dist), which breaks with it
SHADOWED = {"key4hep": ("zipp", "importlib-metadata"), "conda": ("six", "python-dateutil"),
            "lmod_pythonpath": ("six", "python-dateutil"),
            "lmod_ebpythonprefixes": ("six", "python-dateutil"),
            "cmssw": ("six", "python-dateutil"), "atlas": ("six", "python-dateutil")}


def test_check_imports(kind: Kind, tmp_path: Path) -> None:
    """A broken package of the layer's own, and a broken copy of a stack package over the
    stack's: check --imports names both and the stack's package that imports it, exactly
    as real imports fail (and not those of the stack that fail without the layer too)."""
    shadow, dependent = SHADOWED[kind.name]
    reported = assert_imports_check_agrees(kind.layer, kind.env, tmp_path, kind.stack,
                                           shadow=shadow)
    assert {"brokenana", shadow, dependent} <= set(reported), reported


def test_kernel(kind: Kind) -> None:
    """A kernel of the layer, started by a Jupyter server where nothing is set up."""
    out = assert_kernel_answers(kind.layer, kind.env, PROBE, server_env=kind.base)
    assert_layer_wins(out, kind)


#: what the next release changes, where it is not :data:`NEXT_UPGRADED` and
#: :data:`NEXT_ADDED`: ATLAS's next release (AnalysisBase 25.2.2) moves its own
#: distributions on and keeps the LCG view (packaging 23.1: the layer's 24.1 stays)
NEXT = {"atlas": (Dist("atlasutil", "25.2.2"), Dist("xaodcore", "25.2.2"))}


@pytest.mark.parametrize("name", KINDS)
def test_rebase_onto_the_next_release(name: str, request: pytest.FixtureRequest,
                                      tmp_path: Path) -> None:
    """``rebase`` onto the next release (packaging upgraded to 24.1, kiwisolver added;
    ATLAS: its own two distributions upgraded): the layer's pytz 2019.3 is kept, its
    packaging 24.1 is dropped where the new stack has the same version (kept where not),
    what the release changed imports from the new stack; ``run`` from a shell where
    nothing is set up uses the new stack."""
    old: Stack = request.getfixturevalue(name)
    new: Stack = request.getfixturevalue(f"{name}_next")
    upgraded, added = NEXT.get(name, (NEXT_UPGRADED, NEXT_ADDED))
    made = _layer(name, old, tmp_path)
    new = new.for_user(tmp_path / "next")
    next_env = offline(new.env(made.base), new)
    report = assert_rebase_onto(made.layer, made.env, new, next_env, tmp_path,
                                upgraded=upgraded, added=added)
    # the layer's packaging 24.1 is dropped exactly where the new stack brings 24.1
    dropped = {"packaging"} if upgraded == NEXT_UPGRADED else set()
    assert set(map(canonicalize_name, report["dropped"])) == dropped, report
    probe = (f"import packaging, pytz, {added.name} as added; print(packaging.__version__, "
             "pytz.__version__, packaging.__file__, added.__file__)")
    out = run_tool("run", str(made.layer), "python", "-c", probe, env=made.base).stdout.split()
    assert out[:2] == ["24.1", "2019.3"], out
    assert _under(out[2], new.root if dropped else made.layer), out
    assert _under(out[3], new.root), out
