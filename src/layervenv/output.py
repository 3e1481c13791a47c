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
    else:
        text = result.human()
        if text:
            print(text)
