"""Helpers shared by the tests: run the tool, run real shells, read environments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def shell_path(name: str) -> str:
    """Absolute path of a shell (or of strace); fails (not skips) in CI when it is missing."""
    # "csh" is BSD csh (Debian's bsd-csh), also where /usr/bin/csh is tcsh
    found = (name == "csh" and shutil.which("bsd-csh")) or shutil.which(name)
    if found is None:
        import pytest

        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (dev/test installs it)")
        pytest.skip(f"{name} is not installed")
    return found


def strace_path() -> str:
    """strace, where it can trace: installed (else as :func:`shell_path`), and allowed to
    use ptrace (a container without CAP_SYS_PTRACE is a limit of the machine, not of
    the code under test: skip there, saying so)."""
    strace = shell_path("strace")
    probe = subprocess.run([strace, "-f", "-qq", "-o", os.devnull, "true"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        import pytest

        pytest.skip(f"strace cannot trace here: {probe.stderr.strip()[:200]}")
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


def other_python() -> Path | None:
    """An interpreter of another minor version than the one running the tests, if any."""
    import glob

    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for minor in ("3.12", "3.13", "3.11", "3.10"):
        if minor == here:
            continue
        found = sorted(glob.glob(f"/root/.pyenv/versions/{minor}*/bin/python{minor}"))
        if found:
            return Path(found[-1])
    return None


def find_python(minor: str) -> Path | None:
    """An interpreter of version ``minor`` ("3.6"): on PATH (no pyenv shim), else among
    pyenv's versions (``$PYENV_ROOT`` or ``~/.pyenv``), else None."""
    import glob

    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / f"python{minor}"
        if folder and "/shims" not in folder and candidate.is_file():
            return candidate
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = sorted(glob.glob(os.path.join(glob.escape(root), "versions", f"{minor}.*",
                                          "bin", f"python{minor}")))
    return Path(found[-1]) if found else None


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
    test fails in CI where they are missing, and is skipped elsewhere."""
    import pytest

    value = os.environ.get("LAYERVENV_TEST_WHEELS")
    path = Path(value) if value else Path(__file__).resolve().parent.parent / ".cache" / "wheels"
    if not (path / ".complete").exists():
        if os.environ.get("CI"):
            pytest.fail(f"build backend wheels missing in {path}: dev/test downloads them")
        pytest.skip(f"build backend wheels missing in {path}: run dev/test once")
    return path
