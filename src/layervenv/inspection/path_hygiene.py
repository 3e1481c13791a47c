"""PYTHONPATH entries that cost every process of the layer and give it nothing (kind ``path``).

Stacks (Spack, Key4hep, Lmod) put one entry per package on PYTHONPATH, and setup scripts
add directories that do not exist, add one twice, or add one that holds only metadata.
Each is reported (a warning: nothing is wrong with what imports) with what it costs, so
that users can ask their stack's maintainers for a shorter path.  The costs are what
``strace`` counts (``tests/test_path_hygiene.py`` checks every one against it):

``does not exist``     Python's path hook finds it is no directory once per process and
                       caches that: 2 metadata operations at each start, none per import.
``appears N times``    before ``site`` runs, Python looks in every copy; ``site`` then
                       drops the later copies (``removeduppaths``): 1 metadata operation
                       per extra copy at each start, none per import after it.
``nothing importable`` ``FileFinder`` stats the directory on every lookup that reaches
                       it: 1 metadata operation per top-level import of a name not found
                       earlier on ``sys.path`` (about 50 in each start of Python 3.11);
                       0 when the layer's import index trusts it (a read-only directory
                       and the index on, see :mod:`layervenv.inspection.import_index`).

Not reported here: an empty or ``.`` entry (the current directory: ``cwd-on-path``, an
error, from ``stack_problems``), a directory the layer's stack recorded and that is gone
(``stack-missing``), the layer's own directories, zip files, relative entries and
directories that cannot be read (``unreadable``).
"""

from __future__ import annotations

import os

from layervenv.boot._layervenv_boot import INDEX_SWITCH, is_read_only
from layervenv.infra.output import count
from layervenv.inspection.effective_view import is_under
from layervenv.inspection.problems import Problem
from layervenv.model.layer import Layer
from layervenv.model.stack import StackRecord

KIND = "path"

#: endings of what ``FileFinder`` imports from a directory: source, bytecode (a ``.pyc``
#: beside no source is importable) and extension modules (every platform's extension
#: suffix, ``.cpython-311-x86_64-linux-gnu.so``, ``.abi3.so``, ``.pyd``, ends so)
MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")


def holds_importable(entry: str) -> bool | None:
    """Whether the directory ``entry`` holds a name an ``import`` statement can find there.

    Importable: a file ``NAME.py``, ``NAME.pyc`` or ``NAME<extension suffix>`` (``.so``,
    ``.pyd``), or a directory ``NAME`` (a package, or a namespace package's portion, which
    needs no ``__init__``), where NAME is an identifier and not ``__pycache__``.  Not
    importable: ``*.dist-info``/``*.egg-info`` (metadata), ``.pth`` files (read only in
    site directories, never on PYTHONPATH), data files, names that are no identifier.
    One ``scandir`` of ``entry``; None when it cannot be listed (another check's matter).
    """
    try:
        with os.scandir(entry) as listing:
            for item in listing:
                name = item.name
                if name.endswith(MODULE_SUFFIXES):
                    stem = name.partition(".")[0]
                    if stem.isidentifier():
                        return True
                elif name.isidentifier() and name != "__pycache__":
                    try:
                        if item.is_dir():
                            return True
                    except OSError:
                        continue
    except OSError:
        return None
    return False


def _index_covers(entry: str, environ: dict[str, str]) -> bool:
    """Whether the boot hook's import index answers lookups in ``entry`` without a call."""
    return environ.get(INDEX_SWITCH, "1").strip() != "0" and is_read_only(entry)


def path_problems(layer: Layer, record: StackRecord, environ: dict[str, str]) -> list[Problem]:
    """The useless PYTHONPATH entries of ``environ``, the environment the layer's processes
    run in (:func:`~layervenv.runtime.environment.layer_environment`), with their cost."""
    value = environ.get("PYTHONPATH", "")
    entries = value.split(os.pathsep) if value else []
    root = str(layer.root)
    # what stack-missing reports (model.stack.missing_parts): not reported twice
    gone = {os.path.normpath(e) for e in record.stack_pythonpath()
            if os.path.isabs(e) and not os.path.isdir(e)}
    copies: dict[str, list[str]] = {}
    for entry in entries:
        if not entry or os.path.normpath(entry) == os.curdir or not os.path.isabs(entry):
            continue  # the current directory is cwd-on-path; relative entries move with it
        # the key site.removeduppaths uses (makepath: abspath, normcase)
        copies.setdefault(os.path.normcase(os.path.abspath(entry)), []).append(entry)
    problems = []
    for key, spelt in copies.items():
        entry = spelt[0]
        if is_under(key, root):
            continue
        if len(spelt) > 1:
            distinct = list(dict.fromkeys(spelt))
            spellings = f" (as {' and '.join(distinct)})" if len(distinct) > 1 else ""
            problems.append(Problem(
                KIND, "warning",
                f"PYTHONPATH has {entry} {len(spelt)} times{spellings}: "
                f"{count(len(spelt) - 1, 'metadata operation')} at each Python start for "
                f"nothing, none per import (site drops the later copies at start-up); "
                f"ask the stack's maintainers to add it once"))
        if not os.path.lexists(entry):
            if key not in gone:  # a recorded stack directory that is gone: stack-missing
                problems.append(Problem(
                    KIND, "warning",
                    f"PYTHONPATH has {entry}, which does not exist: 2 metadata operations "
                    f"at each Python start (none per import: Python remembers it); "
                    f"remove it from PYTHONPATH"))
            continue
        if not os.path.isdir(entry) or holds_importable(entry) is not False:
            continue
        if _index_covers(entry, environ):
            cost = ("no metadata operation per import while the import index trusts it "
                    f"(it is read-only), 1 per import with {INDEX_SWITCH}=0")
        else:
            cost = ("1 metadata operation for every import of a name not found before it "
                    "on sys.path (about 50 at each start of Python 3.11)")
        problems.append(Problem(
            KIND, "warning",
            f"PYTHONPATH has {entry}, which holds nothing importable (no module, package "
            f"or extension module; metadata alone is not importable): {cost}; "
            f"remove it from PYTHONPATH"))
    return problems
