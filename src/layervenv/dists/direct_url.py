"""PEP 610's ``direct_url.json``: where a distribution was installed from, and whether it
is an editable install (``pip install -e``: ``dir_info.editable``).

The tool's one reading of it (``pack`` snapshots editables, ``rebase`` reinstalls them,
``lock`` records them); the probe, which runs alone in the stack's Python, keeps a
stdlib copy of :func:`is_editable` that ``tests/test_record.py`` holds to this one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


def parse_direct_url(text: str | None) -> dict[str, Any] | None:
    """The object of a ``direct_url.json``'s text; None when there is none, or it is not
    a JSON object (a damaged file is no direct URL, as pip treats it)."""
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def read_direct_url(dist_info: Path) -> dict[str, Any] | None:
    """The ``direct_url.json`` of the metadata directory ``dist_info`` (see
    :func:`parse_direct_url`)."""
    try:
        text = (dist_info / "direct_url.json").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return parse_direct_url(text)


def is_editable(info: dict[str, Any] | None) -> bool:
    """Whether a ``direct_url.json`` object says the install is editable (PEP 610:
    ``dir_info`` with a true ``editable``)."""
    if not info:
        return False
    dir_info = info.get("dir_info")
    return isinstance(dir_info, dict) and bool(dir_info.get("editable"))


def url_to_path(url: str) -> str | None:
    """The local path of a ``file:`` URL, else None."""
    parts = urlsplit(url)
    return unquote(parts.path) if parts.scheme == "file" else None


def editable_project(info: dict[str, Any] | None) -> str | None:
    """The project directory of an editable install (its ``file:`` URL's path; ``""`` when
    the URL is not a local one), None when the install is not editable."""
    if not is_editable(info):
        return None
    return url_to_path(str(info.get("url", ""))) or ""  # type: ignore[union-attr]
