"""The environment-change model: what activation does, as data, for every shell.

Activation is a list of changes; each shell dialect only knows how to *spell*
them (see :mod:`layervenv.runtime.shells`).  Keeping the meaning here, in one place, is
what makes ``deactivate`` behave the same in bash, zsh, dash, ksh, fish and csh.

The contract every change honours on ``deactivate``:

* a variable that was unset before activation is unset again, an empty one is
  empty again (the *saved* variable exists exactly when the original was set);
* a path-like variable that nobody touched while the layer was active gets its
  exact old value back; if another tool changed it meanwhile, only the entry the
  layer added is removed and everything the other tool added is kept;
* nothing is ever left behind: the saved state lives in ``_LAYERVENV_*``
  variables that are removed when the layer is deactivated.

The saved state of exported variables is itself exported, so a child shell that
inherited an active layer can ``deactivate`` (or re-activate without duplicates).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from itertools import chain
from typing import Union

from layervenv.model.stack import is_packages_directory

STATE_PREFIX = "_LAYERVENV_"
PATH_SEPARATOR = ":"
MARKER = STATE_PREFIX + "ACTIVE"
#: BSD csh (Debian's ``csh``) refuses to read a variable with a longer name
MAX_NAME = 30


@dataclass(frozen=True)
class SetVar:
    """Set ``name`` to ``value``; deactivation restores the old value or unsets it."""

    name: str
    value: str
    exported: bool = True
    #: names the saved state (default: the variable); the stack's changes use their own
    key: str = ""


@dataclass(frozen=True)
class UnsetVar:
    """Unset ``name`` (PYTHONHOME); deactivation restores it if it was set."""

    name: str
    exported: bool = True
    key: str = ""


@dataclass(frozen=True)
class PrependPath:
    """Put ``entry`` at the head of the path-like variable ``name``.

    ``entry`` may be several entries joined by ``:`` (a stack's block); it is added
    and removed as one.  Never adds an empty entry: an unset or empty variable
    becomes just ``entry``.
    """

    name: str
    entry: str
    exported: bool = True
    key: str = ""


@dataclass(frozen=True)
class SetPrompt:
    """Prefix the shell prompt with ``text`` unless VIRTUAL_ENV_DISABLE_PROMPT is set."""

    text: str
    exported: bool = False


@dataclass(frozen=True)
class LeaveStacks:
    """Leave every stack of the environment that is not the layer's (a kernel's launcher).

    A Jupyter server hands its own environment to every kernel (jupyterhub #2069), so a
    kernel for one stack inherits whatever stack the server was started in.  The rule,
    the same in :func:`apply_to` and in the launcher:

    * PYTHONPATH keeps only the entries of ``own`` (the layer's stack, as recorded), in
      their order; every other entry goes, and a PYTHONPATH left empty is unset;
    * each entry that went and is a packages directory (``site-packages`` or Debian's
      ``dist-packages``: :func:`~layervenv.model.stack.is_packages_directory`, the rule
      activation and ``run`` apply to find another stack) marks the prefix of another
      stack: the entry without its shortest ``/lib*/python*`` suffix (so
      ``/B/lib/python3.11/site-packages`` marks ``/B``), except ``/``, ``/usr`` and
      ``/usr/local``, which hold the system's own files;
    * every entry of the variables ``below`` (LD_LIBRARY_PATH, PATH) that is such a
      prefix or lies under one goes, unless it is one of ``keep`` (the entries the layer's
      recorded stack itself puts there); other entries stay as they were, empty ones too.

    Never reverted: a process started this way is never deactivated.
    """

    own: tuple[str, ...]
    keep: tuple[str, ...] = ()
    below: tuple[str, ...] = ("LD_LIBRARY_PATH", "PATH")


#: prefixes never taken for another stack's (see :class:`LeaveStacks`)
SYSTEM_PREFIXES = ("", "/", "/usr", "/usr/local")
#: the suffix cut from a site-packages entry to find its stack's prefix (shortest match)
SITE_SUFFIX = "/lib*/python*"


def foreign_prefix(entry: str) -> str | None:
    """The prefix of the stack whose packages directory ``entry`` is, or None.

    As the shell's ``${entry%/lib*/python*}``: the shortest suffix matching the pattern is
    cut (``*`` matches ``/`` too).
    """
    if not is_packages_directory(entry):
        return None
    for start in range(len(entry) - 1, -1, -1):
        if fnmatchcase(entry[start:], SITE_SUFFIX):
            prefix = entry[:start]
            return None if prefix in SYSTEM_PREFIXES else prefix
    return None


def _leave_stacks(change: LeaveStacks, env: dict[str, str]) -> None:
    value = env.get("PYTHONPATH")
    entries = value.split(PATH_SEPARATOR) if value is not None else []
    own = set(change.own)
    prefixes = [p for p in (foreign_prefix(e) for e in entries if e not in own) if p]
    if value is not None:
        kept = [e for e in entries if e in own]
        if kept:
            env["PYTHONPATH"] = PATH_SEPARATOR.join(kept)
        else:
            del env["PYTHONPATH"]
    keep = set(change.keep)
    for name in change.below:
        if not env.get(name):
            continue
        kept = [e for e in env[name].split(PATH_SEPARATOR) if e in keep or not any(
            e == p or e.startswith(p + "/") for p in prefixes)]
        if kept:
            env[name] = PATH_SEPARATOR.join(kept)
        else:
            del env[name]


Change = Union[SetVar, UnsetVar, PrependPath, SetPrompt, LeaveStacks]


@dataclass(frozen=True)
class RequirePath:
    """Activation refuses (one line, nothing changed) unless ``path`` exists.

    A layer whose stack is gone (CVMFS not mounted, release removed) would otherwise
    fail later with a cryptic ImportError or a crashing C extension.
    """

    path: str
    what: str
    #: the refusal; by default, that the stack is missing
    message: str = ""


@dataclass(frozen=True)
class StackGroup:
    """The recorded stack's environment, applied only where the stack is not set up.

    The stack counts as set up when every one of ``present_if`` is on ``present_var``.
    Where it is not, but another stack's ``site-packages`` is, activation refuses to
    mix them.  ``rerun`` (POSIX shells only) re-runs the setup command instead of
    replaying ``changes``; ``changes`` then only name the variables it touches.
    """

    present_if: tuple[str, ...]
    changes: tuple[Change, ...]
    describe: str
    rerun: str = ""
    present_var: str = "PYTHONPATH"


STACK_FLAG = STATE_PREFIX + "STACK"


@dataclass(frozen=True)
class SetAsideVenv:
    """A plain venv (``python -m venv``, virtualenv) active in the shell is set aside while
    the layer is active, not deactivated.

    Its deactivate would give PATH back as it was before the venv, dropping what was added
    since (a stack set up after the venv).  Instead, where such a venv is active (VIRTUAL_ENV
    set, the venv's own ``_OLD_VIRTUAL_PATH`` set, no layer active), activation takes only
    the venv's ``bin`` out of PATH (kept in :data:`VENV_STATE`; the PATH before that is saved
    under the key :data:`VENV_KEY`) and keeps the venv's ``deactivate`` aside; VIRTUAL_ENV,
    the prompt and the rest are saved by the layer's own changes.  ``deactivate`` gives PATH
    back exactly where nothing changed it meanwhile (else puts the venv's ``bin`` in front
    again), then gives the venv its ``deactivate`` back: the venv is active again, as it was.
    """

    bin_name: str = "bin"


@dataclass(frozen=True)
class SetAsideLayers:
    """Another layer active in the shell is left fully (with its own ``deactivate``, as
    ever) and remembered; this layer's ``deactivate`` activates it again.

    The layers set aside are a stack, most recent first, in the shell variable
    :data:`UNDER_VAR`, never exported (a child shell inherits only the layer active in
    it): activation pushes the directory of the layer active (:data:`MARKER`'s value)
    unless it is this layer itself; a destructive ``deactivate``, after everything else
    (a plain venv given its ``deactivate`` back), pops the first and sources that layer's
    own activation script, which defines its own ``deactivate``; a refused activation
    runs this layer's ``deactivate``, so the layer it left is active again.  The layer
    given back is re-activated, never kept under this one: nothing of its stack is mixed
    into this layer's, and activating costs one test more.  The pop lives in the file
    ``file`` of the layer's ``bin``, read only when there is something to give back.
    """

    file: str = "under"


#: the shell variable (never exported) holding the layers set aside, most recent first
UNDER_VAR = "_layervenv_under"

#: the venv's ``bin`` entry taken out of PATH (set while a venv is set aside)
VENV_STATE = STATE_PREFIX + "VENV"
#: the key of the PATH saved before the venv's entry was taken out
VENV_KEY = "VENV_PATH"


def state_key(change: Change) -> str:
    """The name under which a change keeps its saved state."""
    return getattr(change, "key", "") or getattr(change, "name", "PROMPT")


def _state_name(kind: str, key: str) -> str:
    """``_LAYERVENV_<kind>_<key>``, at most :data:`MAX_NAME` characters long.

    A key too long for that keeps its first characters (so ``STACK_...`` stays
    recognisable) and gets a short stable hash of the whole key, so that two keys
    never share a name.  Every shell uses these same names: a child csh can undo what
    an activation in bash did.
    """
    prefix = f"{STATE_PREFIX}{kind}_"
    room = MAX_NAME - len(prefix)
    if len(key) > room:
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:4]
        key = f"{key[:room - 5]}_{digest}"
    return prefix + key


def saved_name(name: str) -> str:
    """Where the value of ``name`` before activation is kept (exists iff it was set)."""
    return _state_name("OLD", name)


def applied_name(name: str) -> str:
    """Where the value a variable had right after activation is kept."""
    return _state_name("NEW", name)


def added_name(name: str) -> str:
    """Where the entry activation added to a path-like variable is kept.

    Keeping it in the state (not only in the script) lets any layer's ``deactivate``
    undo any layer's activation, e.g. in a child shell that inherited another layer.
    """
    return _state_name("ADD", name)


@dataclass(frozen=True)
class EnvChange:
    """An ordered list of changes that together activate one layer."""

    layer: str
    changes: tuple[Change, ...]
    requires: tuple[RequirePath, ...] = ()
    stack: StackGroup | None = None
    #: changes this layer does not make but another layer's activation may have made,
    #: undone where their saved state says so: a child shell inherits the state of its
    #: parent's layer, and activating another layer there first deactivates that one
    #: with this layer's deactivate (the parent's shell function is not inherited)
    revert_also: tuple[Change, ...] = ()
    #: changes made after the requirements are met and before the stack is looked for,
    #: never reverted: a kernel's launcher leaves the server's stacks (:class:`LeaveStacks`)
    leave: tuple[Change, ...] = ()
    #: interactive shells get a prompt hook that keeps the layer's entries in front
    prompt_hook: bool = False
    #: a plain venv active in the shell is set aside, not deactivated (:class:`SetAsideVenv`)
    venv: SetAsideVenv | None = None
    #: another layer active in the shell is given back by deactivate (:class:`SetAsideLayers`)
    under: SetAsideLayers | None = None

    def reverted(self) -> Iterator[Change]:
        """Changes in the order deactivation must undo them (last applied first)."""
        return chain(self.revert_also, reversed(self.changes))

    def touches_path(self) -> bool:
        """Whether the shell must forget its cached command locations."""
        changes = self.changes + (self.stack.changes if self.stack else ())
        return any(isinstance(c, PrependPath) and c.name == "PATH" for c in changes)

    def state_variables(self) -> list[str]:
        """Every ``_LAYERVENV_*`` variable activation may create (for tests and docs)."""
        names = [MARKER] + ([STACK_FLAG] if self.stack else [])
        if self.venv:
            names += [VENV_STATE, saved_name(VENV_KEY), applied_name(VENV_KEY)]
        for change in self.changes + (self.stack.changes if self.stack else ()):
            key = "PS1" if isinstance(change, SetPrompt) else state_key(change)
            names.append(saved_name(key))
            if isinstance(change, (PrependPath, SetPrompt)):
                names.append(applied_name(key))
            if isinstance(change, PrependPath):
                names.append(added_name(key))
        return names


def apply_to(changes: tuple[Change, ...] | list[Change], environ: dict[str, str]) -> dict[str, str]:
    """The environment after activation, computed in Python (for ``layervenv run``).

    Same meaning as the shell dialects give the model; no state is saved because a
    process started this way is never deactivated.  The prompt is a shell's concern.
    """
    env = dict(environ)
    for change in changes:
        if isinstance(change, SetVar):
            env[change.name] = change.value
        elif isinstance(change, UnsetVar):
            env.pop(change.name, None)
        elif isinstance(change, PrependPath):
            old = env.get(change.name, "")
            env[change.name] = f"{change.entry}{PATH_SEPARATOR}{old}" if old else change.entry
        elif isinstance(change, LeaveStacks):
            _leave_stacks(change, env)
    return env
