"""A wheel's ``RECORD``: the one reader, the one writer and the one hash of the tool.

``RECORD`` is CSV (PEP 376, the wheel spec): a path holding a comma, a quote or a line
break is quoted, so it is read with :mod:`csv` as pip and ``installer`` read it, never
split on commas.  It is written as ``installer`` writes it (``test_cache.py`` compares
a layer made from the cache with one ``installer`` made, byte for byte).

The probe (``interp/probe.py``) runs alone in the stack's Python and keeps its own
stdlib reader; ``tests/test_record.py`` proves the two read hostile RECORDs alike.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple


class RecordRow(NamedTuple):
    """One line of a RECORD: a path relative to the directory holding the dist-info
    (``../../bin/x`` for a script), its hash (``sha256=...``) and size, both may be empty."""

    path: str
    hash: str
    size: str


def record_hash(data: bytes) -> str:
    """A RECORD hash as installer writes it: ``sha256=`` and the unpadded urlsafe base64
    (every RECORD the tool writes or rewrites uses this one)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def record_row(path: str, data: bytes) -> RecordRow:
    """The row of a file written at ``path`` with contents ``data``."""
    return RecordRow(path, record_hash(data), str(len(data)))


def parse_record(text: str) -> list[RecordRow]:
    """The rows of a RECORD's text, as ``csv`` reads them (blank lines and rows without a
    path skipped, missing fields empty); raises ValueError for text that is not CSV."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise ValueError(f"not a RECORD: {error}") from None
    return [RecordRow(*[*row, "", ""][:3]) for row in rows if row and row[0]]


def read_record(dist_info: Path) -> list[RecordRow]:
    """The rows of ``dist_info/RECORD``; raises OSError when it cannot be read and
    ValueError when it is not CSV (bytes that are not UTF-8 are read as U+FFFD: such a
    name matches no file, rather than hiding the whole distribution)."""
    return parse_record((dist_info / "RECORD").read_text(encoding="utf-8", errors="replace"))


def installed_paths(dist_info: Path) -> list[Path]:
    """The normalised paths of the files ``dist_info``'s RECORD lists (they are relative to
    the directory holding it); raises like :func:`read_record`."""
    base = dist_info.parent
    return [Path(os.path.normpath(base / row.path)) for row in read_record(dist_info)]


def format_record(rows: Iterable[tuple[str, str, str]]) -> str:
    """A RECORD's text for ``rows``, in their order, as installer writes it."""
    stream = io.StringIO(newline="")
    writer = csv.writer(stream, delimiter=",", quotechar='"', lineterminator="\n")
    writer.writerows(rows)
    return stream.getvalue()


def wheel_record(files: dict[str, bytes], record_path: str) -> bytes:
    """The RECORD of a wheel (or dist-info) made of ``files`` (path -> contents, in their
    order), ending with its own unhashed row at ``record_path``."""
    rows = [record_row(path, data) for path, data in files.items()]
    return format_record([*rows, RecordRow(record_path, "", "")]).encode("utf-8")


def write_record(dist_info: Path, rows: Iterable[tuple[str, str, str]]) -> None:
    """Replace ``dist_info/RECORD`` with ``rows``."""
    (dist_info / "RECORD").write_text(format_record(rows), encoding="utf-8")
