"""``layervenv lock [DIR] [-o FILE]``: a PEP 751 lock of what the layer adds to its stack.

The layer's own site-packages is read directly (never the stack's).  Where each
package came from: PEP 610 ``direct_url.json`` for direct and editable installs;
the seeded pip is the wheel bundled with the stack interpreter; everything else is
found again by ONE run of the layer's pip (``install --dry-run --ignore-installed
--no-deps --prefer-binary --report``), which names the wheel file (or, for a version
published only as an sdist, the sdist) and its sha256 on the index or find-links
directory.  The stack is recorded beside it: its
interpreter and setup command, the group layers it includes (``create --over``), and its
distributions (the group layers' among them) with their fingerprint.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from layervenv.infra.arguments import add_active_dir, add_format, add_sources
from layervenv.infra.atomic import atomic_write
from layervenv.infra.errors import UserError
from layervenv.infra.output import count
from layervenv.infra.writelock import layer_write_lock
from layervenv.interp.interpreter import probe_interpreter
from layervenv.interp.stack_contents import stack_distributions
from layervenv.model.layer import Layer
from layervenv.model.lockfile import (
    Installed,
    Lock,
    LockedPackage,
    direct_source,
    layer_distributions,
    url_to_path,
)
from layervenv.model.stack import site_packages_not_on_pythonpath
from layervenv.runtime.environment import layer_environment
from layervenv.services.installers import PipInstaller
from layervenv.services.packages import (
    PipFailed,
    Sources,
    check_pip_version,
    file_sha256,
    report_sha256,
)


@dataclass
class LockResult:
    path: str
    layer: str
    packages: dict[str, str]
    requested: list[str]
    stack_fingerprint: str
    stack_distributions: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def human(self) -> str:
        names = ", ".join(f"{n} {v}" for n, v in self.packages.items()) or "none"
        lines = [f"locked {count(len(self.packages), 'package')} of {self.layer} to {self.path} "
                 f"({self.seconds:.2f} s): {names}",
                 f"stack: {count(self.stack_distributions, 'distribution')}, fingerprint "
                 f"{self.stack_fingerprint[:16]}"]
        return "\n".join(lines + self.notes)


def _seed_source(dist: Installed, bundled: list[str]) -> list[dict[str, object]] | None:
    """The bundled pip wheel a layer's pip was seeded from, if the versions match."""
    if dist.name != "pip":
        return None
    for wheel in bundled:
        if os.path.basename(wheel).split("-")[1] == dist.version:
            return [{"name": os.path.basename(wheel), "path": wheel,
                     "hashes": {"sha256": file_sha256(Path(wheel))}}]
    return None


def _file_entry(item: dict[str, object]) -> tuple[str, dict[str, object]]:
    """The PEP 751 source of one item of pip's report: ``("wheels", entry)`` for a
    wheel, ``("sdist", entry)`` for a source distribution (no wheel of that version)."""
    url = str(item["download_info"]["url"])  # type: ignore[index]
    local = url_to_path(url)
    # the file's name, not its URL's spelling of it (a local version's + is %2B there)
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    entry: dict[str, object] = {"name": name}
    entry.update({"path": local} if local else {"url": url})
    digest = report_sha256(item)  # type: ignore[arg-type]
    if not digest and local:
        digest = file_sha256(Path(local))
    if not digest:
        raise UserError(f"pip gave no sha256 for {url}; cannot lock it")
    entry["hashes"] = {"sha256": digest}
    return ("wheels" if name.endswith(".whl") else "sdist"), entry


def legacy_editables(site_packages: Path) -> list[str]:
    """Projects installed into the layer by ``setup.py develop``: an ``.egg-link`` and a
    line in ``easy-install.pth``, their metadata in the project, so no lock can name them."""
    return sorted(link.name[: -len(".egg-link")] for link in site_packages.glob("*.egg-link"))


def require_stack_set_up(layer: Layer, env: dict[str, str]) -> None:
    """Refuse to record as the stack what this shell has, when that is not the layer's.

    A layer made with --setup brings its stack along (``layer_environment``); one made
    without relies on the shell.  Where the site-packages it was made on are not on
    PYTHONPATH, the lock would record a stack without them, and ``create --from`` in a
    shell where the stack is set up would then refuse it as drifted.
    """
    stack = layer.config.stack
    if not stack.stack_environment().is_empty():
        return
    missing = site_packages_not_on_pythonpath(stack.pythonpath, env)
    if missing:
        raise UserError(f"the stack {layer.root} was made on is not set up in this shell "
                        f"(PYTHONPATH lacks {missing[0]}): set it up first, so that the lock "
                        "records it")


def build_lock(layer: Layer, environ: dict[str, str], sources: Sources) -> tuple[Lock, list[str]]:
    """The lock of ``layer``: its packages with their sources, and its stack."""
    env = layer_environment(layer, environ, "run")
    stack = layer.config.stack
    require_stack_set_up(layer, env)
    view = stack_distributions(stack.python, env, exclude=[layer.root])
    installed = layer_distributions(layer.site_packages)
    bundled = [str(wheel) for wheel in probe_interpreter(Path(stack.python)).pip_wheels]
    locked: dict[str, LockedPackage] = {}
    from_index: list[Installed] = []
    for dist in installed:
        package = LockedPackage(name=dist.name, version=dist.version, requested=dist.requested)
        source = direct_source(dist)
        seed = _seed_source(dist, bundled)
        if source:
            for key, table in source.items():
                setattr(package, key, table)
        elif seed:
            package.wheels = seed
        else:
            from_index.append(dist)
        locked[dist.name] = package
    notes = [f"not locked: {name}, installed with setup.py develop (an .egg-link: the layer "
             "holds no record of it); reinstall it with pip install -e to lock it"
             for name in legacy_editables(layer.site_packages)]
    if from_index:
        pip = next((d.version for d in installed if d.name == "pip"), None)
        check_pip_version(pip, f"the layer {layer.root}")
        try:
            report = PipInstaller(sources).report(
                layer.python, [f"{d.name}=={d.version}" for d in from_index], env,
                # a wheel of the installed version where there is one, else its sdist
                extra=["--ignore-installed", "--no-deps", "--prefer-binary"],
                what="finding the files of " + ", ".join(d.name for d in from_index),
            )
        except PipFailed as error:
            error.args = (f"{error}\nlock finds the installed versions where pip installed "
                          f"them from: give that place (--find-links DIR_OR_URL, --index-url "
                          f"URL, or pip's own configuration)",)
            raise
        for item in report.get("install", []):
            name = str(item["metadata"]["name"])
            package = locked.get(canonicalize_name(name))
            if package is not None:
                kind, entry = _file_entry(item)
                if kind == "wheels":
                    package.wheels = [entry]
                else:
                    package.sdist = entry
        missing = [d.name for d in from_index if not (locked[d.name].wheels or
                                                       locked[d.name].sdist)]
        if missing:
            raise UserError("no wheel or sdist found for " + ", ".join(missing))
    lock = Lock(packages=list(locked.values()), python=stack.python,
                python_version=view.python_version, implementation=view.implementation,
                stack_distributions=view.distributions, setup=stack.setup,
                requested_from_stack=list(layer.config.requested_from_stack),
                rerun_setup=stack.rerun_setup, export_pythonpath=layer.config.export_pythonpath,
                prompt=layer.given_prompt(), over=[o.root for o in stack.over_layers()])
    return lock, notes


#: ``-o -``: the lock goes to standard output, as with ``pip lock -o -``
STDOUT = "-"


def _write(target: Path, text: str) -> Path:
    """Write ``text`` to ``target`` whole or not at all."""
    try:
        return atomic_write(target, text)
    except OSError as error:
        raise UserError(f"cannot write {target}: {error.strerror}") from None


def lock(directory: str | None, output: str | None, sources: Sources,
         environ: dict[str, str] | None = None) -> LockResult:
    start = time.perf_counter()
    layer = Layer.from_argument(directory)
    with layer_write_lock(layer.root, "lock"):
        result, notes = build_lock(layer, dict(os.environ if environ is None else environ),
                                   sources)
    text = result.to_toml()
    if output == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        where = "standard output"  # LockResult.path
    else:
        where = str(_write(Path(output or "pylock.toml").absolute(), text))
    return LockResult(
        path=where, layer=str(layer.root),
        packages={p.name: p.version for p in sorted(result.packages, key=lambda p: p.name)},
        requested=sorted(p.name for p in result.packages if p.requested),
        stack_fingerprint=result.stack_digest,  # the key of lock --json
        stack_distributions=len(result.stack_distributions),
        seconds=round(time.perf_counter() - start, 3), notes=notes,
    )


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv lock``'s options and help."""
    parser = commands.add_parser("lock",
                                 help="write a PEP 751 pylock.toml of what the layer adds",
                                 description="Lock the packages in the layer's own "
                                             "site-packages (not the stack's), with the "
                                             "stack's identity.")
    add_active_dir(parser)
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the lock file (default: pylock.toml here; - for standard output)")
    add_sources(parser)
    add_format(parser)
    return parser
