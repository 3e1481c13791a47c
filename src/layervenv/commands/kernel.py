"""``layervenv kernel install|list|remove``: a layer as a Jupyter kernel.

``install`` writes the layer's launcher (``DIR/bin/layervenv-kernel``, see
:mod:`layervenv.runtime.kernel_launcher`) and a kernelspec whose ``argv[0]`` is an absolute
path (see :mod:`layervenv.model.kernelspec`), after making sure the layer's Python finds
ipykernel in the environment the kernel will have.  Nothing of the user's is replaced:
a kernelspec of the same name that is not this layer's is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layervenv.infra.arguments import add_active_dir, add_format, add_sources
from layervenv.infra.atomic import atomic_write
from layervenv.infra.errors import UserError
from layervenv.infra.writelock import layer_write_lock
from layervenv.inspection.kernel_check import kernel_status
from layervenv.interp.query import run_query
from layervenv.model.kernelspec import (
    KERNEL_FILE,
    STUB_NAME,
    check_name,
    derive_name,
    kernel_json,
    layer_kernels,
    prefix_kernels_dir,
    read_spec,
    render_stub,
    user_data_dir,
)
from layervenv.model.layer import Layer
from layervenv.runtime.environment import layer_environment
from layervenv.runtime.kernel_launcher import write_kernel_launcher
from layervenv.services.installers import InstallTarget, PipInstaller
from layervenv.services.packages import Sources


@dataclass
class InstallOptions:
    directory: str | None
    name: str | None = None
    display_name: str | None = None
    #: "user", "sys-prefix" or "prefix"
    location: str = "user"
    prefix: str | None = None
    install_ipykernel: bool = False
    sources: Sources = field(default_factory=Sources)


@dataclass
class InstallResult:
    name: str
    display_name: str
    path: str
    argv: list[str]
    layer: str
    launcher: str
    #: where ipykernel is found: "layer" or "stack"
    ipykernel: str
    ipykernel_installed: bool
    replaced: bool
    notes: list[str] = field(default_factory=list)

    def human(self) -> str:
        verb = "replaced" if self.replaced else "installed"
        added = " (installed now)" if self.ipykernel_installed else ""
        return "\n".join([
            f"{verb} kernel {self.name!r} (\"{self.display_name}\") in {self.path}",
            f"  starts {self.launcher}: the layer {self.layer} over its stack, "
            f"ipykernel from the {self.ipykernel}{added}",
            *self.notes,
        ])


def kernels_dir(options: InstallOptions, layer: Layer, environ: dict[str, str]) -> Path:
    if options.location == "sys-prefix":
        return prefix_kernels_dir(layer.root)
    if options.location == "prefix":
        if not options.prefix:  # "" would be the current directory, silently
            raise UserError("--prefix needs a directory (an empty one names none); leave "
                            "--prefix out for your user directory")
        return prefix_kernels_dir(Path(os.path.abspath(options.prefix)))
    return user_data_dir(environ) / "kernels"


def _make_place(kernels: Path) -> list[Path]:
    """Make ``kernels`` (and what is missing above it) and prove a kernelspec can be
    written there; the directories made, outermost first.

    Checked before anything is written (the launcher, ipykernel): a prefix that is a
    file, read-only, on a file system that takes no new directory (``/sys``) or too long
    a path fails here in one line, and what was made for it is removed again.
    """
    missing = []
    created: list[Path] = []
    try:
        here = kernels
        while not here.is_dir():
            if here.exists() or here.is_symlink():
                raise UserError(f"cannot write the kernelspec in {kernels}: {here} is not a "
                                "directory")
            missing.append(here)
            if here.parent == here:
                break
            here = here.parent
        for directory in reversed(missing):
            directory.mkdir()
            created.append(directory)
        os.rmdir(tempfile.mkdtemp(prefix=".layervenv-probe-", dir=kernels))
    except OSError as error:
        _remove_made(created)
        raise UserError(f"cannot write the kernelspec in {kernels}: "
                        f"{error.strerror or error}") from None
    except UserError:
        _remove_made(created)
        raise
    return created


def _remove_made(created: list[Path]) -> None:
    """Remove the directories :func:`_make_place` made, innermost first, where still empty."""
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            return


def find_ipykernel(layer: Layer, env: dict[str, str]) -> str | None:
    """Where the layer's Python finds ``ipykernel_launcher`` in ``env``: "layer", "stack",
    or None."""
    origin = run_query(layer.python, "find_ipykernel.py", env=env, cwd=layer.root)["origin"]
    if not origin:
        return None
    root = os.path.realpath(layer.root)
    return "layer" if os.path.realpath(origin).startswith(root + os.sep) else "stack"


def install(options: InstallOptions, environ: dict[str, str] | None = None) -> InstallResult:
    environ = dict(os.environ if environ is None else environ)
    layer = Layer.from_argument(options.directory)
    layer.refuse_if_moved()
    name = derive_name(layer.config.prompt) if options.name is None else check_name(options.name)
    display = options.display_name or f"Python (layer {layer.config.prompt})"
    env = layer_environment(layer, environ, "kernel")
    target = kernels_dir(options, layer, environ) / name
    made = _make_place(target.parent)
    try:
        return _install(options, layer, name, display, env, environ, target)
    except BaseException:
        _remove_made(made)
        raise


def _install(options: InstallOptions, layer: Layer, name: str, display: str,
             env: dict[str, str], environ: dict[str, str], target: Path) -> InstallResult:
    """:func:`install` once the kernels directory is there and writable."""
    replaced = _check_replaceable(target, layer)
    installed = False
    where = find_ipykernel(layer, env)
    if where is None:
        if not options.install_ipykernel:
            raise UserError(f"ipykernel is not importable by the layer's Python (neither the "
                            f"layer nor its stack has it): add it with {layer.python} -m pip "
                            f"install ipykernel, or pass --install-ipykernel")
        with layer_write_lock(layer.root, "kernel install"):  # pip changes the layer
            PipInstaller(options.sources).install(
                InstallTarget(layer.python, layer.site_packages, env), ["ipykernel"],
                what="installing ipykernel into the layer")
        installed = True
        where = find_ipykernel(layer, env)
        if where is None:
            raise UserError("pip installed ipykernel, but the layer's Python still does not "
                            "find it")
    launcher = write_kernel_launcher(layer)
    data = kernel_json(target / STUB_NAME, display, layer.root, layer.config.stack.python_version)
    _write_spec(target, data, render_stub(name, layer.root, layer.config.scripts))
    notes = []
    if layer.config.stack.stack_environment().is_empty():
        notes.append("note: this layer was made without --setup: its kernel sees the stack "
                     "only where the Jupyter server has it set up (rebase with --setup to "
                     "bring the stack along)")
    if not _is_searched(target.parent, environ):
        notes.append(f"note: Jupyter finds this kernel only where it reads {target.parent} "
                     f"(JUPYTER_PATH={target.parent.parent})")
    return InstallResult(name=name, display_name=display, path=str(target), argv=data["argv"],
                         layer=str(layer.root), launcher=str(launcher), ipykernel=where,
                         ipykernel_installed=installed, replaced=replaced, notes=notes)


def _is_searched(kernels: Path, environ: dict[str, str]) -> bool:
    from layervenv.model.kernelspec import search_dirs

    return kernels in search_dirs(environ)


def _check_replaceable(target: Path, layer: Layer) -> bool:
    """Whether a kernelspec is there already (this layer's: replaced); another's is refused."""
    if not target.exists() and not target.is_symlink():
        return False
    spec = read_spec(target) if target.is_dir() and not target.is_symlink() else None
    if spec is None or spec.layer is None:
        raise UserError(f"{target} exists and is not a layervenv kernel: choose another "
                        f"--name (or remove it with jupyter kernelspec remove {target.name})")
    if os.path.normpath(spec.layer) != os.path.normpath(str(layer.root)):
        raise UserError(f"kernel {target.name!r} in {target.parent} starts another layer "
                        f"({spec.layer}): choose another --name")
    return True


def _write_spec(target: Path, data: dict[str, Any], stub: str) -> None:
    """The kernelspec directory, complete or not at all (assembled beside it, then swapped)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # the name cut short: a name of 255 characters is allowed, a longer file name is not
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.layervenv-",
                                    dir=target.parent))
    try:
        atomic_write(staging / KERNEL_FILE, json.dumps(data, indent=1) + "\n")
        atomic_write(staging / STUB_NAME, stub, mode=0o755)
        staging.chmod(0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.old-",
                                        dir=target.parent))
            os.replace(target, old / "spec")
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"cannot write the kernelspec {target}: {error.strerror}") from None


@dataclass
class KernelEntry:
    name: str
    display_name: str
    path: str
    layer: str
    #: "ok", or why it will not start: gone, moved, no-stub, no-launcher, stale
    status: str
    problem: str = ""


@dataclass
class ListResult:
    kernels: list[KernelEntry]

    def to_json(self) -> dict[str, Any]:
        return {"kernels": [vars(k) for k in self.kernels]}

    def human(self) -> str:
        if not self.kernels:
            return "no layervenv kernels (layervenv kernel install DIR makes one)"
        width = max(len(k.name) for k in self.kernels)
        lines = []
        for k in self.kernels:
            state = "ok" if k.status == "ok" else f"BROKEN: {k.problem}"
            lines.append(f"{k.name:<{width}}  {k.layer}  {state}\n{'':<{width}}  "
                         f"{k.path}  \"{k.display_name}\"")
        return "\n".join(lines)


def list_kernels(environ: dict[str, str] | None = None) -> ListResult:
    environ = dict(os.environ if environ is None else environ)
    entries = []
    for spec in layer_kernels(environ):
        found = kernel_status(spec)
        entries.append(KernelEntry(name=spec.name, display_name=spec.display_name,
                                   path=str(spec.directory), layer=spec.layer or "",
                                   status=found[0] if found else "ok",
                                   problem=found[1] if found else ""))
    return ListResult(entries)


@dataclass
class RemoveResult:
    name: str
    path: str
    layer: str

    def human(self) -> str:
        return f"removed kernel {self.name!r} ({self.path}) of the layer {self.layer}"


def remove(name: str, environ: dict[str, str] | None = None) -> RemoveResult:
    """Remove the first layervenv kernelspec called ``name``, where Jupyter would find it."""
    environ = dict(os.environ if environ is None else environ)
    for spec in layer_kernels(environ):
        if spec.name == name:
            break
    else:
        raise UserError(f"no layervenv kernel named {name!r} where Jupyter looks "
                        f"(layervenv kernel list shows them)")
    ours = {KERNEL_FILE, STUB_NAME}
    others = [p.name for p in spec.directory.iterdir() if p.name not in ours]
    if others:
        raise UserError(f"{spec.directory} holds files layervenv did not write "
                        f"({', '.join(sorted(others))}): remove it yourself")
    try:
        shutil.rmtree(spec.directory)
    except OSError as error:
        raise UserError(f"cannot remove {spec.directory}: {error.strerror}") from None
    return RemoveResult(name=name, path=str(spec.directory), layer=spec.layer or "")


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv kernel install|list|remove``: the options and help of each action."""
    kernel = commands.add_parser(
        "kernel", help="the layer as a Jupyter kernel (install, list, remove)",
        description="Jupyter kernels that start the layer over its stack, whatever "
                    "environment the Jupyter server has.")
    verbs = kernel.add_subparsers(dest="kernel_command", metavar="ACTION")
    verbs.required = True
    install = verbs.add_parser(
        "install", help="write a kernelspec for the layer",
        description="Write a kernelspec whose launcher (DIR/bin/layervenv-kernel) leaves the "
                    "server's stacks, re-establishes the layer's own as activation does and "
                    "starts the layer's Python with ipykernel.")
    add_active_dir(install)
    install.add_argument("--name", metavar="NAME",
                         help="kernel name (default: the layer's name, lowercase)")
    install.add_argument("--display-name", metavar="TEXT",
                         help="name shown by Jupyter (default: 'Python (layer NAME)')")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true",
                       help="in the user's Jupyter data directory (the default): "
                            "$JUPYTER_DATA_DIR/kernels or ~/.local/share/jupyter/kernels")
    where.add_argument("--sys-prefix", action="store_true",
                       help="in the layer's own prefix: DIR/share/jupyter/kernels")
    where.add_argument("--prefix", metavar="PATH",
                       help="in PATH/share/jupyter/kernels (made if missing; refused in one "
                            "line, with nothing written, where it cannot be written)")
    install.add_argument("--install-ipykernel", action="store_true",
                         help="install ipykernel into the layer when neither the layer nor "
                              "its stack has it")
    add_sources(install)
    add_format(install)
    listing = verbs.add_parser(
        "list", help="the layervenv kernels Jupyter finds, and whether they start",
        description="List the layervenv kernelspecs where Jupyter looks ($JUPYTER_PATH, the "
                    "user directory, $VIRTUAL_ENV, /usr/local and /usr share/jupyter).")
    add_format(listing)
    removing = verbs.add_parser(
        "remove", help="remove a layervenv kernelspec",
        description="Remove the layervenv kernelspec NAME (the first one where Jupyter "
                    "looks); the layer is untouched.")
    removing.add_argument("name", metavar="NAME")
    add_format(removing)
    return kernel
