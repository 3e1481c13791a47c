"""A layer's lock: PEP 751 ``pylock.toml`` with the stack's identity in ``[tool.layervenv]``.

Only the distributions in the layer's own site-packages are locked, never the
stack's.  Each package has one source, as PEP 751 spells them: ``wheels`` (from an
index or a find-links directory, with its sha256), ``sdist`` (the same, for a version
published without a wheel), ``archive`` (a direct URL),
``directory`` (a local project, ``editable = true`` for ``pip install -e``) or ``vcs``.
``[packages.tool.layervenv] requested`` keeps pip's ``REQUESTED`` marker: what the
user asked for, as opposed to what came along as a dependency.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w
from packaging.utils import canonicalize_name

from layervenv.dists.direct_url import is_editable, parse_direct_url, url_to_path
from layervenv.infra.errors import UserError
from layervenv.interp.stack_contents import stack_digest
from layervenv.model.lockschema import validate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

LOCK_VERSION = "1.0"
CREATED_BY = "layervenv"


@dataclass
class LockedPackage:
    """One ``[[packages]]`` entry."""

    name: str
    version: str
    requested: bool = False
    #: ``[{"name": file, "url" or "path": ..., "hashes": {"sha256": ...}}]``
    wheels: list[dict[str, Any]] = field(default_factory=list)
    #: ``{"name": file, "url" or "path": ..., "hashes": ...}`` of a version with no wheel
    sdist: dict[str, Any] | None = None
    archive: dict[str, Any] | None = None
    directory: dict[str, Any] | None = None
    vcs: dict[str, Any] | None = None

    @property
    def editable(self) -> bool:
        return bool(self.directory and self.directory.get("editable"))

    def resolve_paths(self, base: Path) -> None:
        """Make relative ``path``s absolute: PEP 751 says they are relative to the lock file."""
        tables = [*self.wheels, self.sdist, self.archive, self.directory, self.vcs]
        for table in tables:
            if table and table.get("path") and not Path(str(table["path"])).is_absolute():
                table["path"] = str(base / str(table["path"]))

    def build_source(self) -> str | None:
        """What pip would build this package from, shown as ``KIND WHERE`` (``directory
        /p/proj``), or None when nothing is built: a wheel (locked ``wheels``, or an
        ``archive`` whose file is a ``.whl``) is only unpacked, while building a project
        runs its code (``setup.py``, a build backend fetched for it).  A lock from
        elsewhere is data: ``create --from`` builds only with ``--trust-build``."""
        if self.wheels:
            return None
        for kind in ("directory", "vcs", "archive", "sdist"):
            table = getattr(self, kind)
            if not table:
                continue
            where = str(table.get("url") or table.get("path") or "")
            if kind == "archive" and urlsplit(where).path.endswith(".whl"):
                return None
            if kind == "vcs":
                revision = table.get("commit-id") or table.get("requested-revision")
                where = f"{table.get('type', 'git')}+{where}" + (f"@{revision}" if revision
                                                                   else "")
            if kind == "directory" and table.get("editable"):
                kind = "editable directory"
            if table.get("subdirectory"):
                where += f"#subdirectory={table['subdirectory']}"
            return f"{kind} {where}"
        return None

    @property
    def source_tree(self) -> bool:
        """Locked as a directory or a VCS checkout: code that may change under its version."""
        return bool(self.directory or self.vcs)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if not self.source_tree:
            # PEP 751: the version MUST NOT be included when it cannot be guaranteed to be
            # consistent with the code used, i.e. for a source tree
            data["version"] = self.version
        for key in ("vcs", "directory", "archive", "sdist"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.wheels:
            data["wheels"] = self.wheels
        data["tool"] = {"layervenv": {"requested": self.requested}}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockedPackage:
        tool = data.get("tool", {}).get("layervenv", {})
        return cls(name=canonicalize_name(data["name"]), version=str(data.get("version", "")),
                   requested=bool(tool.get("requested", False)),
                   wheels=list(data.get("wheels", [])), sdist=data.get("sdist"),
                   archive=data.get("archive"),
                   directory=data.get("directory"), vcs=data.get("vcs"))


@dataclass
class Lock:
    """The whole lock file."""

    packages: list[LockedPackage]
    python: str
    python_version: str
    implementation: str
    stack_distributions: dict[str, str]
    setup: str = ""
    #: requested packages the stack provides (not in the layer, so not in ``packages``)
    requested_from_stack: list[str] = field(default_factory=list)
    #: the layer's own choices at creation, made again by ``create --from``
    rerun_setup: bool = False
    export_pythonpath: bool = False
    prompt: str | None = None
    #: the group layers the stack includes, nearest first (``create --over``): their
    #: packages are counted in ``stack_distributions``; ``create --from`` stands on them
    over: list[str] = field(default_factory=list)

    @property
    def stack_digest(self) -> str:
        return stack_digest(self.stack_distributions)

    def to_toml(self) -> str:
        tool: dict[str, Any] = {
            "python-version": self.python_version,
            "implementation": self.implementation,
            "python": self.python,
        }
        if self.setup:
            tool["setup"] = self.setup
        if self.rerun_setup:
            tool["rerun-setup"] = True
        if self.export_pythonpath:
            tool["export-pythonpath"] = True
        if self.prompt is not None:
            tool["prompt"] = self.prompt
        if self.requested_from_stack:
            tool["requested-from-stack"] = self.requested_from_stack
        if self.over:
            tool["over"] = list(self.over)
        tool["stack-fingerprint"] = self.stack_digest
        tool["stack-distributions"] = dict(sorted(self.stack_distributions.items()))
        data = {
            "lock-version": LOCK_VERSION,
            "created-by": CREATED_BY,
            "packages": [p.to_dict() for p in sorted(self.packages, key=lambda p: p.name)],
            "tool": {"layervenv": tool},
        }
        return tomli_w.dumps(data)

    @classmethod
    def read(cls, path: Path) -> Lock:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"no such lock file: {path}") from None
        except OSError as error:
            raise UserError(f"cannot read {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise UserError(f"cannot read {path}: it is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as error:
            raise UserError(f"{path} is not valid TOML: {error}") from None
        except RecursionError:  # the parser recurses into each nested array or table
            raise UserError(f"{path} nests arrays or tables too deeply to be read; the lock "
                            "is refused (nothing was run or created)") from None
        if str(data.get("lock-version", "")).split(".")[0] != "1":
            raise UserError(f"{path} is not a PEP 751 lock (lock-version 1.x)")
        tools = data.get("tool", {})
        tool = tools.get("layervenv") if isinstance(tools, dict) else None
        if not isinstance(tool, dict) or not isinstance(tool.get("stack-distributions"), dict):
            raise UserError(f"{path} was not written by layervenv lock (no [tool.layervenv] "
                            "with stack-distributions), so it does not say which stack it is "
                            "for")
        try:
            validate(data, str(path))
        except RecursionError:  # a value nested deeper than it can be walked or shown
            raise UserError(f"{path} nests arrays or tables too deeply to be checked; the lock "
                            "is refused (nothing was run or created)") from None
        packages = [LockedPackage.from_dict(p) for p in data.get("packages", [])]
        for package in packages:
            package.resolve_paths(path.parent)
        return cls(packages=packages, python=tool.get("python", ""),
                   python_version=tool.get("python-version", ""),
                   implementation=tool.get("implementation", ""),
                   stack_distributions={canonicalize_name(k): v for k, v in
                                        tool["stack-distributions"].items()},
                   setup=tool.get("setup", ""),
                   rerun_setup=tool.get("rerun-setup", False),
                   export_pythonpath=tool.get("export-pythonpath", False),
                   prompt=tool.get("prompt"),
                   requested_from_stack=list(tool.get("requested-from-stack", [])),
                   over=list(tool.get("over", [])))


@dataclass
class Installed:
    """A distribution in a layer's site-packages, as the lock needs to know it."""

    name: str
    version: str
    requested: bool
    installer: str
    direct_url: dict[str, Any] | None
    path: Path  # its .dist-info


def layer_distributions(site_packages: Path) -> list[Installed]:
    """The distributions in ``site_packages`` only (never the stack's), sorted by name."""
    found: dict[str, Installed] = {}
    for dist in metadata.distributions(path=[str(site_packages)]):
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        direct_url = parse_direct_url(dist.read_text("direct_url.json"))
        found.setdefault(canonicalize_name(name), Installed(
            name=canonicalize_name(name), version=dist.version,
            requested=dist.read_text("REQUESTED") is not None,
            installer=(dist.read_text("INSTALLER") or "").strip(),
            direct_url=direct_url,
            path=Path(str(dist._path)),  # type: ignore[attr-defined]
        ))
    return [found[n] for n in sorted(found)]


def direct_source(installed: Installed) -> dict[str, Any] | None:
    """The PEP 751 source of a direct-URL install (PEP 610), as ``{key: table}``."""
    info = installed.direct_url
    if not info or "url" not in info:
        return None
    url = info["url"]
    local = url_to_path(url)
    where: dict[str, Any] = {"path": local} if local else {"url": url}
    if info.get("subdirectory"):  # a project below the VCS checkout's or archive's root
        where["subdirectory"] = info["subdirectory"]
    if "dir_info" in info:
        directory = {"path": local or url, **where, "editable": is_editable(info)}
        return {"directory": directory}
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        table = {"type": vcs.get("vcs", "git"), **where, "commit-id": vcs.get("commit_id", "")}
        if vcs.get("requested_revision"):
            table["requested-revision"] = vcs["requested_revision"]
        return {"vcs": table}
    archive = info.get("archive_info", {})
    hashes = dict(archive.get("hashes", {}))
    if not hashes and "=" in archive.get("hash", ""):
        algo, value = archive["hash"].split("=", 1)
        hashes = {algo: value}
    return {"archive": {**where, "hashes": hashes}}


def _location(table: dict[str, Any]) -> str:
    """A PEP 751 source table's ``url``, or its ``path`` as a ``file:`` URL."""
    if table.get("url"):
        return str(table["url"])
    return Path(str(table["path"])).absolute().as_uri()


def direct_url(package: LockedPackage) -> dict[str, Any] | None:
    """The PEP 610 ``direct_url.json`` of a package locked from an archive, a VCS or a
    directory (None for wheels and sdists from an index): what pip would have written,
    so that the re-created layer can be locked, and rebased, again."""
    if package.vcs:
        vcs = package.vcs
        info: dict[str, Any] = {"vcs": vcs.get("type", "git"), "commit_id": vcs.get("commit-id")}
        if vcs.get("requested-revision"):
            info["requested_revision"] = vcs["requested-revision"]
        data: dict[str, Any] = {"url": _location(vcs), "vcs_info": info}
        table = vcs
    elif package.archive:
        table = package.archive
        hashes = dict(table.get("hashes", {}))
        archive: dict[str, Any] = {"hashes": hashes}
        if "sha256" in hashes:
            archive["hash"] = "sha256=" + hashes["sha256"]
        data = {"url": _location(table), "archive_info": archive}
    elif package.directory:
        table = package.directory
        data = {"url": _location(table),
                "dir_info": {"editable": True} if package.editable else {}}
    else:
        return None
    if table.get("subdirectory"):
        data["subdirectory"] = table["subdirectory"]
    return data


def direct_reference(info: dict[str, Any]) -> str:
    """What pip installs a PEP 610 ``direct_url.json`` from: the VCS URL at its commit
    (``git+URL@commit``), the archive's or the directory's URL, with its subdirectory.

    A bare URL, not ``name @ URL``: the packaging vendored in pip < 23.3 rejects
    ``name @ git+file:///...`` (a URL with no host), while every pip takes the URL.
    """
    url = str(info["url"])
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        revision = vcs.get("commit_id") or vcs.get("requested_revision")
        url = f"{vcs.get('vcs', 'git')}+{url}" + (f"@{revision}" if revision else "")
    if info.get("subdirectory"):
        url += f"#subdirectory={info['subdirectory']}"
    return url
