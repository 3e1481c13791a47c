"""Requirements as the layer's interpreter evaluates them: requirement lines, markers,
versions, and which effective distribution requires which.

Markers are evaluated with the layer interpreter's environment (the probe's
``markers``), never the tool's.  Shared by the ``conflict`` check
(``package_problems``) and by ``breakage``, which follows the same edges.
"""

from __future__ import annotations

import re
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
