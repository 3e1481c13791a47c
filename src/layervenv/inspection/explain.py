"""``layervenv check --explain NAME``: every copy of a name on the layer's sys.path, which
one wins, and why.

Users ask why one copy wins (a stack's PYTHONPATH, ``--system-site-packages``, a
``.pth`` file, the layer).  The answer is read from the one inspection ``check`` makes
(:func:`~layervenv.inspection.pipeline.inspect_layer`: one run of the layer's
interpreter, after its boot hook), never from a second probe:

- a *distribution* (``importlib.metadata``'s view): its copies in ``sys.path`` order, as
  :func:`~layervenv.inspection.effective_view.copies_in_path_order` finds them; the
  first wins, and it is the only one ``pip list`` and ``pip check`` see;
- a top-level *module* (``import``'s view): each sys.path entry is looked at on disk the
  way the path-based finder does (a package's ``__init__``, then an extension module, a
  ``.py``, a ``.pyc``; a directory without ``__init__`` is only a namespace portion, which
  a regular copy further on still beats), after the built-in modules and the layer's
  editable finders (setuptools' ``__editable___*_finder.py``, which the boot hook puts
  ahead of the path-based finder).

Each sys.path entry is given its reason (:class:`Reasons`): the layer's site-packages
(moved first by the boot hook), a path a layer ``.pth`` file adds, a PYTHONPATH entry
(the stack's recorded one, or one set after the stack's setup), a group layer's
site-packages (part of the stack: ``create --over``), the user site, the
standard library, the interpreter's own site-packages, a ``.pth`` file of a site
directory, a site directory the interpreter's ``sitecustomize`` adds from a variable
(:data:`SITECUSTOMIZE_VARIABLES`: CMSSW's PYTHON3PATH, EasyBuild's EBPYTHONPREFIXES),
another layer's site-packages, or none of these (``sitecustomize``).
The tests hold the winner to ``importlib.util.find_spec(NAME).origin`` in the layer's
own interpreter.
"""

from __future__ import annotations

import ast
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from layervenv.boot._layervenv_boot import OVER_PTH, OWN_PTH, PACKAGE_DIRECTORIES, PTH_SUFFIX
from layervenv.dists.files import top_level_modules
from layervenv.infra.errors import UserError
from layervenv.inspection.effective_view import (
    Copy,
    Origins,
    copies_in_path_order,
    is_under,
)
from layervenv.inspection.pipeline import Inspection, inspect_layer
from layervenv.model.layer import Layer, is_layer

#: What a setuptools editable finder file is called (``__editable___NAME_finder.py``).
_EDITABLE_FINDER = re.compile(r"^__editable___.*_finder\.py$")


# ---------------------------------------------------------------------------------------
# Why an entry is on sys.path
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    """Why a sys.path entry is there, as a short code and a sentence."""

    code: str
    text: str


def _pth_lines(sitedir: str) -> dict[str, str]:
    """``{real path: .pth file}`` of the path lines of ``sitedir``'s ``.pth`` files, read
    the way ``site`` reads them (import lines and comments skipped).  (Not the boot
    hook's :func:`~layervenv.boot._layervenv_boot.pth_scan`: this one names the file.)"""
    found: dict[str, str] = {}
    try:
        names = sorted(os.listdir(sitedir))
    except OSError:
        return found
    for name in names:
        if not name.endswith(PTH_SUFFIX) or name.startswith(".") or name in (OWN_PTH, OVER_PTH):
            continue  # the hook's own, and the group layers' (their own reason)
        path = os.path.join(sitedir, name)
        try:
            with open(path, encoding="utf-8-sig") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            if line.strip() and not line.startswith(("#", "import ", "import\t")):
                found.setdefault(os.path.realpath(os.path.join(sitedir, line.rstrip())), path)
    return found


def _owning_layer(real: str) -> str | None:
    """The root of the layer whose site-packages ``real`` is (a layer used as a stack)."""
    parts = real.split(os.sep)
    for index in range(len(parts) - 1, 0, -1):
        if parts[index] in PACKAGE_DIRECTORIES and index >= 3 and parts[index - 2] == "lib":
            root = os.sep.join(parts[:index - 2]) or os.sep
            return root if is_layer(Path(root)) else None
    return None


class Reasons:
    """Tells why each sys.path entry of the layer's interpreter is there."""

    def __init__(self, layer: Layer, report: dict[str, Any]) -> None:
        self.layer = layer
        self.origins = Origins(layer, report)
        self.layer_site = os.path.realpath(str(layer.site_packages))
        self.layer_pth = _pth_lines(str(layer.site_packages))
        value = report.get("pythonpath") or ""
        self.pythonpath = [os.path.realpath(e or ".") for e in value.split(os.pathsep)] \
            if value else []
        self.recorded = {os.path.realpath(e) for e in layer.config.stack.stack_pythonpath()}
        self.sitecustomize = report.get("sitecustomize")
        self.sitecustomized = sitecustomize_directories(report) if self.sitecustomize else {}
        self.base_prefix = os.path.realpath(report.get("base_prefix") or "")
        self.stdlib = os.path.realpath(report.get("stdlib_dir") or "")
        self.user_site = os.path.realpath(report["user_site"]) if report.get("user_site") \
            else None
        # the .pth files of the site directories on the path (not the layer's, not
        # PYTHONPATH's: site reads .pth files in site directories only)
        self.site_pth: dict[str, str] = {}
        for item in report["sys_path"]:
            real = item["real"]
            if os.path.basename(real) in PACKAGE_DIRECTORIES and real != self.layer_site:
                for added, pth in _pth_lines(real).items():
                    self.site_pth.setdefault(added, pth)

    def _is_stdlib(self, real: str) -> bool:
        """The standard library's directory, its ``lib-dynload``, its zip beside it."""
        if not self.stdlib or os.path.basename(real) in PACKAGE_DIRECTORIES:
            return False
        return is_under(real, self.stdlib) or (
            real.endswith(".zip") and os.path.dirname(real) == os.path.dirname(self.stdlib))

    def of(self, real: str) -> Reason:
        """The reason of the sys.path entry whose real path is ``real``."""
        if real == self.layer_site:
            return Reason("layer", "the layer's site-packages, put ahead of PYTHONPATH by "
                                   "the layer's boot hook (~layervenv.pth)")
        if real in self.layer_pth:
            return Reason("layer-pth", f"added by the layer's {self.layer_pth[real]} "
                                       "(an editable install), moved ahead with the layer")
        if is_under(real, self.origins.layer_root):
            return Reason("layer", "inside the layer")
        if real in self.origins.over:
            where = f"PYTHONPATH entry {self.pythonpath.index(real) + 1} of " \
                    f"{len(self.pythonpath)}, " if real in self.pythonpath else ""
            return Reason("group-layer", f"{where}the site-packages of the group layer "
                                         f"{self.origins.over[real]}, part of this layer's "
                                         "stack (create --over), behind the layer's own")
        if real in self.pythonpath:
            where = f"PYTHONPATH entry {self.pythonpath.index(real) + 1} of " \
                    f"{len(self.pythonpath)}"
            if real in self.recorded:
                return Reason("pythonpath", f"{where}, the stack's (recorded when the layer "
                                            "was made)")
            owner = _owning_layer(real)
            if owner:
                return Reason("pythonpath-other",
                              f"{where}, the site-packages of the layer {owner}, not in the "
                              "stack's recorded PYTHONPATH")
            return Reason("pythonpath-other", f"{where}, not in the stack's recorded "
                                              "PYTHONPATH (set after the stack's setup)")
        if self.user_site and real == self.user_site:
            return Reason("user-site", "the user site (~/.local), added by site")
        if real in self.sitecustomized:
            return Reason("sitecustomize",
                          f"{self.sitecustomized[real]}, added by {self.sitecustomize} "
                          "(site.addsitedir: after the site-packages)")
        if real in self.site_pth:
            pth = self.site_pth[real]
            directory = os.path.realpath(os.path.dirname(pth))
            if directory in self.sitecustomized:
                named = self.sitecustomized[directory]
                return Reason("pth", f"added by {pth}, in a site directory that "
                                     f"{self.sitecustomize} adds ({named})")
            return Reason("pth", f"added by {pth}")
        if self._is_stdlib(real):
            return Reason("stdlib", "the standard library")
        owner = _owning_layer(real)
        if owner:
            return Reason("other-layer", f"the site-packages of the layer {owner}")
        if os.path.basename(real) in PACKAGE_DIRECTORIES and is_under(real, self.base_prefix):
            return Reason("interpreter-site", "the interpreter's own site-packages "
                                              f"(below sys.base_prefix {self.base_prefix})")
        return Reason("other", "put on sys.path at start-up, not by PYTHONPATH nor a .pth "
                               "file (the interpreter's site or sitecustomize)")


#: Variables a stack's ``sitecustomize.py`` reads to add site directories (with
#: ``site.addsitedir``, after the site-packages; which is why a layer still wins over
#: them): the probe's report key, and how an entry names its site directory.
SITECUSTOMIZE_VARIABLES = {
    # CMSSW's Python (cms-sw/cmsdist python3.spec): each entry is a site directory
    "PYTHON3PATH": ("python3path", lambda entry, short: entry),
    # EasyBuild 5 (easyblocks' python.py SITECUSTOMIZE): each entry is an install prefix
    "EBPYTHONPREFIXES": ("ebpythonprefixes", lambda entry, short: os.path.join(
        entry, "lib", f"python{short}", "site-packages")),
}


def sitecustomize_directories(report: dict[str, Any]) -> dict[str, str]:
    """The site directories a stack's sitecustomize adds, real path -> which entry of
    which variable names it ("EBPYTHONPREFIXES entry 2 of 9")."""
    short = ".".join(str(report.get("version", "")).split(".")[:2])
    found: dict[str, str] = {}
    for variable, (key, site_dir) in SITECUSTOMIZE_VARIABLES.items():
        entries = [e for e in (report.get(key) or "").split(os.pathsep) if e]
        for index, entry in enumerate(entries, 1):
            found.setdefault(os.path.realpath(site_dir(entry, short)),
                             f"{variable} entry {index} of {len(entries)}")
    return found


# ---------------------------------------------------------------------------------------
# Where import finds a module
# ---------------------------------------------------------------------------------------

@dataclass
class Found:
    """One place ``import NAME`` could take the module from."""

    kind: str  # package, module, extension, bytecode, namespace, built-in, editable-finder
    origin: str | None  # what find_spec(...).origin gives (None for a namespace portion)
    position: int | None  # index on sys.path (None: found before the path)
    entry: str
    reason: Reason
    wins: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "origin": self.origin, "sys_path_index": self.position,
                "entry": self.entry, "why": self.reason.code, "reason": self.reason.text,
                "wins": self.wins}


def _extension_suffixes(report: dict[str, Any]) -> tuple[str, ...]:
    """The layer interpreter's extension module suffixes (CPython on Linux/macOS)."""
    markers = report.get("markers") or {}
    short = "".join(str(report.get("version", "")).split(".")[:2])
    machine = markers.get("platform_machine", "")
    if markers.get("sys_platform") == "darwin":
        return (f".cpython-{short}-darwin.so", ".abi3.so", ".so")
    return (f".cpython-{short}-{machine}-linux-gnu.so", ".abi3.so", ".so")


def _in_directory(directory: str, name: str, extensions: tuple[str, ...]
                  ) -> tuple[str, str] | None:
    """What the path-based finder (``FileFinder``) finds for ``name`` in ``directory``:
    a package's ``__init__`` (extension, source, bytecode), else a module file, else a
    namespace portion (a directory without ``__init__``)."""
    suffixes = [(s, "extension") for s in extensions] + [(".py", "module"), (".pyc", "bytecode")]
    base = os.path.join(directory, name)
    namespace = os.path.isdir(base)
    if namespace:
        for suffix, _ in suffixes:
            init = os.path.join(base, "__init__" + suffix)
            if os.path.isfile(init):
                return "package", init
    for suffix, kind in suffixes:
        if os.path.isfile(base + suffix):
            return kind, base + suffix
    return ("namespace", base) if namespace else None


def _in_zip(archive: str, name: str) -> tuple[str, str] | None:
    """What ``zipimport`` finds for ``name`` at the top of ``archive``."""
    try:
        with zipfile.ZipFile(archive) as handle:
            members = set(handle.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    for member, kind in ((f"{name}/__init__.py", "package"), (f"{name}/__init__.pyc", "package"),
                         (f"{name}.py", "module"), (f"{name}.pyc", "bytecode")):
        if member in members:
            return kind, os.path.join(archive, member)
    return None


def _editable_mapping(site: str, name: str) -> str | None:
    """Where the layer's setuptools editable finders map the top-level ``name`` (their
    ``MAPPING`` literal, read, never imported)."""
    try:
        leaves = sorted(os.listdir(site))
    except OSError:
        return None
    for leaf in leaves:
        if not _EDITABLE_FINDER.match(leaf):
            continue
        try:
            with open(os.path.join(site, leaf), encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "MAPPING" for t in node.targets):
                try:
                    mapping = ast.literal_eval(node.value)
                except ValueError:
                    continue
                if isinstance(mapping, dict) and isinstance(mapping.get(name), str):
                    return mapping[name]
    return None


def _editable_origin(target: str) -> str:
    """The origin the editable finder gives: the package's ``__init__.py`` or the file."""
    init = os.path.join(target, "__init__.py")
    return init if os.path.isdir(target) else target


def module_candidates(layer: Layer, report: dict[str, Any], name: str, reasons: Reasons
                      ) -> list[Found]:
    """Every place ``import name`` could take the top-level module from, in the order the
    import system looks; the one that wins is marked."""
    found: list[Found] = []
    if name in (report.get("builtin_module_names") or ()):
        found.append(Found("built-in", "built-in", None, "", Reason("built-in",
                           "built into the interpreter")))
    if name in (report.get("frozen_module_names") or ()):
        found.append(Found("frozen", "frozen", None, "", Reason(
            "frozen", "frozen into the interpreter: taken before any path entry")))
    mapped = _editable_mapping(str(layer.site_packages), name)
    if mapped:
        found.append(Found("editable-finder", _editable_origin(mapped), None, mapped,
                           Reason("editable-finder", "a setuptools editable finder of the "
                                  "layer, put ahead of the path-based finder by the boot hook")))
    extensions = _extension_suffixes(report)
    for position, item in enumerate(report["sys_path"]):
        if item.get("duplicate_of") is not None:
            continue
        entry = item["path"] or "."
        hit = _in_directory(entry, name, extensions) if item["is_dir"] else \
            _in_zip(item["real"], name)
        if hit:
            kind, where = hit
            found.append(Found(kind, None if kind == "namespace" else where, position,
                               item["path"], reasons.of(item["real"])))
    regular = [f for f in found if f.kind != "namespace"]
    if regular:
        regular[0].wins = True
    for portion in found:
        if not regular and portion.kind == "namespace":
            portion.wins = True  # every portion makes the namespace package together
    return found


# ---------------------------------------------------------------------------------------
# The answer
# ---------------------------------------------------------------------------------------

@dataclass
class DistCopy:
    copy: Copy
    position: int
    reason: Reason
    wins: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.copy.name, "version": self.copy.version,
                "location": self.copy.location, "metadata": self.copy.metadata,
                "origin": self.copy.origin, "sys_path_index": self.position,
                "why": self.reason.code, "reason": self.reason.text, "wins": self.wins}


@dataclass
class Explanation:
    """What ``check --explain NAME`` says."""

    name: str
    layer: str
    distribution: list[DistCopy] = field(default_factory=list)
    modules: dict[str, list[Found]] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.distribution) or any(self.modules.values())

    def module_origin(self, module: str) -> str | None:
        """What ``importlib.util.find_spec(module).origin`` gives, as explained here."""
        winners = [f for f in self.modules.get(module, []) if f.wins]
        return winners[0].origin if winners else None

    def pip_says(self) -> str:
        if not self.distribution:
            return f"pip list and pip check know no distribution {self.name}"
        winner = self.distribution[0].copy
        hidden = len(self.distribution) - 1
        text = f"pip list shows {winner.name} {winner.version} from {winner.location}"
        if hidden:
            text += (f"; pip list and pip check do not see the {hidden} shadowed "
                     f"cop{'y' if hidden == 1 else 'ies'} (they read the first copy on "
                     "sys.path only)")
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "layer": self.layer, "found": self.found,
            "distribution": [c.to_json() for c in self.distribution],
            "pip": self.pip_says(),
            "modules": {m: {"origin": self.module_origin(m),
                            "candidates": [f.to_json() for f in found]}
                        for m, found in self.modules.items()},
        }

    def human(self) -> str:
        if not self.found:
            return (f"{self.name}: no distribution and no top-level module of that name on "
                    f"the sys.path of layer {self.layer}")
        lines = []
        if self.distribution:
            lines.append(f"distribution {self.distribution[0].copy.name}: "
                         f"{len(self.distribution)} on sys.path, the first wins")
            for item in self.distribution:
                state = "wins" if item.wins else "shadowed"
                lines.append(f"  {state:<8}  {item.copy.version:<10}  {item.copy.location}")
                lines.append(f"            sys.path[{item.position}]: {item.reason.text}")
            lines.append(f"  {self.pip_says()}")
        for module, found in self.modules.items():
            if not found:
                lines.append(f"import {module}: not found on sys.path")
                continue
            lines.append(f"import {module}: {self.module_origin(module) or 'a namespace package'}")
            for item in found:
                state = "wins" if item.wins else "shadowed"
                where = "before sys.path" if item.position is None else \
                    f"sys.path[{item.position}]"
                lines.append(f"  {state:<8}  {item.kind:<15}  {item.origin or item.entry}")
                lines.append(f"            {where}: {item.reason.text}")
        return "\n".join(lines)


def explain(layer: Layer, name: str, environ: dict[str, str] | None = None,
            inspection: Inspection | None = None) -> Explanation:
    """Every copy of ``name`` (a distribution or a top-level module) on the layer's
    sys.path, which one wins and why.  ``inspection``: the layer already inspected
    (to explain many names from one run of its interpreter)."""
    name = name.strip()
    if not name:
        raise UserError("--explain needs a distribution or module name")
    if inspection is None:
        inspection = inspect_layer(layer, environ, need_interpreter=True)
    report = inspection.report
    assert report is not None  # need_interpreter
    reasons = Reasons(layer, report)
    positions = {item["path"]: index for index, item in enumerate(report["sys_path"])}
    key = canonicalize_name(name)
    copies = [c for c in copies_in_path_order(layer, report) if c.key == key]
    result = Explanation(name=name, layer=str(layer.root))
    for index, copy in enumerate(copies):
        real = os.path.realpath(copy.path_entry or ".")
        result.distribution.append(DistCopy(copy, positions.get(copy.path_entry, -1),
                                            reasons.of(real), index == 0))
    modules: list[str] = []
    top = name.split(".")[0]
    if top.isidentifier():
        modules.append(top)
    if copies:
        modules += [m.split(".")[0] for m in top_level_modules(copies[0].metadata)]
    for module in dict.fromkeys(modules):
        result.modules[module] = module_candidates(layer, report, module, reasons)
    if top in result.modules and not result.modules[top] and copies:
        del result.modules[top]  # a distribution whose import name differs
    return result
