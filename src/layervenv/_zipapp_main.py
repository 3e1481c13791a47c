# layervenv: runs on the stack's Python
"""``__main__`` of ``layervenv.pyz``, the single-file tool (see ``dev/build-zipapp``).

It runs first on whatever Python started the archive, which may be a stack's old
``python3`` that read the stack's PYTHONPATH and ran its ``sitecustomize``; so it is
written for Python 3.6 and imports nothing but ``os`` and ``sys`` until it knows that
the interpreter is new enough and isolated (``-I -S``: no PYTHON* variable, no
site-packages, no ``.pth`` file or ``sitecustomize``).  Otherwise it starts the archive
again that way; ``exec`` drops what a ``sitecustomize`` printed without flushing.
The archive's own ``#!/bin/sh`` line already starts Python with ``-I -S``.
"""

import os
import sys

MINIMUM = (3, 9)


def newer_python():
    """The newest ``python3.X`` on PATH that can run the tool, if any."""
    import shutil

    for minor in range(20, MINIMUM[1] - 1, -1):
        found = shutil.which(f"python3.{minor}")
        if found:
            return found
    return None


def start():
    archive = os.path.abspath(sys.argv[0])
    args = sys.argv[1:]
    if sys.version_info < MINIMUM:
        python = newer_python()
        if python is None:
            sys.stderr.write(
                "layervenv: error: layervenv needs Python {0[0]}.{0[1]} or newer, and {1} is "
                "Python {2[0]}.{2[1]}; put a newer python3 first on PATH or set "
                "LAYERVENV_PYTHON\n".format(MINIMUM, sys.executable or "python3",
                                             sys.version_info))
            return 2
    elif (sys.flags.isolated and sys.flags.no_site) or not sys.executable:
        from layervenv.app.main import main

        return main(args)
    else:
        python = sys.executable
    os.execv(python, [python, "-I", "-S", archive, *args])
    return 2  # not reached


if __name__ == "__main__":
    sys.exit(start())
