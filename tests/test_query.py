"""interp.query.run_query: every failure of an interpreter is one QueryFailed line that
names it and the cause; an answer is the JSON the script wrote to its report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from layervenv.interp.query import QueryFailed, run_query, script_source


def _fake(tmp_path: Path, body: str) -> Path:
    python = tmp_path / "python3"
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    return python


def test_the_answer_is_the_report():
    facts = run_query(sys.executable, "stack_path.py", flags=("-s",))
    assert facts["version"] == ".".join(str(n) for n in sys.version_info[:3])
    assert "" not in facts["path"][:1]


@pytest.mark.parametrize(("body", "status", "words"), [
    ("echo 'Fatal: no stdlib' >&2; exit 3", 3, "failed to start (exit 3): Fatal: no stdlib"),
    ("kill -9 $$", -9, "failed to start (signal 9)"),
    ("echo hello; exit 0", 0, "gave no readable report: hello"),
])
def test_a_failure_is_one_line_naming_the_interpreter(tmp_path, body, status, words):
    python = _fake(tmp_path, body)
    with pytest.raises(QueryFailed) as caught:
        run_query(python, "stack_path.py")
    message = str(caught.value)
    assert str(python) in message and words in message and "\n" not in message
    assert caught.value.status == status and not caught.value.timed_out


def test_no_interpreter_and_no_answer_in_time(tmp_path):
    with pytest.raises(QueryFailed, match=r"cannot run .*missing") as caught:
        run_query(tmp_path / "missing", "stack_path.py")
    assert caught.value.status is None
    with pytest.raises(QueryFailed, match=r"did not answer within 0\.5 s") as caught:
        run_query(_fake(tmp_path, "exec sleep 5"), "stack_path.py", timeout=0.5)
    assert caught.value.timed_out


def test_the_pip_wheels_are_found_in_one_place():
    found = [name for name in ("interpreter_facts.py", "stack_path.py", "probe.py",
                               "importer.py", "find_ipykernel.py")
             if "ensurepip" in script_source(name)]
    assert found == ["interpreter_facts.py"]
