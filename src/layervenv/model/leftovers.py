"""What an interrupted ``create``/``--clear``/``rebase`` leaves beside (or in) a layer,
found and named -- with the user's files it holds -- so that the next command on that
layer says how to recover or remove it."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from layervenv.infra.errors import UserError
from layervenv.infra.writelock import pid_alive
from layervenv.model.layer import CONFIG_NAME, Layer, LayerConfig, is_layer
from layervenv.model.ownership import STAGING_INSIDE, not_made_by_the_layer, users_entries


@dataclass
class Leftover:
    """What an interrupted ``create``/``--clear``/``rebase`` left next to (or in) a layer.

    ``staging``: a layer being assembled (or, after a swap, the replaced one being
    removed); ``moved-aside``: ``.NAME.old-*/layer``, the old layer renamed out of the way
    where the swap cannot be atomic.  ``holds``: entries in it that are not a layer's (the
    user's files, carried over just before the interruption).
    """

    path: Path
    kind: str
    complete: bool
    holds: list[str] = field(default_factory=list)

    def message(self, target: Path) -> str:
        """One line: what it is, and the command that recovers or removes it."""
        q = shlex.quote
        carried = (f"; it holds {', '.join(self.holds)} from {target}: move "
                   f"{'it' if len(self.holds) == 1 else 'them'} back into {target} first"
                   if self.holds else "")
        if self.kind == "moved-aside" and self.complete and not is_layer(target):
            return (f"{target} was moved aside by an interrupted layervenv run to "
                    f"{self.path / 'layer'}; put it back: mv -- {q(str(self.path / 'layer'))} "
                    f"{q(str(target))} && rmdir -- {q(str(self.path))}")
        what = ("the replaced layer" if self.kind == "moved-aside"
                else "a complete layer" if self.complete else "an unfinished layer")
        return (f"{self.path} is {what} left by an interrupted layervenv run; remove it: "
                f"rm -rf -- {q(str(self.path))}{carried}")


_PID = re.compile(r"(\d+)-")


def find_leftovers(target: Path, skip_running: bool = False) -> list[Leftover]:
    """What interrupted runs on the layer directory ``target`` left behind.

    Run under the layer's write lock, everything found is a leftover; without it
    (``check``), ``skip_running`` leaves out what a process still alive on this host may
    be working in (the pid is in every such name).
    """
    places: list[tuple[Path, str]] = []
    sibling = f".{target.name}."
    for directory, prefixes in ((target.parent, (sibling + "layervenv-", sibling + "old-")),
                                (target, (STAGING_INSIDE,))):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            for prefix in prefixes:
                if name.startswith(prefix) and (directory / name).is_dir():
                    places.append((directory / name, name[len(prefix):]))
    found = []
    for path, rest in places:
        pid = _PID.match(rest)
        if skip_running and pid and pid_alive(int(pid.group(1))):
            continue
        moved = ".old-" in path.name
        layer_root = path / "layer" if moved else path
        try:
            config = LayerConfig.from_toml((layer_root / CONFIG_NAME).read_text("utf-8"))
        except (OSError, ValueError, TypeError):
            config = None
        holds = _users_files_held(layer_root, config, target) if config else []
        found.append(Leftover(path, "moved-aside" if moved else "staging",
                              config is not None, holds))
    return found


def _users_files_held(root: Path, config: LayerConfig, target: Path) -> list[str]:
    """The user's entries a leftover layer at ``root`` holds: an interrupted replace had
    carried them out of ``target`` (at any depth) and not back.  Read against the layer
    now at ``target`` when there is one (what it holds is the layer's, not the user's),
    else at the top level only."""
    if not is_layer(target):
        return not_made_by_the_layer(root, config)
    try:
        now = Layer.open(target).config
    except (OSError, ValueError, TypeError, UserError):
        return not_made_by_the_layer(root, config)
    return [entry.source for entry in users_entries(
        root, config.purelib, config.scripts, target, now.purelib, now.scripts)]

