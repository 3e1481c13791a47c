"""``layervenv install [DIR] PKG... [--installer pip|uv]``: install into a layer, over its stack.

pip (the default) runs as the layer's own ``python -m pip`` in the layer's environment:
it sees the stack on PYTHONPATH and installs only the difference.

uv only sees the interpreter's own site-packages, never PYTHONPATH, so on its own it
re-installs what the stack provides and fails on a request for the stack's own version.
Here uv resolves with the stack in sight: every distribution of the layer's effective
view becomes a metadata-only *stub* wheel (its name, version and requirements) in a
find-links directory of its own, and a preferences file pins them (``uv pip compile``
keeps the versions already in its output file and moves one only when a request or a
dependency needs it).  Only the resolved pins whose version differs from the one that
wins in the layer are then installed, with ``--no-deps``, from the real sources -- a stub
never is (its version is the one already there).  uv marks every distribution named on
its command line REQUESTED; the marker is removed from those the user did not name, so
``layervenv lock`` records only what was asked for.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PathDistribution
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from layervenv.dists.bytecode import compile_layer, distribution_name
from layervenv.dists.record import wheel_record
from layervenv.dists.requirements import requirement_closure
from layervenv.infra.arguments import add_format, add_sources
from layervenv.infra.errors import UserError
from layervenv.infra.output import count, progress
from layervenv.infra.quoting import quote
from layervenv.infra.writelock import layer_write_lock
from layervenv.inspection.effective_view import Distribution
from layervenv.inspection.pipeline import inspect_layer
from layervenv.interp.compiler import LayerCompiler
from layervenv.model.layer import Layer
from layervenv.services.packages import Sources, pip_environment, run_pip

INSTALLERS = ("pip", "uv")
#: Where a stub wheel says it came from (never installed; shows up in uv's errors only).
STUB_TAG = "py3-none-any"


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
    sources = sources or Sources()
    if installer not in INSTALLERS:
        raise UserError(f"unknown installer {installer!r} (pip or uv)")
    requested = _requested_names(packages)
    uv = shutil.which("uv") if installer == "uv" else None
    if installer == "uv" and uv is None:
        raise UserError("--installer uv needs uv on PATH (https://docs.astral.sh/uv/)")
    layer = Layer.from_argument(directory)
    with layer_write_lock(layer.root, "install"):  # one writer: two pips at once lose files
        return _install(layer, packages, installer, uv, sources, environ, requested)


def _install(layer: Layer, packages: Sequence[str], installer: str, uv: str | None,
             sources: Sources, environ: dict[str, str] | None,
             requested: dict[str, str]) -> InstallResult:
    start = time.monotonic()
    inspection = inspect_layer(layer, environ, need_interpreter=True)
    assert inspection.report is not None  # need_interpreter
    markers = inspection.report["markers"]
    refuse_shadowed_stack_version(layer, packages, inspection.view, markers)
    notes: list[str] = []
    before = own_distributions(layer.site_packages)
    if uv is not None:
        notes += _install_with_uv(Path(uv), layer, list(packages), inspection.view,
                                  inspection.environ, sources, requested)
    else:
        run_pip(layer.python, ["install", "-q", *packages], inspection.environ,
                f"installing {' '.join(packages)} with pip", sources)
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
    return InstallResult(layer=str(layer.root), installer=installer,
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


# ---------------------------------------------------------------------------------------
# uv
# ---------------------------------------------------------------------------------------

def uv_source_args(sources: Sources, environ: dict[str, str]) -> list[str]:
    """``--find-links``/``--index-url``/``--no-index`` for uv from the options and from pip's
    own variables (PIP_FIND_LINKS, PIP_INDEX_URL, PIP_NO_INDEX), which uv does not read."""
    links = [*sources.find_links, *environ.get("PIP_FIND_LINKS", "").split()]
    args = [arg for link in links for arg in ("--find-links", link)]
    index = sources.index_url or environ.get("PIP_INDEX_URL")
    if index:
        args += ["--index-url", index]
    if environ.get("PIP_NO_INDEX", "").lower() in ("1", "true", "yes", "on"):
        args.append("--no-index")
    return args


def _install_with_uv(uv: Path, layer: Layer, packages: list[str], view: list[Distribution],
                     environ: dict[str, str], sources: Sources,
                     requested: dict[str, str]) -> list[str]:
    """Resolve with the stack in sight, install the difference; the notes to show (the
    distributions uv could not be told about)."""
    present = {d.key: d for d in view if d.winner.origin != "user-site"}
    env = pip_environment(environ)
    notes = []
    with tempfile.TemporaryDirectory(prefix="layervenv-uv-") as tmp:
        stubs = Path(tmp) / "stubs"
        stubs.mkdir()
        prefs = Path(tmp) / "requirements.txt"
        lines = []
        for dist in present.values():
            if write_stub_wheel(dist, stubs):
                lines.append(f"{dist.winner.name}=={dist.winner.version}")
            else:
                notes.append(left_out_note(dist))
        prefs.write_text("\n".join(lines) + "\n", encoding="utf-8")
        request = Path(tmp) / "request.in"
        request.write_text("\n".join(packages) + "\n", encoding="utf-8")
        source_args = uv_source_args(sources, environ)
        run_uv(uv, ["pip", "compile", str(request), "-o", str(prefs), "--quiet",
                    "--no-header", "--no-annotate", "--python", str(layer.python),
                    "--find-links", str(stubs), *source_args], env,
               f"resolving {' '.join(packages)} with uv over the stack")
        pins = resolved_pins(prefs.read_text(encoding="utf-8"))
    changes = [f"{name}=={version}" for key, (name, version) in pins.items()
               if not _same(present.get(key), version)]
    if not changes:
        return notes
    before = set(layer.site_packages.glob("*.dist-info"))
    run_uv(uv, ["pip", "install", "--quiet", "--no-deps", "--python", str(layer.python),
                *source_args, *changes], env, f"installing {' '.join(changes)} with uv")
    for info in set(layer.site_packages.glob("*.dist-info")) - before:
        name = info.name[:-len(".dist-info")].partition("-")[0]
        if canonicalize_name(name) not in requested:
            (info / "REQUESTED").unlink(missing_ok=True)
    return notes


def left_out_note(dist: Distribution) -> str:
    """Why ``dist`` is not among what uv is told the layer has, and what that may do."""
    win = dist.winner
    why = (f"its version {win.version!r} is not a PEP 440 version"
           if win.key not in ("", "unknown") else "it has no usable name")
    return (f"{win.name or '(unnamed)'} {win.version} ({win.origin}, {win.location}) was left "
            f"out of what uv is told the layer has: {why}; uv resolves a requirement on it "
            "from your index or links, as if the layer and its stack lacked it")


def _same(dist: Distribution | None, version: str) -> bool:
    if dist is None:
        return False
    try:
        return Version(dist.winner.version) == Version(version)
    except InvalidVersion:
        return dist.winner.version == version


def resolved_pins(text: str) -> dict[str, tuple[str, str]]:
    """``name==version`` lines of ``uv pip compile``'s output: key -> (name, version)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        spec = next(iter(req.specifier), None)
        if spec is not None and spec.operator == "==":
            pins[canonicalize_name(req.name)] = (req.name, spec.version)
    return pins


def run_uv(uv: Path, args: list[str], env: dict[str, str], what: str) -> None:
    """One uv run; a failure is a UserError showing uv's last lines."""
    progress(what)
    result = subprocess.run([str(uv), *args], env=env, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).strip().splitlines()
                 if line.strip()][-8:]
        shown = "\n".join("  | " + line for line in lines) or "  | (no output)"
        raise UserError(f"{what} failed (uv exit {result.returncode}):\n{shown}")


def write_stub_wheel(dist: Distribution, outdir: Path) -> bool:
    """A metadata-only wheel of ``dist`` (name, version, requirements) for uv's resolver;
    False when its name or version is not one a wheel can carry."""
    win = dist.winner
    try:
        version = str(Version(win.version))
    except InvalidVersion:
        return False
    if win.key in ("", "unknown"):
        return False
    stem = f"{win.key.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    requires = "".join(f"Requires-Dist: {line}\n" for line in win.requires
                       if _readable(line))
    files = {
        f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: {win.name}\nVersion: {version}\n"
                             f"{requires}").encode(),
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: layervenv\nRoot-Is-Purelib: true\n"
                          f"Tag: {STUB_TAG}\n").encode(),
    }
    files[f"{info}/RECORD"] = wheel_record(files, f"{info}/RECORD")
    with zipfile.ZipFile(outdir / f"{stem}-{STUB_TAG}.whl", "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return True


def _readable(line: str) -> bool:
    try:
        Requirement(line)
    except InvalidRequirement:
        return False
    return True


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
    parser.add_argument("--installer", choices=INSTALLERS, default="pip",
                        help="pip (default: the layer's own) or uv (on PATH), which is "
                             "made to see the stack")
    add_sources(parser)
    add_format(parser)
    return parser
