"""What a stack provides to a layer's interpreter now: its distributions, and their digest.

The stack is asked for its ``sys.path`` with one short run of its interpreter, in the
environment the layer has (PYTHONPATH from the setup, ``-s`` so that ``~/.local`` is
not counted as the stack).  The distributions on those entries -- PYTHONPATH, and the
interpreter's own site-packages -- are then read here with ``importlib.metadata``;
the first copy of a name on ``sys.path`` is the one that counts, as for imports.

This is the one place that knows how; the shared probe of ``layervenv check`` can
replace :func:`stack_distributions` later without touching its callers.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from layervenv.interp.query import run_query

#: the query that lists the stack's ``sys.path`` (``stack_path.py``)
PATH_SCRIPT = "stack_path.py"
PATH_TIMEOUT = 120


@dataclass
class StackContents:
    """The stack as its interpreter sees it now (one run of it), with the distributions
    found on its ``sys.path``; what a lock records and ``create --from`` compares with."""

    python_version: str
    implementation: str
    sys_path: list[str]
    distributions: dict[str, str]

    @property
    def digest(self) -> str:
        return stack_digest(self.distributions)


def stack_digest(distributions: dict[str, str]) -> str:
    """A stack's distributions in one word (a lock's ``stack-fingerprint``): sha256 over
    the sorted ``name==version`` lines."""
    lines = sorted(f"{name}=={version}" for name, version in distributions.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _inside(entry: str, roots: list[Path]) -> bool:
    path = os.path.realpath(entry)
    return any(path == str(r) or path.startswith(str(r) + os.sep) for r in roots)


def distributions_on(entries: list[str]) -> dict[str, str]:
    """``{name: version}`` of the distributions on ``entries``; the first of a name wins."""
    found: dict[str, str] = {}
    for entry in entries:
        if not entry or not os.path.isdir(entry):
            continue
        if entry.endswith(".egg") and os.path.isdir(os.path.join(entry, "EGG-INFO")):
            dists = [metadata.PathDistribution(Path(entry, "EGG-INFO"))]
        else:
            dists = list(metadata.distributions(path=[entry]))
        for dist in dists:
            name = dist.metadata["Name"] if dist.metadata else None
            if name and dist.version:
                found.setdefault(canonicalize_name(name), dist.version)
    return found


def stack_distributions(python: str | Path, environ: dict[str, str],
                        exclude: list[Path] | tuple[Path, ...] = ()) -> StackContents:
    """Run ``python`` in ``environ`` and list what its ``sys.path`` provides.

    ``exclude`` are layer directories: entries inside them are the layer's, not the
    stack's (``--export-pythonpath`` puts a layer's site-packages on PYTHONPATH).
    """
    env = {k: v for k, v in environ.items() if k != "PYTHONHOME"}
    facts = run_query(python, PATH_SCRIPT, env=env, flags=("-s",), timeout=PATH_TIMEOUT)
    roots = [Path(os.path.realpath(r)) for r in exclude]
    entries = [e for e in facts["path"] if e and not _inside(e, roots)]
    return StackContents(python_version=facts["version"],
                         implementation=facts["implementation"],
                         sys_path=entries, distributions=distributions_on(entries))


@dataclass
class Drift:
    """How a stack differs from a recorded one."""

    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    python: tuple[str, str] | None = None

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.python)

    def lines(self) -> list[str]:
        out = []
        if self.python:
            out.append(f"  python   {self.python[0]} -> {self.python[1]}")
        out += [f"  changed  {n} {old} -> {new}" for n, (old, new) in sorted(self.changed.items())]
        out += [f"  added    {n} {v}" for n, v in sorted(self.added.items())]
        out += [f"  removed  {n} {v}" for n, v in sorted(self.removed.items())]
        return out

    def to_json(self) -> dict[str, object]:
        return {"python": list(self.python) if self.python else None, "added": self.added,
                "removed": self.removed,
                "changed": {n: {"locked": o, "now": v} for n, (o, v) in self.changed.items()}}


def python_identity(implementation: str, version: str, other_implementation: str) -> str:
    """How a Python is named in a drift line: its version, and its implementation too
    when the other side's differs (CPython 3.10 -> PyPy 3.10 is a different stack)."""
    if implementation and other_implementation and implementation != other_implementation:
        return f"{implementation} {version}"
    return version


def compare(recorded: dict[str, str], current: dict[str, str],
            recorded_python: str = "", current_python: str = "") -> Drift:
    """What changed from ``recorded`` to ``current`` (name -> version maps); the
    Pythons are compared as :func:`python_identity` names them."""
    drift = Drift()
    for name, version in current.items():
        if name not in recorded:
            drift.added[name] = version
        elif recorded[name] != version:
            drift.changed[name] = (recorded[name], version)
    drift.removed = {n: v for n, v in recorded.items() if n not in current}
    if recorded_python and current_python and recorded_python != current_python:
        drift.python = (recorded_python, current_python)
    return drift
