"""A layer over Lmod modules written by EasyBuild 5 (tests/stackkinds.py, ``build_lmod``).

Real Lmod (Debian's ``lmod``), module files written by EasyBuild's own ``eb --module-only``,
one module per package from real wheels, in two variants (the ``lmod`` fixture's params):
modules that prepend PYTHONPATH (older sites), and modules that prepend
``EBPYTHONPREFIXES``, read by EasyBuild's ``sitecustomize.py`` in the Python module's
site-packages (it adds them *after* a venv's site-packages).  On each: ``create --setup``
with ``module load``, a newer package pip-installed over the module's copy, activation in
bash, zsh and tcsh, ``module load`` and ``module purge`` while the layer is active (the
layer stays on top; deactivate gives back exactly what the same module commands give
without the layer), ``run``, list/check against importlib.metadata and ``pip check``,
``check --explain`` for every top-level name against find_spec, lock -> create --from,
pack -> run in ``env -i``.  The stack is hashed before and after (the fixture).  The
commands are those of docs/stacks/lmod.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SHELLS, clean_env, run_shell, run_tool, shell_path, significant, split_dumps
from stackkinds import (
    LmodStack,
    assert_activation_restores,
    assert_explain_agrees,
    assert_list_and_check_agree,
    assert_lock_and_from,
    assert_pack_runs,
    lmod_free,
    lmod_init,
    offline,
    pip_install,
)

from layervenv.inspection.explain import explain
from layervenv.model.layer import Layer

network = pytest.mark.network  # the real wheels (and EasyBuild's sdists) are fetched once

PROBE = ("import packaging, six, dateutil, sys; "
         "print(packaging.__version__, six.__file__, sys.executable)")
LATER = ("import packaging, cycler, sys; "
         "print(packaging.__version__, cycler.__file__, sys.executable)")
PURGED = "import packaging, sys; print(packaging.__version__, sys.executable)"


def lmod_free_env(home: Path) -> dict[str, str]:
    """:func:`clean_env` without any Lmod state of the caller's own shell."""
    return lmod_free(clean_env(home))


def _layer(lmod: LmodStack, tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """The layer of the page: created over the loaded modules, packaging 24.1 in it over the
    module's 23.1.  Returns it, the shell's environment without and with the modules."""
    base = lmod_free_env(tmp_path)
    env = offline(lmod.env(base), lmod)
    assert ("EBPYTHONPREFIXES" in env) == (lmod.search_path == "EBPYTHONPREFIXES")
    assert ("PYTHONPATH" in env) == (lmod.search_path == "PYTHONPATH")
    layer = tmp_path / "ana"
    run_tool("create", str(layer), "--setup", lmod.setup_line(), env=env)
    pip_install(layer, env, "--no-deps", "packaging==24.1")
    return layer, base, env


@network
def test_lmod(lmod: LmodStack, tmp_path: Path) -> None:
    layer, base, env = _layer(lmod, tmp_path)
    stack = str(lmod.root)
    # activation in bash: the layer's packaging wins, the module's six is imported
    out = assert_activation_restores(layer, env, PROBE).split()
    assert out[0] == "24.1" and out[1].startswith(stack) and out[2] == str(layer / "bin" / "python")
    # run, from a shell where no module is loaded: the recorded setup loads them
    out = run_tool("run", str(layer), "python", "-c", PROBE, env=base).stdout.split()
    assert out[0] == "24.1" and out[1].startswith(stack)
    ref = assert_list_and_check_agree(layer, env, tmp_path)
    assert ref["dists"]["packaging"][0] == "24.1"
    assert assert_explain_agrees(layer, env, tmp_path) >= 4
    said = explain(Layer.open(layer), "packaging", environ=env).distribution
    assert said[0].reason.code == "layer" and said[1].copy.version == "23.1"
    assert_lock_and_from(layer, env, tmp_path, tmp_path)
    out = assert_pack_runs(layer, env, tmp_path, PROBE).split()
    assert out[0] == "24.1" and out[1].startswith(stack)
    # (shell, check --imports, rebase onto the next release, kernel: tests/test_stack_matrix.py,
    # on both variants)


@network
@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_module_load_and_purge_while_active(lmod: LmodStack, shell: str,
                                            tmp_path: Path) -> None:
    """``module load`` and ``module purge`` in a shell where the layer is active: the layer
    stays on top (its packaging wins, ``python`` is still its own), and ``deactivate`` leaves
    exactly the environment the same module commands leave without the layer."""
    shell_path(shell)
    layer, base, _ = _layer(lmod, tmp_path)
    syntax = SHELLS[shell]
    init = lmod_init("bash" if shell == "bash" else shell)
    assert init is not None, f"Lmod has no init script for {shell}"
    setup = [f"source {syntax.quote(str(init))}",
             f"module use {syntax.quote(str(lmod.modulepath))}",
             f"module load {' '.join(lmod.modules)}"]
    loaded, purged = tmp_path / "loaded.txt", tmp_path / "purged.txt"
    modules = [f"module load {lmod.later}", "module purge"]
    script = [*setup, syntax.dump("BEFORE"), syntax.source(layer),
              modules[0], f"python -c {syntax.quote(LATER)} > {syntax.quote(str(loaded))}",
              modules[1], f"python -c {syntax.quote(PURGED)} > {syntax.quote(str(purged))}",
              "deactivate", syntax.dump("AFTER")]
    out = run_shell(shell, "\n".join(script), offline(base, lmod), cwd=tmp_path).stdout
    after = significant(split_dumps(out)["AFTER"])
    # the reference: the same module commands in the same shell, no layer
    ref = run_shell(shell, "\n".join([*setup, *modules, syntax.dump("AFTER")]),
                    offline(base, lmod), cwd=tmp_path).stdout
    ref_after = significant(split_dumps(ref)["AFTER"])
    # Lmod's bookkeeping: `module load` while the layer was active counted the layer's bin
    # in __LMOD_REF_COUNT_PATH, and deactivate does not edit Lmod's variables.  Lmod reads
    # a count only for an entry that is on PATH (Var.lua, l_extract): the one extra entry
    # is inert.  Everything else is exactly as without the layer.
    counts = after.pop("__LMOD_REF_COUNT_PATH").split(";")
    assert [c for c in counts if c != f"{layer / 'bin'}:1"] == \
        ref_after.pop("__LMOD_REF_COUNT_PATH").split(";")
    assert after == ref_after
    version, cycler, python = loaded.read_text().split()
    assert version == "24.1" and cycler.startswith(str(lmod.root))
    assert python == str(layer / "bin" / "python")
    version, python = purged.read_text().split()
    assert version == "24.1" and python == str(layer / "bin" / "python")


def test_setup_line_is_the_pages() -> None:
    """docs/stacks/lmod.md shows the commands these tests run (paths aside)."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "stacks" / "lmod.md").read_text()
    for line in ("module use", "module load", "layervenv create ana --setup", "module purge",
                 "pip install packaging==24.1", "layervenv check --explain packaging"):
        assert line in page, line


@network
def test_explain_names_ebpythonprefixes(lmod_ebpythonprefixes: LmodStack, tmp_path: Path
                                        ) -> None:
    """The module's copy is there through EasyBuild's sitecustomize: explain says so,
    naming the variable and its entry."""
    layer, _, env = _layer(lmod_ebpythonprefixes, tmp_path)
    said = explain(Layer.open(layer), "packaging", environ=env).distribution
    assert said[1].reason.code == "sitecustomize", said[1].reason
    assert "EBPYTHONPREFIXES entry" in said[1].reason.text \
        and "sitecustomize.py" in said[1].reason.text, said[1].reason
