"""One way to run code inside another interpreter (the stack's, or a layer's) and read
its answer.

Every query is a script of this package (or of ``boot/``), read with
``importlib.resources`` -- inside ``layervenv.pyz`` files have no path -- and run as
``PYTHON [FLAGS] -c SOURCE REPORT ARGS...``.  The script writes one JSON value to the
file REPORT, never to stdout, where a stack's ``sitecustomize`` or ``.pth`` files may
print.  Whatever goes wrong (no such interpreter, a hang, a crash, no report) is one
:class:`QueryFailed`: a one-line :class:`UserError` naming the interpreter and the
cause, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from layervenv.infra.errors import UserError

#: where the query scripts are: this package (the boot code's own, for the worker's)
SCRIPTS = "layervenv.interp"


class QueryFailed(UserError):
    """An interpreter gave no answer to a query; ``str()`` is the one line to show.

    ``status`` is the exit status (negative: the signal), None when the interpreter
    could not be started or did not finish; ``last_line`` is the last line it wrote
    to stderr (or stdout), which is usually the reason.  Callers that know more about
    what was asked (``create``'s "not a usable Python") word it from these.
    """

    def __init__(self, python: str | Path, message: str, status: int | None = None,
                 last_line: str = "", timed_out: bool = False) -> None:
        super().__init__(message)
        self.python = str(python)
        self.status = status
        self.last_line = last_line
        self.timed_out = timed_out


def ended(status: int) -> str:
    """How an interpreter ended, as messages say it: ``exit 1``, ``signal 9``."""
    return f"signal {-status}" if status < 0 else f"exit {status}"


def script_source(name: str, package: str = SCRIPTS) -> str:
    """The source of the query script ``name`` (``probe.py``), as shipped."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def last_line(output: bytes) -> str:
    """The last line of an interpreter's output, whatever its encoding."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else "(no output)"


def run_query(python: str | Path, script: str, args: Sequence[str] = (),
              env: dict[str, str] | None = None, timeout: float = 120, *,
              flags: Sequence[str] = (), cwd: str | Path | None = None,
              stdin: str | None = None, package: str = SCRIPTS) -> Any:
    """Run the script ``script`` in ``python`` with ``args``; the JSON value it reported.

    ``flags`` go before ``-c`` (``-I -S``: an answer that neither PYTHONPATH nor
    site-packages can change); ``stdin`` is text given on standard input.  A failure
    raises :class:`QueryFailed`.
    """
    source = script_source(script, package)
    with tempfile.TemporaryDirectory(prefix="layervenv-query-") as tmp:
        report = os.path.join(tmp, "report.json")
        argv = [str(python), *flags, "-c", source, report, *args]
        try:
            result = subprocess.run(argv, env=env, cwd=None if cwd is None else str(cwd),
                                    input=None if stdin is None else stdin.encode("utf-8"),
                                    stdin=subprocess.DEVNULL if stdin is None else None,
                                    capture_output=True, timeout=timeout, check=False)
        except OSError as error:
            raise QueryFailed(python, f"cannot run {python}: {error.strerror}") from None
        except subprocess.TimeoutExpired:
            raise QueryFailed(python, f"{python} did not answer within {timeout:g} s",
                              timed_out=True) from None
        try:
            with open(report, "rb") as handle:
                return json.loads(handle.read())
        except (OSError, ValueError):
            status = result.returncode
            last = last_line(result.stderr if result.stderr.strip() else result.stdout)
            if status != 0:
                raise QueryFailed(python, f"{python} failed to start ({ended(status)}): {last}",
                                  status, last) from None
            raise QueryFailed(python, f"{python} gave no readable report: {last}",
                              status, last) from None
