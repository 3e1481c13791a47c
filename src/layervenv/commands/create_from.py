"""``layervenv create DIR --from pylock.toml``: the locked layer again, on the current stack.

Before anything is created, the stack the layer will have (the environment of
``--setup``, by default the lock's own setup command, or of this shell) is compared
with the lock's record; a drifted stack is listed and refused unless
``--allow-stack-drift``.  Then the layer is built as by ``create``, and while it is
still staged its pip fetches exactly the locked files (hash-checked, no resolving:
``--no-deps``), which ``installer`` installs with scripts pointing at the final
path.  Editable entries are installed with ``pip install -e --no-deps`` in the
staging directory and their scripts re-pointed.  Only a complete layer is renamed
into place; any failure leaves nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging import tags
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from layervenv.infra.errors import UserError
from layervenv.inspection.checks import problems_line, run_checks
from layervenv.interp.interpreter import Interpreter
from layervenv.interp.stack_contents import Drift, compare, python_identity, stack_distributions
from layervenv.model.layer import CONFIG_NAME, Layer, is_layer
from layervenv.model.lockfile import (
    Lock,
    LockedPackage,
    direct_reference,
    direct_url,
    layer_distributions,
)
from layervenv.model.lockschema import requirement_line, visible
from layervenv.services.packages import (
    Sources,
    StagingTarget,
    file_sha256,
    fresh_directory,
    remove_directory,
    run_pip,
    wheels_in,
)
from layervenv.services.staging import CreateOptions, CreateResult, create, staging_target


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
                 sources: Sources, workdir: Path) -> dict[str, Path]:
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
        out = workdir / kind
        requirements = workdir / f"{kind}.txt"
        requirements.write_text("".join(requirement_line(line.strip()) + "\n"
                                        for _, line in entries),
                                encoding="utf-8")
        args = (["download", "--only-binary", ":all:", "-d", str(out)] if kind == "download"
                else ["wheel", "-w", str(out)])
        names = ", ".join(name for name, _ in entries)
        run_pip(target.scheme.python, [*args, "--no-deps", "-q", "-r", str(requirements)], environ,
                f"fetching the locked {names}", sources)
        found.update(wheels_in(out))
    return found


def install_locked(lock: Lock, target: StagingTarget, environ: dict[str, str],
                   sources: Sources, seeded_pip: str | None) -> dict[str, str]:
    """Install exactly the locked packages into the staged layer; their versions."""
    workdir = fresh_directory("layervenv-wheels-")
    try:
        wheels = fetch_locked(lock.packages, target, environ, sources, workdir)
        editables = [p for p in lock.packages if p.editable]
        for package in editables:  # pip is needed for these; the seeded one is still there
            target.install_editable(package.directory["path"], environ, sources,  # type: ignore[index]
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


@dataclass
class FromResult:
    created: CreateResult
    lock: str
    packages: dict[str, str]
    drift: list[str]
    problems: list[str] | None

    def human(self) -> str:
        names = ", ".join(f"{n} {v}" for n, v in self.packages.items()) or "no packages"
        lines = [self.created.human(), f"installed from {self.lock}: {names}"]
        if self.drift:
            lines.append("the stack differs from the lock (--allow-stack-drift):")
            lines += self.drift
        lines.append(problems_line(self.problems))
        return "\n".join(lines)


class UntrustedSetup(UserError):
    """The lock's setup command would run, and the user has not said it may."""


def layer_using_setup(setup: str, target: Path) -> Path | None:
    """A layer of this user's that already uses ``setup``, byte for byte: ``target``
    itself (``--clear``) or a layer beside it (in the same directory).

    Its ``layervenv.toml`` recorded a command the user ran themselves (``--setup``, or a
    lock's with ``--trust-setup``); the same command again is no new code.  Only files
    owned by this user count: in a shared directory another user could plant one.
    One directory listing, one ``stat`` per sub-directory.
    """
    try:
        beside = [Path(e.path) for e in os.scandir(target.parent) if e.is_dir()]
    except OSError:
        beside = []
    for root in sorted(set([target, *beside]), key=lambda r: r != target):
        config = root / CONFIG_NAME
        try:
            if config.stat().st_uid != os.getuid():
                continue
            if Layer.open(root).config.stack.setup == setup:
                return root
        except (OSError, UserError):
            continue
    return None


def trusted_setup(lock: Lock, trust: bool, target: Path) -> str:
    """Why the lock's setup command may run (a note for the result), or a refusal that
    shows it: a lock is a file people share, and its setup is shell code."""
    rerun = " (and at every activation: rerun-setup)" if lock.rerun_setup else ""
    if trust:
        return f"note: ran the lock's setup command{rerun} (--trust-setup): {visible(lock.setup)}"
    used = layer_using_setup(lock.setup, target)
    if used is not None:
        return (f"note: ran the lock's setup command{rerun}, the one {used} uses: "
                f"{visible(lock.setup)}")
    raise UntrustedSetup(
        f"the lock's setup command below would run now in bash{rerun}, and no layer of yours "
        "here uses it; nothing was run or created: read it, then pass --trust-setup to run "
        "it, or --setup CMD to set the stack up yourself\n"
        + "\n".join("  " + line for line in visible(lock.setup).split("\n")))


class UntrustedBuild(UserError):
    """The lock names projects pip would build (running their code), and the user has not
    said it may."""


def trusted_build(lock: Lock, trust: bool) -> str | None:
    """A note naming what will be built from source, or a refusal naming it (one line):
    building a directory, a VCS checkout, an archive or an sdist runs its ``setup.py`` or
    build backend, code the lock's author chose.  Locked wheels need nothing."""
    built = [f"{p.name} ({p.build_source()})" for p in lock.packages if p.build_source()]
    if not built:
        return None
    if trust:
        return "note: built from source (--trust-build): " + ", ".join(built)
    raise UntrustedBuild(
        f"the lock would build {len(built)} package{'s' if len(built) > 1 else ''} from "
        f"source, running {'their' if len(built) > 1 else 'its'} code (setup.py, build "
        f"backend): {', '.join(built)}; nothing was run or created: read "
        f"{'them' if len(built) > 1 else 'it'}, then pass --trust-build to build "
        f"{'them' if len(built) > 1 else 'it'}")


def layer_over(group: str, target: Path) -> Path | None:
    """A layer of this user's that already stands on the group layer ``group``: the
    group layer itself, ``target`` (``--clear``) or a layer beside it.  Only files owned
    by this user count (as for :func:`layer_using_setup`)."""
    try:
        beside = [Path(e.path) for e in os.scandir(target.parent) if e.is_dir()]
    except OSError:
        beside = []
    for root in [Path(group), target, *beside]:
        try:
            if (root / CONFIG_NAME).stat().st_uid != os.getuid():
                continue
            layer = Layer.open(root)
        except (OSError, UserError):
            continue
        if root == Path(group) or any(o.root == group
                                      for o in layer.config.stack.over_layers()):
            return root
    return None


def group_layer_of(lock: Lock, trust: bool, target: Path) -> str:
    """The group layer the locked layer stood on (``create --over``), which must be here,
    at the same path: it is part of the stack, as the stack's release is.  Its
    ``layervenv.toml`` gives the stack (read as data; its setup is never run), but its
    Python runs and its packages are imported: a path a lock names is someone else's
    choice, so it is taken without asking only where it is the user's own, or a layer of
    theirs here already stands on it; else a refusal that names it."""
    root = lock.over[0]
    if not is_layer(Path(root)):
        raise UserError(f"the lock's layer stands on the group layer {root}, part of its "
                        "stack, and there is no layer there (is it mounted?); nothing was "
                        "created")
    if not trust and layer_over(root, target) is None:
        raise UntrustedSetup(
            f"the lock's layer stands on the group layer {visible(root)}, and no layer of "
            "yours here does: its Python and its packages would run now; nothing was run "
            f"or created: pass --over {visible(root)} to stand on it, or --trust-setup")
    return root


def create_from(options: CreateOptions, lock_file: str, allow_drift: bool,
                sources: Sources, trust_setup: bool = False,
                trust_build: bool = False) -> FromResult:
    path = Path(lock_file).absolute()
    lock = Lock.read(path)
    # the user's pip configuration: a setup command's environment starts from a clean login
    sources = sources.with_configuration(
        dict(os.environ if options.environ is None else options.environ))
    built = trusted_build(lock, trust_build)  # before the setup command runs: one refusal
    note = None
    if lock.over and options.over is None and options.setup is None and options.python is None:
        options.over = group_layer_of(lock, trust_setup,
                                      Path(os.path.abspath(options.directory)))
    if options.over is None and options.setup is None and options.python is None and lock.setup:
        note = trusted_setup(lock, trust_setup, Path(os.path.abspath(options.directory)))
        options.setup = lock.setup
        options.rerun_setup = options.rerun_setup or lock.rerun_setup
    # the layer's own choices, as it was made (a flag given here adds to them)
    options.export_pythonpath = options.export_pythonpath or lock.export_pythonpath
    if options.prompt is None:
        options.prompt = lock.prompt
    if options.without_pip:
        raise UserError("--from installs with the layer's pip; --without-pip cannot be used "
                        "(a lock without pip gives a layer without pip)")
    extension = FromLock(lock=lock, allow_drift=allow_drift, sources=sources)
    options.extension = extension
    created = create(options)
    for told in (built, note):
        if told:
            created.notes.insert(0, told)
    created.pip = extension.installed.get("pip")
    problems = run_checks(Layer.open(Path(created.path))).lines()
    return FromResult(created=created, lock=str(path),
                      packages=dict(sorted(extension.installed.items())),
                      drift=extension.drift.lines(), problems=problems)
