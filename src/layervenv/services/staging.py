"""The engine of ``create``, ``create --from``, ``rebase`` and ``demo``: a layer built
in a staging directory and swapped into place, all or nothing.

The layer is assembled in a hidden sibling directory and renamed into place only
when complete, so a failure half-way (bad interpreter, no permission, Ctrl-C)
leaves nothing that looks like a layer.  Every file is written to point at the
final path from the start: nothing is patched after the move.

The engine is our own: the venv layout of PEP 405 is a few directories, three
symlinks and ``pyvenv.cfg``; pip is installed from the stack interpreter's own
bundled wheel with ``installer``; activation scripts are generated.  One run of
the stack interpreter (to learn its version and install scheme) is the only
process started, which keeps creation well under a second.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from layervenv import __version__
from layervenv.boot import MODULE_NAME, install_boot_hook
from layervenv.dists.bytecode import compile_layer
from layervenv.dists.seed import seed_wheel
from layervenv.infra.errors import UserError
from layervenv.infra.interrupts import uninterrupted
from layervenv.infra.renames import exchange, rename_new
from layervenv.infra.writelock import INSIDE_NAME, layer_write_lock, refuse_if_busy
from layervenv.interp.compiler import LayerCompiler
from layervenv.interp.interpreter import (
    Interpreter,
    find_default_python,
    probe_interpreter,
    python_from_option,
)
from layervenv.model.layer import (
    CONFIG_NAME,
    Layer,
    LayerConfig,
    Leftover,
    find_leftovers,
    is_layer,
)
from layervenv.model.ownership import Carried, not_made_by_the_layer, users_entries
from layervenv.model.stack import OverLayer, StackEnvironment, StackRecord, capture_setup
from layervenv.runtime.activation import (
    over_changes,
    stack_changes,
    without_active_environment,
    write_activation_scripts,
)
from layervenv.runtime.envchange import apply_to
from layervenv.runtime.kernel_launcher import keep_kernel_launcher
from layervenv.runtime.toolshim import write_tool_shim
from layervenv.services.packages import StagingTarget

FORBIDDEN_IN_PATH = {
    ":": "a colon (PATH cannot hold it)",
    "\t": "a tab (the #! line of pip's scripts cannot hold it)",
    "\n": "a newline",
    "\0": "a NUL",
}


@dataclass
class CreateOptions:
    directory: str
    python: str | None = None
    prompt: str | None = None
    clear: bool = False
    without_pip: bool = False
    export_pythonpath: bool = False
    #: the environment the layer is created in (default: this process's)
    environ: dict[str, str] | None = None
    #: a command that sets the stack up, run in a clean bash and recorded
    setup: str | None = None
    #: activation re-runs ``setup`` (for stacks that define shell functions)
    rerun_setup: bool = False
    #: interactive shells keep the layer in front of PATH with a prompt hook
    prompt_hook: bool = True
    #: adds packages to the layer while it is staged (``create --from``, ``rebase``)
    extension: CreateExtension | None = None
    #: a group's layer this layer stands on, as part of its stack (``create --over``)
    over: str | None = None


class CreateExtension(Protocol):
    """Hooks of ``create --from`` and ``rebase`` into an all-or-nothing creation."""

    def before(self, interp: Interpreter, environ: dict[str, str]) -> None:
        """After the stack is known, before anything is created: may refuse."""

    def populate(self, staging: Path, layer: Layer, interp: Interpreter,
                 environ: dict[str, str]) -> Any:
        """With pip in ``staging``, before the layer is complete: install packages."""


#: Called with where the old layer is, just before and just after it leaves its path:
#: raises to refuse the swap (``rebase``: the layer's packages changed meanwhile).
Verify = Callable[[Path], None]


@dataclass
class CreateResult:
    """What was created, for humans and for ``--format json``."""

    path: str
    python: str
    python_version: str
    pip: str | None
    export_pythonpath: bool
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: entries of the replaced layer's directory that were not the layer's, now in the
    #: new one (``--clear``, ``rebase``)
    carried_over: list[str] = field(default_factory=list)

    def human(self) -> str:
        pip = f"pip {self.pip}" if self.pip else "no pip"
        return "\n".join([
            f"created layer {self.path} on Python {self.python_version} ({self.python}), "
            f"{pip}, in {self.seconds:.2f} s",
            *([carried_over_line(self.carried_over)] if self.carried_over else []),
            *self.notes,
            f"activate it with: . {_shell_word(self.path)}/bin/activate",
        ])


def python_not_from_setup(python: Path, captured: StackEnvironment) -> str | None:
    """A note when the ``python3`` found after CMD is not one CMD put on PATH.

    A setup that fails to bring its Python (a typo in a release name that still exits
    0, ``module load`` of a module without one) leaves the system's ``python3`` first,
    and a layer on it would look right until the stack's packages do not import.
    """
    if "PATH" in captured.set:
        return None
    added = {os.path.normpath(entry) for entry in captured.prepend.get("PATH", [])}
    if os.path.normpath(str(python.parent)) in added:
        return None
    return (f"note: the setup command put no python3 on PATH; the layer uses {python} "
            "(pass --python PATH to choose another)")


def _shell_word(path: str) -> str:
    from layervenv.runtime.shells.posix import quote

    return path if all(c.isalnum() or c in "/._-+" for c in path) else quote(path)


def staging_target(staging: Path, layer: Layer, interp: Interpreter) -> StagingTarget:
    """Where an extension installs packages into the layer staged for ``layer.root``."""
    return StagingTarget(interp.install_scheme(staging, layer.root))


def carried_over_line(names: list[str]) -> str:
    return "kept (not the layer's, carried over): " + ", ".join(names)


def check_target(target: Path, clear: bool, locked: bool = False) -> list[Leftover]:
    """Refuse paths PATH cannot hold, and directories that are not ours to replace.

    Returns what interrupted runs left beside ``target`` for the result to name; what
    they left that stands in the way (the old layer moved aside, an unfinished layer in
    an otherwise empty directory) is refused naming it.  Before the layer's lock is
    held (``locked``), what a live process may still be working in is not a leftover.
    """
    for char, what in FORBIDDEN_IN_PATH.items():
        if char in str(target):
            raise UserError(f"a layer path cannot contain {what}: {str(target)!r}")
    try:  # the scripts and layervenv.toml name the path in UTF-8
        str(target).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"a layer path must be valid UTF-8: {str(target)!r}") from None
    leftovers = find_leftovers(target, skip_running=not locked)
    layer = is_layer(target)
    # Whether the path is free is looked at once: a create filling it may move entries
    # in at any moment, and two looks could disagree.
    free = not layer and (not (target.exists() or target.is_symlink())
                          or is_empty_directory(target, not locked))
    if not (layer or free or locked):
        # Not a layer *yet*?  A create filling this directory moves bin/ and lib/ in
        # before layervenv.toml, holding the lock until the config is there.  So a held
        # lock names its holder; a free one means any fill seen just now has finished:
        # look again (the directory may have become a layer meanwhile).
        refuse_if_busy(target)
        layer = is_layer(target)
    if layer:
        if not clear:
            raise UserError(f"{target} is already a layer; pass --clear to replace it")
        return leftovers
    in_the_way = [x for x in leftovers
                  if (x.kind == "moved-aside" and x.complete) or x.path.parent == target]
    if in_the_way:
        raise UserError("; ".join(x.message(target) for x in in_the_way)
                        + "; then run layervenv create again")
    if free:
        return leftovers
    raise UserError(f"{target} exists and is not a layer; choose another directory")


def carry_over(target: Path) -> list[str]:
    """The top-level entries of the layer directory ``target`` that are not the layer's,
    each refused now, before the new layer is built, if a rename cannot move it.  (Those
    deeper down are found once the new layer is staged: :func:`users_entries_to_carry`.)"""
    if not is_layer(target):
        return []
    config = Layer.open(target).config
    names = not_made_by_the_layer(target, config.purelib, config.scripts)
    for name in names:
        refuse_unmovable(target, target / name)
    return names


def refuse_unmovable(target: Path, path: Path) -> None:
    """Refuse (before anything changes) an entry of the layer ``target`` that a rename
    cannot move: another filesystem mounted there, a directory the user cannot write."""
    info = path.lstat()
    why = ("it is another filesystem (a mount point)" if info.st_dev != os.stat(target).st_dev
           else "it is a directory you cannot write (moving it needs that)"
           if stat.S_ISDIR(info.st_mode) and not os.access(path, os.W_OK) else "")
    if why:
        raise UserError(f"cannot carry {path} over into the new layer: {why}; move it "
                        f"out of {target} and run again (nothing was changed)")


def write_pyvenv_cfg(staging: Path, interp: Interpreter, prompt: str | None) -> None:
    """PEP 405's marker file, with the stack's site-packages left visible."""
    lines = [
        f"home = {interp.executable.parent}",
        "include-system-site-packages = true",
        f"version = {interp.version}",
        f"executable = {os.path.realpath(interp.executable)}",
        f"layervenv = {__version__}",
    ]
    if prompt is not None:
        lines.append(f"prompt = {prompt}")
    (staging / "pyvenv.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_skeleton(staging: Path, interp: Interpreter) -> None:
    """Directories and interpreter links, as ``python -m venv --symlinks`` makes them."""
    for rel in (interp.scripts, interp.include, interp.purelib, interp.platlib):
        (staging / rel).mkdir(parents=True, exist_ok=True)
    if interp.is_64bit and interp.purelib.startswith("lib/") and not (staging / "lib64").exists():
        os.symlink("lib", staging / "lib64")
    bin_dir = staging / interp.scripts
    os.symlink(interp.executable, bin_dir / "python")
    for alias in ("python3", f"python{interp.short_version}"):
        os.symlink("python", bin_dir / alias)


def build_layer(
    staging: Path, layer: Layer, interp: Interpreter, options: CreateOptions,
    environ: dict[str, str] | None = None,
) -> str | None:
    """Fill ``staging`` with a complete layer that will live at ``layer.root``."""
    make_skeleton(staging, interp)
    write_pyvenv_cfg(staging, interp, options.prompt)
    install_boot_hook(staging / interp.purelib, interp.hook_bytecode,
                      layer.config.stack.over_pythonpath())
    write_activation_scripts(layer, staging / interp.scripts)
    write_tool_shim(staging / interp.scripts)
    keep_kernel_launcher(layer, staging / interp.scripts)  # the replaced layer's kernels
    pip_version = None
    environ = dict(os.environ) if environ is None else environ
    if not options.without_pip:
        wheel = interp.newest_pip_wheel()
        if wheel is None:
            raise UserError(
                f"{interp.executable} has no bundled pip wheel (ensurepip); "
                "pass --without-pip and install pip yourself"
            )
        seed_wheel(wheel, interp.install_scheme(staging, layer.root),
                   compiler(staging, interp, environ))
        pip_version = wheel.name.split("-")[1]
    if options.extension is not None:
        options.extension.populate(staging, layer, interp, environ)
    compile_staged(staging, layer, interp, environ)
    # Written last: a directory holding this file is a complete layer.
    (staging / "layervenv.toml").write_text(layer.config.to_toml(), encoding="utf-8")
    return pip_version


def compiler(staging: Path, interp: Interpreter, environ: dict[str, str]) -> LayerCompiler:
    """The staged layer's interpreter as it compiles (see ``dists/bytecode``)."""
    magic = interp.hook_bytecode.magic.hex() if interp.hook_bytecode else ""
    return LayerCompiler(staging / interp.scripts / "python", interp.cache_tag, magic, environ)


def compile_staged(staging: Path, layer: Layer, interp: Interpreter,
                   environ: dict[str, str]) -> None:
    """Bytecode for everything the layer being built will import (the seeded pip, the
    packages of a lock or a rebase, the boot hook), by its own interpreter: a layer
    published read-only would otherwise compile them in every process."""
    site_dirs = sorted({staging / interp.purelib, staging / interp.platlib})
    compile_layer(compiler(staging, interp, environ), staging, site_dirs, shown_root=layer.root,
                  extra=[staging / interp.purelib / f"{MODULE_NAME}.py"])


def is_empty_directory(path: Path, skip_running: bool = False) -> bool:
    """An existing directory (or a link to one) with nothing in it but the layer's lock
    (and, with ``skip_running``, what a live ``create`` is assembling there)."""
    if not path.is_dir():
        return False
    busy = {x.path.name for x in find_leftovers(path) if x.path.parent == path} \
        if skip_running else set()
    return not [name for name in os.listdir(path) if name != INSIDE_NAME and name not in busy]


def move_into_place(staging: Path, target: Path, fill: bool,
                    verify: Verify | None = None) -> list[str]:
    """Swap the finished layer in; the old one (with --clear) is removed only afterwards.

    An existing empty directory is filled instead of replaced: it keeps its owner,
    mode and ACLs, and a shell whose current directory it is (``layervenv create .``)
    is not left in a deleted directory.  ``fill`` says which (decided before staging,
    which may be inside ``target``).  A path that was free must still be: a directory
    made there meanwhile is not replaced.  Replacing a layer carries over what in its
    directory is not the layer's; those names are returned.
    """
    if fill:
        _fill(staging, target)
        return []
    if not (target.exists() or target.is_symlink()):
        try:
            rename_new(staging, target)
        except FileExistsError:
            raise UserError(f"{target} was made by something else while the layer was "
                            "being created; nothing was changed there") from None
        return []
    with uninterrupted():
        carried, old = _replace(staging, target, verify)
    with uninterrupted():  # the new layer is in place: finish, or a half-deleted
        _remove(old)  # old one would be left behind
        if old.parent != target.parent:  # .NAME.old-*/layer
            shutil.rmtree(old.parent, ignore_errors=True)
    return carried


def _replace(staging: Path, target: Path, verify: Verify | None) -> tuple[list[str], Path]:
    """Carry the user's entries, at any depth, into ``staging``, then swap it with
    ``target``; any failure puts everything back.  Returns the entries carried (paths
    relative to the layer) and where the old layer is now."""
    carried = users_entries_to_carry(target, staging)
    moved: list[Carried] = []
    try:
        for entry in carried:
            destination = staging / entry.destination
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.rename(target / entry.source, destination)
            moved.append(entry)
        if verify is not None:
            verify(target)
        old = _swap(staging, target, verify)
    except BaseException:
        for entry in reversed(moved):
            os.rename(staging / entry.destination, target / entry.source)
        raise
    return [entry.source for entry in carried], old


def users_entries_to_carry(target: Path, staging: Path) -> list[Carried]:
    """The user's entries of the layer ``target`` (:func:`~layervenv.model.ownership.users_entries`)
    and where each goes in the staged layer; refuses, before anything moves, one the new
    layer also has or one a rename cannot move."""
    old = Layer.open(target).config
    new = Layer.open(staging).config
    carried = users_entries(target, old.purelib, old.scripts, staging, new.purelib,
                            new.scripts)
    for entry in carried:
        if os.path.lexists(staging / entry.destination):
            raise UserError(f"{target / entry.source} is not the layer's, and the new layer "
                            f"has one too: move it out of {target} and run again (nothing "
                            "was changed)")
        refuse_unmovable(target, target / entry.source)
    return carried


def _swap(staging: Path, target: Path, verify: Verify | None) -> Path:
    """``staging`` to ``target`` and the old layer aside: atomically where the system can
    exchange two paths (the old layer is then at ``staging``), else old aside into
    ``.NAME.old-*`` and new in.  ``verify`` sees the old layer once it has left."""
    if exchange(staging, target):
        try:
            if verify is not None:
                verify(staging)
        except BaseException:
            exchange(staging, target)
            raise
        return staging
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-",
                                  dir=target.parent))
    os.replace(target, trash / "layer")
    try:
        if verify is not None:
            verify(trash / "layer")
        os.replace(staging, target)
    except BaseException:  # the old layer goes back where it was
        os.replace(trash / "layer", target)
        trash.rmdir()
        raise
    return trash / "layer"


def _fill(staging: Path, target: Path) -> None:
    """Move the layer's entries from ``staging`` into the empty ``target``, config last.

    Without ``layervenv.toml`` a partly filled directory is not a layer; a failure
    takes back what was moved, leaving ``target`` empty as it was.
    """
    names = sorted(os.listdir(staging), key=lambda name: name == CONFIG_NAME)
    try:
        for name in names:
            os.replace(staging / name, target / name)
    except BaseException:
        with uninterrupted():
            for name in names:
                _remove(target / name)
        raise
    staging.rmdir()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _stack_record(interp: Interpreter, environ: dict[str, str], setup: str | None,
                  captured: StackEnvironment | None, rerun: bool) -> StackRecord:
    value = environ.get("PYTHONPATH")
    return StackRecord(
        python=str(interp.executable),
        python_version=interp.version,
        implementation=interp.implementation,
        pythonpath=value.split(os.pathsep) if value else [],
        pythonpath_set=value is not None,
        setup=setup or "",
        rerun_setup=rerun,
        environment=captured.to_dict() if captured else {},
    )


def open_group_layer(path: str) -> Layer:
    """The group layer ``create --over PATH`` names, or a one-line refusal.

    Only its ``layervenv.toml`` is read (data: paths and the stack it records); nothing
    of it runs.  A group layer that re-runs its setup command at every activation
    (``--rerun-setup``) is refused: the personal layer would run a command it took from
    someone else's file.
    """
    root = Path(os.path.abspath(path))
    if not is_layer(root):
        raise UserError(f"--over {path}: no layer there (a group layer is a layer made by "
                        "layervenv create, with its layervenv.toml)")
    group = Layer.open(root)
    if group.config.stack.rerun_setup:
        raise UserError(f"--over {path}: that layer re-runs its setup command at every "
                        "activation (--rerun-setup); a layer over it would run a command "
                        "from another's file: make yours with --setup CMD instead")
    return group


def refuse_over_itself(target: Path, group: Layer) -> None:
    """A layer cannot stand on itself, nor on a layer inside it (``--clear`` would empty
    or carry it), nor on a group layer that stands on it: refused in one line."""
    real = os.path.realpath(target)
    for root in [str(group.root), *(o.root for o in group.config.stack.over_layers())]:
        under = os.path.realpath(root)
        if under == real or under.startswith(real.rstrip("/") + "/"):
            raise UserError(f"--over {group.root}: {target} cannot stand on "
                            f"{'itself' if under == real else 'a layer inside it'}"
                            f"{'' if root == str(group.root) else f' (through {group.root})'}"
                            "; nothing was changed")


def refuse_over_with_stack(over: str | None, setup: str | None, python: str | None) -> None:
    """``--over`` with ``--setup`` or ``--python`` (``create``, ``rebase``): refused in one
    line, the group layer's stack being the stack."""
    if over and (setup or python):
        raise UserError("--over takes the stack of the group layer (its Python and setup): "
                        f"--{'setup' if setup else 'python'} cannot be given with it")


def over_record(group: Layer) -> StackRecord:
    """The stack of a layer made over ``group``: the group's own stack record, with the
    group layer (and the layers it stands on) as part of it, nearest first."""
    stack = group.config.stack
    own = OverLayer(root=str(group.root), site_packages=str(group.site_packages),
                    scripts=str(group.bin_dir))
    return StackRecord(
        python=stack.python, python_version=stack.python_version,
        implementation=stack.implementation, pythonpath=list(stack.pythonpath),
        pythonpath_set=stack.pythonpath_set, setup=stack.setup, rerun_setup=False,
        environment=dict(stack.environment), over=[own.to_dict(), *stack.over])


def _environment_and_python(options: CreateOptions, over: StackRecord | None
                            ) -> tuple[dict[str, str], Path, StackEnvironment | None]:
    """The stack's environment (captured from --setup, or this one) and its python3;
    with ``over`` (the stack of a layer made ``--over`` a group layer), that stack's."""
    environ = without_active_environment(
        dict(os.environ) if options.environ is None else dict(options.environ))
    if over is not None:
        # the group layer's entries, wherever they are, go; over_changes puts them back
        environ = without_active_environment(
            environ, over=tuple(o.root for o in over.over_layers()))
        return environ, Path(over.python), None
    captured = None
    if options.setup:
        captured, environ = capture_setup(options.setup, environ)
    if options.python:
        return environ, python_from_option(options.python, environ.get("PATH", "")), captured
    if options.setup:
        found = shutil.which("python3", path=environ.get("PATH", ""))
        if not found:
            raise UserError(f"the setup command put no python3 on PATH: {options.setup}")
        return environ, Path(found), captured
    return environ, find_default_python(environ.get("PATH", "")), captured


def _make_parents(parent: Path, created: list[Path]) -> None:
    """Create missing parent directories, recording each in ``created`` (deepest first)
    as soon as it exists, so that a failure at any moment can remove them."""
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:  # another create making the same parents
            continue
        created.insert(0, path)


def _staging_path(target: Path, fill: bool) -> Path:
    """Where the layer is assembled: a hidden sibling of ``target``, or a hidden entry
    inside it when ``target`` is an empty directory (whose parent may be read-only).

    The name is chosen before the directory is made, so cleanup always knows it.
    """
    token = f"{os.getpid()}-{os.urandom(4).hex()}"
    if fill:
        return target / f".layervenv-{token}"
    return target.parent / f".{target.name}.layervenv-{token}"


def _clean_up(staging: Path | None, created: list[Path]) -> None:
    """Remove the unfinished layer and the parents made for it -- never the user's files
    (carried into it and, through some failure, not back out: it is left to be named)."""
    with uninterrupted():
        config = Layer.open(staging).config if staging is not None and is_layer(staging) \
            else None
        if staging is not None and not (config is not None and not_made_by_the_layer(
                staging, config.purelib, config.scripts)):
            shutil.rmtree(staging, ignore_errors=True)
        for parent in created:
            try:
                parent.rmdir()
            except OSError:
                break


def _prepare(target: Path, options: CreateOptions
             ) -> tuple[Layer, Interpreter, dict[str, str], list[str]]:
    """The stack's environment and Python, probed, and the layer to be made of them
    (with the notes for the result)."""
    refuse_over_with_stack(options.over, options.setup, options.python)
    over = None
    if options.over:
        group = open_group_layer(options.over)  # read once: the record is made of it
        refuse_over_itself(target, group)
        over = over_record(group)
    active = (os.environ if options.environ is None else options.environ).get("VIRTUAL_ENV")
    environ, python, captured = _environment_and_python(options, over)
    note = None if captured is None or options.python else python_not_from_setup(python, captured)
    interp = probe_interpreter(python)
    if tuple(int(p) for p in interp.version.split(".")[:2]) < (3, 6):
        raise UserError(f"{python} is Python {interp.version}; layers need Python 3.6 or newer")
    record = over if over is not None else _stack_record(
        interp, environ, options.setup, captured, options.rerun_setup)
    config = LayerConfig(
        stack=record,
        prompt=options.prompt or target.name,
        purelib=interp.purelib,
        scripts=interp.scripts,
        export_pythonpath=options.export_pythonpath,
        prompt_hook=options.prompt_hook,
        created_by=f"layervenv {__version__}",
        path=str(target),
    )
    layer = Layer(root=target, config=config)
    if over is not None:  # the group layer (and its recorded stack) as the layer will run on it
        environ = apply_to(stack_changes(layer, environ) + over_changes(record), environ)
        note = f"note: over the group layer {record.over_layers()[0].root} (part of the stack)"
    elif active and is_layer(Path(active)) and not note:
        note = (f"note: the layer {active} active in this shell is not part of the new "
                f"layer's stack; to stand on it: layervenv create {target} --clear --over "
                f"{active}")
    if options.extension is not None:
        options.extension.before(interp, environ)
    return layer, interp, environ, [note] if note else []


def create(options: CreateOptions) -> CreateResult:
    """Create the layer described by ``options``; raise UserError on a user's mistake."""
    start = time.perf_counter()
    target = Path(os.path.abspath(options.directory))
    check_target(target, options.clear)
    if options.prompt is not None and ("\n" in options.prompt or "\0" in options.prompt):
        # pyvenv.cfg is one setting a line, and a prompt is one line
        raise UserError(f"a prompt cannot contain a newline: {options.prompt!r}")
    if options.rerun_setup and not options.setup:
        raise UserError("--rerun-setup needs --setup CMD")
    created: list[Path] = []
    staging = None
    try:
        _make_parents(target.parent, created)
        # The lock is held for the whole run, the stack's set-up and probe included: a
        # second create of the same directory is then refused as busy from its start,
        # not only while the first one is building.
        with layer_write_lock(target, "create"):
            layer, interp, environ, notes = _prepare(target, options)
            leftovers = check_target(target, options.clear, locked=True)
            notes += [f"note: {leftover.message(target)}" for leftover in leftovers]
            fill = is_empty_directory(target)
            if not fill:
                carry_over(target)  # refused now rather than after the build
            staging = _staging_path(target, fill)
            staging.mkdir()  # permissions as the umask says, as for any new directory
            pip_version = build_layer(staging, layer, interp, options, environ)
            carried = move_into_place(staging, target, fill,
                                      getattr(options.extension, "verify", None))
    except BaseException as error:
        _clean_up(staging, created)
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
            raise UserError(f"cannot create {target}: {reason}") from None
        raise
    return CreateResult(
        path=str(target),
        python=str(interp.executable),
        python_version=interp.version,
        pip=pip_version,
        export_pythonpath=options.export_pythonpath,
        seconds=round(time.perf_counter() - start, 3),
        notes=notes,
        carried_over=carried,
    )
