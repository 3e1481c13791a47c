"""The benchmark suite runs end to end (small sizes, one repetition), so it cannot rot.

Benchmarks are not tests: no number is checked here, only that every row is in the
table and in the JSON, measured or with a note saying why not.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"

#: Every row of the table; a new benchmark adds its key here.
ROWS = (
    "create.layervenv", "create.layervenv.cold", "create.venv", "create.virtualenv",
    "create.uv", "activate.venv", "activate.layer.small", "activate.layer.big",
    "activate.find.small", "activate.find.big",
    "activate.zsh.venv", "activate.zsh.small", "activate.zsh.big",
    "activate.dash.venv", "activate.dash.small", "activate.dash.big",
    "activate.ksh.venv", "activate.ksh.small", "activate.ksh.big",
    "activate.fish.venv", "activate.fish.small", "activate.tcsh.venv", "activate.tcsh.small",
    "hook.bash",
    "startup.venv", "startup.layer", "startup.disabled", "startup.venv.nobc",
    "startup.layer.nobc", "startup.hook",
    "inspect.pip", "inspect.list", "inspect.check",
    "install.pip", "install.uv", "install.uv.alone",
    "import.venv", "import.layer", "import.venv.inproc", "import.layer.inproc",
    *(f"pythonpath.{what}{kind}.{entries}" for entries in (2, 300)
      for what in ("", "import.") for kind in ("venv", "layer")),
)
#: Rows that need nothing beyond this checkout, Python's venv and bash.
ALWAYS_MEASURED = (
    "create.layervenv", "create.layervenv.cold", "create.venv", "activate.venv",
    "activate.layer.small", "activate.layer.big", "activate.find.small", "activate.find.big",
    "hook.bash", "startup.venv",
    "startup.layer", "startup.disabled", "startup.hook", "inspect.pip", "import.venv",
    "import.layer", "import.venv.inproc", "import.layer.inproc",
    *(key for key in ROWS if key.startswith("pythonpath.")),
)


def test_quick_run_has_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--repeat", "1", "--json", str(out),
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    rows = {row["key"]: row for row in data["rows"]}
    assert tuple(rows) == ROWS
    for key, row in rows.items():
        assert row["label"] in result.stdout, key  # one table, every row in it
        assert row["n"] > 0 or row["note"], f"{key} has neither a figure nor a note"
        assert row["n"] == len(row["samples_ms"])
        if row["n"]:
            assert row["min_ms"] <= row["median_ms"] <= row["max_ms"]
    for key in ALWAYS_MEASURED:
        assert rows[key]["n"] > 0, f"{key}: {rows[key]['note']}"
    assert rows["create.venv"]["ratio"] is not None
    assert {"cpu", "cores", "python", "date"} <= set(data["machine"])
    assert [t["name"] for t in data["targets"]]
    counted = data["instructions"]
    if shutil.which("valgrind"):  # start-up instructions, counted, and in the table
        spack = {f"pythonpath.{kind}.{entries}" for kind in ("venv", "layer", "disabled")
                 for entries in (2, 300)} | {"pythonpath.venv.300.c", "pythonpath.layer.300.c"}
        assert set(counted["values"]) == {"startup.venv", "startup.layer",
                                          "startup.disabled"} | spack
        assert all(value > 1_000_000 for value in counted["values"].values())
        assert "start-up, instructions (valgrind callgrind)" in result.stdout
    else:
        assert counted["note"] == "valgrind is not installed"
    assert list(tmp_path.glob("layervenv-bench-*")) == []  # the work directory is removed


SYSCALLS = RUN.parent / "import_syscalls.py"


def test_import_syscalls_quick_run_has_every_figure(tmp_path: Path) -> None:
    """``import_syscalls.py`` (issue 23's table and plot) on a one-entry stack: every
    variant has each metric it was asked for, in the table and in the JSON, and the JSON
    alone redraws the same table (``--from-json``, what ``--plot`` runs from)."""
    out = tmp_path / "figures.json"
    metrics = ["wall"] + [m for m, tool in (("ops", "strace"), ("instructions", "valgrind"))
                          if shutil.which(tool)]
    result = subprocess.run(
        [sys.executable, str(SYSCALLS), "--entries", "1", "--measure", ",".join(metrics),
         "--repeat", "1", "--python", sys.executable, "--json", str(out),
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(data["metrics"]) == sorted(metrics)
    assert [case["code"] for case in data["cases"]] == ["import pkg0"]
    values = data["cases"][0]["values"]
    assert set(values) == {"plain venv", "layer, index off", "layer"}
    for variant in values.values():
        assert set(variant) == set(metrics)
        assert all(value > 0 for value in variant.values())
    assert "| spack | `import pkg0` | 1 |" in result.stdout
    again = subprocess.run([sys.executable, str(SYSCALLS), "--from-json", str(out)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout[result.stdout.index("Spack-like"):]
    assert list(tmp_path.glob("layervenv-syscalls-*")) == []  # the work directory is removed
