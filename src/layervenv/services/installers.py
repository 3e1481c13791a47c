"""pip and uv behind one interface: what puts packages into a layer, chosen by name.

Every command that installs packages goes through an :class:`Installer`: ``install``
(``--installer pip|uv``), ``kernel install --install-ipykernel`` (pip), and the engines
of ``create --from`` and ``rebase`` (:mod:`layervenv.services.locked`,
:mod:`layervenv.services.rebasing`); ``lock`` asks pip's resolver through it too.  So
how a tool is run (its environment, the user's sources, how a failure is shown) is
written once per tool, and a command names the tool, never its command line.

The interface is :meth:`Installer.install`: requirements into a live layer.  What only
pip does is :class:`PipInstaller`'s own: a resolution as a report (``--dry-run
--report``), exact files fetched without resolving (``download``/``wheel
--no-deps``), and an editable install into a staged layer; the staged layers of
``create --from`` and ``rebase`` are filled with those and ``installer``.

uv only sees the interpreter's own site-packages, never PYTHONPATH, so on its own it
re-installs what the stack provides and fails on a request for the stack's own version.
:class:`UvInstaller` resolves with the stack in sight: every distribution of the layer's
effective view becomes a metadata-only *stub* wheel (its name, version and requirements)
in a find-links directory of its own, and a preferences file pins them (``uv pip
compile`` keeps the versions already in its output file and moves one only when a
request or a dependency needs it).  Only the resolved pins whose version differs from
the one that wins in the layer are then installed, with ``--no-deps``, from the real
sources -- a stub never is (its version is the one already there).  uv marks every
distribution named on its command line REQUESTED; the marker is removed from those the
user did not name, so ``layervenv lock`` records only what was asked for.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from layervenv.dists.record import wheel_record
from layervenv.infra.errors import UserError
from layervenv.infra.output import progress
from layervenv.services.packages import (
    Sources,
    StagingTarget,
    pip_environment,
    pip_report,
    retarget_scripts,
    run_pip,
    wheels_in,
)

if TYPE_CHECKING:  # only read, never imported at run time: kernel install stays light
    from layervenv.inspection.effective_view import Distribution

#: Where a stub wheel says it came from (never installed; shows up in uv's errors only).
STUB_TAG = "py3-none-any"


@dataclass(frozen=True)
class InstallTarget:
    """A live layer as an installer sees it: its interpreter and site-packages, the
    environment it runs in (the stack's with the layer's: ``layer_environment``) and what
    it already sees (its effective view: uv needs it, pip sees the stack itself)."""

    python: Path
    site_packages: Path
    environ: dict[str, str]
    view: Sequence[Distribution] = ()


class Installer(ABC):
    """One tool that installs requirements into a layer, with the user's sources."""

    #: the name ``--installer`` gives it
    name: ClassVar[str]

    def __init__(self, sources: Sources | None = None) -> None:
        self.sources = sources or Sources()

    @classmethod
    def ready(cls, sources: Sources | None = None) -> Installer:
        """The installer, or a one-line refusal when its tool is not here."""
        return cls(sources)

    @abstractmethod
    def install(self, target: InstallTarget, requirements: Sequence[str],
                requested: Collection[str] = (), what: str | None = None) -> list[str]:
        """Install ``requirements`` into ``target``; the notes to show the user.

        ``requested``: the canonical names the user asked for (only those stay marked
        REQUESTED); ``what``: the progress line (default: the requirements and the tool).
        """


class PipInstaller(Installer):
    """The layer's own ``python -m pip``, in the layer's environment: it sees the stack
    on PYTHONPATH and installs only the difference."""

    name = "pip"

    def install(self, target: InstallTarget, requirements: Sequence[str],
                requested: Collection[str] = (), what: str | None = None) -> list[str]:
        run_pip(target.python, ["install", "-q", *requirements], target.environ,
                what or f"installing {' '.join(requirements)} with pip", self.sources)
        return []

    def report(self, python: Path, requirements: Sequence[str], environ: dict[str, str],
               extra: Sequence[str] = (), what: str = "resolving") -> dict[str, Any]:
        """What pip would install for ``requirements``, and from where (its JSON report)."""
        return pip_report(python, requirements, environ, self.sources, extra, what)

    def fetch(self, python: Path, lines: Sequence[str], out: Path, environ: dict[str, str],
              what: str, binary_only: bool = False) -> dict[str, Path]:
        """``{name: wheel}`` for exactly the requirement ``lines``, nothing resolved
        (``--no-deps``): downloaded wheels (``binary_only``), else wheels pip builds.

        The lines go to pip in a requirements file (``-r``): a line with ``--hash``
        options is read as pip reads a lock's lines.
        """
        requirements = out.with_name(out.name + ".txt")
        requirements.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        args = (["download", "--only-binary", ":all:", "-d", str(out)] if binary_only
                else ["wheel", "-w", str(out)])
        run_pip(python, [*args, "--no-deps", "-q", "-r", str(requirements)], environ, what,
                self.sources)
        return wheels_in(out)

    def install_editable(self, target: StagingTarget, project: str, environ: dict[str, str],
                         requested: bool) -> None:
        """``pip install -e`` into a staged layer, then point its console scripts at the
        final path (pip wrote the staging interpreter's)."""
        scheme = target.scheme
        before = {p.name for p in scheme.scripts_dir.iterdir()}
        infos = set(scheme.site_packages.glob("*.dist-info"))
        run_pip(scheme.python, ["install", "--no-deps", "-q", "-e", project], environ,
                f"installing {project} (editable)", self.sources)
        retarget_scripts(target, before)
        if not requested:
            for info in set(scheme.site_packages.glob("*.dist-info")) - infos:
                (info / "REQUESTED").unlink(missing_ok=True)


class UvInstaller(Installer):
    """uv from PATH, made to see the stack (see the module's text)."""

    name = "uv"

    def __init__(self, sources: Sources | None = None, executable: Path | None = None) -> None:
        super().__init__(sources)
        self.executable = executable or Path("uv")

    @classmethod
    def ready(cls, sources: Sources | None = None) -> UvInstaller:
        found = shutil.which("uv")
        if found is None:
            raise UserError("--installer uv needs uv on PATH (https://docs.astral.sh/uv/)")
        return cls(sources, Path(found))

    def install(self, target: InstallTarget, requirements: Sequence[str],
                requested: Collection[str] = (), what: str | None = None) -> list[str]:
        """Resolve with the stack in sight, install the difference; the notes to show (the
        distributions uv could not be told about)."""
        present = {d.key: d for d in target.view if d.winner.origin != "user-site"}
        env = pip_environment(target.environ)
        source_args = uv_source_args(self.sources, target.environ)
        with tempfile.TemporaryDirectory(prefix="layervenv-uv-") as tmp:
            pins, notes = self._resolve(Path(tmp), target, list(requirements), present,
                                        env, source_args)
        changes = [f"{name}=={version}" for key, (name, version) in pins.items()
                   if not _same(present.get(key), version)]
        if not changes:
            return notes
        before = set(target.site_packages.glob("*.dist-info"))
        run_uv(self.executable, ["pip", "install", "--quiet", "--no-deps", "--python",
                                 str(target.python), *source_args, *changes], env,
               what or f"installing {' '.join(changes)} with uv")
        for info in set(target.site_packages.glob("*.dist-info")) - before:
            name = info.name[:-len(".dist-info")].partition("-")[0]
            if canonicalize_name(name) not in requested:
                (info / "REQUESTED").unlink(missing_ok=True)
        return notes

    def _resolve(self, tmp: Path, target: InstallTarget, requirements: list[str],
                 present: dict[str, Distribution], env: dict[str, str],
                 source_args: list[str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
        """``uv pip compile`` of ``requirements`` with a stub of every distribution the
        layer has: the pins, and a note for each distribution no stub could stand for."""
        stubs = tmp / "stubs"
        stubs.mkdir()
        prefs = tmp / "requirements.txt"
        lines, notes = [], []
        for dist in present.values():
            if write_stub_wheel(dist, stubs):
                lines.append(f"{dist.winner.name}=={dist.winner.version}")
            else:
                notes.append(left_out_note(dist))
        prefs.write_text("\n".join(lines) + "\n", encoding="utf-8")
        request = tmp / "request.in"
        request.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        run_uv(self.executable, ["pip", "compile", str(request), "-o", str(prefs), "--quiet",
                                 "--no-header", "--no-annotate", "--python",
                                 str(target.python), "--find-links", str(stubs),
                                 *source_args], env,
               f"resolving {' '.join(requirements)} with uv over the stack")
        return resolved_pins(prefs.read_text(encoding="utf-8")), notes


#: Every installer, by the name ``--installer`` gives it.
INSTALLERS: dict[str, type[Installer]] = {"pip": PipInstaller, "uv": UvInstaller}


def installer_type(name: str) -> type[Installer]:
    """The installer called ``name``, or a one-line refusal."""
    try:
        return INSTALLERS[name]
    except KeyError:
        raise UserError(f"unknown installer {name!r} (pip or uv)") from None


# ---------------------------------------------------------------------------------------
# uv's side: its sources, its runs, the stub wheels that stand for the stack
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
