"""What a layer is: a directory, its paths, and its recorded configuration.

Everything layervenv remembers about a layer is in one file, ``layervenv.toml``
at the layer's root: the stack interpreter it was made with (path and version),
the PYTHONPATH it was created on, and the options chosen at creation.  Reading
and writing that file happens here and nowhere else.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from layervenv.infra.errors import LayerNotFound, UserError
from layervenv.infra.writelock import pid_alive
from layervenv.model.ownership import (
    CONFIG_NAME,
    STAGING_INSIDE,
    not_made_by_the_layer,
    users_entries,
)
from layervenv.model.stack import StackRecord


def _toml_reader() -> Any:
    """tomllib (tomli before 3.11), imported when a layer is read: ``create`` never
    reads one, and its start-up is part of what creating a layer costs."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    return tomllib


SCHEMA = 1



@dataclass
class LayerConfig:
    """The whole of ``layervenv.toml``."""

    stack: StackRecord
    prompt: str
    purelib: str
    scripts: str = "bin"
    export_pythonpath: bool = False
    #: interactive shells keep the layer's entries in front with a prompt hook
    #: (``create --no-prompt-hook``: no hook)
    prompt_hook: bool = True
    created_by: str = ""
    schema: int = SCHEMA
    #: ``name==version`` the user asked for that the stack provides (``rebase`` dropped
    #: them from the layer); the next rebase asks for them again
    requested_from_stack: list[str] = field(default_factory=list)
    #: where the layer was made: its activation scripts and the console scripts pip
    #: writes name this path, so a layer found elsewhere was moved (empty in layers
    #: made before it was recorded)
    path: str = ""

    def to_toml(self) -> str:
        data = asdict(self)
        stack = data.pop("stack")
        return tomli_w.dumps({"layervenv": data, "stack": stack})

    @classmethod
    def from_toml(cls, text: str) -> LayerConfig:
        data: dict[str, Any] = _toml_reader().loads(text)
        known = {f for f in cls.__dataclass_fields__ if f != "stack"}
        body = {k: v for k, v in data.get("layervenv", {}).items() if k in known}
        stack_known = set(StackRecord.__dataclass_fields__)
        stack = {k: v for k, v in data.get("stack", {}).items() if k in stack_known}
        return cls(stack=StackRecord(**stack), **body)


@dataclass(frozen=True)
class Layer:
    """A layer directory and the paths inside it."""

    root: Path
    config: LayerConfig

    @property
    def bin_dir(self) -> Path:
        return self.root / self.config.scripts

    @property
    def python(self) -> Path:
        return self.bin_dir / "python"

    @property
    def site_packages(self) -> Path:
        return self.root / self.config.purelib

    @classmethod
    def open(cls, root: Path, label: str = "") -> Layer:
        """Read the layer at ``root``; a one-line error if it is not one.

        ``label`` says where ``root`` came from when the user did not type it.
        """
        path = root / CONFIG_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            raise LayerNotFound(why_not_a_layer(root, label)) from None
        except OSError as error:
            raise LayerNotFound(f"cannot read {path}: {error.strerror}") from None
        try:
            config = LayerConfig.from_toml(text)
        except (ValueError, TypeError) as error:  # TOMLDecodeError is a ValueError
            raise LayerNotFound(f"{path} is damaged: {error}") from None
        return cls(root=root, config=config)

    @classmethod
    def from_argument(cls, directory: str | None) -> Layer:
        """The layer named on the command line, else the active one (VIRTUAL_ENV)."""
        if directory is not None:
            return cls.open(Path(directory).absolute())
        active = os.environ.get("VIRTUAL_ENV")
        if not active:
            raise LayerNotFound("no layer given and none is active (VIRTUAL_ENV is unset): "
                                "name the layer's directory, or activate the layer first")
        return cls.open(Path(active).absolute(), label=" (the active environment, $VIRTUAL_ENV)")

    def given_prompt(self) -> str | None:
        """The ``--prompt`` given at creation (``pyvenv.cfg`` has one only then), else None."""
        try:
            text = (self.root / "pyvenv.cfg").read_text(encoding="utf-8")
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "prompt":
                return value.strip()
        return None

    def moved_from(self) -> str | None:
        """The recorded path when the layer is no longer there (moved or copied), else None."""
        recorded = self.config.path
        if not recorded or recorded == str(self.root):
            return None
        try:
            if os.path.samefile(recorded, self.root):  # a symlink or bind mount to it
                return None
        except OSError:  # the recorded path is gone
            pass
        return recorded

    def refuse_if_moved(self, use: str = "used") -> None:
        """Refuse, in one line, to start (or pack) a layer that was moved or copied.

        Its console scripts and ``pyvenv.cfg`` name the old path: its ``pip`` would be
        another Python's pip, its activation would activate a directory that is gone.
        ``use`` says what cannot be done where the layer is now ("packed from").
        """
        moved_from = self.moved_from()
        if moved_from is not None:
            raise UserError(f"the layer {self.root} was made in {moved_from} and cannot be "
                            f"{use} where it is now: re-create it (layervenv check {self.root} "
                            f"says how)")

    def write_config(self) -> None:
        (self.root / CONFIG_NAME).write_text(self.config.to_toml(), encoding="utf-8")


def why_not_a_layer(root: Path, label: str = "") -> str:
    """What ``root`` is instead of a layer, and what to do: the usual mistakes told apart.

    A typo, a file, and a venv made with ``python -m venv`` (or virtualenv, conda)
    each need something else from the user; "not a layer" alone says none of it.
    """
    what = f"{root}{label}"
    hint = "give the directory of a layer (made by layervenv create)"
    leftovers = "".join("; " + leftover.message(root) for leftover in find_leftovers(root))
    if not root.exists():
        return f"{what} does not exist{leftovers or '; ' + hint}"
    if not root.is_dir():
        return f"{what} is not a directory; {hint}"
    if (root / "pyvenv.cfg").is_file():
        return (f"{what} is a plain venv, not a layer (it has no {CONFIG_NAME}); "
                f"make a layer with layervenv create (a venv is not turned into one)")
    return (f"{what} is not a layer (no {CONFIG_NAME}){leftovers or '; '}"
            f"{'' if leftovers else 'give the directory made by layervenv create'}")


def is_layer(path: Path) -> bool:
    """Whether ``path`` holds a layer (its configuration file is there)."""
    return (path / CONFIG_NAME).is_file()


#: Entries of site-packages whose name, inode and time say which distributions are there.
_METADATA = (".dist-info", ".egg-info", ".egg-link")


def site_snapshot(site_packages: Path) -> frozenset[tuple[str, int, int]]:
    """What changes when pip installs, upgrades or removes anything in ``site_packages``:
    the name, inode and time of each metadata entry (every pip run that changes packages
    writes or removes a ``.dist-info``, ``.egg-info`` or ``.egg-link``; a reinstall of
    the same version makes a new ``.dist-info``).  The rest is left out, ``.pth`` files
    too (pip writes one only with a ``.dist-info``): ``rebase`` carries the user's own
    entries into the new layer while it watches for pip, and running the layer's Python
    writes ``__pycache__``."""
    found = set()
    try:
        entries = list(os.scandir(site_packages))
    except OSError:
        return frozenset()
    for entry in entries:
        if entry.name.endswith(_METADATA):
            info = entry.stat(follow_symlinks=False)
            found.add((entry.name, info.st_ino, info.st_mtime_ns))
    return frozenset(found)


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
        return not_made_by_the_layer(root, config.purelib, config.scripts)
    try:
        now = Layer.open(target).config
    except (OSError, ValueError, TypeError, UserError):
        return not_made_by_the_layer(root, config.purelib, config.scripts)
    return [entry.source for entry in users_entries(
        root, config.purelib, config.scripts, target, now.purelib, now.scripts)]
