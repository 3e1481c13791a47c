"""What a layer really sees: the *effective view* behind ``list`` and every check.

One run of the layer's own interpreter (``probe.py``, in the environment the layer
runs with) reports its ``sys.path`` after the boot hook and every distribution's
metadata on it.  Here, on the tool's side, that becomes the effective view: walk
``sys.path`` in order, the first copy of a name wins, later copies are shadowed.
Each copy has an origin:

``layer``      in the layer's site-packages;
``editable``   an editable install of the layer (PEP 610 ``direct_url.json``, or found
               on a path the layer's ``.pth`` files add);
``user-site``  under the user base (``~/.local``), by the user site or on PYTHONPATH;
``stack``      everything else: PYTHONPATH, the interpreter's own site-packages; a group
               layer's site-packages (``create --over``) is part of the stack: its copies
               are ``stack`` copies whose ``layer`` names the group layer.

What the probe could not read is kept too (:func:`unreadable_paths`), so that a short
list is not taken for all there is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.utils import canonicalize_name

from layervenv.boot._layervenv_boot import pth_paths
from layervenv.interp.query import run_query
from layervenv.model.layer import Layer

#: the query script run in the layer's interpreter (``layervenv.interp``)
PROBE_SCRIPT = "probe.py"
PROBE_TIMEOUT = 120

ORIGINS = ("layer", "editable", "user-site", "stack")


# ---------------------------------------------------------------------------------------
# Running the probe in the layer's interpreter
# ---------------------------------------------------------------------------------------

def run_probe(layer: Layer, environ: dict[str, str]) -> dict[str, Any]:
    """One run of ``DIR/bin/python -c probe.py REPORT`` in ``environ``; its JSON report.

    The report goes to a file of its own, not to stdout (see :mod:`layervenv.interp.query`):
    what the stack's ``sitecustomize`` or ``.pth`` files print at start-up cannot mix
    with it.
    """
    report: dict[str, Any] = run_query(layer.python, PROBE_SCRIPT, env=environ,
                                       timeout=PROBE_TIMEOUT, cwd=layer.root)
    return report


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
    #: the root of the layer holding the copy: this layer's, a group layer's (part of the
    #: stack: ``create --over``), "" for the stack's own and the user site's
    layer: str = ""

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


def is_under(path: str, root: str) -> bool:
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


class Origins:
    """Tells where a path entry belongs: the layer, its editables, the user site, the stack."""

    def __init__(self, layer: Layer, report: dict[str, Any]) -> None:
        self.layer_root = _real(str(layer.root))
        self.root = str(layer.root)
        #: the group layers of the stack: real site-packages -> root
        self.over = {_real(o.site_packages): o.root
                     for o in layer.config.stack.over_layers()}
        site = str(layer.site_packages)
        self.editable_entries = {_real(p) for p in pth_paths(site)}
        self.user_roots = [_real(os.path.join(report["user_base"], "lib"))] \
            if report.get("user_base") else []
        if report.get("user_site"):
            self.user_roots.append(_real(report["user_site"]))

    def of_entry(self, real: str) -> str:
        if is_under(real, self.layer_root):
            return "layer"
        if real in self.editable_entries:
            return "editable"
        if any(is_under(real, root) for root in self.user_roots):
            return "user-site"
        return "stack"

    def layer_of(self, real: str, origin: str) -> str:
        """The root of the layer an entry is in: this layer, a group layer, or ""."""
        if origin in ("layer", "editable"):
            return self.root
        return self.over.get(real, "")


def copies_in_path_order(layer: Layer, report: dict[str, Any]) -> list[Copy]:
    """Every distribution on the interpreter's sys.path, in the order imports find them."""
    origins = Origins(layer, report)
    copies = []
    for entry in report["sys_path"]:
        if not entry["distributions"]:
            continue
        origin = origins.of_entry(entry["real"])
        holder = origins.layer_of(entry["real"], origin)
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
                requested=bool(dist["requested"]), editable=editable, layer=holder,
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
                and is_under(_real(copy.path_entry), _real(winner.editable))):
            continue
        known.shadowed.append(copy)
    return sorted(by_key.values(), key=lambda d: d.key)


# ---------------------------------------------------------------------------------------
# What the probe could not read
# ---------------------------------------------------------------------------------------

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
