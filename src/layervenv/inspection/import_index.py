"""``check``'s view of the import index (see the boot hook's ``install_import_index``).

The hook lets Python trust its listing of each read-only PYTHONPATH directory, as the
layer's index file records them.  Reported (warnings, kind ``import-index``): the index
switched off, and an index that records a directory as read-only (or not) when it no
longer is, or that a read-only layer cannot complete (every process then judges the
new entries itself, one ``stat`` and one ``access`` each).  Entries not yet recorded in
a writable layer are not a problem: the next process of the layer records them.
"""

from __future__ import annotations

import os

from layervenv.boot._layervenv_boot import (
    INDEX_NAME,
    INDEX_SWITCH,
    indexable_entries,
    is_read_only,
    read_index,
)
from layervenv.infra.output import count
from layervenv.inspection.problems import Problem
from layervenv.model.layer import Layer

KIND = "import-index"


def import_index_problems(layer: Layer, environ: dict[str, str]) -> list[Problem]:
    """What keeps the import index from saving the layer's processes their lookups."""
    value = environ.get("PYTHONPATH", "")
    root = str(layer.root)
    entries = [e for e in indexable_entries(value, set())
               if not (e + os.sep).startswith(root + os.sep) and os.path.isdir(e)]
    if not entries:
        return []
    if environ.get(INDEX_SWITCH, "1").strip() == "0":
        cost = count(len(entries), "metadata operation")
        return [Problem(KIND, "warning",
                        f"the import index is off ({INDEX_SWITCH}=0): every import of a name "
                        f"the stack does not hold costs {cost} "
                        f"(one per PYTHONPATH directory); unset {INDEX_SWITCH}")]
    path = str(layer.site_packages / INDEX_NAME)
    flags = read_index(path)
    changed = [e for e in entries if e in flags and flags[e] != is_read_only(e)]
    if changed:
        return [Problem(KIND, "warning",
                        f"the import index is stale: {changed[0]} is "
                        f"{'no longer' if flags[changed[0]] else 'now'} read-only"
                        f"{f' (and {len(changed) - 1} more)' if len(changed) > 1 else ''}; "
                        f"remove {path} (the next Python process of the layer writes it again)")]
    missing = [e for e in entries if e not in flags]
    if missing and not os.access(root, os.W_OK):
        what = count(len(missing), "PYTHONPATH directory", "PYTHONPATH directories")
        return [Problem(KIND, "warning",
                        f"the import index misses {what} "
                        f"and the layer is read-only: every process judges them itself; run "
                        f"{layer.root}/bin/python -c pass where the layer can be written")]
    return []
