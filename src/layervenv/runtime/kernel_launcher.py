"""A layer's Jupyter kernel launcher: ``DIR/bin/layervenv-kernel``, generated.

A Jupyter server (JupyterLab, JupyterHub, SWAN), nbclient or VS Code starts a kernel
with *its* environment: another stack's PYTHONPATH and LD_LIBRARY_PATH, or none at all
(jupyterhub #2069); VS Code ignores ``env`` in kernel.json.  So the kernel's environment
is made by the launcher itself, from the same model as ``bin/activate``
(:func:`~layervenv.runtime.activation.env_change`), rendered by the same renderer, with three
differences that make it a kernel's:

* first it leaves the stacks of the client's environment that are not the layer's
  (:class:`~layervenv.runtime.envchange.LeaveStacks`): then the layer's stack is re-established
  wherever the kernel is started, as activation does in a shell without a stack;
* a ``--rerun-setup`` layer replays its recorded environment (as ``layervenv run``
  does): what a setup defines in a shell is of no use to a process;
* there is no prompt, and a refusal ends the launcher (exit 2) with one line.

The launcher lives in the layer, so ``create --clear`` and ``rebase`` make it again
with the layer (:func:`keep_kernel_launcher`); the kernelspec only points to it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

from layervenv import __version__
from layervenv.infra.atomic import atomic_write
from layervenv.model.kernelspec import LAUNCHER_NAME
from layervenv.model.layer import CONFIG_NAME, Layer
from layervenv.runtime.activation import env_change, leave_other_stacks
from layervenv.runtime.envchange import EnvChange, RequirePath, SetPrompt

#: the line of the launcher that says which stack it was made for
STACK_LINE = "# layervenv-kernel-stack: "


def launcher_path(layer: Layer) -> Path:
    return layer.bin_dir / LAUNCHER_NAME


def kernel_env_change(layer: Layer) -> EnvChange:
    """The layer's activation, as a kernel's launcher makes it (see the module's text)."""
    env = env_change(layer)
    root = str(layer.root)
    requirement = RequirePath(
        os.path.join(root, CONFIG_NAME), "layer",
        message=f"layervenv: this Jupyter kernel starts the layer {root}, which is not there "
                f"any more (moved or removed): re-create the layer there, or install the "
                f"kernel again from where the layer is now (layervenv kernel install DIR)")
    return replace(
        env,
        requires=(requirement, *env.requires[1:]),
        stack=replace(env.stack, rerun="") if env.stack is not None else None,
        changes=tuple(c for c in env.changes if not isinstance(c, SetPrompt)),
        leave=(leave_other_stacks(layer),),
        venv=None,  # a kernel is never deactivated: nothing to set aside
        under=None,
    )


def expected_launcher_stack(layer: Layer) -> str:
    """The stack a launcher of ``layer`` is made for, as its ``STACK_LINE`` says it
    (what :func:`launcher_stack` reads back): the Python version,
    the interpreter, and a digest of the whole stack record (setup, environment)."""
    stack = layer.config.stack
    record = replace(layer.config, prompt="", path="", created_by="",
                     requested_from_stack=[]).to_toml().encode("utf-8")
    digest = hashlib.sha256(record).hexdigest()[:16]
    return f"{stack.python_version} {stack.python} {digest}"


def render_launcher(layer: Layer) -> str:
    """The launcher's text.  Its renderer is imported here, not with this module: ``check``
    reads launchers (:func:`launcher_stack`) and must not load the shell renderers."""
    from layervenv.runtime.launchers import render_kernel_launcher

    return render_kernel_launcher(kernel_env_change(layer), __version__, str(layer.python),
                                  expected_launcher_stack(layer))


def write_kernel_launcher(layer: Layer, bin_dir: Path | None = None) -> Path:
    """Write the launcher of ``layer`` into ``bin_dir`` (default: the layer's ``bin``)."""
    return atomic_write((bin_dir or layer.bin_dir) / LAUNCHER_NAME, render_launcher(layer),
                        mode=0o755)


def keep_kernel_launcher(layer: Layer, bin_dir: Path) -> None:
    """For a layer being re-made (``create --clear``, ``rebase``) in a staging directory:
    if the layer it replaces has a kernel launcher, the new layer gets its own, made for
    the new stack, so that the kernelspecs pointing to it keep working."""
    if launcher_path(layer).is_file():
        write_kernel_launcher(layer, bin_dir)


def launcher_stack(path: Path) -> str | None:
    """What the launcher at ``path`` says it was made for (None: not a launcher, or gone)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for _, line in zip(range(20), handle):
                if line.startswith(STACK_LINE):
                    return line[len(STACK_LINE):].strip()
    except OSError:
        return None
    return None
