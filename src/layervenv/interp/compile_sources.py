# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""Byte-compile a layer's sources with the layer's own interpreter.

Run as ``PYTHON -I -S -c SOURCE REPORT`` (neither PYTHONPATH, PYTHONPYCACHEPREFIX nor
the layer's ``.pth`` files can change where a ``.pyc`` goes) with a JSON list of
``[source, shown_as, pyc]`` jobs on stdin.  Each source gets the
``__pycache__/NAME.TAG.pyc`` this very interpreter looks for (its cache tag and magic
number: only it can write them), or ``pyc`` where one is given (the per-user cache of
the seeded pip's bytecode), with ``shown_as`` (the path the layer will have) as the
code's file name.  The
tool has already kept to sources inside the layer; a ``__pycache__`` that is a link
(it could lead anywhere) is skipped here too.  A source that does not compile (a
template, Python 2 test data) is counted and named, as pip passes over it.  Writes
``{"compiled": N, "failed": [source, ...], "skipped": N}`` to REPORT.
"""

import json
import os
import py_compile
import sys
from importlib.util import cache_from_source


def main():
    jobs = json.loads(sys.stdin.read() or "[]")
    compiled, failed, skipped = 0, [], 0
    for source, shown_as, pyc in jobs:
        pyc = pyc or cache_from_source(source)
        if os.path.islink(os.path.dirname(pyc)):
            skipped += 1
            continue
        try:
            py_compile.compile(source, cfile=pyc, dfile=shown_as, doraise=True)
            compiled += 1
        except (py_compile.PyCompileError, OSError, ValueError, SyntaxError):
            failed.append(source)
    with open(sys.argv[1], "w") as handle:
        json.dump({"compiled": compiled, "failed": failed, "skipped": skipped}, handle)


if __name__ == "__main__":
    main()
