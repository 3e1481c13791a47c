"""The probe reads metadata as ``importlib.metadata`` does: a differential test over every
distribution this machine has.

For each directory (every interpreter's own site-packages, Debian's dist-packages, the
real-wheel stack), the probe's ``scan`` runs in that directory's interpreter and
``importlib.metadata.distributions(path=[DIR])`` in the same interpreter (for one older
than 3.10, in the tool's: the one whose requires.txt conversion the tool follows) is the
reference; name, version and every Requires-Dist must be equal, string for string.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import SRC, pythons
from hypothesis import given, settings
from hypothesis import strategies as st

from layervenv.inspection.effective_view import _requires_from_txt

PROBE = SRC / "layervenv" / "interp" / "probe.py"

#: Runs the probe's scan of argv[2] from the probe file argv[1]; prints its distributions.
_PROBE_SIDE = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("lv_probe", sys.argv[1])
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)
print(json.dumps(probe.scan(sys.argv[2])[0]))
"""
#: The reference: what importlib.metadata gives for every distribution in argv[1].
_REFERENCE = r"""
import importlib.metadata as md, json, sys
out = []
for dist in md.distributions(path=[sys.argv[1]]):
    where = str(dist._path)  # the metadata directory (or egg-info file)
    try:
        meta = dist.metadata
        out.append({"metadata": where, "name": meta.get("Name"),
                    "version": meta.get("Version"), "requires": dist.requires})
    except Exception as error:  # e.g. not UTF-8: importlib.metadata itself cannot read it
        out.append({"metadata": where, "error": repr(error)})
print(json.dumps(out))
"""


def _version_of(python: str) -> tuple[int, int]:
    out = subprocess.run([python, "-c", "import sys; print(sys.version_info[0]); "
                          "print(sys.version_info[1])"], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), int(out[1])


def _own_site_dirs(python: str) -> list[str]:
    out = subprocess.run([python, "-c", "import sysconfig; p = sysconfig.get_paths(); "
                          "print(p['purelib']); print(p['platlib'])"],
                         capture_output=True, text=True, check=True).stdout.split()
    return [d for d in dict.fromkeys(out) if os.path.isdir(d)]


def machine_directories() -> list[tuple[str, str]]:
    """(directory, its interpreter): every interpreter's own site-packages (pyenv's,
    uv's, PATH's: tests/helpers.py finds them) that holds metadata (Debian's python3.11
    has an empty /usr/local one), and Debian's dist-packages."""
    found = []
    for python in (str(found.path) for found in pythons()):
        found += [(d, python) for d in _own_site_dirs(python)
                  if any(Path(d).glob("*.dist-info")) or any(Path(d).glob("*.egg-info"))]
    if os.path.isdir("/usr/lib/python3/dist-packages") and os.path.exists("/usr/bin/python3"):
        found.append(("/usr/lib/python3/dist-packages", "/usr/bin/python3"))
    return found


@dataclass
class Comparison:
    distributions: int = 0
    requires: int = 0
    unreadable: list[str] = field(default_factory=list)  # importlib.metadata fails too
    mismatches: list[str] = field(default_factory=list)


def _run_json(python: str, *args: str) -> list[dict]:
    result = subprocess.run([python, "-c", *args], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def compare(directory: str, python: str, probe: Path = PROBE,
            convert: Callable[[str], list[str]] = _requires_from_txt) -> Comparison:
    """The probe (``probe``, requires.txt converted by ``convert``) against
    importlib.metadata, for every distribution in ``directory``."""
    version = _version_of(python)
    probe_python = python if version >= (3, 6) else sys.executable
    reference_python = python if version >= (3, 10) else sys.executable
    ours = {d["metadata"]: d for d in _run_json(probe_python, _PROBE_SIDE, str(probe),
                                                directory)}
    result = Comparison()
    for ref in _run_json(reference_python, _REFERENCE, directory):
        where = ref["metadata"]
        if "error" in ref:
            result.unreadable.append(f"{where}: {ref['error']}")
            continue
        result.distributions += 1
        mine = ours.get(where)
        if mine is None:
            result.mismatches.append(f"{where}: not found by the probe")
            continue
        wanted = [r for r in ref["requires"] or [] if not r.startswith("#")]  # as pip
        requires = mine["requires"] or (convert(mine["requires_txt"])
                                        if mine.get("requires_txt") else [])
        result.requires += len(wanted)
        got = {"name": mine["name"], "version": mine["version"], "requires": requires}
        for key, value in (("name", ref["name"]), ("version", ref["version"]),
                           ("requires", wanted)):
            if value is None:
                continue  # no such header: the probe falls back to the directory's name
            if got[key] != value:
                result.mismatches.append(f"{where}: {key} {got[key]!r} != {value!r}")
    return result


DIRECTORIES = machine_directories()


@pytest.mark.parametrize(("directory", "python"), DIRECTORIES,
                         ids=[f"{Path(p).parent.parent.name}:{Path(d).name}"
                              for d, p in DIRECTORIES])
def test_probe_reads_what_importlib_metadata_reads(directory, python):
    result = compare(directory, python)
    assert result.distributions > 0
    assert not result.mismatches, "\n".join(result.mismatches)


@pytest.mark.network
def test_probe_reads_the_real_stack_as_importlib_metadata(real_stack):
    result = compare(str(real_stack.site_packages), str(real_stack.python))
    assert result.distributions == len(real_stack.versions)
    assert not result.mismatches and not result.unreadable, result
    # what made the old reader lose them: a header folded over a whitespace-only line
    # (scipy's, pandas' License) with Requires-Dist after it
    folded = []
    for metadata in real_stack.site_packages.glob("*.dist-info/METADATA"):
        lines = metadata.read_text(encoding="utf-8").split("\n")
        last = max((i for i, line in enumerate(lines) if line.startswith("Requires-Dist:")),
                   default=-1)
        if any(line.strip() == "" and line for line in lines[:last]):
            folded.append(metadata.parent.name)
    assert folded and result.requires > 0, folded


# --- the header rules, on made-up files -------------------------------------------------

_HEADER_TEXT = st.text(st.sampled_from(["a", "Z", "1", "-", " ", "\t", ":", "é", "\f",
                                        "\u2028", "\r", "(", ">", "="]), max_size=12)
_LINES = st.lists(st.one_of(
    st.tuples(st.sampled_from(["Name", "Version", "Requires-Dist", "requires-dist",
                               "License", "From", "", " Name", "Name "]), _HEADER_TEXT)
    .map(lambda kv: f"{kv[0]}:{kv[1]}"),
    _HEADER_TEXT,  # a continuation, a blank line, a line of text
    st.just("From someone"),
), max_size=10)


@settings(max_examples=300, deadline=None)
@given(lines=_LINES, newline=st.sampled_from(["\n", "\r\n", "\r"]),
       body=st.sampled_from(["", "\nBody: not a header\n", "\n\nRequires-Dist: body\n"]))
def test_header_rules_are_email_parsers(tmp_path_factory, lines, newline, body):
    """Any header block (folded lines, blank-looking lines, odd newlines and characters):
    the probe's fields are those email.parser gives importlib.metadata (run in-process:
    the tool's Python is the reference here)."""
    import email

    sys.path.insert(0, str(PROBE.parent))
    try:
        import probe
    finally:
        sys.path.remove(str(PROBE.parent))
    data = (newline.join(lines) + body).encode("utf-8")
    directory = tmp_path_factory.mktemp("meta")
    (directory / "METADATA").write_bytes(data)
    files = probe._Files.on_disk(str(directory))
    name, version, requires = probe._headers(files.metadata() or "")
    # what importlib.metadata does: read_text (UTF-8, universal newlines), then email
    message = email.message_from_string((directory / "METADATA").read_text(encoding="utf-8"))
    assert (name, version, requires) == (message.get("Name"), message.get("Version"),
                                         message.get_all("Requires-Dist") or [])
