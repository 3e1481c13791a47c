"""Where a layer being built puts what it installs: one record, passed as one argument.

A layer is assembled in a staging directory and renamed into place when complete, so
every install into it needs two roots (where files are written, and where the layer
will live: console scripts name *that* interpreter) besides the scheme's directories
(relative to the layer, as the stack interpreter's ``venv`` scheme gives them) and the
Python version pip's versioned scripts name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InstallScheme:
    """The directories of one layer being built (see the module's text)."""

    #: where files are written now
    staging: Path
    #: where the layer will live: what its scripts' ``#!`` lines name
    final_root: Path
    purelib: str  # relative to the layer, e.g. lib/python3.11/site-packages
    platlib: str
    scripts: str
    include: str
    #: ``3.11``: pip's versioned scripts name it (:func:`layervenv.dists.seed.script_name`)
    python_version: str = ""

    @property
    def python(self) -> Path:
        """The staged layer's interpreter (to run its pip before the layer is in place)."""
        return self.staging / self.scripts / "python"

    @property
    def site_packages(self) -> Path:
        return self.staging / self.purelib

    @property
    def scripts_dir(self) -> Path:
        return self.staging / self.scripts

    @property
    def final_python(self) -> Path:
        """The interpreter the installed scripts run: the layer's, at its final path."""
        return self.final_root / self.scripts / "python"
