"""``layervenv install [DIR] PKG... [--installer pip|uv]``: install into a layer, over its stack.

pip (the default) runs as the layer's own ``python -m pip`` in the layer's environment:
it sees the stack on PYTHONPATH and installs only the difference.  uv only sees the
interpreter's own site-packages, and is made to see the stack: see
:mod:`layervenv.services.installers`, where both are.  Here: the request checked (a
version of the stack's that the layer's own copy shadows is refused with the way out),
the installer run, the new distributions compiled, and what it did counted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PathDistribution
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from layervenv.dists.bytecode import compile_layer, distribution_name
from layervenv.dists.requirements import requirement_closure
from layervenv.infra.arguments import add_format, add_sources
from layervenv.infra.errors import UserError
from layervenv.infra.output import count
from layervenv.infra.quoting import quote
from layervenv.infra.writelock import layer_write_lock
from layervenv.inspection.effective_view import Distribution
from layervenv.inspection.pipeline import inspect_layer
from layervenv.interp.compiler import LayerCompiler
from layervenv.model.layer import Layer
from layervenv.services.installers import INSTALLERS, Installer, InstallTarget, installer_type
from layervenv.services.packages import Sources


@dataclass
class InstallResult:
    layer: str
    installer: str
    requested: list[str]
    #: (name, version) of what went into the layer's site-packages
    installed: list[tuple[str, str]] = field(default_factory=list)
    #: distributions the request needs that the layer already had (mostly the stack's)
    kept: int = 0
    #: distributions named only by requirements whose marker is false for the layer's
    #: interpreter (another Python or platform): neither installed nor "met"
    skipped: int = 0
    seconds: float = 0.0
    #: what the user should know and the counts do not say (one line each)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "installer": self.installer, "requested": self.requested,
                "installed": [{"name": n, "version": v} for n, v in self.installed],
                "kept": self.kept, "skipped": self.skipped, "notes": list(self.notes),
                "seconds": round(self.seconds, 3)}

    def human(self) -> str:
        done = ", ".join(f"{n} {v}" for n, v in self.installed) or "nothing"
        skipped = f", {self.skipped} not for this Python/platform" if self.skipped else ""
        return "\n".join([
            f"installed {done} into {self.layer} with {self.installer}; "
            f"{count(self.kept, 'requirement')} already met by the layer or its stack"
            f"{skipped} ({self.seconds:.1f} s)", *(f"note: {n}" for n in self.notes)])


def install(directory: str | None, packages: Sequence[str], installer: str = "pip",
            sources: Sources | None = None, environ: dict[str, str] | None = None
            ) -> InstallResult:
    """Install ``packages`` into the layer with ``installer``; see the module's text."""
    kind = installer_type(installer)
    requested = _requested_names(packages)
    backend = kind.ready(sources or Sources())
    layer = Layer.from_argument(directory)
    with layer_write_lock(layer.root, "install"):  # one writer: two pips at once lose files
        return _install(layer, packages, backend, environ, requested)


def _install(layer: Layer, packages: Sequence[str], backend: Installer,
             environ: dict[str, str] | None, requested: dict[str, str]) -> InstallResult:
    start = time.monotonic()
    inspection = inspect_layer(layer, environ, need_interpreter=True)
    assert inspection.report is not None  # need_interpreter
    markers = inspection.report["markers"]
    refuse_shadowed_stack_version(layer, packages, inspection.view, markers)
    before = own_distributions(layer.site_packages)
    notes = backend.install(InstallTarget(layer.python, layer.site_packages,
                                          inspection.environ, inspection.view),
                            list(packages), requested)
    after = own_distributions(layer.site_packages)
    changed = set(after.items()) - set(before.items())
    compile_installed(layer, inspection.report, inspection.environ, {k for k, _ in changed})
    requires = {d.key: d.winner.requires for d in inspection.view}
    requires.update(requirements_of(layer.site_packages, {key for key, _ in changed}))
    closure = requirement_closure(requires, packages, markers)
    new = {key for key, _ in changed}
    kept = len({key for key in closure.needed if key in requires} - new)
    installed = sorted((_names(layer.site_packages).get(key, key), version)
                       for key, version in changed)
    seconds = time.monotonic() - start
    return InstallResult(layer=str(layer.root), installer=backend.name,
                         requested=sorted(requested.values()), installed=installed,
                         kept=kept, skipped=len(closure.not_here - new), seconds=seconds,
                         notes=notes)


def compile_installed(layer: Layer, report: dict[str, Any], environ: dict[str, str],
                      keys: set[str]) -> None:
    """Bytecode for the distributions ``keys`` just installed: uv writes none, and pip
    none under the user's PIP_NO_COMPILE; a layer published read-only would compile them
    in every process (``dists/bytecode``)."""
    if not keys:
        return
    infos = [info for info in layer.site_packages.glob("*.dist-info")
             if canonicalize_name(distribution_name(info)) in keys]
    compiler = LayerCompiler(layer.python, report.get("cache_tag"), env=environ)
    compile_layer(compiler, layer.root, [layer.site_packages], only=infos)


def refuse_shadowed_stack_version(layer: Layer, packages: Sequence[str],
                                  view: list[Distribution], markers: dict[str, str]) -> None:
    """A request the layer's own copy does not meet but a stack copy it shadows does
    (``numpy==<the stack's version>``, the layer holding another numpy): a one-line
    error saying so, with the command that removes the layer's copy.

    pip and uv see only the winning copy and would answer "no version of numpy" (or
    fetch a second copy of what the stack has); removing the layer's copy is the user's
    decision, never done here."""
    by_key = {d.key: d for d in view}
    for text in packages:
        req = Requirement(text)  # checked by _requested_names
        if req.marker is not None and not req.marker.evaluate(dict(markers, extra="")):
            continue
        dist = by_key.get(canonicalize_name(req.name))
        if dist is None or dist.winner.origin not in ("layer", "editable") \
                or _meets(req, dist.winner.version):
            continue
        stack = next((c for c in dist.shadowed
                      if c.origin == "stack" and _meets(req, c.version)), None)
        if stack is None:
            continue
        remove = f"{quote(str(layer.python))} -m pip uninstall -y {dist.winner.name}"
        raise UserError(
            f"{text}: the stack has {stack.name} {stack.version} ({stack.location}), shadowed "
            f"by the layer's {dist.winner.name} {dist.winner.version}; to use the stack's, "
            f"remove the layer's copy: {remove}")


def _meets(req: Requirement, version: str) -> bool:
    """Whether ``version`` meets ``req``'s versions (pre-releases too: it is installed)."""
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:  # a stack's own version scheme: only an exact pin can tell
        return all(spec.operator in ("==", "===") and spec.version == version
                   for spec in req.specifier) and bool(req.specifier)


def _requested_names(packages: Sequence[str]) -> dict[str, str]:
    """Canonical name -> name as given, for every requirement (a path or URL is refused:
    its name is only known once built)."""
    if not packages:
        raise UserError("name at least one package to install")
    names = {}
    for text in packages:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            raise UserError(f"not a requirement: {text!r} (NAME, NAME==VERSION, "
                            "'NAME>=VERSION', ...)") from None
        if req.url:
            raise UserError(f"{text!r}: install a NAME or NAME==VERSION (a path or URL is "
                            "not supported here; use pip in the layer)")
        names[canonicalize_name(req.name)] = req.name
    return names


def own_distributions(site_packages: Path) -> dict[str, str]:
    """The layer's own distributions: canonical name -> version, from ``*.dist-info``."""
    found = {}
    for entry in site_packages.glob("*.dist-info"):
        name, _, version = entry.name[:-len(".dist-info")].partition("-")
        if version:
            found[canonicalize_name(name)] = version
    return found


def _names(site_packages: Path) -> dict[str, str]:
    """Canonical name -> the name as the distribution spells it (its METADATA)."""
    return {canonicalize_name(d.metadata["Name"] or ""): d.metadata["Name"]
            for d in map(PathDistribution, site_packages.glob("*.dist-info"))
            if d.metadata["Name"]}


def requirements_of(site_packages: Path, keys: set[str]) -> dict[str, list[str]]:
    """The requirements of the layer's own distributions ``keys`` (just installed), as
    importlib.metadata reads them: no second probe of the interpreter is needed."""
    found = {}
    for entry in site_packages.glob("*.dist-info"):
        key = canonicalize_name(entry.name.partition("-")[0])
        if key in keys:
            found[key] = PathDistribution(entry).requires or []
    return found


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv install``'s options and help (``[DIR] PKG...``: see the usage)."""
    parser = commands.add_parser(
        "install", help="install packages into the layer, only what the stack lacks",
        usage="layervenv install [-h] [DIR] PKG... [--installer pip|uv] [options]",
        description="Install PKG... into the layer: only what the layer and its stack do not "
                    "already provide at an acceptable version; dependencies are not marked "
                    "as requested. The first word is DIR when it is a directory or a path "
                    "(default: the active layer).")
    parser.add_argument("args", metavar="[DIR] PKG", nargs="+",
                        help="the layer (optional), then requirements (NAME, "
                             "'NAME>=VERSION', ...)")
    parser.add_argument("--installer", choices=list(INSTALLERS), default="pip",
                        help="pip (default: the layer's own) or uv (on PATH), which is "
                             "made to see the stack")
    add_sources(parser)
    add_format(parser)
    return parser
