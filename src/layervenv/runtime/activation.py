"""From a layer to its activation scripts: which environment changes activation makes.

The boot hook, not PYTHONPATH, makes the layer win, so by default activation only
puts the layer's ``bin`` first on PATH (and never exports the layer's
site-packages to other interpreters, such as a stack tool's own Python 2).
``--export-pythonpath`` layers also put their site-packages first on PYTHONPATH,
for Python interpreters embedded in C++ programs of the same version.
"""

from __future__ import annotations

import os
from pathlib import Path

from layervenv import __version__
from layervenv.infra.errors import UserError
from layervenv.model.layer import CONFIG_NAME, Layer
from layervenv.model.stack import StackEnvironment, StackRecord, refuse_missing_or_other_stack
from layervenv.runtime.envchange import (
    MARKER,
    PATH_SEPARATOR,
    STATE_PREFIX,
    Change,
    EnvChange,
    LeaveStacks,
    PrependPath,
    RequirePath,
    SetAsideLayers,
    SetAsideVenv,
    SetPrompt,
    SetVar,
    StackGroup,
    UnsetVar,
)


def env_change(layer: Layer) -> EnvChange:
    """Everything activation does for ``layer``: checks, its stack, then the layer itself."""
    record = layer.config.stack.stack_environment()
    requires = [layer_requirement(layer), RequirePath(layer.config.stack.python, "interpreter")]
    requires += [RequirePath(e, "directory") for e in record.prepend.get("PYTHONPATH", [])
                 if os.path.isabs(e)]
    requires += [RequirePath(o.site_packages, "directory",
                             "layervenv: " + over_missing(o.root, o.site_packages))
                 for o in layer.config.stack.over_layers()]  # as run's require_over_layers
    stack = None
    if not record.is_empty():
        var, markers = record.presence_markers()
        stack = StackGroup(
            present_if=tuple(markers), present_var=var,
            changes=recorded_stack_changes(record), describe=describe_stack(layer),
            rerun=layer.config.stack.setup if layer.config.stack.rerun_setup else "",
        )
    # An --export-pythonpath layer inherited from a parent shell is left by this layer's
    # deactivate: its site-packages must go from PYTHONPATH even where this layer does
    # not export its own (a revert reads the entry from the saved state, not the change).
    revert_also = () if layer.config.export_pythonpath else (
        PrependPath("PYTHONPATH", str(layer.site_packages)),)
    return EnvChange(layer=str(layer.root), changes=layer_changes(layer),
                     requires=tuple(requires), stack=stack, revert_also=revert_also,
                     prompt_hook=layer.config.prompt_hook, venv=SetAsideVenv(),
                     under=SetAsideLayers())


def layer_requirement(layer: Layer) -> RequirePath:
    """The layer itself must be where the script says: a moved layer is refused.

    The scripts name the layer's path (csh cannot learn where a sourced script is),
    so sourcing them from a moved layer would activate a directory that is gone: the
    prompt would show the layer while ``python`` is the stack's.
    """
    root = str(layer.root)
    return RequirePath(
        os.path.join(root, CONFIG_NAME), "layer",
        message=f"layervenv: the layer {root} is not there any more (a layer cannot be "
                f"moved; layervenv check DIR says how to re-create it)")


def recorded_stack_changes(record: StackEnvironment) -> tuple[Change, ...]:
    """The stack's recorded environment as changes with their own saved state."""
    changes: list[Change] = [
        PrependPath(name, PATH_SEPARATOR.join(entries), key=f"STACK_{name}")
        for name, entries in record.prepend.items() if entries
    ]
    changes += [SetVar(name, value, key=f"STACK_{name}") for name, value in record.set.items()]
    return tuple(changes)


#: the keys of the saved state of a group layer's entries (``create --over``)
OVER_PYTHONPATH_KEY = "OVER_PYTHONPATH"
OVER_PATH_KEY = "OVER_PATH"


def over_changes(stack: StackRecord) -> tuple[Change, ...]:
    """The group layers of the stack (``create --over``), as the stack's last part: their
    site-packages on PYTHONPATH and their ``bin`` on PATH, nearest first, ahead of the
    stack's entries and behind the layer's own (the boot hook moves the layer's
    site-packages ahead of PYTHONPATH; the layer's ``bin`` is prepended after these).

    Paths only: a group layer's activation is never sourced (it would deactivate what is
    active, and it is code of someone else's), so every shell, ``run``, the kernel's
    launcher and a pack's launcher get the same entries from this one model.
    """
    over = stack.over_layers()
    if not over:
        return ()
    return (PrependPath("PYTHONPATH", PATH_SEPARATOR.join(o.site_packages for o in over),
                        key=OVER_PYTHONPATH_KEY),
            PrependPath("PATH", PATH_SEPARATOR.join(o.scripts for o in over),
                        key=OVER_PATH_KEY))


def layer_changes(layer: Layer) -> tuple[Change, ...]:
    """The changes that activate ``layer`` itself (in the order they are applied): its
    group layers first (:func:`over_changes`), then the layer."""
    root = str(layer.root)
    changes = [
        SetVar("VIRTUAL_ENV", root),
        SetVar("VIRTUAL_ENV_PROMPT", layer.config.prompt),
        UnsetVar("PYTHONHOME"),
        *over_changes(layer.config.stack),
        PrependPath("PATH", str(layer.bin_dir)),
    ]
    if layer.config.export_pythonpath:
        changes.append(PrependPath("PYTHONPATH", str(layer.site_packages)))
    changes.append(SetPrompt(f"({layer.config.prompt}) "))
    return tuple(changes)


def stack_changes(layer: Layer, environ: dict[str, str]) -> tuple[Change, ...]:
    """The recorded stack's environment, where ``environ`` does not have it set up."""
    record = layer.config.stack.stack_environment()
    if record.is_empty() or record.is_set_up_in(environ):
        return ()
    return recorded_stack_changes(record)


def leave_other_stacks(layer: Layer) -> LeaveStacks:
    """What of a client's environment a kernel leaves: anything not the layer's stack."""
    stack = layer.config.stack
    own = tuple(e for e in stack.stack_pythonpath() if e)
    keep = tuple(e for entries in stack.stack_environment().prepend.values()
                 for e in entries if e)
    return LeaveStacks(own=own, keep=keep)


def describe_stack(layer: Layer) -> str:
    """How users know the layer's stack: its setup command, else its Python."""
    stack = layer.config.stack
    return repr(stack.setup) if stack.setup else f"Python {stack.python_version} ({stack.python})"


def require_layer_stack(layer: Layer, environ: dict[str, str]) -> None:
    """One-line error when the layer's stack is gone or another stack is set up."""
    stack = layer.config.stack
    require_over_layers(stack)
    refuse_missing_or_other_stack(stack.python, stack.stack_pythonpath(),
                                  stack.stack_environment(), environ, describe_stack(layer))


def require_over_layers(stack: StackRecord) -> None:
    """One-line error when a group layer of the stack (``create --over``) is gone."""
    for over in stack.over_layers():
        if not os.path.isdir(over.site_packages):
            raise UserError(over_missing(over.root, over.site_packages))


def over_missing(root: str, site_packages: str) -> str:
    """The refusal for a group layer of the stack that is not there."""
    return (f"the group layer {root}, part of this layer's stack, is missing "
            f"({site_packages} is not there): is it mounted?")


def write_activation_scripts(layer: Layer, bin_dir: Path) -> list[Path]:
    """Render every dialect's script for ``layer`` into ``bin_dir``.

    The renderers are imported here, not with this module: ``run``, ``check`` and
    ``lock`` need the change model only.
    """
    from layervenv.runtime.shells import render_all

    written = []
    for name, text in render_all(env_change(layer), __version__).items():
        path = bin_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def without_active_environment(environ: dict[str, str], also: Path | None = None,
                               over: tuple[str, ...] = ()) -> dict[str, str]:
    """``environ`` without the virtual environment active in it (and ``also``), if any.

    A layer created, or rebased, from a shell where a layer (or a plain venv) is active
    must stand on the stack, not on that environment: its ``bin`` must not provide the
    ``python3``, its site-packages must not be recorded as part of the stack's
    PYTHONPATH.  The stack variables a layer's activation re-established stay: they
    are the stack.  The group layers ``over`` (roots) of a layer go too, wherever they
    are in PATH and PYTHONPATH: their entries are put back, in their place, by
    :func:`over_changes`.
    """
    roots = {r.rstrip("/") for r in (environ.get("VIRTUAL_ENV"), environ.get(MARKER),
                                     str(also) if also else None, *over) if r}
    env = {k: v for k, v in environ.items()
           if k not in ("VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT") and not k.startswith(STATE_PREFIX)}

    def inside(entry: str) -> bool:
        return any(entry == root or entry.startswith(root + "/") for root in roots)

    for name in ("PATH", "PYTHONPATH"):
        if roots and env.get(name):
            kept = [e for e in env[name].split(PATH_SEPARATOR) if not inside(e)]
            if kept:
                env[name] = PATH_SEPARATOR.join(kept)
            else:
                del env[name]
    return env
