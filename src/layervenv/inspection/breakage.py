"""What a changed dependency breaks: the stack distributions that depend on a copy the
layer shadows, and which of them certainly break.

When the layer's copy of a distribution shadows the stack's with another *major*
version (numpy 1 -> 2), every stack distribution that depends on it, directly or
through other stack distributions, is at risk, compiled or not (awkward's pure Python
uses ``np.AxisError``, gone in numpy 2).  Of those, the ones that certainly break are
errors: a requirement that excludes the new version, or extension modules built
against the old major version's C API.  The rest are warnings.

Whether an extension module uses a C API is read from its bytes, cheaply, for the
distributions whose C API is known here (numpy).  What real wheels show:

* numpy's ``import_array()`` (``__multiarray_api.h``, any numpy version) leaves the
  string ``module compiled against ABI version`` in the module; headers of numpy >= 2
  (whose builds run on numpy 1 and 2) also leave ``numpy._core._multiarray_umath``.
  pandas 2.0.3, matplotlib 3.7.2 and Debian's scipy 1.10.1 have the first only; scipy
  1.14.1, built with numpy 2, has both.
* pybind11's ``numpy.h`` (boost-histogram, awkward-cpp) looks up ``_ARRAY_API`` of
  ``numpy.core.multiarray`` by name and never has the ABI string: those modules import
  fine under numpy 2, so ``_ARRAY_API`` alone says nothing.

Only the extension modules of distributions at risk are read (memory-mapped, searched
for two strings, stopped at the first module that settles it).

Metadata does not always say what a distribution imports: Debian's ``pythran`` declares
no requirement (its ``install_requires`` is dropped), yet imports numpy, and scipy
through it.  So on a major change, the stack distributions that declare no requirement
at all are looked at too: one whose ``.py`` files import the shadowed distribution at
module level (``import numpy`` at the start of a line: not an optional import inside a
function or a ``try``) is at risk as well.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from layervenv.dists.files import extension_modules, python_files, top_level_modules
from layervenv.dists.requirements import (
    Edges,
    major,
    only_extra,
    parse_requirement,
    parse_version,
    requirement_applies,
    same_version,
)
from layervenv.inspection.effective_view import Copy, Distribution
from layervenv.inspection.problems import Problem

#: how many distributions a human line names before "and N more" (the JSON names all)
SHOWN = 8


# ---------------------------------------------------------------------------------------
# C APIs known by their traces in extension modules
# ---------------------------------------------------------------------------------------

def _numpy_1_only(data: mmap.mmap | bytes) -> bool:
    """An extension module built against numpy 1's C API only (it fails under numpy 2)."""
    return data.find(b"module compiled against ABI version") != -1 \
        and data.find(b"numpy._core._multiarray_umath") == -1


@dataclass(frozen=True)
class CApi:
    """A distribution whose C API other distributions compile against, and how a module
    built for one major version that the next one does not run shows."""

    #: the old and new major versions this applies to (numpy: 1 -> 2 and later)
    breaks_from: int
    built_for_old: Callable[[mmap.mmap | bytes], bool]

    def applies(self, old: int | None, new: int | None) -> bool:
        return old is not None and new is not None and old == self.breaks_from and new > old


C_APIS: dict[str, CApi] = {"numpy": CApi(1, _numpy_1_only)}


def _built_for_old(path: Path, test: Callable[[mmap.mmap | bytes], bool]) -> bool:
    try:
        with open(path, "rb") as handle:
            if handle.seek(0, 2) == 0:
                return False
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return test(data)
    except (OSError, ValueError):
        return False


def uses_old_c_api(copy: Copy, api: CApi) -> bool:
    """Whether one of ``copy``'s extension modules was built against the old C API."""
    return any(_built_for_old(path, api.built_for_old) for path in extension_modules(copy.metadata))


# ---------------------------------------------------------------------------------------
# Who depends on what
# ---------------------------------------------------------------------------------------

def stack_dependents(keys: list[str], view: list[Distribution], edges: Edges) -> list[str]:
    """The stack distributions (effective ones) that depend on any of ``keys``, directly
    or through other stack distributions, in the order found (nearest first)."""
    by_key = {d.key: d for d in view}
    found: list[str] = []
    seen = set(keys)
    queue = list(keys)
    while queue:
        key = queue.pop(0)
        for dependent in sorted(set(edges.dependents.get(key, []))):
            if dependent in seen or by_key[dependent].winner.origin != "stack":
                continue
            seen.add(dependent)
            found.append(dependent)
            queue.append(dependent)
    return found


def _module_level_import(names: list[str]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(n.encode()) for n in names)
    return re.compile(rb"^(?:from|import)[ \t]+(?:" + alternatives + rb")\b", re.MULTILINE)


def _imports_any(copy: Copy, pattern: re.Pattern[bytes], names: list[str]) -> bool:
    needles = [n.encode() for n in names]
    for path in python_files(copy.metadata):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if any(n in data for n in needles) and pattern.search(data):
            return True
    return False


def undeclared_dependents(dist: Distribution, hidden: Copy, view: list[Distribution],
                          edges: Edges, known: set[str]) -> list[str]:
    """Stack distributions that declare no requirement at all (none is in ``edges``),
    are not in ``known``, and import ``dist`` at module level in one of their files."""
    names = top_level_modules(hidden.metadata) or [dist.key.replace("-", "_")]
    pattern = _module_level_import(names)
    declaring = {k for dependents in edges.dependents.values() for k in dependents}
    return [d.key for d in view
            if d.winner.origin == "stack" and d.key not in known and d.key != dist.key
            and d.key not in declaring and _imports_any(d.winner, pattern, names)]


def at_risk(dist: Distribution, hidden: Copy, view: list[Distribution],
            edges: Edges) -> list[str]:
    """The stack distributions depending on ``dist``: by their metadata, directly or
    through others, then those importing it undeclared (and what depends on them)."""
    declared = stack_dependents([dist.key], view, edges)
    undeclared = undeclared_dependents(dist, hidden, view, edges, set(declared))
    further = stack_dependents(undeclared, view, edges) if undeclared else []
    return list(dict.fromkeys([*declared, *undeclared, *further]))


def _excluding_requirement(dependent: Copy, key: str, version: str,
                           markers: dict[str, str]) -> str | None:
    """A requirement of ``dependent`` on ``key`` that applies here and excludes
    ``version``: ``numpy<1.27.0,>=1.19.5``."""
    parsed_version = parse_version(version)
    if parsed_version is None:
        return None
    for line in dependent.requires:
        parsed = parse_requirement(line)
        if parsed is None:
            continue
        req, on_extra = parsed
        if canonicalize_name(req.name) != key or not req.specifier:
            continue
        extra = only_extra(line) or ""
        if not requirement_applies(req.marker, on_extra, markers, extra):
            continue
        if not req.specifier.contains(parsed_version, prereleases=True):
            return f"{req.name}{req.specifier}"
    return None


def _names(dists: list[Distribution]) -> str:
    shown = ", ".join(f"{d.name} {d.winner.version}" for d in dists[:SHOWN])
    if len(dists) > SHOWN:
        shown += f" and {len(dists) - SHOWN} more (all in --format json)"
    return shown


def _shadows(dist: Distribution, hidden: Copy) -> str:
    winner = dist.winner
    where = "the layer" if winner.origin == "layer" else f"the {winner.origin} copy"
    return f"{dist.name} {winner.version} in {where} shadows the stack's {hidden.version}"


def _major_change(dist: Distribution, hidden: Copy, old: int, new: int,
                  by_key: dict[str, Distribution], edges: Edges, view: list[Distribution],
                  markers: dict[str, str]) -> list[Problem]:
    """``dependents``: every stack distribution depending on ``dist``, error or warning."""
    risky = [by_key[k] for k in at_risk(dist, hidden, view, edges)]
    if not risky:
        return []
    api = C_APIS.get(dist.key)
    api = api if api is not None and api.applies(old, new) else None
    broken: list[tuple[Distribution, str]] = []
    others: list[Distribution] = []
    for dependent in risky:
        reasons = []
        spec = _excluding_requirement(dependent.winner, dist.key, dist.winner.version, markers)
        if spec:
            reasons.append(f"requires {spec}")
        if api is not None and dependent.winner.compiled and uses_old_c_api(dependent.winner, api):
            reasons.append(f"built against {dist.name} {old}'s C API")
        if reasons:
            broken.append((dependent, "; ".join(reasons)))
        else:
            others.append(dependent)
    shadows = f"{_shadows(dist, hidden)}, another major version"
    wanted = f"<{old + 1}" if new > old else f">={old},<{old + 1}"
    problems = []
    if broken:
        named = ", ".join(f"{d.name} {d.winner.version} ({why})" for d, why in broken[:SHOWN])
        if len(broken) > SHOWN:
            named += f" and {len(broken) - SHOWN} more (all in --format json)"
        problems.append(Problem(
            "dependents", "error",
            f"{shadows}: {len(broken)} stack package{'s' * (len(broken) != 1)} will break: "
            f"{named}; install '{dist.name}{wanted}' in the layer, or install versions of "
            f"those packages made for {dist.name} {new} in the layer too",
            distribution=dist.name, distributions=[d.name for d, _ in broken]))
    if others:
        how = "depend" if len(others) != 1 else "depends"
        problems.append(Problem(
            "dependents", "warning",
            f"{shadows}: {len(others)} stack package{'s' * (len(others) != 1)} {how} on it, "
            f"directly or through others, and may break: {_names(others)}; "
            f"'layervenv check --imports' tries them", distribution=dist.name,
            distributions=[d.name for d in others]))
    return problems


def _compiled_direct(dist: Distribution, by_key: dict[str, Distribution],
                     edges: Edges) -> list[Distribution]:
    """The compiled stack distributions requiring ``dist`` directly."""
    keys = sorted({k for k in edges.dependents.get(dist.key, [])
                   if by_key[k].winner.origin == "stack" and by_key[k].winner.compiled})
    return [by_key[k] for k in keys]


def changed(view: list[Distribution]) -> list[tuple[Distribution, Copy]]:
    """The stack distributions a non-stack copy shadows with another version: that
    distribution and the stack's copy it hides."""
    found = []
    for dist in view:
        if dist.winner.origin == "stack":
            continue
        hidden = next((c for c in dist.shadowed if c.origin == "stack"), None)
        if hidden is not None and not same_version(hidden.version, dist.winner.version):
            found.append((dist, hidden))
    return found


def dependents_problems(view: list[Distribution], edges: Edges,
                        markers: dict[str, str]) -> list[Problem]:
    """For each stack distribution a non-stack copy shadows with another version:
    ``dependents`` (another major version: everything depending on it) or ``abi``
    (the same or an unknown major version: the compiled packages built against it)."""
    by_key = {d.key: d for d in view}
    problems: list[Problem] = []
    for dist, hidden in changed(view):
        old, new = major(hidden.version), major(dist.winner.version)
        if old is not None and new is not None and old != new:
            problems += _major_change(dist, hidden, old, new, by_key, edges, view, markers)
            continue
        compiled = _compiled_direct(dist, by_key, edges)
        if not compiled:
            continue
        within = f"usually compatible within {old}.x" if old is not None and old == new \
            else "the major version cannot be told"
        problems.append(Problem(
            "abi", "warning",
            f"{_shadows(dist, hidden)}, which compiled stack packages were built against "
            f"({_names(compiled)}): {within}; if they fail to import, install them in the "
            f"layer too", distribution=dist.name, distributions=[d.name for d in compiled]))
    return problems
