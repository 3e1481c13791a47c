"""``check`` reports useless PYTHONPATH entries (kind ``path``) with their true cost.

A real layer over the simulated stack, a real ``check --format json``; the cost each
problem states is checked against ``strace`` counting the metadata calls on that entry
of a real ``python -c 'import ...'`` of the layer (the independent reference).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from helpers import run_tool, strace_path

#: the metadata system calls (those of issue 23's table)
TRACED = "trace=stat,newfstatat,statx,lstat,openat,getdents64,readlink,access"


def make_entries(root: Path) -> dict[str, str]:
    """Entries of each kind: gone, empty, metadata only, read-only empty, a real package."""
    (root / "empty").mkdir(parents=True)
    (root / "meta" / "foo-1.0.dist-info").mkdir(parents=True)
    (root / "meta" / "foo.pth").write_text("/nowhere\n", encoding="utf-8")
    (root / "readonly").mkdir()
    (root / "readonly").chmod(0o555)
    (root / "good" / "goodpkg").mkdir(parents=True)
    (root / "good" / "goodpkg" / "__init__.py").write_text("", encoding="utf-8")
    return {"gone": str(root / "gone"), "empty": str(root / "empty"),
            "meta": str(root / "meta"), "readonly": str(root / "readonly"),
            "good": str(root / "good")}


def path_problems(layer: Path, env: dict[str, str]) -> tuple[list[dict], list[dict]]:
    result = run_tool("check", str(layer), "--format", "json", env=env, check=False)
    problems = json.loads(result.stdout)["problems"]
    return [p for p in problems if p["kind"] == "path"], problems


def test_each_useless_entry_reported_once_with_its_kind(make_layer, stack_env, tmp_path):
    handle = make_layer("layer", "--without-pip")
    entries = make_entries(tmp_path / "entries")
    env = dict(stack_env)
    # '' (a leading ':') is the current directory; empty spelt twice (site's abspath)
    env["PYTHONPATH"] = os.pathsep.join(
        ["", entries["gone"], entries["empty"], entries["meta"], entries["good"],
         entries["empty"].replace("/empty", "/./empty"), stack_env["PYTHONPATH"]])
    found, every = path_problems(handle.root, env)
    messages = [p["message"] for p in found]
    assert all(p["severity"] == "warning" for p in found)

    def about(entry: str, words: str) -> list[str]:
        return [m for m in messages
                if words in m and (f"has {entry}," in m or f"has {entry} " in m)]

    assert len(about(entries["gone"], "does not exist")) == 1, messages
    assert len(about(entries["empty"], "nothing importable")) == 1, messages
    assert len(about(entries["meta"], "nothing importable")) == 1, messages
    assert len(about(entries["empty"], "2 times")) == 1, messages
    assert not [m for m in messages if entries["good"] in m], messages
    assert len(found) == 4, messages
    # the current directory: the one cwd-on-path error, not a path warning as well
    assert [p["kind"] for p in every if "current directory" in p["message"]] == ["cwd-on-path"]


def test_a_clean_stack_has_no_path_problem(make_layer, stack_env):
    handle = make_layer("layer", "--without-pip")
    found, _ = path_problems(handle.root, stack_env)
    assert found == []


def test_a_recorded_directory_that_is_gone_is_stack_missing_only(make_layer, stack_env,
                                                                 tmp_path):
    gone = tmp_path / "was-there"
    gone.mkdir()
    (gone / "m.py").write_text("", encoding="utf-8")
    env = dict(stack_env, PYTHONPATH=f"{gone}{os.pathsep}{stack_env['PYTHONPATH']}")
    handle = make_layer("layer", "--without-pip", env=env)
    (gone / "m.py").unlink()
    gone.rmdir()
    found, every = path_problems(handle.root, env)
    assert found == []
    assert [p["kind"] for p in every if str(gone) in p["message"]] == ["stack-missing"]


def traced(entry: str, python: Path, env: dict[str, str], imports: int, tmp: Path) -> int:
    """Metadata calls on ``entry`` (or under it) of a run importing ``imports`` absent names."""
    out = tmp / "trace.txt"
    code = "\n".join(f"try:\n    import nosuchmodule_xyz{i}\nexcept ImportError:\n    pass"
                     for i in range(imports)) or "pass"
    subprocess.run([strace_path(), "-f", "-qq", "-o", str(out), "-e", TRACED, str(python),
                    "-c", code], env=env, check=True, capture_output=True)
    quoted = re.escape(json.dumps(entry))[:-1]  # the path, quoted as strace quotes it
    return len(re.findall(quoted + r'["/]', out.read_text(encoding="utf-8")))


def test_the_cost_stated_is_what_strace_counts(make_layer, stack_env, tmp_path):
    handle = make_layer("layer", "--without-pip")
    entries = make_entries(tmp_path / "entries")
    python = handle.root / "bin" / "python"
    for name, index in (("gone", "1"), ("empty", "1"), ("readonly", "1"), ("readonly", "0")):
        entry = entries[name]
        env = dict(stack_env, LAYERVENV_IMPORT_INDEX=index,
                   PYTHONPATH=f"{entry}{os.pathsep}{stack_env['PYTHONPATH']}")
        found, _ = path_problems(handle.root, env)
        [message] = [p["message"] for p in found if entry in p["message"]]
        traced(entry, python, env, 0, tmp_path)  # the index file written, bytecode made
        start = traced(entry, python, env, 0, tmp_path)
        per_import = (traced(entry, python, env, 20, tmp_path) - start) / 20
        print(name, index, start, per_import, message)
        if name == "gone":
            assert "2 metadata operations at each Python start (none per import" in message
            assert (start, per_import) == (2, 0)
        elif name == "readonly" and index == "1":
            assert "no metadata operation per import" in message
            assert per_import == 0
        else:
            assert "1 metadata operation for every import" in message
            assert per_import == 1
    # a second copy costs a start-up lookup only: site drops it
    entry = entries["empty"]
    env = dict(stack_env, LAYERVENV_IMPORT_INDEX="0",
               PYTHONPATH=os.pathsep.join([entry, entry, stack_env["PYTHONPATH"]]))
    once = dict(env, PYTHONPATH=os.pathsep.join([entry, stack_env["PYTHONPATH"]]))
    found, _ = path_problems(handle.root, env)
    [message] = [p["message"] for p in found if "2 times" in p["message"]]
    extra = [traced(entry, python, e, n, tmp_path) for e in (env, once) for n in (0, 20)]
    start_extra, import_extra = extra[0] - extra[2], (extra[1] - extra[0]) - (extra[3] - extra[2])
    assert "none per import" in message and import_extra == 0
    assert re.search(rf"\b{start_extra} metadata operation", message), (start_extra, message)
