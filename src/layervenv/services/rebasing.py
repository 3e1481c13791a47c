"""The engine of ``rebase``: the layer's requested packages again, on another stack.

The new layer is built by :mod:`layervenv.services.staging` (as ``create --clear``
builds one); :class:`Rebase` fills it while it is staged.  Its own pip resolves what
the user asked for (the old layer's ``REQUESTED`` packages) against the *new* stack
(``install --dry-run --report``, so what the new stack already provides is not
installed again): pinned to the old versions, and where a pin does not resolve there
any more, unpinned to the newest compatible version.  The wheels are fetched by that
pip and installed with ``installer``; editable projects are installed again with
``pip install -e``.  Before the swap the old layer's packages are compared with what
was read at the start, so a ``pip install`` run in it meanwhile is not lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from layervenv.dists.direct_url import editable_project, is_editable
from layervenv.infra.errors import UserError
from layervenv.inspection.checks import run_checks
from layervenv.interp.interpreter import Interpreter
from layervenv.interp.stack_contents import stack_distributions
from layervenv.model.layer import Layer, is_layer, site_snapshot
from layervenv.model.lockfile import Installed, direct_reference, layer_distributions, url_to_path
from layervenv.runtime.activation import over_missing
from layervenv.services.installers import PipInstaller
from layervenv.services.packages import (
    PipFailed,
    Sources,
    StagingTarget,
    file_sha256,
    fresh_directory,
    remove_directory,
    report_sha256,
)
from layervenv.services.staging import (
    compile_staged,
    open_group_layer,
    refuse_over_itself,
    refuse_over_with_stack,
    staging_target,
)


class LayerChanged(UserError):
    """The layer's packages changed while it was being rebased (a pip run in it)."""


def resolve(target: StagingTarget, wanted: dict[str, str], environ: dict[str, str],
            pip: PipInstaller, direct: Sequence[str] = ()
            ) -> tuple[dict[str, Any], dict[str, str]]:
    """pip's report for ``wanted`` (name -> old version) and ``direct`` (URLs) on the new stack.

    Pinned first; if that fails, each pin is tried alone and those that do not
    resolve are unpinned.  Returns the report and the unpinned names with pip's reason.
    """
    def specs(unpinned: dict[str, str]) -> list[str]:
        return [*direct, *(name if name in unpinned else f"{name}=={version}"
                           for name, version in wanted.items())]

    def report(requirements: list[str]) -> dict[str, Any]:
        return pip.report(target.scheme.python, requirements, environ, extra=["--upgrade"],
                          what="resolving " + " ".join(requirements) + " on the new stack")

    if not wanted and not direct:
        return {"install": []}, {}
    try:
        return report(specs({})), {}
    except PipFailed as error:
        first = error
    unpinned = {}
    for name, version in wanted.items():
        try:
            report([f"{name}=={version}"])
        except PipFailed as error:
            unpinned[name] = str(error).splitlines()[-1].strip(" |")
    if not unpinned:
        raise first
    return report(specs(unpinned)), unpinned


def fetch_reported(items: list[dict[str, Any]], target: StagingTarget, environ: dict[str, str],
                   pip: PipInstaller, workdir: Path) -> dict[str, Path]:
    """Wheel files for pip's ``install`` items: local wheels as they are, others via pip."""
    found: dict[str, Path] = {}
    remote = []
    for item in items:
        name = canonicalize_name(item["metadata"]["name"])
        info = item["download_info"]
        local = url_to_path(info["url"])
        if local and local.endswith(".whl") and "archive_info" in info:
            digest = report_sha256(item)
            if digest and file_sha256(Path(local)) != digest:
                raise UserError(f"{local} changed while rebasing (sha256 differs)")
            found[name] = Path(local)
        else:
            remote.append((name, direct_reference(info)))
    if remote:
        found.update(pip.fetch(target.scheme.python, [url for _, url in remote],
                               workdir / "wheels", environ,
                               "fetching " + ", ".join(name for name, _ in remote)))
    return found


@dataclass
class Rebase:
    """The ``create`` hooks of ``rebase``, and what they found out."""

    old: Layer
    installed: list[Installed]
    sources: Sources
    python_version: str = ""
    unpinned: dict[str, str] = field(default_factory=dict)
    new_layer: dict[str, str] = field(default_factory=dict)
    new_stack: dict[str, str] = field(default_factory=dict)
    problems: list[str] | None = None
    old_problems: list[str] | None = None
    #: the old layer's packages when they were read (see :meth:`verify`)
    snapshot: frozenset[tuple[str, int, int]] = frozenset()

    def before(self, interp: Interpreter, environ: dict[str, str]) -> None:
        self.python_version = interp.version

    def verify(self, where: Path) -> None:
        """Refuse the swap if the old layer (now at ``where``) has other packages than
        those read at the start: a ``pip install`` run from the layer meanwhile, which
        the new layer would silently drop.  Called just before and just after the old
        layer leaves its path, so a pip that was writing in it is caught either way."""
        if site_snapshot(where / self.old.config.purelib) != self.snapshot:
            raise LayerChanged(f"the packages of {self.old.root} changed while it was being "
                               "rebased (pip ran in it?); nothing was changed: rebase again "
                               "when that has finished")

    def old_names(self) -> set[str]:
        return {d.name for d in self.installed}

    def asked_for(self) -> tuple[list[Installed], list[str], dict[str, str]]:
        """What the user asked for in the old layer, to ask for again on the new stack:
        its editable projects, its direct references (a VCS, an archive or a project
        directory, PEP 610: again from there) and ``name -> old version`` of the rest,
        with the stack's packages the layer recorded as requested."""
        requested = [d for d in self.installed if d.requested]
        editables = [d for d in requested if is_editable(d.direct_url)]
        direct = [direct_reference(d.direct_url) for d in requested
                  if d not in editables and d.direct_url and "url" in d.direct_url]
        wanted = {d.name: d.version for d in requested
                  if d not in editables and not (d.direct_url and "url" in d.direct_url)}
        for entry in self.old.config.requested_from_stack:
            name, _, version = entry.partition("==")
            if name and version and name not in self.old_names():
                wanted.setdefault(name, version)
        return editables, direct, wanted

    def populate(self, staging: Path, layer: Layer, interp: Interpreter,
                 environ: dict[str, str]) -> None:
        target = staging_target(staging, layer, interp)
        editables, direct, wanted = self.asked_for()
        pip = PipInstaller(self.sources)
        report, self.unpinned = resolve(target, wanted, environ, pip, direct)
        install_reported(report.get("install", []), editables, target, environ, pip)
        self.new_layer = {d.name: d.version
                          for d in layer_distributions(target.scheme.site_packages)}
        layer.config.requested_from_stack = sorted(
            f"{n}=={v}" for n, v in wanted.items() if n not in self.new_layer)
        self.new_stack = stack_distributions(
            interp.executable, environ, exclude=[staging, self.old.root]).distributions
        compile_staged(staging, layer, interp, environ)  # checked as it will be: compiled
        # Last, when nothing can fail any more: check may run the old layer's interpreter.
        # (checked where it is staged, for the path it will have: not a moved layer)
        staged = Layer(root=staging, config=replace(layer.config, path=str(staging)))
        self.problems = run_checks(staged, environ, shown_as=self.old.root).lines()


def install_reported(items: list[dict[str, Any]], editables: list[Installed],
                     target: StagingTarget, environ: dict[str, str], pip: PipInstaller) -> None:
    """Install pip's resolution (its report's ``install`` items) and the editable
    projects into the staged layer; the seeded pip gives way to a resolved one."""
    workdir = fresh_directory("layervenv-rebase-")
    try:
        wheels = fetch_reported(items, target, environ, pip, workdir)
        for dist in editables:
            pip.install_editable(target, editable_project(dist.direct_url) or "", environ, True)
        if any(item["metadata"]["name"].lower() == "pip" for item in items):
            target.remove("pip")
        for item in items:
            wheel = wheels.get(canonicalize_name(item["metadata"]["name"]))
            if wheel is None:
                raise UserError(f"pip fetched no wheel for {item['metadata']['name']}")
            target.install(wheel, bool(item.get("requested")),
                           item["download_info"] if item.get("is_direct") else None)
    finally:
        remove_directory(workdir)


def onto_group(old: Layer, setup: str | None, python: str | None,
               over: str | None) -> str | None:
    """The group layer the rebased layer will stand on (``None``: the stack of ``--setup``
    or ``--python``), or a one-line refusal before anything runs.

    ``--over GROUP`` moves the layer onto GROUP, exactly as ``create --over GROUP`` makes
    one.  A layer over a group layer given none of the three is rebased onto the same
    group layer as it is now (the group may have rebased it); given ``--setup`` or
    ``--python`` it is refused: it would lose the group's packages.
    """
    refuse_over_with_stack(over, setup, python)
    current = old.config.stack.over_layers()
    if current and (setup or python):
        raise UserError(f"{old.root} stands on the group layer {current[0].root} (create "
                        f"--over): rebase it with --over NEW_GROUP, or with neither --setup "
                        f"nor --python onto that group layer as it is now; "
                        f"--{'setup' if setup else 'python'} would drop the group's packages "
                        "(nothing was changed)")
    if not (setup or python or over):
        if not current:
            raise UserError("rebase needs the new stack: --setup CMD, --python PATH or "
                            "--over GROUP")
        over = current[0].root
        if not is_layer(Path(over)):
            raise UserError(over_missing(over, current[0].site_packages)
                            + f"; rebase {old.root} --over NEW_GROUP moves it onto another")
    if over:
        refuse_over_itself(old.root, open_group_layer(over))
    return over
