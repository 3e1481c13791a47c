"""What a stack provides to a layer's interpreter: its distributions, and their fingerprint.

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
import json
import os
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from layervenv.infra.errors import UserError

# Runs on the stack's interpreter (Python >= 3.6, stdlib only).  With -c, sys.path[0]
# is '' (the current directory): not the stack's.  ensurepip's pip wheel is where
# ``create`` seeds pip from: in the stdlib, or in a distribution's WHEEL_PKG_DIR
# (Debian's and Fedora's /usr/share/python-wheels, where ``_bundled`` is empty).
_SNIPPET = r"""
import glob, json, os, sys, sysconfig
dirs = [os.path.join(os.path.dirname(os.__file__), "ensurepip", "_bundled"),
        sysconfig.get_config_var("WHEEL_PKG_DIR") or ""]
print(json.dumps({
    "path": sys.path[1:],
    "version": "%d.%d.%d" % sys.version_info[:3],
    "implementation": sys.implementation.name,
    "pip_wheels": sorted(w for d in dirs if d for w in glob.glob(os.path.join(d, "pip-*.whl"))),
}))
"""


@dataclass
class StackView:
    """What one run of the stack interpreter said, and the distributions found."""

    python_version: str
    implementation: str
    sys_path: list[str]
    distributions: dict[str, str]
    pip_wheels: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.distributions)


def fingerprint(distributions: dict[str, str]) -> str:
    """sha256 over the sorted ``name==version`` lines."""
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
                        exclude: list[Path] | tuple[Path, ...] = ()) -> StackView:
    """Run ``python`` in ``environ`` and list what its ``sys.path`` provides.

    ``exclude`` are layer directories: entries inside them are the layer's, not the
    stack's (``--export-pythonpath`` puts a layer's site-packages on PYTHONPATH).
    """
    env = {k: v for k, v in environ.items() if k != "PYTHONHOME"}
    try:
        result = subprocess.run([str(python), "-s", "-c", _SNIPPET], env=env,
                                capture_output=True, text=True, timeout=120, check=False)
    except OSError as error:
        raise UserError(f"cannot run {python}: {error.strerror}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"cannot ask {python} for its packages: {last}")
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    roots = [Path(os.path.realpath(r)) for r in exclude]
    entries = [e for e in facts["path"] if e and not _inside(e, roots)]
    return StackView(python_version=facts["version"], implementation=facts["implementation"],
                     sys_path=entries, distributions=distributions_on(entries),
                     pip_wheels=facts["pip_wheels"])


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
