"""A real single-node Slurm cluster on localhost, for the tests of batch jobs.

Debian's ``slurm-wlm`` and ``munge`` (dev/test installs them) run without systemd or
cgroups: ``munged``, ``slurmctld -D`` and ``slurmd -D`` are started as background
processes under a private temporary directory, with a generated munge key and
configuration on free ports (several test sessions on one machine do not meet), and
stopped by their PIDs.  What it takes is measured in ../shared/design/slurm-facts.md:
the node line must match ``slurmd -C``; ``batch_sched_delay=0`` starts jobs at once;
the first job after start-up waits for the scheduler's tick, so a warm-up job makes
the cluster ready.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: the binaries the cluster needs (Debian packages slurm-wlm and munge)
REQUIRED = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo")


def missing_binaries() -> list[str]:
    return [name for name in REQUIRED if shutil.which(name, path=_sbin_path()) is None]


def _sbin_path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _node_line() -> str:
    """``slurmd -C``'s description of this machine, as the node line must say."""
    out = subprocess.run([shutil.which("slurmd", path=_sbin_path()) or "slurmd", "-C"],
                         capture_output=True, text=True, check=True).stdout
    words = out.splitlines()[0].split()
    keep = ("CPUs=", "Boards=", "SocketsPerBoard=", "CoresPerSocket=", "ThreadsPerCore=",
            "RealMemory=")
    return " ".join(w for w in words if w.startswith(keep))


@dataclass
class SlurmCluster:
    """A running cluster: its configuration, and the environment to submit jobs from."""

    root: Path
    conf: Path
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """What a submitting process needs besides its own environment."""
        return {"SLURM_CONF": str(self.conf)}

    def sbatch(self, script: Path, *options: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``sbatch --wait OPTIONS SCRIPT``: returns when the job has ended, with its status."""
        environ = dict(env if env is not None else os.environ, **self.env)
        return subprocess.run(["sbatch", "--wait", "--quiet", *options, str(script)],
                              env=environ, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def stop(self) -> None:
        """Stop the daemons by PID (never by name: other sessions may run their own)."""
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    done, _status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        shutil.rmtree(self.root, ignore_errors=True)


CONFIG = """\
ClusterName=layervenv
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MailProg=/bin/true
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 {node} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> int:
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return process.pid


def start_cluster() -> SlurmCluster:
    """Start munged, slurmctld and slurmd; return once a job runs."""
    root = Path(tempfile.mkdtemp(prefix="lvslurm-", dir="/tmp"))  # short: the socket path
    cluster = SlurmCluster(root=root, conf=root / "slurm.conf")
    try:
        _start(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _start(cluster: SlurmCluster) -> None:
    root = cluster.root
    sbin = _sbin_path()
    env = dict(os.environ, PATH=sbin, SLURM_CONF=str(cluster.conf))
    munge = root / "munge"
    munge.mkdir()
    munge.chmod(0o711)
    key = root / "munge.key"
    subprocess.run([shutil.which("mungekey", path=sbin), "--create", f"--keyfile={key}"],
                   check=True, capture_output=True)
    sock = munge / "munge.socket"
    cluster.pids["munged"] = _spawn(
        [shutil.which("munged", path=sbin), "-F", "--force", f"--key-file={key}",
         f"--socket={sock}", f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log",
         f"--seed-file={root}/munged.seed"], root / "munged.out", env)
    _wait_for(lambda: sock.exists(), "munged's socket", root / "munged.log")
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    ctld_port, d_port = _free_ports(2)
    cluster.conf.write_text(CONFIG.format(
        host=socket.gethostname().split(".")[0], ctld_port=ctld_port, d_port=d_port,
        socket=sock, root=root, node=_node_line()))
    cluster.pids["slurmctld"] = _spawn(
        [shutil.which("slurmctld", path=sbin), "-D", "-i", "-f", str(cluster.conf)],
        root / "slurmctld.out", env)
    cluster.pids["slurmd"] = _spawn(
        [shutil.which("slurmd", path=sbin), "-D", "-f", str(cluster.conf)],
        root / "slurmd.out", env)

    def idle() -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                             text=True, check=False).stdout.split()
        return out[:1] == ["idle"]

    _wait_for(idle, "the node to be idle", root / "slurmctld.log")
    warm = root / "warm-up.sh"
    warm.write_text("#!/bin/sh\ntrue\n")
    result = cluster.sbatch(warm, f"--output={root}/warm-up.out", env=env)
    if result.returncode != 0:
        raise RuntimeError(f"the warm-up job failed: {result.stderr}")


def _wait_for(ready, what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise RuntimeError(f"timed out waiting for {what}:\n{tail}")
