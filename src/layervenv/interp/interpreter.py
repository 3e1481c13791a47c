"""The stack's Python interpreter: found on PATH, asked about itself once.

The tool may run on another Python than the stack's, so every fact about the
stack interpreter (version, real executable, install scheme, bundled pip) comes
from one short run of that interpreter, with ``-I -S`` so that neither the
stack's PYTHONPATH nor its site-packages can change the answer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layervenv.boot import HookBytecode, hook_source
from layervenv.dists.scheme import InstallScheme
from layervenv.infra.errors import UserError
from layervenv.interp.interpreter_facts import BASE
from layervenv.interp.query import QueryFailed, run_query, script_source

#: the query that describes an interpreter (``interpreter_facts.py``)
FACTS_SCRIPT = "interpreter_facts.py"
FACTS_TIMEOUT = 60


@dataclass(frozen=True)
class Interpreter:
    """What layer creation needs to know about the stack's Python."""

    executable: Path
    version: str
    implementation: str
    purelib: str  # relative to the layer, e.g. lib/python3.11/site-packages
    platlib: str
    scripts: str
    include: str
    pip_wheels: tuple[Path, ...]
    is_64bit: bool
    #: the boot hook compiled by this interpreter (None where it could not be)
    hook_bytecode: HookBytecode | None = None

    @property
    def cache_tag(self) -> str | None:
        """The name part of this interpreter's ``.pyc`` files (``cpython-311``), if known."""
        return self.hook_bytecode.cache_tag if self.hook_bytecode else None

    @property
    def short_version(self) -> str:
        """``3.11`` for ``3.11.7``."""
        return ".".join(self.version.split(".")[:2])

    def install_scheme(self, staging: Path, final_root: Path) -> InstallScheme:
        """Where a layer on this interpreter, built in ``staging`` to live at
        ``final_root``, installs: this interpreter's ``venv`` scheme."""
        return InstallScheme(staging=staging, final_root=final_root, purelib=self.purelib,
                             platlib=self.platlib, scripts=self.scripts, include=self.include,
                             python_version=self.short_version)

    def newest_pip_wheel(self) -> Path | None:
        """The newest pip wheel bundled with this interpreter (ensurepip), if any."""
        versions = [wheel.name.split("-")[1] for wheel in self.pip_wheels]
        if all(part.isdigit() for version in versions for part in version.split(".")):
            # ensurepip's are plain releases: no need to import packaging at each create
            def release(wheel: Path) -> tuple[int, ...]:
                return tuple(int(part) for part in wheel.name.split("-")[1].split("."))

            return max(self.pip_wheels, key=release, default=None)
        from packaging.version import Version

        return max(self.pip_wheels, key=lambda wheel: Version(wheel.name.split("-")[1]),
                   default=None)


def find_default_python(path: str | None = None) -> Path:
    """The ``python3`` first on ``path`` (default: PATH): after the stack's setup, the
    stack's own Python."""
    found = shutil.which("python3", path=path) or shutil.which("python", path=path)
    if not found:
        raise UserError("no python3 on PATH: set up the stack first, or pass --python PATH")
    return Path(found)


def python_from_option(value: str, path: str | None = None) -> Path:
    """``--python``: a path, a command on ``path`` (``python3.12``), or a version.

    A version (``3.11``, ``3``) means ``python3.11`` (``python3``) on PATH, as ``uv`` and
    ``virtualenv`` read it: after the stack's setup, the stack's own build of that version.
    """
    if re.fullmatch(r"3(\.\d+)?", value):
        found = shutil.which(f"python{value}", path=path)
        if not found:
            raise UserError(f"no python{value} on PATH for --python {value}: set up a stack "
                            "that has it, or pass the interpreter's path")
        return Path(found)
    if os.sep not in value:
        found = shutil.which(value, path=path)
        if found:
            return Path(found)
    return Path(value)


def _relative(path: str) -> str:
    """A path of the install scheme asked for a layer at ``BASE``, relative to the layer."""
    if not path.startswith(BASE):
        raise UserError(f"unexpected install scheme from the interpreter: {path}")
    return path[len(BASE):].lstrip("/")


def _old_python_version(python: Path) -> str | None:
    """The version of a Python too old for the probe (Python 2 has no ``-I``), if it is one.

    Asked only after the probe failed, so that the error says why instead of quoting
    the last line of Python 2's usage text.
    """
    code = "import sys; sys.stdout.write('%d.%d.%d' % sys.version_info[:3])"
    try:
        result = subprocess.run([str(python), "-E", "-S", "-c", code], capture_output=True,
                                text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = result.stdout.split(".")
    if result.returncode != 0 or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return result.stdout if (int(parts[0]), int(parts[1])) < (3, 6) else None


def probe_interpreter(python: Path) -> Interpreter:
    """Describe ``python``: from the per-user cache when this very interpreter was probed
    before, else by running it once; a one-line error if it is not a usable Python."""
    if not os.access(python, os.X_OK) or python.is_dir():
        raise UserError(f"not an executable Python interpreter: {python}")
    key = _cache_key(python)
    facts = _cached_facts(key) if key else None
    if facts is None:
        facts = _run_probe(python)
        if key:
            _store_facts(key, facts)
    return Interpreter(
        executable=Path(facts["executable"]),
        version=facts["version"],
        implementation=facts["implementation"],
        purelib=_relative(facts["purelib"]),
        platlib=_relative(facts["platlib"]),
        scripts=_relative(facts["scripts"]),
        include=_relative(facts["include"]),
        pip_wheels=tuple(Path(p) for p in facts["pip_wheels"]),
        is_64bit=facts["maxsize"] > 2**32,
        hook_bytecode=HookBytecode.from_probe(facts.get("hook_bytecode")),
    )


# The probe's answer depends on the interpreter's binary (a new build of a stack is a new
# file, or at least a new size or time), on the path it is started by (sys.executable, a
# pyvenv.cfg beside it), on its standard library and bundled wheels (a stack updated in
# place) and on this tool's probe and hook: all of these are in the key or checked.

def _cache_key(python: Path) -> str | None:
    """The cache name of ``python``'s answer, from the path and the resolved binary."""
    from layervenv.infra import cache

    try:
        real = os.path.realpath(python)
        info = os.stat(real)
    except OSError:
        return None
    return cache.digest(json.dumps([
        os.path.abspath(python), real, info.st_dev, info.st_ino, info.st_size,
        info.st_mtime_ns, cache.digest(script_source(FACTS_SCRIPT) + hook_source()),
    ]))


def _signature(path: str) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_mtime_ns, info.st_size]


def _checked_paths(python: Path, facts: dict[str, Any]) -> list[str]:
    """Files whose change makes a cached answer stale: the stdlib (its os.py), the
    directories and files of the bundled wheels, a pyvenv.cfg beside the interpreter."""
    here = os.path.dirname(os.path.abspath(python))
    return [facts.get("os_py") or "", *facts.get("wheel_dirs", []), *facts["pip_wheels"],
            os.path.join(here, "pyvenv.cfg"), os.path.join(os.path.dirname(here), "pyvenv.cfg")]


def _cached_facts(key: str) -> dict[str, Any] | None:
    from layervenv.infra import cache

    folder = cache.section("interpreters")
    stored = cache.read_json(folder / f"{key}.json") if folder else None
    if not isinstance(stored, dict) or not isinstance(stored.get("facts"), dict):
        return None
    checks = stored.get("checks")
    if not isinstance(checks, list) or not all(
            isinstance(c, list) and len(c) == 2 and _signature(c[0]) == c[1] for c in checks):
        return None
    return stored["facts"]


def _store_facts(key: str, facts: dict[str, Any]) -> None:
    from layervenv.infra import cache

    folder = cache.section("interpreters")
    if folder is None or not facts.get("os_py"):
        return
    python = facts["_probed"]
    checks = [[path, _signature(path)] for path in _checked_paths(Path(python), facts)]
    cache.write_json(folder / f"{key}.json", {"python": python, "checks": checks,
                                              "facts": facts})


def _run_probe(python: Path) -> dict[str, Any]:
    """Run ``interpreter_facts.py`` in ``python``; its answer, or a one-line error that
    says why ``python`` is not a usable interpreter."""
    try:
        facts = run_query(python, FACTS_SCRIPT, flags=("-I", "-S"), stdin=hook_source(),
                          timeout=FACTS_TIMEOUT)
    except QueryFailed as error:
        if error.status is None:  # not started, or no answer in time: the message says it
            raise
        old = _old_python_version(python)
        if old:
            raise UserError(f"{python} is Python {old}; layers need Python 3.6 or newer") \
                from None
        raise UserError(f"{python} is not a usable Python 3.6+ interpreter: "
                        f"{error.last_line}") from None
    if not isinstance(facts, dict):
        raise UserError(f"{python} is not a usable Python 3.6+ interpreter")
    facts["_probed"] = os.path.abspath(python)
    return facts
