"""What a lock may run, and whether the user has said it may: ``create --from``'s consent.

A lock is a file people share.  Its setup command is shell code, the group layer it
names has a Python and packages that would run, and its directories, VCS checkouts,
archives and sdists are built by running their code: each runs only where the user
said so (``--trust-setup``, ``--trust-build``), or where a layer of the user's own
already uses it (the same command again is no new code); otherwise a refusal that
shows what would run, before anything has.
"""

from __future__ import annotations

import os
from pathlib import Path

from layervenv.infra.errors import UserError
from layervenv.model.layer import CONFIG_NAME, Layer, is_layer
from layervenv.model.lockfile import Lock
from layervenv.model.lockschema import visible


class UntrustedSetup(UserError):
    """The lock's setup command would run, and the user has not said it may."""


def layer_using_setup(setup: str, target: Path) -> Path | None:
    """A layer of this user's that already uses ``setup``, byte for byte: ``target``
    itself (``--clear``) or a layer beside it (in the same directory).

    Its ``layervenv.toml`` recorded a command the user ran themselves (``--setup``, or a
    lock's with ``--trust-setup``); the same command again is no new code.  Only files
    owned by this user count: in a shared directory another user could plant one.
    One directory listing, one ``stat`` per sub-directory.
    """
    try:
        beside = [Path(e.path) for e in os.scandir(target.parent) if e.is_dir()]
    except OSError:
        beside = []
    for root in sorted(set([target, *beside]), key=lambda r: r != target):
        config = root / CONFIG_NAME
        try:
            if config.stat().st_uid != os.getuid():
                continue
            if Layer.open(root).config.stack.setup == setup:
                return root
        except (OSError, UserError):
            continue
    return None


def trusted_setup(lock: Lock, trust: bool, target: Path) -> str:
    """Why the lock's setup command may run (a note for the result), or a refusal that
    shows it: a lock is a file people share, and its setup is shell code."""
    rerun = " (and at every activation: rerun-setup)" if lock.rerun_setup else ""
    if trust:
        return f"note: ran the lock's setup command{rerun} (--trust-setup): {visible(lock.setup)}"
    used = layer_using_setup(lock.setup, target)
    if used is not None:
        return (f"note: ran the lock's setup command{rerun}, the one {used} uses: "
                f"{visible(lock.setup)}")
    raise UntrustedSetup(
        f"the lock's setup command below would run now in bash{rerun}, and no layer of yours "
        "here uses it; nothing was run or created: read it, then pass --trust-setup to run "
        "it, or --setup CMD to set the stack up yourself\n"
        + "\n".join("  " + line for line in visible(lock.setup).split("\n")))


class UntrustedBuild(UserError):
    """The lock names projects pip would build (running their code), and the user has not
    said it may."""


def trusted_build(lock: Lock, trust: bool) -> str | None:
    """A note naming what will be built from source, or a refusal naming it (one line):
    building a directory, a VCS checkout, an archive or an sdist runs its ``setup.py`` or
    build backend, code the lock's author chose.  Locked wheels need nothing."""
    built = [f"{p.name} ({p.build_source()})" for p in lock.packages if p.build_source()]
    if not built:
        return None
    if trust:
        return "note: built from source (--trust-build): " + ", ".join(built)
    raise UntrustedBuild(
        f"the lock would build {len(built)} package{'s' if len(built) > 1 else ''} from "
        f"source, running {'their' if len(built) > 1 else 'its'} code (setup.py, build "
        f"backend): {', '.join(built)}; nothing was run or created: read "
        f"{'them' if len(built) > 1 else 'it'}, then pass --trust-build to build "
        f"{'them' if len(built) > 1 else 'it'}")


def layer_over(group: str, target: Path) -> Path | None:
    """A layer of this user's that already stands on the group layer ``group``: the
    group layer itself, ``target`` (``--clear``) or a layer beside it.  Only files owned
    by this user count (as for :func:`layer_using_setup`)."""
    try:
        beside = [Path(e.path) for e in os.scandir(target.parent) if e.is_dir()]
    except OSError:
        beside = []
    for root in [Path(group), target, *beside]:
        try:
            if (root / CONFIG_NAME).stat().st_uid != os.getuid():
                continue
            layer = Layer.open(root)
        except (OSError, UserError):
            continue
        if root == Path(group) or any(o.root == group
                                      for o in layer.config.stack.over_layers()):
            return root
    return None


def group_layer_of(lock: Lock, trust: bool, target: Path) -> str:
    """The group layer the locked layer stood on (``create --over``), which must be here,
    at the same path: it is part of the stack, as the stack's release is.  Its
    ``layervenv.toml`` gives the stack (read as data; its setup is never run), but its
    Python runs and its packages are imported: a path a lock names is someone else's
    choice, so it is taken without asking only where it is the user's own, or a layer of
    theirs here already stands on it; else a refusal that names it."""
    root = lock.over[0]
    if not is_layer(Path(root)):
        raise UserError(f"the lock's layer stands on the group layer {root}, part of its "
                        "stack, and there is no layer there (is it mounted?); nothing was "
                        "created")
    if not trust and layer_over(root, target) is None:
        raise UntrustedSetup(
            f"the lock's layer stands on the group layer {visible(root)}, and no layer of "
            "yours here does: its Python and its packages would run now; nothing was run "
            f"or created: pass --over {visible(root)} to stand on it, or --trust-setup")
    return root
