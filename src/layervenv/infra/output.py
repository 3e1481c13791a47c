"""Results are dataclasses; this renders them for humans or as JSON."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any


def emit(result: Any, fmt: str) -> None:
    """Print ``result``: its ``human()`` text, or its fields as JSON."""
    if fmt == "json":
        data = result.to_json() if hasattr(result, "to_json") else dataclasses.asdict(result)
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif not VERBOSITY.quiet:  # -q: the exit status says it; errors still go to stderr
        text = result.human()
        if text:
            print(text)


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 distribution``, ``2 distributions``, ``0 copies`` (``plural`` when not noun+s)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


@dataclasses.dataclass
class Verbosity:
    """``-q``/``-v`` of the command running (set once by the command line)."""

    quiet: bool = False
    verbose: bool = False


VERBOSITY = Verbosity()


def progress(message: str) -> None:
    """``layervenv: MESSAGE...`` on standard error before a step that takes seconds (a pip
    run): where a person watches (a terminal) or asked for it (``-v``), never with ``-q``.
    Standard output stays the result's alone."""
    if VERBOSITY.quiet or not (VERBOSITY.verbose or sys.stderr.isatty()):
        return
    print(f"layervenv: {message}...", file=sys.stderr, flush=True)
