"""A problem ``check`` reports, and the order problems are shown in.

Every check (the modules ``*_problems``, ``breakage``, ``shadows_stdlib``,
``kernel_check``, ``importcheck``) returns a list of :class:`Problem`; ``check``
sorts them with :func:`sort_problems` and renders them for humans or as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The order problems are shown in (errors first, then this order).
KINDS = ("moved", "stack-missing", "unreadable", "python-mismatch", "stack-not-set-up",
         "cwd-on-path", "conflict", "dependents", "abi", "import", "shadows-stdlib",
         "user-site", "metadata", "leftover", "import-index", "bytecode", "path",
         "kernel-broken")
SEVERITIES = ("error", "warning")


@dataclass(init=False)
class Problem:
    """One problem; its optional fields are keyword-only.

    A fourth positional argument would land in ``distribution`` whatever its caller
    meant, and the JSON would carry it there without a sound.  ``kw_only=True`` needs
    Python 3.10 and the tool runs on 3.9, so the constructor is written out
    (``tests/test_conventions.py`` keeps it in step with the fields and finds any
    positional use in the source, run or not).
    """

    kind: str
    severity: str
    message: str
    distribution: str | None = None
    #: every distribution the problem is about, where the message may abbreviate them
    distributions: list[str] | None = None
    #: of a ``conflict``: the requirement of ``distribution`` not met, as its metadata
    #: writes it (the pair is what ``pip check`` reports)
    requirement: str | None = None

    def __init__(self, kind: str, severity: str, message: str, *,
                 distribution: str | None = None, distributions: list[str] | None = None,
                 requirement: str | None = None) -> None:
        self.kind, self.severity, self.message = kind, severity, message
        self.distribution = distribution
        self.distributions = distributions
        self.requirement = requirement

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "severity": self.severity,
                                "message": self.message}
        if self.distribution is not None:
            data["distribution"] = self.distribution
        if self.distributions is not None:
            data["distributions"] = list(self.distributions)
        if self.requirement is not None:
            data["requirement"] = self.requirement
        return data


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Errors first, then by kind; a problem found twice (by two paths to it) shown once."""
    unique: dict[tuple[str, str, str, str | None], Problem] = {}
    for p in problems:
        unique.setdefault((p.kind, p.severity, p.message, p.distribution), p)
    return sorted(unique.values(), key=lambda p: (SEVERITIES.index(p.severity),
                                                  KINDS.index(p.kind), p.distribution or "",
                                                  p.message))

