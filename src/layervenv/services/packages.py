"""Packages into a layer being built: pip resolves and fetches, ``installer`` installs.

The layer's own pip does what only pip can (find a version on an index or in a
find-links directory, check hashes, build a wheel from an sdist or a project), and
only that; installation is done here with ``installer``, into the staging directory,
with console scripts pointing at the layer's *final* path, as for the seeded pip.
So a layer made from a lock or rebased is complete before it is renamed into place.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from layervenv.dists.record import installed_paths, read_record, record_row, write_record
from layervenv.dists.scheme import InstallScheme
from layervenv.dists.seed import install_wheel
from layervenv.infra.cache import file_sha256 as file_sha256  # one definition, used from here
from layervenv.infra.errors import UserError
from layervenv.infra.output import VERBOSITY, progress

#: pip's ``--dry-run --report`` appeared in pip 22.2.
MIN_PIP = Version("22.2")


#: What pip reads from the environment besides ``PIP_*``: where its configuration files
#: are (``$XDG_CONFIG_HOME/pip/pip.conf``, ``$XDG_CONFIG_DIRS``; ``HOME`` is kept by every
#: setup) and how it reaches an index (proxies, certificate bundles, ``.netrc``).
PIP_READS = ("XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "http_proxy", "https_proxy", "no_proxy",
             "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
             "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "NETRC")
#: ``PIP_*`` settings that say where pip installs, not where it looks: a layer being built
#: is pip's target, so the user's ``PIP_TARGET`` or ``PIP_USER`` must not send it elsewhere
PIP_ELSEWHERE = ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER")


def pip_configuration(environ: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The user's pip configuration in ``environ`` (their shell's): ``PIP_*`` (as
    ``PIP_FIND_LINKS``, ``PIP_INDEX_URL``, ``PIP_CONFIG_FILE``) and what pip reads besides
    (:data:`PIP_READS`), except where pip installs (:data:`PIP_ELSEWHERE`)."""
    return tuple(sorted((k, v) for k, v in environ.items()
                        if (k.startswith("PIP_") or k in PIP_READS)
                        and k not in PIP_ELSEWHERE))


@dataclass(frozen=True)
class Sources:
    """Where pip looks: the user's pip configuration (``configuration``: their shell's
    ``PIP_*`` and what pip reads besides) with the command's ``--find-links`` and
    ``--index-url`` on top, as pip itself combines them (``--find-links`` adds to
    ``PIP_FIND_LINKS``, ``--index-url`` replaces ``PIP_INDEX_URL``), for every pip run.

    A setup command's environment starts from a clean login (see
    :func:`layervenv.model.stack.capture_setup`), so without ``configuration`` the pip
    of a layer being made with ``--setup`` would not see the mirror or the wheel
    directory that the user's own ``pip install`` used moments before.
    """

    find_links: tuple[str, ...] = ()
    index_url: str | None = None
    #: ``(name, value)`` of the user's pip variables (:func:`pip_configuration`)
    configuration: tuple[tuple[str, str], ...] = ()

    def args(self) -> list[str]:
        out = []
        for link in self.find_links:
            out += ["--find-links", link]
        if self.index_url:
            out += ["--index-url", self.index_url]
        return out

    def with_configuration(self, environ: dict[str, str]) -> Sources:
        """These sources with the user's pip configuration as ``environ`` (their shell's
        environment, before any setup command) holds it."""
        return replace(self, configuration=pip_configuration(environ))


def pip_environment(environ: dict[str, str], sources: Sources = Sources()) -> dict[str, str]:
    """The stack's environment for pip runs, over the user's pip configuration (what the
    stack's setup sets itself wins): no ~/.local packages, no version nagging."""
    env = {**dict(sources.configuration), **environ}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.pop("PYTHONHOME", None)
    return env


def run_pip(python: Path, args: Sequence[str], environ: dict[str, str], what: str,
            sources: Sources = Sources()) -> subprocess.CompletedProcess[str]:
    """``python -m pip ARGS`` with the sources; a failure is a UserError showing pip's words."""
    command = [str(python), "-m", "pip", *args, *sources.args()]
    progress(what)
    try:
        result = subprocess.run(command, env=pip_environment(environ, sources),
                                capture_output=True,
                                text=True, check=False)
    except OSError as error:
        raise UserError(f"cannot run {python}: {error.strerror}") from None
    if result.returncode != 0:
        lines = pip_failure_lines(result.stdout, result.stderr, whole=VERBOSITY.verbose)
        shown = "\n".join("  | " + line for line in lines) or "  | (no output)"
        raise PipFailed(f"{what} failed (pip exit {result.returncode}):\n{shown}")
    return result


TRACEBACK = "Traceback (most recent call last):"


def pip_failure_lines(stdout: str, stderr: str, whole: bool = False) -> list[str]:
    """The lines of a failed pip run that say why, the cause last.

    pip's output ending with a traceback (``ERROR: Exception:`` and an exception pip did
    not expect): the ``ERROR:`` lines before it and the exception line that ends it, which
    names the cause.  Otherwise pip's last ``ERROR:`` lines, or its last lines.  ``whole``
    (``-v``): every line pip wrote, its standard output first.
    """
    if whole:
        return [line for line in (stdout + "\n" + stderr).splitlines() if line.strip()]
    lines = [line for line in (stderr + "\n" + stdout).splitlines()
             if line.strip() and not line.startswith(("DEPRECATION:", "WARNING:"))]
    errors = [line for line in lines if line.startswith("ERROR:")]
    told = [line for line in stderr.splitlines() if line.strip()]  # pip's log, without stdout
    if TRACEBACK in told:
        last = len(told) - 1 - told[::-1].index(TRACEBACK)
        # the frames are indented; the exception (and the rest of its message) is not
        cause = [line for line in told[last + 1:] if not line[0].isspace()]
        before = [line for line in told[:told.index(TRACEBACK)] if line.startswith("ERROR:")]
        if cause:
            return before[-3:] + cause[:5]
    return (errors or lines)[-8:]


class PipFailed(UserError):
    """A pip run failed; the message holds pip's last lines."""


def check_pip_version(version: str | None, where: str) -> None:
    if version is None:
        raise UserError(f"{where} has no pip; install pip >= {MIN_PIP} into it first")
    if Version(version) < MIN_PIP:
        raise UserError(f"{where} has pip {version}; pip >= {MIN_PIP} is needed "
                        "(python -m pip install --upgrade pip)")


def pip_report(python: Path, requirements: Sequence[str], environ: dict[str, str],
               sources: Sources, extra: Sequence[str] = (), what: str = "resolving"
               ) -> dict[str, Any]:
    """One ``pip install --dry-run --report``: what pip would install, and from where."""
    with tempfile.TemporaryDirectory(prefix="layervenv-report-") as tmp:
        report = Path(tmp) / "report.json"
        run_pip(python, ["install", "--dry-run", "-q", "--report", str(report), *extra,
                         *requirements], environ, what, sources)
        return json.loads(report.read_text(encoding="utf-8"))


def report_sha256(item: dict[str, Any]) -> str | None:
    """The sha256 pip reported for one ``install`` item, if any."""
    archive = item.get("download_info", {}).get("archive_info", {})
    value = archive.get("hashes", {}).get("sha256")
    if not value and archive.get("hash", "").startswith("sha256="):
        value = archive["hash"].split("=", 1)[1]
    return value


def wheels_in(directory: Path) -> dict[str, Path]:
    """``{name: wheel}`` for the wheel files in ``directory``."""
    found = {}
    for wheel in sorted(directory.glob("*.whl")):
        name, _version, _build, _tags = parse_wheel_filename(wheel.name)
        found[canonicalize_name(name)] = wheel
    return found


@dataclass(frozen=True)
class StagingTarget:
    """Packages into a layer being built: installed from a wheel, removed (an editable
    install is pip's: :meth:`layervenv.services.installers.PipInstaller.install_editable`)."""

    scheme: InstallScheme

    def install(self, wheel: Path, requested: bool,
                direct_url: dict[str, Any] | None = None) -> None:
        """Install ``wheel`` with ``installer``; scripts point at the final path.

        ``direct_url`` is PEP 610's record of a direct URL (VCS, archive, directory) the
        wheel was built from: written as pip writes it, so that ``lock`` finds the
        source again.
        """
        extra = {"REQUESTED": b""} if requested else {}
        if direct_url is not None:
            extra["direct_url.json"] = json.dumps(direct_url, sort_keys=True).encode()
        try:
            install_wheel(wheel, self.scheme, extra)
        except FileExistsError as error:
            raise UserError(f"cannot install {wheel.name}: {error}") from None

    def dist_infos(self, name: str) -> list[Path]:
        """The ``.dist-info`` directories of ``name`` in the staged site-packages."""
        name = canonicalize_name(name)
        return [info for info in self.scheme.site_packages.glob("*.dist-info")
                if canonicalize_name(info.name[:-len(".dist-info")].rsplit("-", 1)[0]) == name]

    def remove(self, name: str) -> None:
        """Remove an installed distribution (the seeded pip) by its RECORD, with the
        bytecode of its sources (not in the RECORD: see ``dists/bytecode``)."""
        scheme = self.scheme
        for info in self.dist_infos(name):
            dirs = set()
            for path in installed_paths(info):
                if scheme.staging not in path.parents:
                    continue
                path.unlink(missing_ok=True)
                dirs.update(p for p in path.parents if scheme.staging in p.parents)
                if path.suffix == ".py":  # its bytecode (any interpreter's), as pip does
                    for pyc in path.parent.glob(f"__pycache__/{glob.escape(path.stem)}.*.pyc"):
                        pyc.unlink(missing_ok=True)
                    dirs.add(path.parent / "__pycache__")
            for directory in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
                if directory.is_dir() and not any(directory.iterdir()) and \
                        directory not in (scheme.site_packages, scheme.scripts_dir):
                    directory.rmdir()


def retarget_scripts(target: StagingTarget, before: set[str]) -> None:
    """Rewrite new scripts in staging/bin that name the staging interpreter (pip wrote them)."""
    scheme = target.scheme
    old, new = str(scheme.staging).encode(), str(scheme.final_root).encode()
    changed = {}
    for script in scheme.scripts_dir.iterdir():
        if script.name in before or script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        head, sep, rest = data.partition(b"\n")
        second, sep2, rest2 = rest.partition(b"\n")
        if old in head or old in second:
            fixed = head.replace(old, new) + sep + second.replace(old, new) + sep2 + rest2
            script.write_bytes(fixed)
            changed[script] = fixed
    if not changed:
        return
    for record in scheme.site_packages.glob("*.dist-info/RECORD"):
        rows = read_record(record.parent)
        fixed = []
        for row in rows:
            path = Path(os.path.normpath(scheme.site_packages / row.path))
            fixed.append(record_row(row.path, changed[path]) if path in changed else row)
        if fixed != rows:
            write_record(record.parent, fixed)


def fresh_directory(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove_directory(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

