"""What a layer is: a directory, its paths, and its recorded configuration.

Everything layervenv remembers about a layer is in one file, ``layervenv.toml``
at the layer's root: the stack interpreter it was made with (path and version),
the PYTHONPATH it was created on, and the options chosen at creation.  Reading
and writing that file happens here and nowhere else.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from layervenv.infra.errors import LayerNotFound, UserError
from layervenv.model.stack import StackRecord


def _toml_reader() -> Any:
    """tomllib (tomli before 3.11), imported when a layer is read: ``create`` never
    reads one, and its start-up is part of what creating a layer costs."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    return tomllib


CONFIG_NAME = "layervenv.toml"
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
    # here, not at the top: leftovers are found with the rules of a layer's contents
    from layervenv.model.leftovers import find_leftovers

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
