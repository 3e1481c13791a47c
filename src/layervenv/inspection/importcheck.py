"""``check --imports``: the proof of what the layer's changes break, by importing.

``check`` predicts from metadata and files; this imports, in the layer's own
interpreter and the environment ``check``'s probe ran in, the top-level modules (and
the public submodules right below them, see ``importer.py``) of every distribution
the layer's changes can reach: the stack distributions that depend, directly or
through others, on a distribution the layer (or an editable or user-site copy)
provides, and the layer's own distributions.  Each distribution is imported in its
own process with a time limit, several at once (one per CPU).  That process is a
process group of its own, killed whole on a timeout, on Ctrl-C, and when the imports
have returned: a module that forks a server as it is imported is not a timeout (the
imports returned; a warning says a process lingered), and the server does not outlive
the check.

A failure of a stack distribution's module is imported again by the stack's own
interpreter in the same environment (:func:`stack_alone`): the stack without the layer.
(The layer's python with its boot hook off is not that: on a stack whose packages are
the interpreter's own site-packages -- conda, a container -- the layer's site-packages
still comes first there, as in any venv.) A top-level module that fails there too, the
same way, is a warning (the layer did not cause it), a submodule that fails there too
the same way is left out (optional dependencies: ``pythran.magic`` needs IPython).
Everything else that fails is an ``import`` error.

Importing runs the packages' code, which is why this is opt-in.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from layervenv.dists.files import top_level_modules
from layervenv.inspection.breakage import changed, stack_dependents, undeclared_dependents
from layervenv.inspection.effective_view import Distribution
from layervenv.inspection.package_problems import requirement_problems
from layervenv.inspection.pipeline import Inspection
from layervenv.inspection.problems import Problem
from layervenv.interp.query import QueryBatch, QueryFailed, ended, query

#: the query script run in the layer's interpreter (``layervenv.interp``)
IMPORTER_SCRIPT = "importer.py"
#: seconds one distribution's imports may take
IMPORT_TIMEOUT = 60.0
OWN_ORIGINS = ("layer", "editable")
#: ``LAYERVENV_IMPORTS_FORK=0`` in the tool's environment: one process per distribution
FORK_SWITCH = "LAYERVENV_IMPORTS_FORK"


@dataclass
class Target:
    """A distribution to import, and the names ``import`` takes for it."""

    dist: Distribution
    modules: list[str]

    @property
    def from_stack(self) -> bool:
        return self.dist.winner.origin == "stack"


def import_targets(inspection: Inspection) -> list[Target]:
    """The layer's own distributions, then the stack distributions its changes reach."""
    assert inspection.report is not None
    view = inspection.view
    by_key = {d.key: d for d in view}
    _, edges = requirement_problems(view, inspection.report["markers"])
    provided = [d.key for d in view if d.winner.origin != "stack"]
    keys = [d.key for d in view if d.winner.origin in OWN_ORIGINS]
    reached = stack_dependents(provided, view, edges)
    for dist, hidden in changed(view):  # what imports it without declaring it
        undeclared = undeclared_dependents(dist, hidden, view, edges, set(reached))
        reached += [k for k in [*undeclared, *stack_dependents(undeclared, view, edges)]
                    if k not in reached]
    keys += reached
    targets = []
    for key in keys:
        modules = top_level_modules(by_key[key].winner.metadata)
        if modules:
            targets.append(Target(by_key[key], modules))
    return targets


@dataclass
class Outcome:
    """What one interpreter run said: the failed modules, or why it gave no answer;
    ``lingered``: a process the imports started was still running once they had
    returned (it was killed; the imports did not fail)."""

    failed: dict[str, str]
    broken: str | None = None
    lingered: bool = False


def run_imports(python: Path, environ: dict[str, str], cwd: Path, modules: list[str],
                deep: bool, timeout: float, batch: QueryBatch | None = None) -> Outcome:
    """Import ``modules`` in one run of ``python``; which failed, with their last line.

    An interpreter that gives no report is this target's outcome, not an error of the
    whole check: the others are still imported.  The run is one process group, killed
    whole at the end (see ``interp.query``)."""
    args = [*(["--deep"] if deep else []), *modules]
    try:
        answer = query(python, IMPORTER_SCRIPT, args, env=environ, timeout=timeout, cwd=cwd,
                       batch=batch)
    except QueryFailed as error:
        if error.timed_out:
            return Outcome({}, f"importing did not finish within {timeout:g} s")
        if error.status is None:
            return Outcome({}, str(error))
        return Outcome({}, f"the interpreter ended while importing ({ended(error.status)}): "
                           f"{error.last_line}")
    return Outcome(dict(answer.value.get("failed", {})), lingered=answer.lingered)


def shared_modules(inspection: Inspection, targets: list[Target]) -> list[str]:
    """What the forked imports share: the top-level modules of the targets that are the
    layer's copies of a stack distribution (``changed``), which the reached stack
    distributions import."""
    changed_keys = {dist.key for dist, _ in changed(inspection.view)}
    return [m for t in targets if t.dist.key in changed_keys for m in t.modules]


def forked_outcomes(inspection: Inspection, targets: list[Target], timeout: float,
                    jobs: int, batch: QueryBatch) -> list[Outcome | None] | None:
    """Each target's outcome from one importer that imports :func:`shared_modules` once
    and forks a child per target; None where that cannot be done safely (see the module
    docstring): the caller imports each in a process of its own."""
    if os.environ.get(FORK_SWITCH, "1") == "0" or not hasattr(os, "fork"):
        return None
    shared = shared_modules(inspection, targets)
    if not shared:
        return None
    layer = inspection.layer
    request = {"shared": shared, "targets": [t.modules for t in targets],
               "timeout": timeout, "jobs": jobs}
    # the whole run's limit: the shared imports, then every round of children
    limit = timeout * (1 + math.ceil(len(targets) / jobs)) + 30
    try:
        answer = query(layer.python, IMPORTER_SCRIPT, ["--fork"], env=inspection.environ,
                       timeout=limit, cwd=layer.root, stdin=json.dumps(request), batch=batch)
    except QueryFailed:
        return None
    value = answer.value
    if answer.lingered or not isinstance(value, dict) or not value.get("forked"):
        return None  # lingered: the shared imports left a process (said by a fresh run)
    results = value.get("results")
    if not isinstance(results, list) or len(results) != len(targets):
        return None
    outcomes: list[Outcome | None] = []
    for result in results:
        if not isinstance(result, dict):
            outcomes.append(None)
        elif result.get("timed_out"):
            outcomes.append(Outcome({}, f"importing did not finish within {timeout:g} s"))
        elif "status" in result:
            outcomes.append(None)  # a crash: said as a process of its own says it
        else:
            failed = result.get("failed")
            if isinstance(failed, dict) and all(isinstance(v, str) for v in failed.values()):
                outcomes.append(Outcome(dict(failed), lingered=bool(result.get("lingered"))))
            else:
                outcomes.append(None)
    return outcomes


def stack_alone(inspection: Inspection) -> tuple[Path, dict[str, str]]:
    """The stack without the layer: its recorded interpreter, in the layer's environment,
    with the user site off when the layer's interpreter has it off (a venv does; the
    stack's python run directly would add ~/.local)."""
    environ = dict(inspection.environ, LAYERVENV_BOOT_DISABLE="1")
    if inspection.report is not None and not inspection.report.get("user_site_enabled"):
        environ["PYTHONNOUSERSITE"] = "1"
    return Path(inspection.record.python), environ


def _check_one(inspection: Inspection, target: Target, timeout: float,
               batch: QueryBatch | None = None, outcome: Outcome | None = None
               ) -> list[Problem]:
    layer = inspection.layer
    dist = target.dist
    described = f"{dist.name} {dist.winner.version} ({dist.winner.origin})"
    if outcome is None:
        outcome = run_imports(layer.python, inspection.environ, layer.root, target.modules,
                              True, timeout, batch)
    if outcome.broken:
        return [Problem("import", "error",
                        f"{described}: import {', '.join(target.modules)}: {outcome.broken}",
                        distribution=dist.name)]
    problems = []
    if outcome.lingered:  # not a failure: the modules imported; worth knowing, though
        problems.append(Problem(
            "import", "warning",
            f"{described}: import {', '.join(target.modules)} left a process running after "
            "it returned (killed when the import was done)", distribution=dist.name))
    failed = outcome.failed
    if not failed:
        return problems
    also_alone: dict[str, str] = {}
    if target.from_stack:
        python, alone = stack_alone(inspection)
        baseline = run_imports(python, alone, layer.root, sorted(failed), False, timeout,
                               batch)
        if baseline.broken is None:
            also_alone = {m: line for m, line in baseline.failed.items()
                          if failed.get(m) == line}
    caused = {m: line for m, line in failed.items() if m not in also_alone}
    if caused:
        order = [m for m in target.modules if m in caused] + sorted(
            m for m in caused if m not in target.modules)  # top-level modules first
        first, more = order[0], order[1:]
        also = f" (so do {', '.join(more)})" if more else ""
        problems.append(Problem(
            "import", "error",
            f"{described}: import {first} fails in the layer: {caused[first]}{also}",
            distribution=dist.name))
    top = [m for m in sorted(also_alone) if m in target.modules]
    if top:
        problems.append(Problem(
            "import", "warning",
            f"{described}: import {top[0]} fails without the layer's packages in front too "
            f"(not caused by the layer): {also_alone[top[0]]}", distribution=dist.name))
    return problems


def import_problems(inspection: Inspection, timeout: float = IMPORT_TIMEOUT,
                    jobs: int | None = None) -> list[Problem]:
    """``import``: every reachable distribution whose modules fail to import."""
    if inspection.report is None:
        return []
    targets = import_targets(inspection)
    if not targets:
        return []
    workers = max(1, min(len(targets), jobs or os.cpu_count() or 1))
    batch = QueryBatch()
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        forked = forked_outcomes(inspection, targets, timeout, workers, batch)
        outcomes = forked or [None] * len(targets)
        results = list(pool.map(lambda t, o: _check_one(inspection, t, timeout, batch, o),
                                targets, outcomes))
    except BaseException:  # Ctrl-C: the imports run in sessions of their own; kill them
        batch.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [problem for found in results for problem in found]
