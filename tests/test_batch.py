"""Layers on a real Slurm cluster and on Dask: the "Batch and Dask" recipes of docs/batch.md, run.

One single-node Slurm cluster for the module (tests/slurm.py).  Jobs are submitted
with ``sbatch --wait --export=NONE``: they start from root's login environment, with
neither the stack nor the layer set up.  All jobs are submitted at once (``sbatch
--wait`` polls at 2, 10, 42 s: waiting in parallel keeps the module near a minute).

Which process needs which package for Dask: the *driver* (client and scheduler) and
the *workers* both run the layer's Python, so dask, distributed and dask-jobqueue are
installed into the layer only (from wheels dev/test caches) and the test's own Python
needs none of them.  LocalCluster's worker processes are started with the driver's
``sys.executable``, the layer's; SLURMCluster's worker jobs run
``DIR/bin/layervenv-run python -m distributed.cli.dask_worker`` on the packed layer.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import clean_env, missing, tool_command
from packlayer import PROJECT_MARK, PROJECT_VERSION, REPORT, make_batch_layer, pack_layer, unpack
from slurm import SlurmCluster, missing_binaries, start_cluster

from layervenv.services.simstack import SimStack, tree_digest

ARRAY_TASKS = 4
DASK_PACKAGES = ("dask", "distributed", "dask-jobqueue")


def dask_wheels() -> Path:
    """dask, distributed, dask-jobqueue and their dependencies, fetched once by dev/test."""
    value = os.environ.get("LAYERVENV_DASK_WHEELS")
    path = Path(value) if value else Path(__file__).resolve().parent.parent / ".cache" / \
        "dask-wheels"
    if not (path / ".complete").exists():
        missing(f"dask wheels missing in {path}", "dev/test downloads them")
    return path


@pytest.fixture(scope="session")
def slurm_cluster():
    absent = missing_binaries()
    if absent:
        missing(f"Slurm is not installed ({', '.join(absent)})",
                "dev/test installs it: apt-get install slurm-wlm munge")
    cluster = start_cluster()
    yield cluster
    cluster.stop()


class Batch:
    """The packed layer with Dask, where a shared file system would hold it."""

    def __init__(self, where: Path, stack: SimStack):
        home = where / "home"
        home.mkdir()
        self.base_env = clean_env(home)
        env = stack.env(self.base_env)
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(stack.wheelhouse))
        self.layer = make_batch_layer(where / "user", stack, env)
        subprocess.run([str(self.layer / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--find-links", str(dask_wheels()), *DASK_PACKAGES],
                       env=env, check=True, capture_output=True)
        self.archive = where / "shared" / "ana.tar.gz"
        self.archive.parent.mkdir()
        self.pack = pack_layer(self.layer, self.archive, env)
        self.jobs = where / "jobs dir"  # a space: the job's own directories have one too
        self.jobs.mkdir()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, _built_stack) -> Batch:
    return Batch(tmp_path_factory.mktemp("batch"), _built_stack)


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\nset -e\n" + textwrap.dedent(body))
    return path


@pytest.fixture(scope="module")
def jobs(batch: Batch, slurm_cluster: SlurmCluster, _built_stack: SimStack):
    """Submit every job at once; their outputs, exit statuses, and the stack's hash."""
    report = shlex.quote(REPORT)
    run = " ".join(shlex.quote(a) for a in tool_command("run", str(batch.layer), "--",
                                                        "python", "-c"))
    shared = unpack(batch.archive, batch.jobs / "shared unpacked")  # first run: in the array
    archive = shlex.quote(str(batch.archive))
    jobs_dir = shlex.quote(str(batch.jobs))
    scripts = {
        "run": _script(batch.jobs / "run.sh", f"exec {run} {report}\n"),
        "pack": _script(batch.jobs / "pack.sh", f"""\
            dest=$(mktemp -d {jobs_dir}/"job $SLURM_JOB_ID.XXXXXX")
            tar -xzf {archive} -C "$dest"
            exec "$dest/ana/bin/layervenv-run" python -c {report}
            """),
        "array": _script(batch.jobs / "array.sh", f"""\
            dest=$(mktemp -d {jobs_dir}/"task $SLURM_ARRAY_TASK_ID.XXXXXX")
            tar -xzf {archive} -C "$dest"
            "$dest/ana/bin/layervenv-run" python -c {report}
            exec {shlex.quote(str(shared / "bin" / "layervenv-run"))} python -c {report}
            """),
    }
    options = {"run": [], "pack": [], "array": [f"--array=0-{ARRAY_TASKS - 1}"]}
    before = tree_digest(_built_stack.root)

    def submit(name: str):
        out = "%x-%a.out" if name == "array" else "%x.out"
        return slurm_cluster.sbatch(scripts[name], "--export=NONE", f"--job-name={name}",
                                    f"--output={batch.jobs}/{out}", *options[name],
                                    env=batch.base_env)

    with ThreadPoolExecutor(len(scripts)) as pool:
        results = dict(zip(scripts, pool.map(submit, scripts)))
    outputs = {path.stem: path.read_text() for path in batch.jobs.glob("*.out")}
    return {"results": results, "outputs": outputs, "stack_same": before ==
            tree_digest(_built_stack.root), "shared": shared}


def _reports(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _check_report(seen: dict, stack: SimStack, layer_prefix: str) -> None:
    assert seen["hepnum"] == seen["hepnum_module"] == "1.24.2"  # the layer's upgrade wins
    assert seen["hepnum_file"].startswith(layer_prefix)
    assert seen["hepfit_file"].startswith(str(stack.site_packages))  # a stack package imports
    assert (seen["hepconf"], seen["hepconf_mark"]) == (PROJECT_VERSION, PROJECT_MARK)


def test_layervenv_run_on_the_shared_layer(jobs, batch, _built_stack):
    assert jobs["results"]["run"].returncode == 0, jobs["outputs"]
    [seen] = _reports(jobs["outputs"]["run"])
    _check_report(seen, _built_stack, str(batch.layer))
    assert seen["hepconf_file"].startswith(str(batch.layer.parent / "project"))  # editable
    assert jobs["stack_same"]


def test_pack_unpacked_in_the_jobs_own_directory(jobs, batch, _built_stack):
    assert jobs["results"]["pack"].returncode == 0, jobs["outputs"]
    [seen] = _reports(jobs["outputs"]["pack"])
    assert seen["prefix"].startswith(f"{batch.jobs}/job ")
    _check_report(seen, _built_stack, seen["prefix"])
    assert seen["hepconf_file"].startswith(seen["prefix"])  # the snapshot, installed
    assert jobs["stack_same"]


def test_job_array_shares_one_archive(jobs, batch, _built_stack):
    assert jobs["results"]["array"].returncode == 0, jobs["outputs"]
    outputs = [text for name, text in jobs["outputs"].items() if name.startswith("array-")]
    assert len(outputs) == ARRAY_TASKS
    for text in outputs:
        own, shared = _reports(text)
        _check_report(own, _built_stack, own["prefix"])
        _check_report(shared, _built_stack, str(jobs["shared"]))
        assert own["prefix"] != shared["prefix"] == str(jobs["shared"])
    assert jobs["stack_same"]


PROBE = """
def probe():
    import os, sys, hepnum
    return {"hepnum": hepnum.__version__, "executable": sys.executable,
            "prefix": sys.prefix, "pid": os.getpid(), "job": os.environ.get("SLURM_JOB_ID")}
"""

LOCAL_DRIVER = PROBE + """
if __name__ == "__main__":
    import json, os
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        result = client.submit(probe, pure=False).result(timeout=60)
    print(json.dumps(dict(result, driver=os.getpid())))
"""

SLURM_DRIVER = PROBE + """
if __name__ == "__main__":
    import json, os, sys
    from dask_jobqueue import SLURMCluster
    from distributed import Client
    cluster = SLURMCluster(cores=1, processes=1, memory="1GB", walltime="00:05:00",
                           interface="lo", python=sys.argv[1], log_directory=sys.argv[2],
                           job_extra_directives=["--export=NONE"],
                           scheduler_options={"dashboard_address": None})
    with cluster, Client(cluster) as client:
        cluster.scale(1)
        client.wait_for_workers(1, timeout=90)
        result = client.submit(probe, pure=False).result(timeout=60)
    print(json.dumps(dict(result, driver=os.getpid())))
"""


def _driver(batch: Batch, name: str, code: str, *args: str, env: dict[str, str]
            ) -> dict:
    """Run a driver with the packed layer's Python, from an almost empty environment."""
    unpacked = batch.jobs / "dask"
    if not unpacked.exists():
        unpack(batch.archive, unpacked)
    script = batch.jobs / f"{name}.py"
    script.write_text(code)
    result = subprocess.run([str(unpacked / "ana" / "bin" / "layervenv-run"), "python",
                             str(script), *args], env=env, capture_output=True, text=True,
                            cwd=batch.jobs, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dask_local_cluster_workers_run_the_layer(batch, _built_stack):
    env = {"HOME": batch.base_env["HOME"], "PATH": "/usr/bin:/bin"}
    seen = _driver(batch, "local_driver", LOCAL_DRIVER, env=env)
    unpacked = batch.jobs / "dask" / "ana"
    assert seen["pid"] != seen["driver"]  # a worker process, not the driver
    assert seen["prefix"] == str(unpacked) and seen["hepnum"] == "1.24.2"


def test_dask_jobqueue_slurm_cluster(batch, slurm_cluster, _built_stack):
    unpacked = batch.jobs / "dask" / "ana"
    if not unpacked.exists():
        unpack(batch.archive, batch.jobs / "dask")
    python = f"{shlex.quote(str(unpacked / 'bin' / 'layervenv-run'))} python"
    env = {"HOME": batch.base_env["HOME"], "PATH": "/usr/bin:/bin", **slurm_cluster.env}
    logs = batch.jobs.parent / "dask-logs"  # #SBATCH lines cannot hold a space
    seen = _driver(batch, "slurm_driver", SLURM_DRIVER, python, str(logs), env=env)
    assert seen["job"] is not None  # the task ran in a Slurm job
    assert seen["prefix"] == str(unpacked) and seen["hepnum"] == "1.24.2"


