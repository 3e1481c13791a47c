"""The tool's stable entry point: ``from layervenv.cli import main``.

The ``bin/layervenv`` shim of every layer made so far runs the tool with exactly this
import (:mod:`layervenv.infra.toolhome`), so it stays here whatever the layout of
:mod:`layervenv.app`; the parser and exit policy live in :mod:`layervenv.app.main`.
"""

from layervenv.app.main import main

__all__ = ["main"]
