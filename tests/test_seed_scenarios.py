"""The user's account (shared/seed) replayed on the simulated stack.

Each scenario first shows that a plain venv fails on the stack (the boot hook
switched off with LAYERVENV_BOOT_DISABLE, which makes a layer a plain venv), then
that the layer fixes it.  Packages: the stack holds hepnum 1.22.3 on PYTHONPATH;
the wheelhouse offers hepnum 1.24.2.
"""

from __future__ import annotations

import json
import subprocess

from helpers import py, run_shell

VERSION = "import hepnum; print(hepnum.__version__)"
UPGRADE = "python -m pip install -q --upgrade 'hepnum<2'"


def pip(layer, *args: str, env=None) -> str:
    result = subprocess.run([str(layer.python), "-m", "pip", *args], env=env or layer.env,
                            capture_output=True, text=True, check=True)
    return result.stdout


def test_plain_venv_keeps_importing_the_stack_copy(make_layer):
    """Control: without the hook the upgrade 'succeeds' and the stack copy still wins."""
    layer = make_layer()
    env = dict(layer.env, LAYERVENV_BOOT_DISABLE="1")
    pip(layer, "install", "-q", "--upgrade", "hepnum<2", env=env)
    assert py(layer.python, VERSION, env) == "1.22.3"
    assert "Version: 1.22.3" in pip(layer, "show", "hepnum", env=env)


def test_upgrade_in_layer_wins_for_import_show_and_list(make_layer, stack):
    layer = make_layer()
    assert py(layer.python, VERSION, layer.env) == "1.22.3"  # before: the stack's copy
    pip(layer, "install", "-q", "--upgrade", "hepnum<2")
    assert py(layer.python, VERSION, layer.env) == "1.24.2"
    assert "Version: 1.24.2" in pip(layer, "show", "hepnum")
    listed = {d["name"]: d["version"] for d in json.loads(pip(layer, "list", "--format=json"))}
    assert listed["hepnum"] == "1.24.2"
    # everything else in the stack stays importable, behind the layer
    assert py(layer.python, "import hepconf, hepfit, hepio; print(hepio.__version__)",
              layer.env) == "5.4.3"


def test_activate_upgrade_deactivate_in_shell(make_layer):
    """Scenario 1 of the seed, typed as the user typed it, then deactivate."""
    layer = make_layer()
    out = run_shell("bash", f"""
        . '{layer.activate}'
        {UPGRADE}
        python -c '{VERSION}'
        python -m pip show hepnum | grep ^Version
        deactivate
        python -c '{VERSION}'
    """, layer.env).stdout.split()
    assert out == ["1.24.2", "Version:", "1.24.2", "1.22.3"]


def test_stack_packages_not_lost(make_layer):
    """Scenario 2: stripping PYTHONPATH loses the stack; the layer keeps all of it."""
    layer = make_layer()
    out = py(layer.python, "import hepconf, hepfit, hepio, hepnum; print('ok')", layer.env)
    assert out == "ok"


def test_exported_pythonpath_is_cleaned_by_deactivate(make_layer):
    """Scenario 3: the layer on PYTHONPATH, without hand bookkeeping on deactivate."""
    layer = make_layer("layer", "--export-pythonpath")
    before = layer.env["PYTHONPATH"]
    out = run_shell("bash", f"""
        . '{layer.activate}'
        {UPGRADE}
        printf '%s\\n' "$PYTHONPATH"
        python -c '{VERSION}'
        deactivate
        printf '%s\\n' "$PYTHONPATH"
    """, layer.env).stdout.splitlines()
    site = str(layer.root / "lib")
    assert out[0].startswith(site) and out[0].endswith(":" + before)
    assert out[1] == "1.24.2"
    assert out[2] == before


def test_no_user_site_fallback(make_layer, home):
    """Scenario 4: pip installs into the layer, never into ~/.local."""
    layer = make_layer()
    pip(layer, "install", "-q", "--upgrade", "hepnum<2")
    assert not (home / ".local").exists()
    assert py(layer.python, "import hepnum; print(hepnum.__file__)", layer.env).startswith(
        str(layer.root))


def test_without_activation_console_script_and_child(make_layer):
    layer = make_layer()
    pip(layer, "install", "-q", "--upgrade", "hepnum<2")
    script = subprocess.run([str(layer.root / "bin" / "hepnum-info")], env=layer.env,
                            capture_output=True, text=True, check=True).stdout
    assert script.split()[1] == "1.24.2"
    child = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
             "'import hepnum; print(hepnum.__version__)'], check=True)")
    assert py(layer.python, child, layer.env) == "1.24.2"


def test_prepended_pythonpath_after_activation_still_loses(make_layer, stack):
    """A stack tool set up after activation prepends PYTHONPATH: the layer still wins."""
    layer = make_layer()
    pip(layer, "install", "-q", "--upgrade", "hepnum<2")
    env = dict(layer.env)
    env["PYTHONPATH"] = f"{stack.site_packages}:{env['PYTHONPATH']}"
    assert py(layer.python, VERSION, env) == "1.24.2"


def test_uninstall_in_layer_reveals_the_stack_copy(make_layer, stack):
    """pip upgrades over the read-only stack copy without touching it ("outside
    environment"), and uninstalling the layer's copy brings the stack's back."""
    layer = make_layer()
    result = subprocess.run([str(layer.python), "-m", "pip", "install", "--upgrade", "hepnum<2"],
                            env=layer.env, capture_output=True, text=True, check=True)
    assert "outside environment" in result.stdout
    assert py(layer.python, VERSION, layer.env) == "1.24.2"
    pip(layer, "uninstall", "-y", "hepnum")
    assert py(layer.python, VERSION, layer.env) == "1.22.3"
    assert "Version: 1.22.3" in pip(layer, "show", "hepnum")
    assert "hepnum==1.22.3" in pip(layer, "freeze").split()
