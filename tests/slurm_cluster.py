"""A real one-node Slurm on localhost for the tests: munged, slurmctld and slurmd started from a
generated slurm.conf in a temporary folder, stopped by PID afterwards.

What it sets up (docs/cluster.md, "The one-node test Slurm", says why each line is there):
  - Debian's slurm-wlm (slurmctld, slurmd, slurm-client) and munge, installed with apt only if missing
    and only when running as root; otherwise the `slurm` fixture skips with the reason;
  - no accounting (no slurmdbd): outcomes are read from `squeue --states=all`, `scontrol show job`
    (kept MinJobAge seconds) and the jobs' own output files;
  - proctrack/linuxproc + task/none (no cgroups, no systemd needed), select/cons_tres, MpiDefault=pmi2;
  - a node as big as the real profiles ask for (SlurmdParameters=config_overrides lets `CPUs=` and
    `RealMemory=` exceed the machine: 16 CPUs, 64 GB): profiles/slurm and workflow/sbatch are submitted
    unchanged, and array tasks and MPI ranks run side by side on a 2-core machine. Memory is not
    enforced (no cgroups, CR_Core), so the tiny workflow's small processes simply share the real RAM;
  - one GPU (`Gres=gpu:1`; its device file in gres.conf is /dev/null): Slurm schedules and records GPU
    requests (`--gpus=1`) as on a GPU cluster and sets CUDA_VISIBLE_DEVICES; torch still sees no CUDA
    and trains on the CPU;
  - /etc/slurm/slurm.conf as a symlink to the generated file: the Snakemake jobstep plugin strips
    SLURM_* variables (SLURM_CONF included) before it calls srun inside a job, so the config must be
    found at the default path. The symlink is removed again by stop().

Usage:
    with SlurmCluster() as cluster:
        job = cluster.sbatch(["--wrap", "hostname"])
        cluster.wait([job])
        cluster.job(job)["JobState"] == "COMPLETED"
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SLURM_PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
NEEDED = ["slurmctld", "slurmd", "munged", "mungekey", "sbatch", "srun", "squeue", "scontrol", "sinfo"]
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
PARTITION = "wmtest"
CTLD_PORT, SLURMD_PORT = 6817, 6818
# Slurm keeps a finished job in `scontrol show job` for MinJobAge seconds. The Snakemake plugin's
# squeue status command needs it >= 3 x --slurm-init-seconds-before-status-checks.
MIN_JOB_AGE = 600
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
            "DEADLINE", "PREEMPTED"}


def _which_all() -> list[str]:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [name for name in NEEDED if shutil.which(name, path=path) is None]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def unavailable_reason() -> str | None:
    """Why this machine cannot run the test Slurm, or None when it can (possibly after apt)."""
    if os.name != "posix" or not Path("/proc").is_dir():
        return "a one-node Slurm needs Linux"
    missing = _which_all()
    if missing:
        if os.geteuid() != 0:
            return f"Slurm is not installed ({', '.join(missing)} missing) and the tests are not root to apt-get it"
        if shutil.which("apt-get") is None:
            return f"Slurm is not installed ({', '.join(missing)} missing) and there is no apt-get"
    elif os.geteuid() != 0:
        return "the test Slurm runs its daemons as root (SlurmUser=root) and writes /etc/slurm/slurm.conf; not root"
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        if not (SYSTEM_CONF.is_symlink() and "wm-slurm-" in os.readlink(SYSTEM_CONF)):
            return f"{SYSTEM_CONF} exists: this machine has its own Slurm, which the tests will not touch"
    for port in (CTLD_PORT, SLURMD_PORT):
        if _port_in_use(port):
            return f"port {port} is in use: another Slurm is running here"
    return None


def ensure_installed() -> None:
    """apt-get install Debian's Slurm and munge if any program is missing (root only)."""
    if not _which_all():
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *SLURM_PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    if _which_all():
        raise RuntimeError(f"apt-get installed {SLURM_PACKAGES} but {_which_all()} are still missing")


def _sbin(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


class SlurmCluster:
    """A one-node Slurm whose every file lives under `root`; daemons stopped by PID in stop()."""

    def __init__(self, cpus: int = 16, memory_mb: int = 65536, gpus: int = 1, keep: bool = False):
        # Not under pytest's tmp_path: munged wants every folder above its socket open to all (x bit).
        self.root = Path(tempfile.mkdtemp(prefix="wm-slurm-"))
        self.keep = keep
        self.cpus, self.gpus = cpus, gpus
        self.memory = max(memory_mb, self.real_memory_mb())
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "etc" / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.sock"
        self.procs: dict[str, subprocess.Popen] = {}
        self.linked = False

    # --- life cycle -----------------------------------------------------------------------------
    def __enter__(self) -> "SlurmCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        for sub in ("etc", "munge", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        (self.root / "munge").chmod(0o755)  # munged refuses a socket folder others cannot traverse
        key = self.root / "munge" / "munge.key"
        subprocess.run([_sbin("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        key.chmod(0o600)
        self._spawn("munged", [
            _sbin("munged"), "-F", f"--socket={self.munge_socket}", f"--key-file={key}",
            f"--pid-file={self.root / 'munge' / 'munged.pid'}", f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={self.root / 'munge' / 'munged.seed'}",
        ])
        self._wait_for(lambda: self.munge_socket.exists(), 10, "munged did not create its socket")
        self.conf.write_text(self.slurm_conf())
        # slurmd reads gres.conf from slurm.conf's folder (it starts with -f); without a File= the GPU
        # count registers as 0 and the node is drained, so /dev/null stands in for the device
        gres = f"NodeName={self.host} Name=gpu File=/dev/null Count={self.gpus}\n" if self.gpus else ""
        (self.conf.parent / "gres.conf").write_text(gres)
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(self.conf, SYSTEM_CONF)
        self.linked = True
        self._spawn("slurmctld", [_sbin("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", [_sbin("slurmd"), "-D", "-f", str(self.conf)])
        self._wait_for(self._node_idle, 30, "the node did not become idle")

    def stop(self) -> None:
        """Cancel what is left, stop the daemons this object started (by PID), remove the symlink."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "--partition", PARTITION], env=self.env(), capture_output=True)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.squeue(states="RUNNING,PENDING,COMPLETING"):
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self.linked and SYSTEM_CONF.is_symlink() and os.readlink(SYSTEM_CONF) == str(self.conf):
            SYSTEM_CONF.unlink()
        self.linked = False
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, env=self.env())
        log.close()

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; its log:\n{self.log(name)}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} within {timeout} s; logs:\n" + "\n".join(self.log(n) for n in self.procs))

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env(), capture_output=True, text=True)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def log(self, name: str) -> str:
        paths = [self.root / "log" / f"{name}.out", self.root / "log" / f"{name}.log"]
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-4000:]}" for p in paths if p.exists())

    # --- configuration --------------------------------------------------------------------------
    @staticmethod
    def real_memory_mb() -> int:
        total = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
        return max(1000, total - 1024)

    def slurm_conf(self) -> str:
        r = self.root
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        return f"""# Generated by tests/slurm_cluster.py for one test session; removed with it.
ClusterName=wmtest
SlurmctldHost={self.host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={CTLD_PORT}
SlurmdPort={SLURMD_PORT}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}
SlurmdPidFile={r / 'run' / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmi2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MinJobAge={MIN_JOB_AGE}
MaxArraySize=1001
KillWait=5
InactiveLimit=0
GresTypes=gpu
NodeName={self.host} CPUs={self.cpus} RealMemory={self.memory}{gres} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""

    def env(self) -> dict:
        """The environment for Slurm clients: the config path (also at /etc/slurm) and no inherited SLURM_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["SLURM_CONF"] = str(self.conf)
        return env

    # --- client helpers -------------------------------------------------------------------------
    def sbatch(self, args: list[str], cwd: Path | None = None) -> str:
        out = subprocess.run(["sbatch", "--parsable", *args], env=self.env(), cwd=cwd, capture_output=True,
                             text=True)
        if out.returncode != 0:
            raise RuntimeError(f"sbatch {' '.join(args)} failed: {out.stderr}")
        return out.stdout.strip().split(";")[0]

    def squeue(self, states: str = "all") -> list[dict]:
        """Every job Slurm still remembers, one dict per job or array task."""
        fmt = "%i|%A|%K|%F|%j|%T|%D|%C|%b"
        out = subprocess.run(["squeue", "-h", f"--states={states}", "-o", fmt], env=self.env(),
                             capture_output=True, text=True, check=True)
        keys = ["id", "job_id", "array_task", "array_job", "name", "state", "nodes", "cpus", "gres"]
        return [dict(zip(keys, line.split("|"))) for line in out.stdout.splitlines() if line.strip()]

    def job(self, job_id: str) -> dict:
        """`scontrol show job -o` as a dict (for an array, the first record; see jobs())."""
        records = self.jobs(job_id)
        if not records:
            raise KeyError(f"Slurm has no record of job {job_id}")
        return records[0]

    def all_jobs(self) -> list[dict]:
        """Every job (every array task) slurmctld still remembers (MinJobAge), as scontrol records."""
        out = subprocess.run(["scontrol", "show", "job", "-o"], env=self.env(), capture_output=True, text=True)
        if out.returncode != 0 or "No jobs in the system" in out.stdout:
            return []
        return [parse_scontrol(line) for line in out.stdout.splitlines() if line.strip()]

    def jobs(self, job_id: str) -> list[dict]:
        """Every record of a job (an array job gives one per task)."""
        out = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], env=self.env(), capture_output=True,
                             text=True)
        if out.returncode != 0:
            return []
        return [parse_scontrol(line) for line in out.stdout.splitlines() if line.strip()]

    def wait(self, job_ids: list[str], timeout: float) -> list[dict]:
        """Wait until every job (every task of an array) has ended; returns their records."""
        deadline = time.monotonic() + timeout
        while True:
            records = [r for job_id in job_ids for r in self.jobs(job_id)]
            if records and all(r["JobState"] in TERMINAL for r in records):
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs {job_ids} still not done after {timeout} s: "
                                   + str([(r["JobId"], r["JobState"]) for r in records]))
            time.sleep(0.5)


def parse_scontrol(line: str) -> dict:
    """`scontrol show job -o` prints KEY=VALUE pairs on one line; values may contain spaces only in a
    few fields (Command, WorkDir, StdOut...) which this splits at the next ' KEY=' instead."""
    pairs = re.findall(r"(\S+?)=(.*?)(?=\s+\S+?=|$)", line.strip())
    return {key: value for key, value in pairs}


@pytest.fixture(scope="module")
def slurm():
    """A running one-node Slurm for the tests of one module; skips where this machine cannot run one.
    WM_SLURM_KEEP=1 keeps its folder (slurm.conf, daemon logs) in /tmp/wm-slurm-* for a post-mortem."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    ensure_installed()
    with SlurmCluster(keep=bool(os.environ.get("WM_SLURM_KEEP"))) as cluster:
        yield cluster
