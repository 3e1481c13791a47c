"""A layer on an ATLAS-like release (tests/stackkinds.py ``build_atlas``), end to end.

``setupATLAS; asetup AnalysisBase,25.2.1``: ALRB's prelude (setupATLAS is an alias in
users' .bashrc, which the non-interactive bash of ``--setup`` does not have: layervenv
defines it from ATLAS_LOCAL_ROOT_BASE), then the release's setup puts its ``python`` and
``lib`` directories and the LCG view's site-packages on PYTHONPATH.  Every check is held
to an independent reference (a real import, importlib.metadata, ``pip check``,
``find_spec``, bash's own environment); the stack is hashed before and after.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import clean_env, run_tool
from stackkinds import (
    AtlasStack,
    assert_activation_restores,
    assert_explain_agrees,
    assert_list_and_check_agree,
    assert_lock_and_from,
    assert_pack_runs,
    offline,
    pip_install,
)

from layervenv.inspection.explain import explain
from layervenv.model.layer import Layer

network = pytest.mark.network  # the real wheels are downloaded once into the test cache

#: the layer's packaging (24.1) over the LCG view's 23.1; the release's own packages
ATLAS_PROBE = ("import packaging, six, atlasutil, xaodcore, AnaAlgorithm; "
               "print(packaging.__version__, atlasutil.__version__, AnaAlgorithm.RELEASE, "
               "six.__file__)")


@network
def test_atlas(atlas: AtlasStack, tmp_path: Path) -> None:
    base = atlas.base(clean_env(tmp_path))
    env = offline(atlas.asetup(base, "25.2.1"), atlas)
    assert env["AtlasVersion"] == "25.2.1" and "InstallArea" in env["PYTHONPATH"]
    layer = tmp_path / "ana"
    # the exact setup string of docs/stacks/atlas.md
    run_tool("create", str(layer), "--setup", atlas.setup_command("25.2.1"), env=env)
    pip_install(layer, env, "--no-deps", "packaging==24.1")
    out = assert_activation_restores(layer, env, ATLAS_PROBE).split()
    assert out[:3] == ["24.1", "25.2.1", "25.2.1"] and out[3].startswith(str(atlas.root))
    # run, from a shell where only ALRB's location is known: the recorded release is used
    out = run_tool("run", str(layer), "python", "-c", ATLAS_PROBE, env=base).stdout.split()
    assert out[:3] == ["24.1", "25.2.1", "25.2.1"]
    ref = assert_list_and_check_agree(layer, env, tmp_path)
    assert ref["dists"]["atlasutil"][0] == "25.2.1" and ref["dists"]["packaging"][0] == "24.1"
    assert assert_explain_agrees(layer, env, tmp_path) >= 8
    said = explain(Layer.open(layer), "packaging", environ=env).distribution
    # the layer's, the view's (PYTHONPATH), the interpreter's own (the view's python is a
    # link to it, as in an LCG view)
    assert [c.reason.code for c in said] == ["layer", "pythonpath", "interpreter-site"]
    said = explain(Layer.open(layer), "xaodcore", environ=env).distribution
    assert [c.reason.code for c in said] == ["pythonpath"]
    assert "InstallArea" in said[0].copy.location
    assert_lock_and_from(layer, env, tmp_path, tmp_path)
    out = assert_pack_runs(layer, env, tmp_path, ATLAS_PROBE).split()
    assert out[:3] == ["24.1", "25.2.1", "25.2.1"] and out[3].startswith(str(atlas.root))
    # (shell, check --imports, rebase onto asetup AnalysisBase,25.2.2, kernel:
    # tests/test_stack_matrix.py; zsh and tcsh: tests/test_stack_kinds.py)
