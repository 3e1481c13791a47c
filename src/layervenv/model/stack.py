"""What a stack is: the environment its setup command produces, and whether it is there.

``layervenv create --setup CMD`` runs CMD once in a clean bash and keeps the
*difference* it makes to the environment: entries put in front of path-like
variables (PATH, LD_LIBRARY_PATH, PYTHONPATH, ...) and plain variables set.  That
record lets activation and ``layervenv run`` re-establish the stack in a shell
where it is not set up, without running the (slow, CVMFS-bound) setup again.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layervenv.boot._layervenv_boot import PACKAGE_DIRECTORIES
from layervenv.infra.errors import UserError
from layervenv.interp.query import kill_group

#: What a clean bash starts with: enough for setup scripts, nothing of the user's shell.
CLEAN_VARIABLES = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TMPDIR", "SHELL",
                   "ATLAS_LOCAL_ROOT_BASE", "X509_USER_PROXY", "KRB5CCNAME")
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
ALRB_DEFAULT = "/cvmfs/atlas.cern.ch/repo/ATLASLocalRootBase"
#: Variables a shell changes by itself; they are not the stack's.
SHELL_OWN = {"_", "PWD", "OLDPWD", "SHLVL", "BASH_EXECUTION_STRING"}

#: What an ATLAS release container (without ATLASLocalRootBase) sets its release up with.
RELEASE_SETUP = "/release_setup.sh"

# Runs before CMD in the clean bash.  setupATLAS is an alias in users' .bashrc, and
# lsetup/asetup exist only after it: define it, and call it when CMD needs them.
# Inside a release container, /release_setup.sh is the way to set the release up: it
# is sourced, and an asetup for that same release (AtlasVersion) is then a no-op.
# Where neither is there, lsetup and asetup say what is missing instead of "command
# not found".  The helpers are shell functions and unexported variables: not recorded.
_PRELUDE = r"""
_layervenv_alrb="${ATLAS_LOCAL_ROOT_BASE:-%(alrb)s}"
_layervenv_release=%(release)s
_layervenv_no_alrb () {
    printf 'layervenv: %%s needs ATLASLocalRootBase (setupATLAS), not found at %%s: %%s\n' \
        "$1" "$_layervenv_alrb" 'set ATLAS_LOCAL_ROOT_BASE' >&2
    return 127
}
_layervenv_release_asetup () {
    case " $* " in
        *"${AtlasVersion:-}"*)
            printf 'layervenv: no asetup in this release container: %%s set up %%s\n' \
                "$_layervenv_release" "${AtlasProject-} ${AtlasVersion-}" >&2 ;;
        *)
            printf 'layervenv: this release container has %%s (set up by %%s), not: asetup %%s\n' \
                "${AtlasProject-} $AtlasVersion" "$_layervenv_release" "$*" >&2
            return 1 ;;
    esac
}
if [ -f "$_layervenv_alrb/user/atlasLocalSetup.sh" ]; then
    export ATLAS_LOCAL_ROOT_BASE="$_layervenv_alrb"
    setupATLAS () { . "$ATLAS_LOCAL_ROOT_BASE/user/atlasLocalSetup.sh" --quiet "$@"; }
    if [ -n "$LAYERVENV_NEEDS_ALRB" ] && ! type lsetup >/dev/null 2>&1; then
        setupATLAS
    fi
elif [ -n "$LAYERVENV_NEEDS_ALRB" ]; then
    if [ -f "$_layervenv_release" ] && ! type asetup >/dev/null 2>&1; then
        . "$_layervenv_release"
        type asetup >/dev/null 2>&1 || asetup () { _layervenv_release_asetup "$@"; }
    fi
    type lsetup >/dev/null 2>&1 || lsetup () { _layervenv_no_alrb lsetup; }
    type asetup >/dev/null 2>&1 || asetup () { _layervenv_no_alrb asetup; }
fi
unset LAYERVENV_NEEDS_ALRB
"""
_NEEDS_ALRB = re.compile(r"(^|[\s;&|(])(lsetup|asetup)\b")


@dataclass
class StackEnvironment:
    """The difference a setup command makes (prepended entries, set variables): the
    ``environment`` of a :class:`StackRecord`."""

    prepend: dict[str, list[str]] = field(default_factory=dict)
    set: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"prepend": self.prepend, "set": self.set}

    @classmethod
    def from_dict(cls, data: dict[str, object] | None) -> StackEnvironment:
        data = data or {}
        prepend = {str(k): [str(e) for e in v] for k, v in dict(data.get("prepend", {})).items()}
        values = {str(k): str(v) for k, v in dict(data.get("set", {})).items()}
        return cls(prepend=prepend, set=values)

    def is_empty(self) -> bool:
        return not self.prepend and not self.set

    def presence_markers(self) -> tuple[str, list[str]]:
        """The variable and entries whose presence means the stack is set up."""
        key = "PYTHONPATH" if self.prepend.get("PYTHONPATH") else "PATH"
        return key, [e for e in self.prepend.get(key, []) if e]

    def is_set_up_in(self, environ: dict[str, str]) -> bool:
        """Whether ``environ`` already has this stack (all its PYTHONPATH/PATH entries)."""
        key, wanted = self.presence_markers()
        have = set(environ.get(key, "").split(os.pathsep))
        return bool(wanted) and all(entry in have for entry in wanted)


@dataclass(frozen=True)
class OverLayer:
    """A layer that is part of another layer's stack (``create --over GROUP``): a group's
    read-only layer under a member's personal one.  Only its paths are recorded: its
    site-packages goes on PYTHONPATH and its ``bin`` on PATH, behind the personal layer's
    and ahead of the stack's; nothing of it (its activation, its setup) is ever run."""

    root: str
    site_packages: str
    scripts: str

    def to_dict(self) -> dict[str, str]:
        return {"root": self.root, "site_packages": self.site_packages, "scripts": self.scripts}


def _over_layer(data: object) -> OverLayer:
    """One ``[[stack.over]]`` table, validated: three absolute paths, each one line (the
    site-packages is a line of the layer's ``.pth``: a second line could be code).  A
    ValueError names what is wrong; ``Layer.open`` turns it into "layervenv.toml is
    damaged"."""
    if not isinstance(data, dict):
        raise ValueError(f"stack.over holds {data!r}, not a table")
    values = {}
    for key in ("root", "site_packages", "scripts"):
        value = data.get(key)
        if not isinstance(value, str) or not os.path.isabs(value) \
                or any(c in value for c in ("\0", "\n", "\r", os.pathsep)):
            raise ValueError(f"stack.over.{key} is not an absolute path: {value!r}")
        values[key] = value
    return OverLayer(**values)


@dataclass
class StackRecord:
    """The stack a layer stands on, as it was when the layer was created: the ``[stack]``
    table of ``layervenv.toml`` (the one record of it; see :mod:`layervenv.model.stack`)."""

    python: str
    python_version: str
    implementation: str = "cpython"
    pythonpath: list[str] = field(default_factory=list)
    pythonpath_set: bool = False
    #: the command that sets the stack up (``create --setup``), "" when none was given
    setup: str = ""
    #: activation re-runs ``setup`` instead of replaying ``environment``
    rerun_setup: bool = False
    #: what ``setup`` changed: ``{"prepend": {VAR: [entries]}, "set": {VAR: value}}``
    environment: dict[str, Any] = field(default_factory=dict)
    #: layers that are part of this stack, nearest first (``create --over GROUP``): as
    #: ``[[stack.over]]`` tables of :class:`OverLayer`; empty for a layer on the stack
    over: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.over, list):
            raise ValueError(f"stack.over is not an array of tables: {self.over!r}")
        self.over_layers()  # refused now, when layervenv.toml is read

    def over_layers(self) -> list[OverLayer]:
        """The group layers under this layer, nearest first."""
        return [_over_layer(item) for item in self.over]

    def over_pythonpath(self) -> list[str]:
        """The group layers' site-packages, nearest first: PYTHONPATH entries of this
        stack, ahead of the stack's own."""
        return [o.site_packages for o in self.over_layers()]

    @property
    def short_version(self) -> str:
        """``3.11`` of ``3.11.7``."""
        return ".".join(self.python_version.split(".")[:2])

    def stack_environment(self) -> StackEnvironment:
        return StackEnvironment.from_dict(self.environment)

    def stack_pythonpath(self) -> list[str]:
        """The stack's own PYTHONPATH entries: from the setup record, else from creation;
        a group layer's site-packages (``create --over``) first: it is part of the stack,
        never "another stack"."""
        recorded = self.stack_environment().prepend.get("PYTHONPATH")
        own = list(recorded) if recorded is not None else list(self.pythonpath)
        return self.over_pythonpath() + own



def is_variable_name(name: str) -> bool:
    """A name every shell can set: not bash's exported functions (``BASH_FUNC_f%%``).

    Functions cannot be replayed from a recorded environment; a stack that needs its
    shell functions records ``--rerun-setup`` instead.
    """
    return name.isidentifier() and name.isascii()


def diff_environments(before: dict[str, str], after: dict[str, str]) -> StackEnvironment:
    """What turned ``before`` into ``after``, as prepends where it looks like one."""
    result = StackEnvironment()
    for name, value in sorted(after.items()):
        if name in SHELL_OWN or before.get(name) == value or not is_variable_name(name):
            continue
        old = before.get(name)
        if old and value.endswith(os.pathsep + old):
            result.prepend[name] = value[: -len(old) - 1].split(os.pathsep)
        elif not old and name.endswith("PATH") and value:
            result.prepend[name] = value.split(os.pathsep)
        else:
            result.set[name] = value
    return result


def clean_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment of a clean login: a few identity variables and a system PATH."""
    env = {k: environ[k] for k in CLEAN_VARIABLES if k in environ}
    env["PATH"] = CLEAN_PATH
    return env


#: Runs CMD (from LAYERVENV_SETUP) after the prelude and dumps the environment it leaves
#: into LAYERVENV_DUMP; ``command -p`` finds ``env`` even when CMD replaced PATH.
_CAPTURE = r"""
_layervenv_dump=$LAYERVENV_DUMP
unset LAYERVENV_DUMP
eval "$LAYERVENV_SETUP"
_rc=$?
[ $_rc = 0 ] || exit $_rc
unset LAYERVENV_SETUP _rc _layervenv_alrb _layervenv_release
command -p env -0 > "$_layervenv_dump"
"""


def capture_setup(command: str, environ: dict[str, str]) -> tuple[StackEnvironment, dict[str, str]]:
    """Run ``command`` in a clean bash; return its difference and the full result.

    A failing command stops everything with its own output shown (exit status and
    the last lines of what it printed) in the error.  Its standard input is
    /dev/null (a setup that asks a question must not wait, unseen, for an answer),
    and its output goes to a file, not a pipe: a daemon the setup starts in the
    background keeps a pipe open, and waiting for its end would wait for the daemon.
    """
    before = clean_environment(environ)
    env = dict(before)
    if _NEEDS_ALRB.search(command):
        env["LAYERVENV_NEEDS_ALRB"] = "1"
    with tempfile.TemporaryDirectory(prefix="layervenv-setup-") as tmp:
        dump, log = Path(tmp) / "env", Path(tmp) / "output"
        env.update(LAYERVENV_SETUP=command, LAYERVENV_DUMP=str(dump))
        script = _PRELUDE % {"alrb": ALRB_DEFAULT, "release": shlex.quote(RELEASE_SETUP)} \
            + _CAPTURE
        with open(log, "wb") as output:
            # a session of its own, killed whole if we stop before it ends (a timeout,
            # Ctrl-C, SIGTERM): what the setup started must not outlive us
            process = subprocess.Popen(["bash", "--noprofile", "--norc", "-c", script],
                                       env=env, stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                status = process.wait(timeout=600)
            except subprocess.TimeoutExpired:
                kill_group(process.pid)
                process.wait()
                raise UserError(f"the setup command did not finish within 600 s: "
                                f"{command}") from None
            except BaseException:
                kill_group(process.pid)
                process.wait()
                raise
        if status != 0 or not dump.exists():
            raise UserError(_failure(command, status, log.read_bytes()))
        after = _parse_env0(dump.read_bytes().decode("utf-8", "surrogateescape"))
    return diff_environments(before, after), after


def _failure(command: str, status: int, output: bytes) -> str:
    """The error for a setup that failed: its status and its last lines of output."""
    lines = output.decode("utf-8", "replace").strip().splitlines()[-15:]
    shown = "\n".join("  | " + line for line in lines) or "  | (no output)"
    if status == 0:  # CMD called ``exit 0``: the environment it made was never seen
        return (f"the setup command exited before its environment could be read "
                f"(it must not call 'exit'): {command}\n{shown}")
    return f"the setup command failed (exit {status}): {command}\n{shown}"


def _parse_env0(data: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in data.split("\0") if "=" in item)
    return {key: value for key, value in pairs}


def missing_parts(python: str, pythonpath: list[str]) -> list[str]:
    """What of a recorded stack is gone: its interpreter, its PYTHONPATH directories.

    A relative PYTHONPATH entry (``PYTHONPATH=src`` of a developer) names a directory
    under whatever the current directory is: not part of any stack, never "missing".
    """
    missing = []
    if not os.path.exists(python):
        missing.append(f"interpreter {python}")
    seen = set()
    for entry in pythonpath:
        if os.path.normpath(entry) in seen:
            continue  # setup scripts often add a directory twice, or spelt two ways
        seen.add(os.path.normpath(entry))
        if os.path.isabs(entry) and not os.path.isdir(entry):
            missing.append(f"directory {entry}{_denied(entry)}")
    return missing


def is_packages_directory(entry: str) -> bool:
    """Whether a PYTHONPATH entry is (or is in) a Python's ``site-packages`` or
    ``dist-packages``, in whatever layout (``lib/pythonX.Y/``, ``lib/python3/``,
    ``lib64/``, an interpreter's own): what a stack puts on PYTHONPATH."""
    return any(name in entry for name in PACKAGE_DIRECTORIES)


def site_packages_not_on_pythonpath(pythonpath: list[str], environ: dict[str, str]) -> list[str]:
    """The recorded stack's ``site-packages`` entries that this environment's PYTHONPATH
    lacks: for a layer made without --setup, the sign that its stack is not set up here
    (``lock`` refuses to record such a shell's stack; ``list``/``check`` warn)."""
    value = environ.get("PYTHONPATH")
    present = set(value.split(os.pathsep)) if value else set()
    return [e for e in pythonpath
            if os.path.isabs(e) and is_packages_directory(e) and e not in present]


def _denied(path: str) -> str:
    """`` (permission denied)`` when ``path`` is there but a parent cannot be searched."""
    try:
        os.stat(path)
    except PermissionError:
        return " (permission denied)"
    except OSError:
        pass
    return ""


def foreign_site_packages(environ: dict[str, str], own: list[str]) -> list[str]:
    """PYTHONPATH entries of ``environ`` that are another stack's site-packages (or
    dist-packages).

    Activation scripts apply the same rule with shell pattern matching.
    """
    entries = [e for e in environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    return [e for e in entries if is_packages_directory(e) and e not in own]


def refuse_missing_or_other_stack(python: str, pythonpath: list[str],
                                  environment: StackEnvironment, environ: dict[str, str],
                                  describe: str) -> None:
    """Refuse, in one line, a stack that is gone or a different stack that is set up."""
    missing = missing_parts(python, pythonpath)
    if missing:
        raise UserError(f"the stack of this layer is missing: {', '.join(missing)} "
                        "(is CVMFS mounted? was the release removed?)")
    if environment.is_empty() or environment.is_set_up_in(environ):
        return
    foreign = foreign_site_packages(environ, pythonpath)
    if foreign:
        raise UserError(f"another stack is set up here (PYTHONPATH has {foreign[0]}); "
                        f"this layer was made on {describe}: use a shell without it")
