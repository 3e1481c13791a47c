"""Requirements as the layer's interpreter evaluates them: requirement lines, markers,
versions, and which effective distribution requires which.

Markers are evaluated with the layer interpreter's environment (the probe's
``markers``), never the tool's.  Shared by the ``conflict`` check
(``package_problems``), by ``breakage``, which follows the same edges, and by
``install``, which counts what a request needs (:func:`requirement_closure`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

#: ``...; extra == "name"``: most requirements of a big stack; skipped without parsing
#: unless that extra is wanted
_ONLY_EXTRA = re.compile(r";\s*extra\s*==\s*[\"']([^\"']+)[\"']\s*$")


@cache
def only_extra(line: str) -> str | None:
    match = _ONLY_EXTRA.search(line)
    return canonicalize_name(match.group(1)) if match else None


@cache
def parse_requirement(line: str) -> tuple[Requirement, bool] | None:
    """A requirement and whether its marker depends on the extra; None if unreadable."""
    try:  # a folded header (RFC 822) is unfolded: its newlines go, the blanks stay
        req = Requirement(line.replace("\n", "").strip())
    except InvalidRequirement:
        return None
    return req, req.marker is not None and "extra" in str(req.marker)


@cache
def parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def requirement_applies(marker: Marker | None, on_extra: bool, environment: dict[str, str],
                        extra: str) -> bool:
    """Whether a requirement applies for ``extra`` ("" for the distribution itself); one
    that does not depend on the extra is checked once, without extras."""
    if extra and not on_extra:
        return False
    if marker is None:
        return True
    try:
        return marker.evaluate(dict(environment, extra=extra))
    except Exception:  # an undefined or malformed marker: cannot judge, do not flag
        return False


@dataclass
class Edges:
    """Which effective distribution requires which (requirements that apply here)."""

    dependents: dict[str, list[str]] = field(default_factory=dict)


_LEADING_NUMBER = re.compile(r"\s*[vV]?(\d+)")


def major(text: str) -> int | None:
    """The major version, as a number; for a version that is not PEP 440 (``9.4-lcg``, as
    stacks patch them), its leading number."""
    version = parse_version(text)
    if version is not None:
        return version.release[0]
    match = _LEADING_NUMBER.match(text)
    return int(match.group(1)) if match else None


def same_version(one: str, other: str) -> bool:
    """``1.22.3`` and ``1.22.3.0`` are one version (PEP 440), not two."""
    first, second = parse_version(one), parse_version(other)
    if first is not None and second is not None:
        return first == second
    return one.strip() == other.strip()


@dataclass
class Closure:
    """What requirements need here, following the requirements of what they name."""

    #: canonical names needed (requirements whose markers hold, and theirs)
    needed: set[str] = field(default_factory=set)
    #: canonical names asked for only by requirements whose marker is false here (another
    #: Python or platform: ``tomli; python_version < "3.11"``); not needed, not "met"
    not_here: set[str] = field(default_factory=set)


def requirement_closure(requires: dict[str, list[str]], lines: Iterable[str],
                        environment: dict[str, str]) -> Closure:
    """What the requirement ``lines`` need, themselves included, following ``requires``
    (canonical name -> requirement lines) with markers evaluated in ``environment`` (the
    layer interpreter's); the extras a requirement names are followed, other extras not.
    A name that is not in ``requires`` (nothing installed) is named but not followed."""
    closure = Closure()
    todo: list[tuple[str, str]] = []  # (canonical name, extra or "")

    def follow(req: Requirement, on_extra: bool, extra: str) -> None:
        key = canonicalize_name(req.name)
        if requirement_applies(req.marker, on_extra, environment, extra):
            closure.needed.add(key)
            todo.append((key, ""))
            todo.extend((key, canonicalize_name(e)) for e in req.extras)
        elif not on_extra:
            closure.not_here.add(key)

    for line in lines:
        parsed = parse_requirement(line)
        if parsed is not None:
            follow(parsed[0], parsed[1], "")
    done: set[tuple[str, str]] = set()
    while todo:
        key, extra = todo.pop()
        if (key, extra) in done or key not in requires:
            continue
        done.add((key, extra))
        for line in requires[key]:
            wanted = only_extra(line)
            if wanted is not None and wanted != extra:
                continue  # behind an extra not asked for: not even parsed
            parsed = parse_requirement(line)
            if parsed is not None:
                follow(parsed[0], parsed[1], extra)
    closure.not_here -= closure.needed
    return closure
