"""Problems of the distributions the layer's interpreter sees (its effective view).

``conflict``   a requirement of an effective distribution that its dependency does not
               meet, or a dependency that is not installed;
``metadata``   a requirement that cannot be read; two versions of one distribution
               side by side in one directory;
``user-site``  a distribution that comes from the user site.

What a shadowed stack distribution breaks is ``breakage``; a layer distribution with a
standard-library name is ``shadows_stdlib``.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name

from layervenv.dists.requirements import (
    Edges,
    only_extra,
    parse_requirement,
    parse_version,
    requirement_applies,
    same_version,
)
from layervenv.inspection.effective_view import Copy, Distribution
from layervenv.inspection.problems import Problem


def user_site_problems(view: list[Distribution]) -> list[Problem]:
    return [Problem(
        "user-site", "warning",
        f"{d.name} {d.winner.version} comes from the user site {d.winner.location}: it is "
        f"not part of the stack or the layer; uninstall it there (python -m pip uninstall "
        f"--user {d.name} with the stack's Python) or install {d.name} into the layer",
        distribution=d.name) for d in view if d.winner.origin == "user-site"]


def _describe(copy: Copy) -> str:
    return f"{copy.name} {copy.version} ({copy.origin})"


def requirement_problems(view: list[Distribution], markers: dict[str, str]
                         ) -> tuple[list[Problem], Edges]:
    """``conflict``: a requirement of an effective distribution its dependency does not
    meet; extras requested by other distributions are followed."""
    winners = {d.key: d.winner for d in view}
    edges = Edges()
    problems: list[Problem] = []
    queue = [(key, "") for key in winners]
    done = set(queue)
    while queue:
        key, extra = queue.pop()
        dependent = winners[key]
        for line in dependent.requires:
            only = only_extra(line)
            if only is not None and only != extra:
                continue
            parsed = parse_requirement(line)
            if parsed is None:
                problems.append(Problem(
                    "metadata", "warning",
                    f"{_describe(dependent)} has a requirement that cannot be read: '{line}'; "
                    f"it is not checked (its other requirements are)", distribution=dependent.name))
                continue
            req, on_extra = parsed
            if not requirement_applies(req.marker, on_extra, markers, extra):
                continue
            dep_key = canonicalize_name(req.name)
            dependency = winners.get(dep_key)
            if dependency is None:
                problems.append(Problem(
                    "conflict", "warning",
                    f"{_describe(dependent)} requires {req.name}, which is not installed: "
                    f"install it into the layer if {dependent.name} needs it",
                    distribution=dependent.name, requirement=str(req)))
                continue
            edges.dependents.setdefault(dep_key, []).append(key)
            for wanted in req.extras:
                item = (dep_key, canonicalize_name(wanted))
                if item not in done:
                    done.add(item)
                    queue.append(item)
            version = parse_version(dependency.version)
            if not req.specifier or version is None:
                continue
            if not req.specifier.contains(version, prereleases=True):
                spec = f"{req.name}{req.specifier}"
                problems.append(Problem(
                    "conflict", "error",
                    f"{_describe(dependent)} requires {spec}, but {_describe(dependency)} "
                    f"wins: in the layer, python -m pip install '{spec}' (or install a "
                    f"{dependent.name} that accepts {dependency.version} there too)",
                    distribution=dependent.name, requirement=str(req)))
    return problems, edges


def side_by_side_problems(view: list[Distribution]) -> list[Problem]:
    """Two versions of one distribution in one directory (pip interrupted mid-upgrade
    leaves the old dist-info beside the new one): which one Python sees is the first
    the directory lists, and the files imported may be of either.

    One version twice (a system package shipping both ``.dist-info`` and ``.egg-info``,
    as Debian's cryptography does) is one installation, not a problem.  In the stack,
    which is read-only, the advice is the layer, never an edit of the stack."""
    problems = []
    for dist in view:
        by_entry: dict[str, list[Copy]] = {}
        for copy in [dist.winner, *dist.shadowed]:
            by_entry.setdefault(copy.path_entry, []).append(copy)
        for entry, copies in by_entry.items():
            if len(copies) < 2 or all(same_version(c.version, copies[0].version)
                                      for c in copies[1:]):
                continue
            versions = " and ".join(c.version for c in copies)
            if copies[0].origin == "stack":
                advice = (f"the stack is read-only: tell its maintainers, and install "
                          f"{dist.name} in the layer to know what is imported")
            else:
                advice = (f"reinstall {dist.name} there, or remove the metadata directory "
                          f"of the version that is not installed")
            problems.append(Problem(
                "metadata", "warning",
                f"{dist.name} is installed {len(copies)} times side by side in {entry} "
                f"({versions}), as an interrupted pip run leaves it: Python "
                f"(importlib.metadata, pip) sees {copies[0].version}, and its files may be "
                f"of either; {advice}", distribution=dist.name))
    return problems
