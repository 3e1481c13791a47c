"""Helpers shared by the tests: run the tool, run real shells, read environments."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NamedTuple, NoReturn

SRC = Path(__file__).resolve().parent.parent / "src"

#: Every POSIX shell activation must work in (binary names on Debian).
POSIX_SHELLS = ("bash", "zsh", "dash", "ksh")
#: tcsh, and Debian's csh, which is BSD csh (not a link to tcsh as on RHEL)
CSH_SHELLS = ("tcsh", "csh")
#: Every shell activation must work in.
ALL_SHELLS = (*POSIX_SHELLS, "fish", *CSH_SHELLS)

#: Variables a shell sets by itself; they say nothing about activation.
SHELL_NOISE = {"_", "SHLVL", "PWD", "OLDPWD", "PS1", "PS2", "PS4", "PPID", "COLUMNS", "LINES",
               "KSH_VERSION", "ZSH_VERSION", "IFS", "OPTIND", "SHELL", "_AST_FEATURES"}


def tool_command(*args: str, isolated: bool = False) -> list[str]:
    """``layervenv ARGS`` from this checkout, on the Python running the tests.

    ``isolated``: the tool's own interpreter ignores PYTHONPATH and the user site (``-I``),
    as a tool installed with its own Python in a clean way would; the environment it
    passes on to the layer is unchanged.
    """
    boot = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from layervenv.app.main import main; sys.exit(main(sys.argv[1:]))"
    )
    return [sys.executable, *(["-I"] if isolated else []), "-c", boot, str(SRC), *args]


def run_tool(*args: str, env: dict[str, str] | None = None, check: bool = True,
             cwd: Path | None = None, isolated: bool = False
             ) -> subprocess.CompletedProcess[str]:
    """Run the tool as a user would, in its own process."""
    result = subprocess.run(tool_command(*args, isolated=isolated), env=env,
                            capture_output=True, text=True, cwd=cwd, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"layervenv {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


#: dev/test exports it (and CI runs dev/test): every tool, wheel cache or module a test
#: needs and dev/test provides must be there -- a missing one fails the test instead of
#: skipping it, so that no run is emptied silently.
REQUIRE_ALL = "LAYERVENV_REQUIRE_ALL"


def require_all() -> bool:
    """Whether a missing tool fails (``LAYERVENV_REQUIRE_ALL=1``, or ``CI`` set)."""
    return os.environ.get(REQUIRE_ALL) == "1" or bool(os.environ.get("CI"))


def missing(what: str, provider: str = "dev/test provides it") -> NoReturn:
    """The test cannot run because ``what`` is missing: a failure under
    ``LAYERVENV_REQUIRE_ALL=1`` (``provider`` says who should have provided it), else a
    skip.  The one home of that policy: tests never read the variable themselves."""
    import pytest

    if require_all():
        pytest.fail(f"{what} ({provider}; {REQUIRE_ALL}=1 makes this a failure)",
                    pytrace=False)
    pytest.skip(f"{what} ({provider})", allow_module_level=True)  # (also at a file's top)


def import_or_missing(module: str, provider: str = "the test extra has it") -> ModuleType:
    """``pytest.importorskip`` that honours ``LAYERVENV_REQUIRE_ALL``: at a module's top it
    is a collection error there, so the whole file cannot vanish from a run."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        missing(f"the Python module {module} is not installed", provider)


def shell_path(name: str) -> str:
    """Absolute path of a shell (or of strace); fails (not skips) under
    ``LAYERVENV_REQUIRE_ALL`` when it is missing."""
    # "csh" is BSD csh (Debian's bsd-csh), also where /usr/bin/csh is tcsh
    found = (name == "csh" and shutil.which("bsd-csh")) or shutil.which(name)
    if found is None:
        missing(f"{name} is not installed", "dev/test installs it")
    return found


def strace_path() -> str:
    """strace, where it can trace: installed (else as :func:`shell_path`), and allowed to
    use ptrace.  A container without CAP_SYS_PTRACE (or under a seccomp or Yama policy
    denying it) cannot run these proofs: skipped there, saying why -- but a failure under
    ``LAYERVENV_REQUIRE_ALL``, where a proof that did not run must not pass as one."""
    strace = shell_path("strace")
    probe = subprocess.run([strace, "-f", "-qq", "-o", os.devnull, "true"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        missing(f"strace cannot trace here (ptrace denied?): {probe.stderr.strip()[:200]}",
                "run where ptrace is allowed, e.g. docker run --cap-add SYS_PTRACE")
    return strace


def run_shell(shell: str, script: str, env: dict[str, str], cwd: Path | None = None,
              check: bool = True, wrapper: tuple[str, ...] = ()
              ) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a real ``shell`` (non-interactive) with exactly ``env``.

    csh scripts run from a file: ``csh -c`` does not run loops.  Neither fish nor csh
    reads the user's or the system's start-up files (``--no-config``, ``-f``).
    ``wrapper`` comes before the shell on the command line (``strace ...``).
    """
    syntax = SHELLS.get(shell, SHELLS["bash"])
    if syntax.family == "csh":
        fd, name = tempfile.mkstemp(suffix=".csh")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(script if script.endswith("\n") else script + "\n")
        argv = [shell_path(shell), *syntax.options, name]
    else:
        name = ""
        argv = [shell_path(shell), *syntax.options, "-c", script]
    argv = [*wrapper, *argv]
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=cwd,
                                check=False)
    finally:
        if name:
            os.unlink(name)
    if check and result.returncode != 0:
        raise AssertionError(f"{shell} failed ({result.returncode}):\n{result.stdout}\n"
                             f"{result.stderr}\nscript:\n{script}")
    return result


def parse_env0(data: str) -> dict[str, str]:
    """Parse the output of ``env -0``."""
    pairs = (item.split("=", 1) for item in data.split("\0") if "=" in item)
    return {key: value for key, value in pairs}


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any layer, stack or user-site leaks."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PYTHONPATH", "PYTHONHOME",
                        "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONNOUSERSITE"}
           and not k.startswith("_LAYERVENV_") and not k.startswith("PIP_")}
    env["HOME"] = str(home)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env.update(extra)
    return env


class FoundPython(NamedTuple):
    version: tuple[int, int]
    path: Path


#: the minor versions looked for by name (python2.7, python3.6 ...)
_MINORS = ("2.7", *(f"3.{minor}" for minor in range(6, 16)))
_NAME = re.compile(r"python(\d)\.(\d+)")
_VERSION = "import sys; print('%d.%d' % sys.version_info[:2])"  # Python 2 too


def _pyenv_root() -> Path | None:
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    return Path(root) if os.path.isdir(root) else None


def _candidates() -> list[Path]:
    """pythonX.Y binaries: pyenv's versions, then uv's, then PATH's (never a shim)."""
    root = _pyenv_root()
    pyenv = sorted((root / "versions").glob("*/bin/python[23].*")) if root else []
    on_path = [found for folder in os.environ.get("PATH", "").split(os.pathsep)
               if folder and os.path.basename(folder.rstrip("/")) != "shims"
               for found in sorted(Path(folder).glob("python[23].*"))]
    uv, by_uv = shutil.which("uv"), []
    for minor in _MINORS if uv else ():
        where = subprocess.run([uv, "python", "find", "--no-python-downloads", minor],
                               capture_output=True, text=True, check=False)
        if where.returncode == 0 and where.stdout.strip():
            by_uv.append(Path(where.stdout.strip()))
    named = [p for p in (*pyenv, *on_path) if _NAME.fullmatch(p.name)]  # no python3.11-config
    return [p for p in named if p in pyenv] + by_uv + [p for p in named if p not in pyenv]


@functools.cache
def pythons() -> tuple[FoundPython, ...]:
    """Every interpreter on this machine found through ``pyenv root``, ``uv python find``
    or PATH (``python3.X``): each distinct one (by real path) that runs, with its
    (major, minor) as it says itself, oldest version first.  Several may share a minor
    version (a pyenv 3.11 and Debian's): pyenv's first, then uv's, then PATH's."""
    seen: set[str] = set()
    result = []
    for path in _candidates():
        real = os.path.realpath(path)
        if real in seen or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        said = subprocess.run([str(path), "-c", _VERSION], capture_output=True, text=True,
                              check=False)
        if said.returncode == 0:
            major, minor = said.stdout.strip().split(".")
            result.append(FoundPython((int(major), int(minor)), path))
    return tuple(sorted(result, key=lambda found: found.version))


def find_python(version: str) -> Path | None:
    """An interpreter of ``version`` ("3.12", "2.7"), pyenv's first, or None."""
    wanted = tuple(int(part) for part in version.split("."))
    return next((found.path for found in pythons() if found.version == wanted), None)


def other_python() -> Path | None:
    """An interpreter of another minor version than the one running the tests, if any."""
    for minor in ("3.12", "3.13", "3.11", "3.10"):
        if tuple(int(p) for p in minor.split(".")) == sys.version_info[:2]:
            continue
        found = find_python(minor)
        if found:
            return found
    return None


def py(python: Path | str, code: str, env: dict[str, str], cwd: Path | None = None) -> str:
    """Run ``code`` with ``python`` and return its stripped stdout."""
    result = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True,
                            cwd=cwd, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{python} -c failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


DUMP_LABELS = ("BEFORE", "DURING", "AFTER")


def env_dump(label: str) -> str:
    """POSIX shell code printing ``label`` and the exported environment, NUL-separated."""
    return f"printf '{label}\\0'; /usr/bin/env -0; printf '\\0'"


def split_dumps(out: str) -> dict[str, dict[str, str]]:
    """The environments printed by successive :func:`env_dump` calls, by label."""
    sections: dict[str, dict[str, str]] = {}
    label = None
    chunk: list[str] = []
    for part in out.split("\0"):
        if part in DUMP_LABELS:
            if label:
                sections[label] = parse_env0("\0".join(chunk))
            label, chunk = part, []
        else:
            chunk.append(part)
    if label:
        sections[label] = parse_env0("\0".join(chunk))
    return sections


def significant(env: dict[str, str]) -> dict[str, str]:
    """An environment without the variables shells set by themselves."""
    return {k: v for k, v in env.items() if k not in SHELL_NOISE}


@dataclass(frozen=True)
class ShellSyntax:
    """How the tests write a few statements in one shell family (independent of the tool)."""

    family: str
    #: the activation script in ``bin/``
    activate: str
    #: options before ``-c script`` or the script file
    options: tuple[str, ...] = ()

    def quote(self, value: str) -> str:
        if self.family == "fish":
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        quoted = "'" + value.replace("'", "'\\''") + "'"
        return quoted.replace("!", "\\!") if self.family == "csh" else quoted

    def source(self, layer: Path) -> str:
        path = self.quote(str(layer / "bin" / self.activate))
        return f". {path}" if self.family == "posix" else f"source {path}"

    def export(self, var: str, value: str) -> str:
        """``var`` set to the literal ``value`` and exported."""
        if self.family == "fish":
            return f"set -gx {var} {self.quote(value)}"
        if self.family == "csh":
            return f"setenv {var} {self.quote(value)}"
        return f"{var}={self.quote(value)}; export {var}"

    def dump(self, label: str) -> str:
        """Print ``label`` and the exported environment, NUL-separated (see split_dumps)."""
        if self.family == "csh":  # no printf builtin
            return f"/usr/bin/printf '{label}\\0'; /usr/bin/env -0; /usr/bin/printf '\\0'"
        return env_dump(label)

    def tool_edit(self, var: str, edit: str) -> str:
        """Another (well-behaved) tool prepends or appends ``/tool/<var>`` to ``var``."""
        tool = f"/tool/{var.lower()}"
        if edit == "none":
            return ""
        if self.family == "posix":
            if edit == "prepend":
                return f'{var}="{tool}${{{var}:+:${var}}}"; export {var}'
            return f'{var}="${{{var}:+${var}:}}{tool}"; export {var}'
        new = f'{tool}:"${var}"' if edit == "prepend" else f'"${var}":{tool}'
        if self.family == "fish":
            return (f'if test -n "${var}"; set -gx {var} {new}; '
                    f"else; set -gx {var} {tool}; end")
        return "\n".join([
            f"set _tool = {tool}",
            f"if ( $?{var} ) then",
            f'    if ( "${var}" != "" ) set _tool = {new}',
            "endif",
            f'setenv {var} "$_tool"',
            "unset _tool",
        ])

    def child(self, shell: str, script: Path) -> str:
        """Run the script file ``script`` in a child ``shell``."""
        return " ".join([self.quote(shell_path(shell)), *self.options,
                         self.quote(str(script))])


SHELLS: dict[str, ShellSyntax] = {
    **{name: ShellSyntax("posix", "activate") for name in POSIX_SHELLS},
    "fish": ShellSyntax("fish", "activate.fish", ("--no-config",)),
    **{name: ShellSyntax("csh", "activate.csh", ("-f",)) for name in CSH_SHELLS},
}


def cached_wheels() -> Path:
    """The wheels dev/test fetches once (build backends; the suite stays offline): the
    test fails under ``LAYERVENV_REQUIRE_ALL`` where they are missing, else is skipped."""
    value = os.environ.get("LAYERVENV_TEST_WHEELS")
    path = Path(value) if value else Path(__file__).resolve().parent.parent / ".cache" / "wheels"
    if not (path / ".complete").exists():
        missing(f"build backend wheels missing in {path}", "dev/test downloads them")
    return path
