"""Jupyter kernelspecs of layers: where they go, what they hold, how they are found.

The tool does not depend on Jupyter, so the locations are computed here, as
``jupyter_core.paths`` computes them on Linux (jupyter_core 5):

``--user`` (the default, as for ``ipykernel install --user``)
    ``$JUPYTER_DATA_DIR/kernels``, else ``$XDG_DATA_HOME/jupyter/kernels``, else
    ``~/.local/share/jupyter/kernels`` (``~/Library/Jupyter/kernels`` on macOS);
``--sys-prefix``
    ``DIR/share/jupyter/kernels``: the layer's own prefix, found by a Jupyter server
    that runs from the layer (its ``sys.prefix``);
``--prefix PATH``
    ``PATH/share/jupyter/kernels``.

``kernel list``, ``kernel remove`` and ``check`` look where a Jupyter server looks:
every ``$JUPYTER_PATH`` entry, the user directory, the prefix of the active layer or
venv (``$VIRTUAL_ENV``), ``/usr/local/share/jupyter`` and ``/usr/share/jupyter`` (each
with ``kernels``).

A layer's kernelspec is a directory holding ``kernel.json`` and ``launch``, a small
POSIX sh script that ``argv[0]`` names by its absolute path (jupyter_client replaces a
bare ``python``).  ``launch`` only checks that the layer is there and ``exec``\\ s the
layer's own launcher (``DIR/bin/layervenv-kernel``): a moved or removed layer fails with
one line on the kernel's standard error instead of a "No such file" traceback in the
server's log.  ``kernel.json``'s ``metadata.layervenv`` names the layer.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layervenv.infra.errors import UserError
from layervenv.infra.quoting import quote

KERNEL_FILE = "kernel.json"
STUB_NAME = "launch"
#: what jupyter_client accepts as a kernel name (``_kernel_name_pat``), lowercase; matched
#: whole (``re.fullmatch``: its ``$`` would let a final newline by)
NAME_PATTERN = re.compile(r"[a-z0-9._-]+")
#: a kernel name is a directory's name: at most NAME_MAX bytes (all ASCII here)
MAX_NAME = 255
SYSTEM_DATA_DIRS = ("/usr/local/share/jupyter", "/usr/share/jupyter")

#: The kernel launcher every layer kernel runs, in the layer's ``bin/`` (written by
#: :mod:`layervenv.runtime.kernel_launcher`).
LAUNCHER_NAME = "layervenv-kernel"


def user_data_dir(environ: dict[str, str]) -> Path:
    """``jupyter_data_dir()``: where ``--user`` kernelspecs go."""
    if environ.get("JUPYTER_DATA_DIR"):
        return Path(environ["JUPYTER_DATA_DIR"])
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter"
    return Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "jupyter"


def prefix_kernels_dir(prefix: Path) -> Path:
    return prefix / "share" / "jupyter" / "kernels"


def search_dirs(environ: dict[str, str]) -> list[Path]:
    """The kernels directories a Jupyter server started in ``environ`` reads, in its order."""
    dirs = [Path(p.rstrip(os.sep)) / "kernels"
            for p in environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    dirs.append(user_data_dir(environ) / "kernels")
    if environ.get("VIRTUAL_ENV"):
        dirs.append(prefix_kernels_dir(Path(environ["VIRTUAL_ENV"])))
    dirs += [Path(p) / "kernels" for p in SYSTEM_DATA_DIRS]
    return list(dict.fromkeys(dirs))


def derive_name(layer_name: str) -> str:
    """A kernel name from the layer's name: lowercase, runs of other characters as ``-``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", layer_name.lower()).strip("-.")
    return name[:MAX_NAME].rstrip("-.") or "layer"


def check_name(name: str) -> str:
    """``name`` when it can name a kernelspec directory, else a one-line UserError.

    Jupyter's rule (letters, digits, ``.``, ``_``, ``-``; lowercase here, as
    ``jupyter kernelspec install`` lowercases) lets by ``.`` and ``..``, which name the
    kernels directory or its parent, not a kernel of their own, and a name longer than
    a file name may be."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"{shown_name(name)} cannot name a kernel: use lowercase letters, "
                        f"digits, '.', '_' and '-' only (Jupyter's rule)")
    if name in (".", ".."):
        raise UserError(f"{name!r} cannot name a kernel: it names a directory, not a "
                        f"kernel's own (use letters or digits)")
    if len(name) > MAX_NAME:
        raise UserError(f"a kernel name is a directory name, at most {MAX_NAME} characters; "
                        f"this one has {len(name)}")
    return name


def shown_name(name: str, limit: int = 60) -> str:
    """``name`` quoted for a one-line message, cut short."""
    text = repr(name)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass
class KernelSpec:
    """A layer's kernelspec found on disk."""

    name: str
    directory: Path
    display_name: str
    argv: list[str]
    #: the layer it starts (None: not a layervenv kernelspec)
    layer: str | None

    @property
    def stub(self) -> Path:
        return self.directory / STUB_NAME


def read_spec(directory: Path) -> KernelSpec | None:
    """The kernelspec in ``directory``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((directory / KERNEL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    meta = data.get("metadata")
    ours = meta.get("layervenv") if isinstance(meta, dict) else None
    layer = ours.get("layer") if isinstance(ours, dict) else None
    argv = data.get("argv")
    return KernelSpec(name=directory.name, directory=directory,
                      display_name=str(data.get("display_name", "")),
                      argv=[str(a) for a in argv] if isinstance(argv, list) else [],
                      layer=str(layer) if isinstance(layer, str) else None)


def layer_kernels(environ: dict[str, str]) -> list[KernelSpec]:
    """Every layervenv kernelspec in the places a Jupyter server looks (see :func:`search_dirs`);
    a name found twice is listed twice (Jupyter uses the first)."""
    found = []
    for kernels in search_dirs(environ):
        try:
            entries = sorted(kernels.iterdir())
        except OSError:
            continue
        for entry in entries:
            spec = read_spec(entry) if entry.is_dir() else None
            if spec is not None and spec.layer is not None:
                found.append(spec)
    return found


def kernel_json(stub: Path, display_name: str, layer: Path, python_version: str
                ) -> dict[str, Any]:
    """kernel.json: ``argv`` starts the absolute ``stub``; no ``env`` (VS Code ignores it)."""
    return {
        "argv": [str(stub), "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": True,
                     "layervenv": {"layer": str(layer), "python": python_version}},
    }


_STUB = """\
#!/bin/sh
# Starts the Jupyter kernel of the layer {comment}
# Written by layervenv kernel install; never edit it.  The layer's own launcher makes
# the kernel's environment; this one only says so when the layer is not there.
_layervenv_layer={layer}
if [ ! -f "$_layervenv_layer/{config}" ]; then
    printf '%s\\n' {gone} >&2
    exit 2
fi
if [ ! -x "$_layervenv_layer/{bin}/{launcher}" ]; then
    printf '%s\\n' {no_launcher} >&2
    exit 2
fi
exec "$_layervenv_layer/{bin}/{launcher}" "$@"
"""


def render_stub(name: str, layer: Path, scripts: str) -> str:
    from layervenv.model.layer import CONFIG_NAME

    root = str(layer)
    return _STUB.format(
        comment=root.replace("\n", " "), layer=quote(root), config=CONFIG_NAME,
        bin=scripts, launcher=LAUNCHER_NAME,
        gone=quote(f"layervenv: kernel {name!r} cannot start: its layer {root} is not there "
                   f"any more (moved or removed); re-create the layer there, or remove this "
                   f"kernel (layervenv kernel remove {name}) and install it from where the "
                   f"layer is now"),
        no_launcher=quote(f"layervenv: kernel {name!r} cannot start: the layer {root} has no "
                          f"kernel launcher ({scripts}/{LAUNCHER_NAME}); run: layervenv "
                          f"kernel install {root} --name {name}"),
    )
