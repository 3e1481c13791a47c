"""Where this very tool is, and the command that runs it again, isolated, from anywhere.

Used by the console entry point to start itself again with ``-I`` and by the
``layervenv`` shim of every layer's ``bin/`` (:mod:`layervenv.runtime.toolshim`).
Standard library only: it runs before the tool's dependencies are safe to import.
"""

from __future__ import annotations

import os
import sys

#: Runs the tool from the directory holding the ``layervenv`` package (sys.argv[1]).  It names
#: :mod:`layervenv.cli`, the stable entry, because the shims of layers already made say so.
_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
         "from layervenv.cli import main; sys.exit(main(sys.argv[1:]))")


def package_home() -> str:
    """Where the ``layervenv`` package is: its site-packages (or src/), or the zipapp."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def is_zipapp(home: str) -> bool:
    """The tool runs from a ``layervenv.pyz`` (its package lives in an archive)."""
    if not os.path.isfile(home):  # an installed tool: no need to import zipfile
        return False
    import zipfile

    return zipfile.is_zipfile(home)


def tool_argv() -> list[str]:
    """The command that runs this very tool, isolated, from anywhere.

    Used to start the tool again isolated, and by the ``layervenv`` entry of every
    layer's ``bin/`` (see :mod:`layervenv.runtime.toolshim`).  The zipapp brings its
    dependencies inside and needs no site-packages (``-S``); an installed tool finds
    them in its own site-packages, put first after the package itself.
    """
    python = sys.executable
    home = package_home()
    if is_zipapp(home):
        return [python, "-I", "-S", home]
    return [python, "-I", "-c", _BOOT, home]
