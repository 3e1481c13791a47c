"""A lock's packages into a staged layer: the engine of ``create --from``.

Before anything is created, the stack the layer will have is compared with the lock's
record (:meth:`FromLock.before`); a drifted stack is refused unless the user allows it,
and so are locked wheels that are not for the interpreter here.  While the layer is
still staged, its pip fetches exactly the locked files (hash-checked, no resolving:
``--no-deps``), which ``installer`` installs with scripts pointing at the final path;
editable entries are installed with ``pip install -e --no-deps`` in the staging
directory and their scripts re-pointed.  Only a complete layer is renamed into place
(:mod:`layervenv.services.staging`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging import tags
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from layervenv.infra.errors import UserError
from layervenv.interp.interpreter import Interpreter
from layervenv.interp.stack_contents import Drift, compare, python_identity, stack_distributions
from layervenv.model.layer import Layer
from layervenv.model.lockfile import (
    Lock,
    LockedPackage,
    direct_reference,
    direct_url,
    layer_distributions,
)
from layervenv.model.lockschema import requirement_line
from layervenv.services.installers import PipInstaller
from layervenv.services.packages import (
    Sources,
    StagingTarget,
    file_sha256,
    fresh_directory,
    remove_directory,
)
from layervenv.services.staging import staging_target


class StackDrift(UserError):
    """The stack is not the one the lock was made on."""

    exit_code = 1


def _local_wheel(package: LockedPackage) -> Path | None:
    """A locked wheel file that is on this machine with the locked sha256."""
    for wheel in package.wheels:
        path = wheel.get("path")
        digest = wheel.get("hashes", {}).get("sha256")
        if path and digest and Path(path).is_file() and file_sha256(Path(path)) == digest:
            return Path(path)
    return None


def _hash_options(tables: list[dict[str, Any]]) -> str:
    return " ".join(f"--hash=sha256:{t['hashes']['sha256']}" for t in tables
                    if t.get("hashes", {}).get("sha256"))


def _supported_tags(interp: Interpreter) -> set[Tag] | None:
    """The wheel tags ``interp`` installs on this machine (None: not known for it).

    Computed here, without running it: CPython's tags for its version (with every ABI
    flag variant: a free-threaded or debug build is not told apart) on this platform.
    """
    if interp.implementation != "cpython":
        return None
    major, minor = (int(p) for p in interp.version.split(".")[:2])
    abi = f"cp{major}{minor}"
    found = set(tags.cpython_tags((major, minor), abis=[abi, abi + "t", abi + "d"]))
    found.update(tags.compatible_tags((major, minor), interpreter=abi))
    return found


def wheels_not_for(packages: list[LockedPackage], interp: Interpreter) -> list[str]:
    """Names of the locked packages none of whose wheels installs on ``interp``: with
    --allow-stack-drift onto another Python, a locked cp311 wheel would be installed
    into a 3.12 layer (``installer`` does not check tags) and fail to import."""
    supported = _supported_tags(interp)
    if supported is None:
        return []
    unfit = []
    for package in packages:
        names = [str(w.get("name") or Path(str(w.get("path") or w.get("url", ""))).name)
                 for w in package.wheels]
        try:
            fits = any(supported & set(parse_wheel_filename(n)[3]) for n in names)
        except InvalidWheelFilename:
            continue  # let pip judge it
        if names and not fits:
            unfit.append(package.name)
    return unfit


def fetch_locked(packages: list[LockedPackage], target: StagingTarget, environ: dict[str, str],
                 pip: PipInstaller, workdir: Path) -> dict[str, Path]:
    """A wheel file for every non-editable locked package, without resolving anything.

    Hashed and unhashed requirements go to separate pip runs: one ``--hash`` puts pip
    in hash-checking mode for the whole run, where a directory or a VCS checkout
    (which have no hash) is refused.
    """
    found: dict[str, Path] = {}
    # pip command -> [(name, requirement line)]
    runs: dict[str, list[tuple[str, str]]] = {"download": [], "wheel": [], "wheel-unhashed": []}
    for package in packages:
        if package.editable:
            continue
        local = _local_wheel(package)
        info = direct_url(package)
        if local is not None:
            found[package.name] = local
        elif package.wheels:
            runs["download"].append((package.name, f"{package.name}=={package.version} "
                                                   f"{_hash_options(package.wheels)}"))
        elif package.sdist:  # built again, from the locked file where it still is
            sdist = package.sdist
            digest = sdist.get("hashes", {}).get("sha256")
            here = sdist.get("path") and Path(sdist["path"]).is_file() and digest and \
                file_sha256(Path(sdist["path"])) == digest
            where = (Path(sdist["path"]).as_uri() if here else sdist.get("url")
                     or f"{package.name}=={package.version}")
            runs["wheel"].append((package.name, f"{where} {_hash_options([sdist])}"))
        elif package.archive and info:
            runs["wheel"].append((package.name, f"{direct_reference(info)} "
                                                f"{_hash_options([package.archive])}"))
        elif info:
            runs["wheel-unhashed"].append((package.name, direct_reference(info)))
        else:
            raise UserError(f"the lock names no source for {package.name} {package.version}")
    for kind, entries in runs.items():
        if not entries:
            continue
        names = ", ".join(name for name, _ in entries)
        found.update(pip.fetch(target.scheme.python,
                               [requirement_line(line.strip()) for _, line in entries],
                               workdir / kind, environ, f"fetching the locked {names}",
                               binary_only=kind == "download"))
    return found


def install_locked(lock: Lock, target: StagingTarget, environ: dict[str, str],
                   sources: Sources, seeded_pip: str | None) -> dict[str, str]:
    """Install exactly the locked packages into the staged layer; their versions."""
    pip = PipInstaller(sources)
    workdir = fresh_directory("layervenv-wheels-")
    try:
        wheels = fetch_locked(lock.packages, target, environ, pip, workdir)
        editables = [p for p in lock.packages if p.editable]
        for package in editables:  # pip is needed for these; the seeded one is still there
            pip.install_editable(target, package.directory["path"], environ,  # type: ignore[index]
                                 package.requested)
        locked_pip = next((p for p in lock.packages if p.name == "pip"), None)
        keep_seed = locked_pip is not None and locked_pip.version == seeded_pip
        if seeded_pip and not keep_seed:
            target.remove("pip")
        for package in sorted(lock.packages, key=lambda p: p.name):
            if package.editable:
                continue
            if package.name == "pip" and keep_seed:
                if package.requested:
                    _mark_requested(target, "pip")
                continue
            wheel = wheels.get(package.name)
            if wheel is None:
                raise UserError(f"pip fetched no wheel for {package.name} {package.version}")
            target.install(wheel, package.requested, direct_url(package))
    finally:
        remove_directory(workdir)
    have = {d.name: d.version for d in layer_distributions(target.scheme.site_packages)}
    # a source tree has no locked version (PEP 751): whatever it builds is what is locked
    wrong = [f"{p.name} {have.get(p.name, 'missing')} (locked {p.version or 'a source tree'})"
             for p in lock.packages
             if p.name not in have or (p.version and have[p.name] != p.version)]
    if wrong:
        raise UserError("the layer does not match the lock: " + ", ".join(wrong))
    return {p.name: have[p.name] for p in lock.packages}


def _mark_requested(target: StagingTarget, name: str) -> None:
    for info in target.dist_infos(name):
        (info / "REQUESTED").write_bytes(b"")


@dataclass
class FromLock:
    """The ``create`` hooks of ``--from``."""

    lock: Lock
    allow_drift: bool
    sources: Sources
    drift: Drift = field(default_factory=Drift)
    #: name -> version of what was installed
    installed: dict[str, str] = field(default_factory=dict)

    def before(self, interp: Interpreter, environ: dict[str, str]) -> None:
        view = stack_distributions(interp.executable, environ)
        recorded, here = self.lock.implementation, view.implementation
        self.drift = compare(self.lock.stack_distributions, view.distributions,
                             python_identity(recorded, self.lock.python_version, here),
                             python_identity(here, view.python_version, recorded))
        if self.drift and not self.allow_drift:
            raise StackDrift("the stack differs from the one the lock was made on:\n"
                             + "\n".join(self.drift.lines())
                             + "\nnothing was created; pass --allow-stack-drift to create "
                               "the layer anyway")
        unfit = wheels_not_for(self.lock.packages, interp)
        if unfit:
            raise UserError(f"the locked wheels of {', '.join(unfit)} are not for Python "
                            f"{interp.version} ({interp.implementation}) here; a lock re-creates "
                            "a layer on the stack it was made on: move a layer to another "
                            "Python with layervenv rebase")

    def populate(self, staging: Path, layer: Layer, interp: Interpreter,
                 environ: dict[str, str]) -> None:
        layer.config.requested_from_stack = list(self.lock.requested_from_stack)
        seeded = interp.newest_pip_wheel()
        self.installed = install_locked(self.lock, staging_target(staging, layer, interp),
                                        environ, self.sources,
                                        seeded.name.split("-")[1] if seeded else None)
