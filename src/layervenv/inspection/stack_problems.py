"""Problems of the stack a layer stands on and of PYTHONPATH as its interpreter sees it.

``stack-missing``     the recorded interpreter or stack directories are gone;
``unreadable``        a sys.path directory, or a distribution's metadata, that cannot
                      be read;
``python-mismatch``   another Python's site-packages on PYTHONPATH, an interpreter that
                      changed, another stack set up than the recorded one;
``stack-not-set-up``  the recorded stack is not set up (a layer made without --setup);
``cwd-on-path``       PYTHONPATH puts the current directory on sys.path.

The stack is the one recorded in ``layervenv.toml``: a :class:`~layervenv.model.stack.StackRecord`.
"""

from __future__ import annotations

import os

from layervenv.boot._layervenv_boot import site_packages_version
from layervenv.inspection.effective_view import Unreadable, is_under
from layervenv.inspection.problems import Problem
from layervenv.model.layer import Layer
from layervenv.model.stack import (
    StackRecord,
    foreign_site_packages,
    is_packages_directory,
    missing_parts,
    site_packages_not_on_pythonpath,
)

# ---------------------------------------------------------------------------------------
# The stack the layer was made on
# ---------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------
# What is wrong with it, or with PYTHONPATH
# ---------------------------------------------------------------------------------------

def stack_missing_problems(record: StackRecord, layer: Layer) -> list[Problem]:
    """The recorded interpreter, stack directories or group layers are gone."""
    groups = {o.site_packages: o.root for o in record.over_layers()}
    missing = missing_parts(record.python, [e for e in record.stack_pythonpath()
                                            if e not in groups])
    if not any(m.startswith("interpreter ") for m in missing) and not layer.python.exists():
        missing.insert(0, f"interpreter {layer.python} (a broken link)")
    problems = [Problem("stack-missing", "error",
                        f"the stack of this layer is missing: {what} (is CVMFS mounted? was "
                        f"the release removed?); set it up again, or recreate the layer on "
                        f"the stack you use now (layervenv create --clear)")
                for what in missing]
    for site, root in groups.items():
        if not os.path.isdir(site):
            problems.append(Problem(
                "stack-missing", "error",
                f"the group layer this layer stands on is missing: {root} (is its file "
                f"system mounted? was it moved?); mount it again, or recreate this layer "
                f"over the group layer you use now (layervenv create --clear --over GROUP; "
                f"without --over the group's packages are gone from it)"))
    return problems


def python_of_entry(entry: str) -> str | None:
    """``3.9`` for a ``.../lib/python3.9/site-packages`` entry (the boot hook's rule)."""
    return site_packages_version(entry)


def _pythonpath_entries(value: str | None) -> list[str]:
    return value.split(os.pathsep) if value else []


def python_mismatch_problems(record: StackRecord, describe: str, layer_version: str | None,
                             pythonpath: str | None, environ: dict[str, str],
                             user_roots: list[str]) -> list[Problem]:
    """Another Python's site-packages on PYTHONPATH; an interpreter that changed; another
    stack set up than the one recorded (``describe`` says which, in words)."""
    problems = []
    short = ".".join((layer_version or record.python_version).split(".")[:2])
    if layer_version and short != record.short_version:
        problems.append(Problem(
            "python-mismatch", "error",
            f"this layer was made with Python {record.python_version} but its interpreter "
            f"is now Python {layer_version}: recreate it (layervenv create --clear)"))
    reported = set()
    for entry in _pythonpath_entries(pythonpath):
        other = python_of_entry(entry)
        if other and other != short and os.path.normpath(entry) not in reported:
            reported.add(os.path.normpath(entry))
            problems.append(Problem(
                "python-mismatch", "error",
                f"PYTHONPATH has {entry}, site-packages of Python {other}, but this layer "
                f"runs Python {short}: its compiled modules will not load; set up the stack "
                f"for Python {short} instead"))
    for entry in other_stack_entries(record, environ):
        if os.path.normpath(entry) in reported or \
                any(is_under(os.path.realpath(entry), root) for root in user_roots):
            continue
        reported.add(os.path.normpath(entry))
        problems.append(Problem(
            "python-mismatch", "error",
            f"PYTHONPATH has {entry}, which is not the stack this layer was made on "
            f"({describe}): use a shell where only that stack is set up"))
    return problems


def unset_stack_entries(record: StackRecord, environ: dict[str, str]) -> list[str]:
    """The stack's site-packages that this shell lacks, for a layer made without --setup.

    Such a layer relies on the shell to set its stack up; where nothing is set up,
    list and check see the layer alone and would say "no problems" of a layer whose
    stack packages conflict with it.  (Another stack set up instead is python-mismatch;
    a directory that is gone is stack-missing.)
    """
    if not record.stack_environment().is_empty():
        return []  # it brings its stack along
    missing = [e for e in site_packages_not_on_pythonpath(record.stack_pythonpath(), environ)
               if os.path.isdir(e)]
    if not missing or other_stack_entries(record, environ):
        return []
    return missing


def stack_not_set_up_problems(record: StackRecord, environ: dict[str, str]) -> list[Problem]:
    missing = unset_stack_entries(record, environ)
    if not missing:
        return []
    return [Problem("stack-not-set-up", "warning", stack_not_set_up_message(missing))]


def stack_not_set_up_message(missing: list[str]) -> str:
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return (f"the stack this layer was made on is not set up in this shell (PYTHONPATH "
            f"lacks {missing[0]}{more}): only the layer and the interpreter's own packages "
            f"are seen; set the stack up first (a layer made with --setup brings it along)")


def other_stack_entries(record: StackRecord, environ: dict[str, str]) -> list[str]:
    """Site-packages on PYTHONPATH of a stack other than the recorded one, when that is
    not set up."""
    if not record.stack_environment().is_empty():
        if record.stack_environment().is_set_up_in(environ):
            return []
    else:
        present = set(_pythonpath_entries(environ.get("PYTHONPATH")))
        own_sites = [e for e in record.stack_pythonpath() if is_packages_directory(e)]
        if not own_sites or all(e in present for e in own_sites):
            return []
    return foreign_site_packages(environ, record.stack_pythonpath())


def cwd_problems(pythonpath: str | None) -> list[Problem]:
    """An empty or ``.`` PYTHONPATH entry (``./``, ``./.``, ...): the current directory
    shadows everything.  (`` `` is a directory named by a space, not the current one.)"""
    entries = _pythonpath_entries(pythonpath)
    found = []
    for index, entry in enumerate(entries):
        if entry and os.path.normpath(entry) != os.curdir:  # ``./.``, ``.//`` are ``.`` too
            continue
        if entry:
            found.append(f"a '{entry}' entry")
        elif index == 0:
            found.append("an empty entry (a leading ':')")
        elif index == len(entries) - 1:
            found.append("an empty entry (a trailing ':')")
        else:
            found.append("an empty entry ('::')")
    if not found:
        return []
    return [Problem(
        "cwd-on-path", "error",
        f"PYTHONPATH has {' and '.join(dict.fromkeys(found))}, which puts the current "
        f"directory on sys.path, where any file in it can shadow a package: remove it (write "
        f"PYTHONPATH=\"/x${{PYTHONPATH:+:$PYTHONPATH}}\" instead of "
        f"PYTHONPATH=\"/x:$PYTHONPATH\")")]


def unreadable_problems(unreadable: list[Unreadable], record: StackRecord) -> list[Problem]:
    """``unreadable``; a recorded stack directory that cannot even be looked at is
    ``stack-missing`` already (and says why)."""
    missing = {os.path.normpath(e) for e in record.stack_pythonpath()
               if os.path.isabs(e) and not os.path.isdir(e)}
    unreadable = [u for u in unreadable if not (u.entry and os.path.normpath(u.path) in missing)]
    return [Problem(
        "unreadable", "error",
        f"{u.path} cannot be read ({u.reason}): nothing in it can be imported, listed or "
        f"checked; fix its permissions (or have the stack's maintainers fix them), or take "
        f"it off PYTHONPATH") if u.entry else Problem(
        "unreadable", "warning",
        f"{u.path} cannot be read ({u.reason}): that distribution is neither listed nor "
        f"checked; its permissions need fixing (by the stack's maintainers, if it is the "
        f"stack's)") for u in unreadable]
