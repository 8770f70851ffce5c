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

Two nodes on this one machine (SlurmCluster(nodes=2), the `slurm_nodes` fixture): each slurmd runs in
its own network namespace (`ip netns add`), wired by a veth pair to a bridge in the root namespace that
carries a free 10.77.X.0/24 (the controller 10.77.X.1, nodes 10.77.X.11, .12, ...), and in its own UTS,
IPC and mount namespaces: its own host name (wmnode1, wmnode2, ...), its own /etc/hosts (a file of the
temporary folder bind-mounted over it, naming every node) and its own /dev/shm, all inherited by its job
steps and tasks. slurm.conf names each node with NodeHostname/NodeAddr and `slurmd -N <name>` picks its
line. The IPC namespace and /dev/shm matter: without them UCX (the mpich wheel's netmod) sees that the
"hosts" share memory and moves MPI messages through it; with them, messages between ranks on different
nodes really cross interfaces (veth -> bridge -> veth, over UCX's tcp transport). munged and slurmctld stay
in the root namespace: munged's socket is a file, visible from every namespace, and the nodes reach
slurmctld at the bridge's address. The root namespace's /etc/hosts, routes and interfaces are left alone
(the bridge is a new link). stop() kills what is left in each namespace (its processes are the daemons'
and their jobs'), then deletes the namespaces and links, also after a failed start.
Slurm's multiple-slurmd mode (Debian's 22.05.8 has it: `scontrol show config` says MULTIPLE_SLURMD = Yes)
is not used: its nodes share one address and host name, so MPI would never leave the machine's memory.

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
import uuid
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


RUN_NETNS = Path("/run/netns")


def _forget_run_netns(existed: bool) -> None:
    """The first `ip netns add` on a machine makes /run/netns, a bind mount on itself; undo that if it was
    ours (the folder was missing before) and no namespace is left in it."""
    if existed or not RUN_NETNS.is_dir() or any(RUN_NETNS.iterdir()):
        return
    subprocess.run(["umount", str(RUN_NETNS)], capture_output=True)
    try:
        RUN_NETNS.rmdir()
    except OSError:
        pass


def netns_unavailable_reason() -> str | None:
    """Why this machine cannot give each slurmd its own network, UTS, IPC and mount namespace, or None."""
    if os.geteuid() != 0:
        return "two test nodes need network namespaces (ip netns), which need root"
    for tool in ("ip", "nsenter", "unshare", "hostname", "mount"):
        if _sbin(tool) is None:
            return f"two test nodes need `{tool}` (iproute2 / util-linux), which is not installed"
    probe, existed = f"wmprobe{os.getpid()}", RUN_NETNS.exists()
    try:
        _ip("netns", "add", probe)
        subprocess.run([_sbin("nsenter"), f"--net=/run/netns/{probe}", "--", _sbin("unshare"), "--mount", "--uts",
                        "--ipc", "--", "true"], check=True, capture_output=True, text=True)
        _ip("link", "add", f"{probe[:11]}a", "type", "veth", "peer", "name", f"{probe[:11]}b")
        _ip("link", "del", f"{probe[:11]}a")
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return f"network namespaces or veth links cannot be made here: {detail.strip()}"
    finally:
        subprocess.run([_sbin("ip"), "netns", "del", probe], capture_output=True)
        _forget_run_netns(existed)
    return None


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_sbin("ip"), *args], check=True, capture_output=True, text=True)


def free_subnet() -> int:
    """X of a 10.77.X.0/24 that no interface or route of the root namespace uses."""
    used = subprocess.run([_sbin("ip"), "-4", "addr"], capture_output=True, text=True).stdout
    used += subprocess.run([_sbin("ip"), "-4", "route"], capture_output=True, text=True).stdout
    for x in range(256):
        if f"10.77.{x}." not in used:
            return x
    raise RuntimeError("no free 10.77.X.0/24 subnet for the test nodes")


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
    """A Slurm whose every file lives under `root`; daemons stopped by PID in stop(). One node (this
    host) by default; with nodes=N > 1, N nodes wmnode1..N, each slurmd in its own network, UTS, IPC and
    mount namespace (see the module's docstring). `cpus`, `memory_mb` and `gpus` are per node."""

    def __init__(self, cpus: int = 16, memory_mb: int = 65536, gpus: int = 1, keep: bool = False, nodes: int = 1):
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
        self.multi = nodes > 1
        self.node_names = [f"wmnode{i}" for i in range(1, nodes + 1)] if self.multi else [self.host]
        # Network names: short (links take 15 characters) and this object's own (a random tag), so
        # stop() deletes only what this object made; made[] records what exists, in order.
        tag = uuid.uuid4().hex[:5]
        self.bridge = f"wm{tag}br"
        self.netns = {name: f"wmslurm-{tag}-{name}" for name in self.node_names} if self.multi else {}
        self.veth = {name: f"wm{tag}v{i}" for i, name in enumerate(self.node_names, 1)} if self.multi else {}
        self.subnet: int | None = None
        self.made: list[tuple[str, str]] = []  # ("netns"|"link", name), for stop()

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
        if self.multi:
            self._make_network()
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
        gres = "".join(f"NodeName={node} Name=gpu File=/dev/null Count={self.gpus}\n"
                       for node in self.node_names) if self.gpus else ""
        (self.conf.parent / "gres.conf").write_text(gres)
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(self.conf, SYSTEM_CONF)
        self.linked = True
        self._spawn("slurmctld", [_sbin("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        if not self.multi:
            self._spawn("slurmd", [_sbin("slurmd"), "-D", "-f", str(self.conf)])
        for node in self.node_names if self.multi else []:
            (self.root / "spool" / node).mkdir(exist_ok=True)
            # slurmd under the node's address, hosts file and host name, for its line of slurm.conf
            self._spawn(f"slurmd-{node}", self.on_node(node, [_sbin("slurmd"), "-D", "-N", node, "-f", str(self.conf)]))
        self._wait_for(self._node_idle, 30, "the node(s) did not become idle")

    # --- the nodes' network (nodes > 1) -----------------------------------------------------------
    def address(self, node: str) -> str:
        """A node's address on the test network (10.77.X.11, .12, ...); the controller is 10.77.X.1."""
        return f"10.77.{self.subnet}.{10 + self.node_names.index(node) + 1}"

    @property
    def controller_address(self) -> str:
        return f"10.77.{self.subnet}.1"

    def on_node(self, node: str, argv: list[str]) -> list[str]:
        """argv as it runs on NODE: in its network namespace, with its host name, /etc/hosts and /dev/shm
        (fresh UTS, IPC and mount namespaces each time; `ip netns exec`, which would bind-mount
        /etc/netns/NS/hosts, is not used because it remounts /sys, where slurmd then misses
        /sys/fs/cgroup)."""
        return [_sbin("nsenter"), f"--net=/run/netns/{self.netns[node]}", "--",
                _sbin("unshare"), "--mount", "--uts", "--ipc", "--propagation", "private", "--",
                "sh", "-c", 'mount --bind "$1" /etc/hosts && mount -t tmpfs -o mode=1777 wmshm /dev/shm && '
                'hostname "$2" && shift 2 && exec "$@"', "sh",
                str(self.root / "etc" / f"hosts-{node}"), node, *argv]

    def _make_network(self) -> None:
        self.run_netns_existed = RUN_NETNS.exists()
        self.subnet = free_subnet()
        _ip("link", "add", self.bridge, "type", "bridge")
        self.made.append(("link", self.bridge))
        _ip("addr", "add", f"{self.controller_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        hosts = "127.0.0.1 localhost\n" + f"{self.controller_address} {self.host}\n" + "".join(
            f"{self.address(node)} {node}\n" for node in self.node_names)
        (self.root / "etc").mkdir(parents=True, exist_ok=True)
        for node in self.node_names:
            ns, veth = self.netns[node], self.veth[node]
            (self.root / "etc" / f"hosts-{node}").write_text(hosts)  # on_node() mounts it as /etc/hosts
            _ip("netns", "add", ns)
            self.made.append(("netns", ns))
            _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
            self.made.append(("link", veth))
            _ip("link", "set", f"{veth}p", "netns", ns)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            inside = [_sbin("ip"), "-n", ns]
            for args in (["link", "set", f"{veth}p", "name", "eth0"],
                         ["addr", "add", f"{self.address(node)}/24", "dev", "eth0"],
                         ["link", "set", "eth0", "up"], ["link", "set", "lo", "up"]):
                subprocess.run([*inside, *args], check=True, capture_output=True, text=True)

    def _remove_network(self) -> None:
        """Delete what _make_network made, newest first; a namespace's leftover processes (the node's
        daemons, steps and job tasks: nothing else runs in it) are killed first."""
        for kind, name in reversed(self.made):
            if kind == "netns":
                pids = subprocess.run([_sbin("ip"), "netns", "pids", name], capture_output=True, text=True)
                for pid in pids.stdout.split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                subprocess.run([_sbin("ip"), "netns", "del", name], capture_output=True)
            elif kind == "link":
                subprocess.run([_sbin("ip"), "link", "del", name], capture_output=True)
        if self.made:
            _forget_run_netns(self.run_netns_existed)
        self.made.clear()

    def stop(self) -> None:
        """Cancel what is left, stop the daemons this object started (by PID), remove the symlink."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "--partition", PARTITION], env=self.env(), capture_output=True)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.squeue(states="RUNNING,PENDING,COMPLETING"):
                time.sleep(0.5)
        slurmds = [name for name in self.procs if name.startswith("slurmd")]
        for name in (*slurmds, "slurmctld", "munged"):
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
        self._remove_network()
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
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=self.env(), capture_output=True, text=True)
        return out.returncode == 0 and out.stdout.split() == ["idle"] * len(self.node_names)

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
        node_lines = f"NodeName={self.host} CPUs={self.cpus} RealMemory={self.memory}{gres} State=UNKNOWN"
        controller = self.host
        slurmd_files = f"SlurmdSpoolDir={r / 'spool'}\nSlurmdPidFile={r / 'run' / 'slurmd.pid'}\n" \
                       f"SlurmdLogFile={r / 'log' / 'slurmd.log'}"
        if self.multi:  # %n: the node's name, so that each slurmd has its own files
            node_lines = "\n".join(
                f"NodeName={node} NodeHostname={node} NodeAddr={self.address(node)} CPUs={self.cpus} "
                f"RealMemory={self.memory}{gres} State=UNKNOWN" for node in self.node_names)
            controller = f"{self.host}({self.controller_address})"
            slurmd_files = f"SlurmdSpoolDir={r / 'spool' / '%n'}\nSlurmdPidFile={r / 'run' / 'slurmd-%n.pid'}\n" \
                           f"SlurmdLogFile={r / 'log' / 'slurmd-%n.log'}"
        return f"""# Generated by tests/slurm_cluster.py for one test session; removed with it.
ClusterName=wmtest
SlurmctldHost={controller}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={CTLD_PORT}
SlurmdPort={SLURMD_PORT}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r / 'state'}
SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
{slurmd_files}
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
{node_lines}
PartitionName={PARTITION} Nodes={",".join(self.node_names)} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
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


@pytest.fixture(scope="module")
def slurm_nodes():
    """A running two-node Slurm (wmnode1, wmnode2: separate network, UTS, IPC and mount namespaces on this
    machine), 4 CPUs and no GPU per node; skips where this machine cannot run Slurm or network namespaces."""
    reason = unavailable_reason() or netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    ensure_installed()
    with SlurmCluster(nodes=2, cpus=4, gpus=0, keep=bool(os.environ.get("WM_SLURM_KEEP"))) as cluster:
        yield cluster
