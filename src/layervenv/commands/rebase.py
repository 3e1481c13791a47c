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
How: :mod:`layervenv.services.rebasing`, inside the engine of ``create``
(:mod:`layervenv.services.staging`).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field

from layervenv.infra.arguments import add_active_dir, add_format, add_sources
from layervenv.infra.errors import UserError
from layervenv.infra.writelock import layer_write_lock
from layervenv.inspection.checks import problems_line, run_checks
from layervenv.model.layer import Layer, site_snapshot
from layervenv.model.lockfile import layer_distributions
from layervenv.runtime.activation import without_active_environment
from layervenv.services.packages import Sources
from layervenv.services.rebasing import LayerChanged, Rebase, onto_group
from layervenv.services.staging import CreateOptions, carried_over_line, create


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
