"""``layervenv rebase [DIR] --setup CMD | --python PATH | --over GROUP``: the layer, moved
onto another stack (with ``--over``: onto a group's layer, as ``create --over`` makes one).

The new layer is built as ``create --clear`` builds one: in a hidden staging
directory beside the old layer, every file pointing at the final path.  Its own pip
resolves what the user asked for (the old layer's ``REQUESTED`` packages) against
the *new* stack (``install --dry-run --report``, so what the new stack already
provides is not installed again): pinned to the old versions, and where a pin does
not resolve there any more, unpinned to the newest compatible version (reported).
The wheels are fetched by that pip and installed with ``installer``; editable
projects are installed again with ``pip install -e``.  Only then is the old layer
renamed aside, the new one renamed into place and the old one removed; a failure or
Ctrl-C before that removes the staging directory and leaves the old layer as it was.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from layervenv.dists.direct_url import editable_project, is_editable
from layervenv.infra.arguments import add_active_dir, add_format, add_sources
from layervenv.infra.errors import UserError
from layervenv.infra.writelock import layer_write_lock
from layervenv.inspection.checks import problems_line, run_checks
from layervenv.interp.interpreter import Interpreter
from layervenv.interp.stack_contents import stack_distributions
from layervenv.model.layer import Layer, is_layer, site_snapshot
from layervenv.model.lockfile import Installed, direct_reference, layer_distributions, url_to_path
from layervenv.runtime.activation import over_missing, without_active_environment
from layervenv.services.packages import (
    PipFailed,
    Sources,
    StagingTarget,
    file_sha256,
    fresh_directory,
    pip_report,
    remove_directory,
    report_sha256,
    run_pip,
    wheels_in,
)
from layervenv.services.staging import (
    CreateOptions,
    carried_over_line,
    compile_staged,
    create,
    open_group_layer,
    refuse_over_itself,
    refuse_over_with_stack,
    staging_target,
)


class LayerChanged(UserError):
    """The layer's packages changed while it was being rebased (a pip run in it)."""


def resolve(target: StagingTarget, wanted: dict[str, str], environ: dict[str, str],
            sources: Sources, direct: Sequence[str] = ()
            ) -> tuple[dict[str, Any], dict[str, str]]:
    """pip's report for ``wanted`` (name -> old version) and ``direct`` (URLs) on the new stack.

    Pinned first; if that fails, each pin is tried alone and those that do not
    resolve are unpinned.  Returns the report and the unpinned names with pip's reason.
    """
    def specs(unpinned: dict[str, str]) -> list[str]:
        return [*direct, *(name if name in unpinned else f"{name}=={version}"
                           for name, version in wanted.items())]

    def report(requirements: list[str]) -> dict[str, Any]:
        return pip_report(target.scheme.python, requirements, environ, sources, extra=["--upgrade"],
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
                   sources: Sources, workdir: Path) -> dict[str, Path]:
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
        requirements = workdir / "wheel.txt"
        requirements.write_text("".join(url + "\n" for _, url in remote), encoding="utf-8")
        run_pip(target.scheme.python, ["wheel", "--no-deps", "-q", "-w", str(workdir / "wheels"),
                                "-r", str(requirements)], environ,
                "fetching " + ", ".join(name for name, _ in remote), sources)
        found.update(wheels_in(workdir / "wheels"))
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

    def populate(self, staging: Path, layer: Layer, interp: Interpreter,
                 environ: dict[str, str]) -> None:
        target = staging_target(staging, layer, interp)
        requested = [d for d in self.installed if d.requested]
        editables = [d for d in requested if is_editable(d.direct_url)]
        # from a VCS, an archive or a project directory (PEP 610): again from there
        direct = [direct_reference(d.direct_url) for d in requested
                  if d not in editables and d.direct_url and "url" in d.direct_url]
        wanted = {d.name: d.version for d in requested
                  if d not in editables and not (d.direct_url and "url" in d.direct_url)}
        for entry in self.old.config.requested_from_stack:
            name, _, version = entry.partition("==")
            if name and version and name not in self.old_names():
                wanted.setdefault(name, version)
        report, self.unpinned = resolve(target, wanted, environ, self.sources, direct)
        items = report.get("install", [])
        workdir = fresh_directory("layervenv-rebase-")
        try:
            wheels = fetch_reported(items, target, environ, self.sources, workdir)
            for dist in editables:
                target.install_editable(editable_project(dist.direct_url) or "",
                                        environ, self.sources, True)
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


@dataclass
class RebaseResult:
    path: str
    old_stack: str
    new_stack: str
    python: list[str]
    dropped: dict[str, dict[str, str]]
    moved: dict[str, list[str]]
    added: dict[str, str]
    removed: dict[str, str]
    unpinned: dict[str, str]
    packages: dict[str, str]
    problems: list[str] | None
    new_problems: list[str] | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: entries of the layer directory that are not the layer's (pip's ``src/``, the
    #: user's files), moved into the new layer as they were
    carried_over: list[str] = field(default_factory=list)

    def human(self) -> str:
        old, new = self.python
        lines = [f"rebased {self.path} onto {self.new_stack} "
                 f"(Python {old}{' -> ' + new if new != old else ''}) in {self.seconds:.2f} s"]
        # pip's own reason with each: "not found" (where pip looks lacks it) and "a
        # conflict on the new stack" call for different fixes
        for name, versions in sorted(self.dropped.items()):
            why = (f" ({versions['layer']} does not resolve on the new stack: "
                   f"{self.unpinned[name]})" if name in self.unpinned else "")
            lines.append(f"  dropped  {name} {versions['layer']}: the new stack provides "
                         f"{versions['stack']}{why}")
        for name, (before, after) in sorted(self.moved.items()):
            why = (" (the old version does not resolve on the new stack: newest compatible; "
                   f"{self.unpinned[name]})" if name in self.unpinned else "")
            lines.append(f"  moved    {name} {before} -> {after}{why}")
        for name, version in sorted(self.added.items()):
            lines.append(f"  added    {name} {version}")
        for name, version in sorted(self.removed.items()):
            lines.append(f"  removed  {name} {version} (no longer needed)")
        for name in sorted(set(self.unpinned) - set(self.moved) - set(self.dropped)):
            lines.append(f"  unpinned {name}: {self.unpinned[name]}")
        kept = [f"{n} {v}" for n, v in sorted(self.packages.items())
                if n not in self.moved and n not in self.added]
        if kept:
            lines.append("  kept     " + ", ".join(kept))
        if self.carried_over:
            lines.append("  " + carried_over_line(self.carried_over))
        if self.problems is None:
            lines.append(problems_line(None))
        elif self.new_problems:
            lines.append("new problems (layervenv check):")
            lines += ["  " + p for p in self.new_problems]
        else:
            lines.append("check: no new problems")
        return "\n".join(lines + self.notes)


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


def rebase(directory: str | None, setup: str | None, python: str | None, sources: Sources,
           environ: dict[str, str] | None = None, over: str | None = None) -> RebaseResult:
    start = time.perf_counter()
    # the user's own pip configuration (PIP_FIND_LINKS, PIP_INDEX_URL, pip.conf's place):
    # the new stack's setup starts from a clean login, which has none of it
    sources = sources.with_configuration(dict(os.environ if environ is None else environ))
    old = Layer.from_argument(directory)
    over = onto_group(old, setup, python, over)
    with layer_write_lock(old.root, "rebase"):
        return _rebase(old, setup, python, over, sources, environ, start)


def _rebase(old: Layer, setup: str | None, python: str | None, over: str | None,
            sources: Sources, environ: dict[str, str] | None, start: float) -> RebaseResult:
    snapshot = site_snapshot(old.site_packages)
    installed = layer_distributions(old.site_packages)
    extension = Rebase(old=old, installed=installed, sources=sources, snapshot=snapshot)
    # The old layer's problems, as it runs now: only those the rebase adds are news.
    extension.old_problems = run_checks(old, environ).lines()
    options = CreateOptions(
        directory=str(old.root), python=python, prompt=old.given_prompt(), clear=True,
        export_pythonpath=old.config.export_pythonpath, prompt_hook=old.config.prompt_hook,
        # neither the layer nor the group layers it stood on are part of the new stack
        environ=without_active_environment(
            dict(os.environ if environ is None else environ), also=old.root,
            over=tuple(o.root for o in old.config.stack.over_layers())),
        setup=setup, rerun_setup=bool(setup) and old.config.stack.rerun_setup,
        extension=extension, over=over,
    )
    try:
        created = create(options)
    except LayerChanged:
        raise
    except UserError as error:
        error.args = (f"{error}\nnothing was changed: {old.root} is still the layer it was",)
        raise
    before = {d.name: d.version for d in installed}
    after = extension.new_layer
    stack = extension.new_stack
    gone = {n: v for n, v in before.items() if n not in after}
    new_problems = None
    if extension.problems is not None:
        old_set = set(extension.old_problems or [])
        new_problems = [p for p in extension.problems if p not in old_set]
    old_record = old.config.stack
    notes = _notes(old, dict(os.environ if environ is None else environ), setup, python)
    return RebaseResult(
        path=created.path,
        old_stack=_described(old_record.over_layers()[0].root if old_record.over_layers()
                             else None, old_record.setup or old_record.python),
        new_stack=_described(over, setup or created.python),
        python=[old_record.python_version, extension.python_version],
        dropped={n: {"layer": v, "stack": stack[n]} for n, v in gone.items() if n in stack},
        moved={n: [v, after[n]] for n, v in before.items() if n in after and after[n] != v},
        added={n: v for n, v in after.items() if n not in before},
        removed={n: v for n, v in gone.items() if n not in stack},
        unpinned=extension.unpinned,
        packages=after,
        problems=extension.problems,
        new_problems=new_problems,
        seconds=round(time.perf_counter() - start, 3),
        notes=created.notes + notes,
        carried_over=created.carried_over,
    )


def _described(over: str | None, stack: str) -> str:
    """How the report names a stack: the group layer a layer stands on, else the stack."""
    return f"the group layer {over}" if over else stack


def _notes(old: Layer, environ: dict[str, str], setup: str | None,
           python: str | None) -> list[str]:
    """What the user must know after the swap: a shell still on the old stack, a setup
    command no longer recorded."""
    notes = []
    active = environ.get("VIRTUAL_ENV")
    if active and os.path.realpath(active) == os.path.realpath(old.root):
        notes.append("the layer is active in this shell, still with the old stack's "
                     "environment: deactivate, then activate it again (set up the new stack "
                     "first if the layer has no --setup)")
    if python and not setup and old.config.stack.setup:
        notes.append(f"the old setup command is no longer recorded ({old.config.stack.setup}): "
                     "the new layer stands on this shell's stack; rebase with --setup to "
                     "record the new stack's")
    return notes


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv rebase``'s options and help."""
    parser = commands.add_parser("rebase",
                                 help="move a layer onto another stack (new release)",
                                 description="Re-create the layer's requested packages on "
                                             "another stack beside it, and swap it in only "
                                             "when complete.")
    add_active_dir(parser)
    parser.add_argument("--setup", metavar="CMD", help="command that sets the new stack up")
    parser.add_argument("--python", metavar="PYTHON",
                        help="the new stack's interpreter (a path, command or version)")
    parser.add_argument("--over", metavar="GROUP",
                        help="move the layer onto the group layer GROUP (a group's layer over "
                             "the next release), as 'create --over GROUP' makes one; a layer "
                             "over a group layer rebased without --over, --setup or --python "
                             "stays on its group layer as that is now")
    add_sources(parser)
    add_format(parser)
    return parser
