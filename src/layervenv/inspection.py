"""What a layer really sees, and what will break: the model behind ``list`` and ``check``.

One run of the layer's own interpreter (``probe.py``, in the environment the layer
runs with) reports its ``sys.path`` after the boot hook and every distribution's
metadata on it.  Here, on the tool's side, that becomes the *effective view*: walk
``sys.path`` in order, the first copy of a name wins, later copies are shadowed.
Each copy has an origin:

``layer``      in the layer's site-packages;
``editable``   an editable install of the layer (PEP 610 ``direct_url.json``, or found
               on a path the layer's ``.pth`` files add);
``user-site``  under the user base (``~/.local``), by the user site or on PYTHONPATH;
``stack``      everything else: PYTHONPATH, the interpreter's own site-packages.

Problems are then computed from the effective view (requirements evaluated with
``packaging`` for the layer's interpreter, never the tool's), from PYTHONPATH as the
interpreter saw it, and from the stack recorded in ``layervenv.toml``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from layervenv.activation import describe_stack, stack_changes, without_active_environment
from layervenv.boot._layervenv_boot import _pth_paths, site_packages_version
from layervenv.envchange import apply_to
from layervenv.errors import UserError
from layervenv.layer import Layer
from layervenv.stack import (
    StackEnvironment,
    foreign_site_packages,
    is_packages_directory,
    missing_parts,
    site_packages_not_on_pythonpath,
)

#: read as a resource: the package may be inside layervenv.pyz, where files have no path
PROBE_SOURCE = resources.files("layervenv").joinpath("probe.py")
PROBE_TIMEOUT = 120

ORIGINS = ("layer", "editable", "user-site", "stack")
#: The order problems are shown in (errors first, then this order).
KINDS = ("moved", "stack-missing", "unreadable", "python-mismatch", "stack-not-set-up",
         "cwd-on-path", "conflict", "dependents", "abi", "import", "shadows-stdlib",
         "user-site", "metadata", "leftover",
         "kernel-broken")
SEVERITIES = ("error", "warning")


# ---------------------------------------------------------------------------------------
# The stack the layer was made on
# ---------------------------------------------------------------------------------------

@dataclass
class RecordedStack:
    """What ``layervenv.toml`` says about the stack; the one place it is read for checks."""

    python: str
    python_version: str
    #: the stack's own PYTHONPATH entries (from ``--setup``, else from creation)
    pythonpath: list[str]
    #: what ``--setup`` recorded (empty for layers made without it)
    environment: StackEnvironment
    describe: str

    @property
    def short_version(self) -> str:
        return ".".join(self.python_version.split(".")[:2])


def recorded_stack(layer: Layer) -> RecordedStack:
    """The stack record of ``layer``, as the checks need it."""
    stack = layer.config.stack
    return RecordedStack(
        python=stack.python,
        python_version=stack.python_version,
        pythonpath=stack.stack_pythonpath(),
        environment=stack.stack_environment(),
        describe=describe_stack(layer),
    )


def layer_environment(layer: Layer, environ: dict[str, str]) -> dict[str, str]:
    """The environment the layer runs with: ``environ``, plus its recorded stack where
    that is not set up (as activation and ``layervenv run`` do), unless another stack is.
    Another layer or venv active in ``environ`` is left out, as activation would."""
    environ = without_active_environment(environ)
    record = layer.config.stack.stack_environment()
    if record.is_empty() or record.is_set_up_in(environ):
        return dict(environ)
    if foreign_site_packages(environ, layer.config.stack.stack_pythonpath()):
        return dict(environ)  # activation would refuse; the interpreter runs as it is
    return apply_to(stack_changes(layer, environ), environ)


# ---------------------------------------------------------------------------------------
# Running the probe in the layer's interpreter
# ---------------------------------------------------------------------------------------

def run_probe(layer: Layer, environ: dict[str, str]) -> dict[str, Any]:
    """One run of ``DIR/bin/python -c probe.py REPORT`` in ``environ``; its JSON report.

    The report goes to a file of its own, not to stdout: what the stack's
    ``sitecustomize`` or ``.pth`` files print at start-up (in any encoding, with or
    without a newline) cannot mix with it.  The interpreter's output is only read, as
    bytes, to say why it failed.
    """
    source = PROBE_SOURCE.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="layervenv-probe-") as tmp:
        target = Path(tmp) / "report.json"
        try:
            result = subprocess.run([str(layer.python), "-c", source, str(target)],
                                    env=environ, capture_output=True, timeout=PROBE_TIMEOUT,
                                    check=False, cwd=str(layer.root))
        except OSError as error:
            raise UserError(f"cannot run {layer.python}: {error.strerror}") from None
        except subprocess.TimeoutExpired:
            raise UserError(f"{layer.python} did not answer within {PROBE_TIMEOUT} s") from None
        if result.returncode != 0:
            raise UserError(f"{layer.python} failed to start (exit {result.returncode}): "
                            f"{_last_line(result.stderr)}")
        try:
            return json.loads(target.read_bytes())
        except (OSError, ValueError):
            raise UserError(f"{layer.python} gave no readable report: "
                            f"{_last_line(result.stderr + result.stdout)}") from None


def _last_line(output: bytes) -> str:
    """The last line of an interpreter's output, whatever its encoding."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else "(no output)"


# ---------------------------------------------------------------------------------------
# The effective view
# ---------------------------------------------------------------------------------------

@dataclass
class Copy:
    """One installed copy of a distribution, where the interpreter finds it."""

    name: str
    key: str  # canonical name
    version: str
    origin: str
    location: str  # the sys.path entry; for an editable install, its project
    path_entry: str
    metadata: str
    requires: list[str]
    compiled: bool
    requested: bool
    editable: str | None  # the project of an editable install

    def brief(self) -> dict[str, str]:
        return {"version": self.version, "location": self.location, "origin": self.origin}


@dataclass
class Distribution:
    """A name as the interpreter sees it: the copy that wins and the copies it shadows."""

    winner: Copy
    shadowed: list[Copy] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.winner.name

    @property
    def key(self) -> str:
        return self.winner.key


def _real(path: str) -> str:
    return os.path.realpath(path)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _file_url_path(url: str) -> str | None:
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else None


def _requires_from_txt(text: str) -> list[str]:
    """setuptools' ``requires.txt`` (``[extra:marker]`` sections) as Requires-Dist lines,
    the very strings ``importlib.metadata``'s ``requires`` makes of it (Python 3.10+),
    except that ``#`` comment lines are left out (pip leaves them out too)."""
    lines: list[str] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        extra, _, marker = section.partition(":")
        if extra and marker:
            marker = f"({marker})"
        conditions = [c for c in (marker, extra and f'extra == "{extra}"') if c]
        space = " " * ("@" in line)  # PEP 508: a URL needs a space before its ';'
        lines.append(line + space + ("; " + " and ".join(conditions) if conditions else ""))
    return lines


class _Origins:
    """Tells where a path entry belongs: the layer, its editables, the user site, the stack."""

    def __init__(self, layer: Layer, report: dict[str, Any]) -> None:
        self.layer_root = _real(str(layer.root))
        site = str(layer.site_packages)
        self.editable_entries = {_real(p) for p in _pth_paths(site)}
        self.user_roots = [_real(os.path.join(report["user_base"], "lib"))] \
            if report.get("user_base") else []
        if report.get("user_site"):
            self.user_roots.append(_real(report["user_site"]))

    def of_entry(self, real: str) -> str:
        if _under(real, self.layer_root):
            return "layer"
        if real in self.editable_entries:
            return "editable"
        if any(_under(real, root) for root in self.user_roots):
            return "user-site"
        return "stack"


def copies_in_path_order(layer: Layer, report: dict[str, Any]) -> list[Copy]:
    """Every distribution on the interpreter's sys.path, in the order imports find them."""
    origins = _Origins(layer, report)
    copies = []
    for entry in report["sys_path"]:
        if not entry["distributions"]:
            continue
        origin = origins.of_entry(entry["real"])
        for dist in entry["distributions"]:
            requires = list(dist["requires"])
            if not requires and dist.get("requires_txt"):
                requires = _requires_from_txt(dist["requires_txt"])
            editable = dist.get("editable")
            project = _file_url_path(editable) if editable else None
            if editable is not None:
                editable = project or editable
            elif origin == "editable":  # setup.py develop: the .pth line is the project
                editable = entry["path"]
            own = "editable" if editable is not None and origin == "layer" else origin
            location = entry["path"]
            if own == "editable" and project:
                location = project
            name = (dist["name"] or "").strip() or "UNKNOWN"  # as importlib.metadata
            copies.append(Copy(  # gives it: trailing blanks included
                name=name, key=canonicalize_name(name), version=(dist["version"] or "").strip(),
                origin=own, location=location, path_entry=entry["path"],
                metadata=dist["metadata"], requires=requires, compiled=bool(dist["compiled"]),
                requested=bool(dist["requested"]), editable=editable,
            ))
    return copies


def effective_view(copies: list[Copy]) -> list[Distribution]:
    """First copy of each name wins; the rest are shadowed.  Sorted by name."""
    by_key: dict[str, Distribution] = {}
    for copy in copies:
        known = by_key.get(copy.key)
        if known is None:
            by_key[copy.key] = Distribution(winner=copy)
            continue
        winner = known.winner
        # setuptools leaves NAME.egg-info in an editable project; on the path the
        # layer's .pth adds, that is the same project again, not a hidden copy.
        if (winner.editable and copy.version == winner.version
                and _under(_real(copy.path_entry), _real(winner.editable))):
            continue
        known.shadowed.append(copy)
    return sorted(by_key.values(), key=lambda d: d.key)


# ---------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------

@dataclass
class Problem:
    kind: str
    severity: str
    message: str
    distribution: str | None = None
    #: every distribution the problem is about, where the message may abbreviate them
    distributions: list[str] | None = None
    #: of a ``conflict``: the requirement of ``distribution`` not met, as its metadata
    #: writes it (the pair is what ``pip check`` reports)
    requirement: str | None = None

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


def stack_missing_problems(record: RecordedStack, layer: Layer) -> list[Problem]:
    """The recorded interpreter or stack directories are gone."""
    missing = missing_parts(record.python, record.pythonpath)
    if not any(m.startswith("interpreter ") for m in missing) and not layer.python.exists():
        missing.insert(0, f"interpreter {layer.python} (a broken link)")
    return [Problem("stack-missing", "error",
                    f"the stack of this layer is missing: {what} (is CVMFS mounted? was the "
                    f"release removed?); set it up again, or recreate the layer on the stack "
                    f"you use now (layervenv create --clear)")
            for what in missing]


def moved_problems(layer: Layer) -> list[Problem]:
    """The layer is not where it was made: its scripts still name the old place."""
    recorded = layer.moved_from()
    if recorded is None:
        return []
    root = layer.root
    state = "which is gone" if not os.path.lexists(recorded) else "another directory"
    return [Problem("moved", "error",
                    f"this layer was made in {recorded} ({state}) and is now in {root}: its "
                    f"activation scripts and the scripts pip wrote still use {recorded}; "
                    f"re-create it here: layervenv lock {root} -o pylock.toml, then "
                    f"layervenv create --clear {root} --from pylock.toml")]


def python_of_entry(entry: str) -> str | None:
    """``3.9`` for a ``.../lib/python3.9/site-packages`` entry (the boot hook's rule)."""
    return site_packages_version(entry)


def _pythonpath_entries(value: str | None) -> list[str]:
    return value.split(os.pathsep) if value else []


def python_mismatch_problems(record: RecordedStack, layer_version: str | None,
                             pythonpath: str | None, environ: dict[str, str],
                             user_roots: list[str]) -> list[Problem]:
    """Another Python's site-packages on PYTHONPATH; an interpreter that changed; another
    stack set up than the one recorded."""
    problems = []
    short = ".".join((layer_version or record.python_version).split(".")[:2])
    if layer_version and short != record.short_version:
        problems.append(Problem(
            "python-mismatch", "error",
            f"this layer was made with Python {record.python_version} but its interpreter "
            f"is now Python {layer_version}: recreate it (layervenv create --clear)"))
    reported = set()
    for entry in _pythonpath_entries(pythonpath):
        other = python_of_entry(entry)
        if other and other != short and os.path.normpath(entry) not in reported:
            reported.add(os.path.normpath(entry))
            problems.append(Problem(
                "python-mismatch", "error",
                f"PYTHONPATH has {entry}, site-packages of Python {other}, but this layer "
                f"runs Python {short}: its compiled modules will not load; set up the stack "
                f"for Python {short} instead"))
    for entry in other_stack_entries(record, environ):
        if os.path.normpath(entry) in reported or \
                any(_under(_real(entry), root) for root in user_roots):
            continue
        reported.add(os.path.normpath(entry))
        problems.append(Problem(
            "python-mismatch", "error",
            f"PYTHONPATH has {entry}, which is not the stack this layer was made on "
            f"({record.describe}): use a shell where only that stack is set up"))
    return problems


def unset_stack_entries(record: RecordedStack, environ: dict[str, str]) -> list[str]:
    """The stack's site-packages that this shell lacks, for a layer made without --setup.

    Such a layer relies on the shell to set its stack up; where nothing is set up,
    list and check see the layer alone and would say "no problems" of a layer whose
    stack packages conflict with it.  (Another stack set up instead is python-mismatch;
    a directory that is gone is stack-missing.)
    """
    if not record.environment.is_empty():
        return []  # it brings its stack along
    missing = [e for e in site_packages_not_on_pythonpath(record.pythonpath, environ)
               if os.path.isdir(e)]
    if not missing or other_stack_entries(record, environ):
        return []
    return missing


def stack_not_set_up_problems(record: RecordedStack, environ: dict[str, str]) -> list[Problem]:
    missing = unset_stack_entries(record, environ)
    if not missing:
        return []
    return [Problem("stack-not-set-up", "warning", stack_not_set_up_message(missing))]


def stack_not_set_up_message(missing: list[str]) -> str:
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return (f"the stack this layer was made on is not set up in this shell (PYTHONPATH "
            f"lacks {missing[0]}{more}): only the layer and the interpreter's own packages "
            f"are seen; set the stack up first (a layer made with --setup brings it along)")


def other_stack_entries(record: RecordedStack, environ: dict[str, str]) -> list[str]:
    """Site-packages on PYTHONPATH of a stack other than the recorded one, when that is
    not set up."""
    if not record.environment.is_empty():
        if record.environment.is_set_up_in(environ):
            return []
    else:
        present = set(_pythonpath_entries(environ.get("PYTHONPATH")))
        own_sites = [e for e in record.pythonpath if is_packages_directory(e)]
        if not own_sites or all(e in present for e in own_sites):
            return []
    return foreign_site_packages(environ, record.pythonpath)


def cwd_problems(pythonpath: str | None) -> list[Problem]:
    """An empty or ``.`` PYTHONPATH entry (``./``, ``./.``, ...): the current directory
    shadows everything.  (`` `` is a directory named by a space, not the current one.)"""
    entries = _pythonpath_entries(pythonpath)
    found = []
    for index, entry in enumerate(entries):
        if entry and os.path.normpath(entry) != os.curdir:  # ``./.``, ``.//`` are ``.`` too
            continue
        if entry:
            found.append(f"a '{entry}' entry")
        elif index == 0:
            found.append("an empty entry (a leading ':')")
        elif index == len(entries) - 1:
            found.append("an empty entry (a trailing ':')")
        else:
            found.append("an empty entry ('::')")
    if not found:
        return []
    return [Problem(
        "cwd-on-path", "error",
        f"PYTHONPATH has {' and '.join(dict.fromkeys(found))}, which puts the current "
        f"directory on sys.path, where any file in it can shadow a package: remove it (write "
        f"PYTHONPATH=\"/x${{PYTHONPATH:+:$PYTHONPATH}}\" instead of "
        f"PYTHONPATH=\"/x:$PYTHONPATH\")")]


def user_site_problems(view: list[Distribution]) -> list[Problem]:
    return [Problem(
        "user-site", "warning",
        f"{d.name} {d.winner.version} comes from the user site {d.winner.location}: it is "
        f"not part of the stack or the layer; uninstall it there (python -m pip uninstall "
        f"--user {d.name} with the stack's Python) or install {d.name} into the layer",
        d.name) for d in view if d.winner.origin == "user-site"]


#: ``...; extra == "name"``: most requirements of a big stack; skipped without parsing
#: unless that extra is wanted
_ONLY_EXTRA = re.compile(r";\s*extra\s*==\s*[\"']([^\"']+)[\"']\s*$")


@cache
def _only_extra(line: str) -> str | None:
    match = _ONLY_EXTRA.search(line)
    return canonicalize_name(match.group(1)) if match else None


@cache
def _parse(line: str) -> tuple[Requirement, bool] | None:
    """A requirement and whether its marker depends on the extra; None if unreadable."""
    try:  # a folded header (RFC 822) is unfolded: its newlines go, the blanks stay
        req = Requirement(line.replace("\n", "").strip())
    except InvalidRequirement:
        return None
    return req, req.marker is not None and "extra" in str(req.marker)


@cache
def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _applies(marker: Marker | None, on_extra: bool, environment: dict[str, str],
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


def _describe(copy: Copy) -> str:
    return f"{copy.name} {copy.version} ({copy.origin})"


@dataclass
class Edges:
    """Which effective distribution requires which (requirements that apply here)."""

    dependents: dict[str, list[str]] = field(default_factory=dict)


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
            only = _only_extra(line)
            if only is not None and only != extra:
                continue
            parsed = _parse(line)
            if parsed is None:
                problems.append(Problem(
                    "metadata", "warning",
                    f"{_describe(dependent)} has a requirement that cannot be read: '{line}'; "
                    f"it is not checked (its other requirements are)", dependent.name))
                continue
            req, on_extra = parsed
            if not _applies(req.marker, on_extra, markers, extra):
                continue
            dep_key = canonicalize_name(req.name)
            dependency = winners.get(dep_key)
            if dependency is None:
                problems.append(Problem(
                    "conflict", "warning",
                    f"{_describe(dependent)} requires {req.name}, which is not installed: "
                    f"install it into the layer if {dependent.name} needs it",
                    dependent.name, requirement=str(req)))
                continue
            edges.dependents.setdefault(dep_key, []).append(key)
            for wanted in req.extras:
                item = (dep_key, canonicalize_name(wanted))
                if item not in done:
                    done.add(item)
                    queue.append(item)
            version = _version(dependency.version)
            if not req.specifier or version is None:
                continue
            if not req.specifier.contains(version, prereleases=True):
                spec = f"{req.name}{req.specifier}"
                problems.append(Problem(
                    "conflict", "error",
                    f"{_describe(dependent)} requires {spec}, but {_describe(dependency)} "
                    f"wins: in the layer, python -m pip install '{spec}' (or install a "
                    f"{dependent.name} that accepts {dependency.version} there too)",
                    dependent.name, requirement=str(req)))
    return problems, edges


_LEADING_NUMBER = re.compile(r"\s*[vV]?(\d+)")


def _major(text: str) -> int | None:
    """The major version, as a number; for a version that is not PEP 440 (``9.4-lcg``, as
    stacks patch them), its leading number."""
    version = _version(text)
    if version is not None:
        return version.release[0]
    match = _LEADING_NUMBER.match(text)
    return int(match.group(1)) if match else None


def _same_version(one: str, other: str) -> bool:
    """``1.22.3`` and ``1.22.3.0`` are one version (PEP 440), not two."""
    first, second = _version(one), _version(other)
    if first is not None and second is not None:
        return first == second
    return one.strip() == other.strip()


def abi_problems(view: list[Distribution], edges: Edges,
                 markers: dict[str, str]) -> list[Problem]:
    """``dependents`` and ``abi``: what a non-stack copy shadowing a stack distribution
    with another version breaks (see ``breakage``)."""
    from layervenv.breakage import dependents_problems

    return dependents_problems(view, edges, markers)


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
            if len(copies) < 2 or all(_same_version(c.version, copies[0].version)
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
                f"of either; {advice}", dist.name))
    return problems


@dataclass
class Unreadable:
    """A path the layer's interpreter could not read: a sys.path directory (``entry``)
    or a distribution's metadata in one."""

    path: str
    reason: str
    entry: bool


def unreadable_paths(report: dict[str, Any]) -> list[Unreadable]:
    """What the probe could not read."""
    return [Unreadable(path, reason, path == item["path"])
            for item in report["sys_path"] for path, reason in item.get("unreadable", [])]


def unreadable_problems(unreadable: list[Unreadable], record: RecordedStack) -> list[Problem]:
    """``unreadable``; a recorded stack directory that cannot even be looked at is
    ``stack-missing`` already (and says why)."""
    missing = {os.path.normpath(e) for e in record.pythonpath
               if os.path.isabs(e) and not os.path.isdir(e)}
    unreadable = [u for u in unreadable if not (u.entry and os.path.normpath(u.path) in missing)]
    return [Problem(
        "unreadable", "error",
        f"{u.path} cannot be read ({u.reason}): nothing in it can be imported, listed or "
        f"checked; fix its permissions (or have the stack's maintainers fix them), or take "
        f"it off PYTHONPATH") if u.entry else Problem(
        "unreadable", "warning",
        f"{u.path} cannot be read ({u.reason}): that distribution is neither listed nor "
        f"checked; its permissions need fixing (by the stack's maintainers, if it is the "
        f"stack's)") for u in unreadable]


# ---------------------------------------------------------------------------------------
# All of it
# ---------------------------------------------------------------------------------------

@dataclass
class Inspection:
    """A layer inspected: its effective view (when its interpreter runs) and problems."""

    layer: Layer
    record: RecordedStack
    environ: dict[str, str]
    report: dict[str, Any] | None
    view: list[Distribution]
    missing: list[Problem]

    @property
    def unreadable(self) -> list[Unreadable]:
        return unreadable_paths(self.report) if self.report else []

    @property
    def python_version(self) -> str:
        return self.report["version"] if self.report else self.record.python_version

    def problems(self) -> list[Problem]:
        problems = moved_problems(self.layer) + list(self.missing)
        if self.report is None:
            pythonpath = self.environ.get("PYTHONPATH")
            user_roots: list[str] = []
        else:
            pythonpath = self.report.get("pythonpath")
            user_roots = _Origins(self.layer, self.report).user_roots
        problems += python_mismatch_problems(
            self.record, self.report["version"] if self.report else None, pythonpath,
            self.environ, user_roots)
        problems += stack_not_set_up_problems(self.record, self.environ)
        problems += cwd_problems(pythonpath)
        if self.report is not None:
            conflicts, edges = requirement_problems(self.view, self.report["markers"])
            problems += conflicts
            problems += abi_problems(self.view, edges, self.report["markers"])
            problems += user_site_problems(self.view)
            problems += unreadable_problems(self.unreadable, self.record)
            problems += side_by_side_problems(self.view)
            from layervenv.shadows_stdlib import shadows_stdlib_problems  # imports this module

            problems += shadows_stdlib_problems(self.view, self.report)
        return sort_problems(problems)


def inspect_layer(layer: Layer, environ: dict[str, str] | None = None,
                  need_interpreter: bool = False) -> Inspection:
    """Inspect ``layer`` as it runs in ``environ`` (default: this process's environment).

    When the interpreter is gone, there is nothing to probe: the inspection holds the
    ``stack-missing`` problems only, or, with ``need_interpreter``, raises a UserError.
    """
    environ = dict(os.environ if environ is None else environ)
    record = recorded_stack(layer)
    missing = stack_missing_problems(record, layer)
    env = layer_environment(layer, environ)
    if not layer.python.exists():
        if need_interpreter:
            raise UserError(missing[0].message if missing else
                            f"the interpreter of this layer is gone: {layer.python}")
        return Inspection(layer, record, env, None, [], missing)
    report = run_probe(layer, env)
    view = effective_view(copies_in_path_order(layer, report))
    return Inspection(layer, record, env, report, view, missing)
