"""MPI across two Slurm nodes on this one machine (tests/slurm_cluster.py, SlurmCluster(nodes=2)): each
slurmd in its own network, UTS, IPC and mount namespace (host names wmnode1 and wmnode2, addresses on a
veth/bridge network), so srun --mpi=pmi2 wires up ranks on two "hosts" whose MPI traffic crosses
interfaces, as on a cluster.

What runs, all submitted at once through workflow/sbatch/submit.sh --from controller (the chain's own
controller and evaluate jobs, launched by the profile's `srun --mpi=pmi2`), with 2 ranks each:
  - the two-node chain (WM_SBATCH_ARGS=--nodes=2): CMA-ES then `wm evaluate`, a rank on each node;
  - the one-node chain (--nodes=1): the same, both ranks on wmnode1; fitness and returns must be equal;
  - an endless CMA-ES job across the two nodes whose rank on wmnode2 is SIGKILLed (from inside that
    node's namespaces) once a generation is checkpointed: the job must name it and end within
    controller.worker_timeout.
V and M are untrained (seeded, written by the test, seconds): the test is about the MPI job, not about
learning, and needs no data.

Skips only where Slurm or network namespaces cannot run here (see slurm_cluster.unavailable_reason and
netns_unavailable_reason)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import BIN
from slurm_cluster import TERMINAL, slurm_nodes  # noqa: F401  (the fixture)
from test_slurm import copy_project, job_env

from wm.episodes.farm import ABORT_GRACE_SECONDS
from wm.files import save_torch
from wm.mdn.model import MDNRNN
from wm.vae.model import ConvVAE

RANKS = 2
WORKER_TIMEOUT = 10  # controller.worker_timeout of the job whose rank is killed
# The killed job must end within worker_timeout of the kill, plus the abort's grace (rank 0 prints, waits
# farm.ABORT_GRACE_SECONDS, then MPI_Abort), plus this for srun and slurmd to tear the step and the job
# down on two cores shared with the other jobs.
TEARDOWN_SECONDS = 8
FITNESS = ["generation", "best", "mean", "worst", "std", "sigma", "heldout_mean"]
RANK_LINE = re.compile(r"rank (\d+) of (\d+): pid (\d+) on (\S+)")


def write_untrained_models(run_dir: Path) -> None:
    """V and M as `wm train-vae` / `wm train-mdn` write them, with seeded random weights."""
    torch.manual_seed(0)
    save_torch(run_dir / "vae" / "model.pt", {"kind": "vae", "z_dim": 32, "state_dict": ConvVAE(32).state_dict(),
                                              "config": {}, "versions": {}})
    save_torch(run_dir / "mdn" / "model.pt", {"kind": "mdn", "z_dim": 32, "hidden": 256, "gaussians": 5,
                                              "state_dict": MDNRNN(32, hidden=256, gaussians=5).state_dict(),
                                              "config": {}, "versions": {}})


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def rank_hosts(log: str) -> dict[int, tuple[int, str]]:
    """{rank: (pid, host)} from the lines every rank of the farm prints at start-up."""
    return {int(m[1]): (int(m[3]), m[4]) for m in RANK_LINE.finditer(log)}


def submit(cluster, workdir: Path, nodes: int, *configs: str) -> subprocess.Popen:
    """submit.sh --from controller on the tiny config plus CONFIGS, asking for NODES nodes (started, not
    waited for: the three chains are submitted side by side)."""
    env = job_env(cluster)
    env["WM_SBATCH_ARGS"] = f"--nodes={nodes}"
    return subprocess.Popen(["workflow/sbatch/submit.sh", "--from", "controller", "tests/configs/tiny.yaml", *configs],
                            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def submitted(proc: subprocess.Popen) -> dict[str, str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    return dict(line.split()[:2] for line in out.splitlines() if line.strip())


def chain_dir(root: Path, name: str, extra: str = "") -> Path:
    workdir = copy_project(root / name)
    (workdir / "nodes.yaml").write_text(
        f"run_dir: results\ncontroller: {{ranks: {RANKS}{extra}}}\nevaluate: {{ranks: {RANKS}, video: false}}\n")
    write_untrained_models(workdir / "results")
    return workdir


def wait_for(predicate, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(poll)
    raise TimeoutError(what)


@pytest.fixture(scope="module")
def runs(slurm_nodes, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("nodes")
    start = time.monotonic()
    two, one = chain_dir(root, "two-nodes"), chain_dir(root, "one-node")
    # Endless, with two chunks of 4 rollouts of 50 steps per generation and no held-out score between
    # generations: right after a checkpoint, rank 1 is inside its chunk of the next generation (seconds).
    killed = chain_dir(root, "killed", f", generations: 100000, worker_timeout: {WORKER_TIMEOUT}, "
                                       "max_steps: 50, eval_every: 0")
    # The endless job first, alone: its killed rank and the abort that follows are over before the other
    # chains start their MPI jobs. (With them side by side, a two-node `wm evaluate` starting up while the
    # killed job was torn down failed in MPI_Init, its PMI2 requests garbled, in two full suites of 2 of 2.)
    jobs = {"killed": submitted(submit(slurm_nodes, killed, 2, "nodes.yaml"))}
    print(f"\nsubmitted in {time.monotonic() - start:.0f} s")

    # Once it has checkpointed a generation, kill the rank on wmnode2 (working, see above).
    log = killed / "results" / "logs" / "train_controller" / "z_h.log"
    hosts = wait_for(lambda: (killed / "results" / "controller" / "z_h" / "checkpoint.pkl").exists()
                     and len(h := rank_hosts(log.read_text())) == RANKS and h, 300,
                     "the endless job checkpointed no generation", poll=0.05)
    (victim, (pid, host)), = [(rank, ph) for rank, ph in hosts.items() if ph[1] == "wmnode2"]
    print(f"first generation of the endless job after {time.monotonic() - start:.0f} s")
    subprocess.run(slurm_nodes.on_node("wmnode2", ["kill", "-KILL", str(pid)]), check=True)
    killed_at = time.monotonic()
    controller = jobs["killed"]["controller-z_h"]
    wait_for(lambda: all(r["JobState"] in TERMINAL for r in slurm_nodes.jobs(controller)), 120,
             "the job whose rank was killed did not end")
    ended_after = time.monotonic() - killed_at

    procs = {name: submit(slurm_nodes, workdir, nodes, "nodes.yaml") for name, workdir, nodes in [("two", two, 2),
                                                                                                 ("one", one, 1)]}
    jobs |= {name: submitted(proc) for name, proc in procs.items()}
    records = {name: {stage: slurm_nodes.wait([job_id], timeout=300) for stage, job_id in ids.items()
                      if stage in ("controller-z_h", "evaluate-z_h")} for name, ids in jobs.items()}
    print(f"\ntwo-node Slurm: three chains (controller + evaluate) in {time.monotonic() - start:.0f} s; "
          f"the killed rank's job ended {ended_after:.1f} s after the kill")
    return SimpleNamespace(dirs={"two": two, "one": one, "killed": killed}, records=records, victim=victim,
                           victim_pid=pid, victim_host=host, ended_after=ended_after)


def controller_log(runs, name: str) -> str:
    return (runs.dirs[name] / "results" / "logs" / "train_controller" / "z_h.log").read_text()


def test_mpi_traffic_crosses_the_nodes_network(slurm_nodes, tmp_path):  # noqa: F811
    """A 10 MB broadcast from rank 0 (wmnode1) reaches rank 1 (wmnode2) over wmnode2's link: the nodes
    share no memory transport (their own IPC namespace and /dev/shm), as two hosts would not."""
    script = tmp_path / "bcast.py"
    script.write_text("import socket\nfrom mpi4py import MPI\nc = MPI.COMM_WORLD\n"
                      "data = c.bcast(bytes(10_000_000) if c.Get_rank() == 0 else None)\n"
                      "print('bcast', c.Get_rank(), c.Get_size(), socket.gethostname(), len(data), flush=True)\n")
    link = slurm_nodes.veth["wmnode2"]

    def sent_to_node2() -> int:
        out = subprocess.run(["ip", "-j", "-s", "link", "show", link], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)[0]["stats64"]["tx"]["bytes"]  # the bridge's side sends what wmnode2 gets

    before = sent_to_node2()
    job = slurm_nodes.sbatch(["--nodes=2", "--ntasks=2", f"--output={tmp_path / 'bcast.out'}",
                              "--wrap", f"srun --mpi=pmi2 {BIN / 'python'} {script}"])
    (record,) = slurm_nodes.wait([job], timeout=120)
    output = (tmp_path / "bcast.out").read_text()
    assert record["JobState"] == "COMPLETED", output
    assert sorted(re.findall(r"bcast (\d) 2 (\S+) 10000000", output)) == [("0", "wmnode1"), ("1", "wmnode2")], output
    assert sent_to_node2() - before > 10_000_000


def test_ranks_land_on_both_nodes(runs):
    two = rank_hosts(controller_log(runs, "two"))
    assert {rank: host for rank, (_, host) in two.items()} == {0: "wmnode1", 1: "wmnode2"}
    one = rank_hosts(controller_log(runs, "one"))
    assert {host for _, host in one.values()} == {"wmnode1"} and len(one) == RANKS
    for name, nodes in (("two", "wmnode[1-2]"), ("one", "wmnode1")):
        for stage in ("controller-z_h", "evaluate-z_h"):
            (record,) = runs.records[name][stage]
            assert record["JobState"] == "COMPLETED" and record["NumTasks"] == str(RANKS), record
            assert record["NodeList"] == nodes, (name, stage, record["NodeList"])
        assert f"train-controller: {RANKS} rank(s)" in controller_log(runs, name)
    evaluate_log = (runs.dirs["two"] / "results" / "logs" / "evaluate" / "z_h.log").read_text()
    assert {host for _, host in rank_hosts(evaluate_log).values()} == {"wmnode1", "wmnode2"}, evaluate_log


def test_two_nodes_give_the_one_node_fitness_and_returns(runs):
    two, one = (runs.dirs[name] / "results" for name in ("two", "one"))
    fitness = [[{k: row[k] for k in FITNESS} for row in read_csv(d / "controller" / "z_h" / "log.csv")]
               for d in (two, one)]
    assert [int(row["generation"]) for row in fitness[0]] == [1, 2]
    assert fitness[0] == fitness[1]
    assert ((two / "controller" / "z_h" / "generations.jsonl").read_text()
            == (one / "controller" / "z_h" / "generations.jsonl").read_text())
    returns = [json.loads((d / "eval" / "z_h" / "returns.json").read_text()) for d in (two, one)]
    assert returns[0]["ranks"] == returns[1]["ranks"] == RANKS
    assert returns[0]["returns"] == returns[1]["returns"] and len(returns[0]["returns"]) == 2


def test_a_rank_killed_on_the_second_node_is_named_and_ends_the_job(runs):
    """SIGKILL of the rank on wmnode2 while it runs a chunk: rank 0 hears no more heartbeats, names it
    (rank, PID, host) after controller.worker_timeout and aborts; srun names the task and its node.
    (A rank killed while idle is not what this checks: there rank 0's next send to it crashes rank 0
    inside MPICH/UCX, and srun ends the job at once, naming both tasks, without the farm's message.)"""
    (record,) = runs.records["killed"]["controller-z_h"]
    assert record["JobState"] == "FAILED" and record["NodeList"] == "wmnode[1-2]", record
    (evaluate,) = runs.records["killed"]["evaluate-z_h"]
    assert evaluate["JobState"] == "CANCELLED"  # afterok on a failed job: --kill-on-invalid-dep
    log = controller_log(runs, "killed")
    assert runs.victim_host == "wmnode2"
    # The farm names the silent rank with its PID and host; srun names the task and its node.
    assert f"rank {runs.victim} has been silent for {WORKER_TIMEOUT} s (controller.worker_timeout)" in log, log[-3000:]
    assert f"it died or hangs; rank {runs.victim} is pid {runs.victim_pid} on wmnode2" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]  # rank 0 ended at its abort, not in code past it
    assert f"wmnode2: task {runs.victim}: Killed" in log, log[-3000:]
    assert runs.ended_after < WORKER_TIMEOUT + ABORT_GRACE_SECONDS + TEARDOWN_SECONDS, runs.ended_after


FROZEN_WORKER = """
import os, signal, socket, time
from types import SimpleNamespace
import numpy as np
from mpi4py import MPI
from wm.episodes.farm import MPIFarm, abort, serve
comm = MPI.COMM_WORLD
def run(chunk, training=True):
    if comm.Get_rank() == 1:
        print(f"frozen: pid {os.getpid()} on {socket.gethostname()}", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)  # heartbeats stop too: silence, as from a dead rank
    time.sleep(0.2)
    return []
runner = SimpleNamespace(chunk_size=lambda training: 1, busy_seconds=0.0, run=run)
if comm.Get_rank() == 1:
    serve(comm, runner, 3)
else:
    try:
        MPIFarm(comm, runner, 3).evaluate(np.zeros((2, 3)), [1, 2, 3, 4], [5, 6, 7, 8])
    except Exception as exc:
        abort(comm, f"FAILED: {exc}", 1)
        print("rank 0 ran on past its abort", flush=True)
"""


def test_farm_names_a_silent_ranks_pid_and_host_and_stops_at_its_abort(tmp_path):
    """Unit level, plain mpiexec (no Slurm): rank 0's message on a silent rank names its PID and host
    (from the hello each worker sends rank 0 first), and rank 0 runs no code past abort(), although
    MPI_Abort itself returns under mpiexec and srun alike."""
    script = tmp_path / "frozen.py"
    script.write_text(FROZEN_WORKER)
    start = time.monotonic()
    result = subprocess.run([str(BIN / "mpiexec"), "-n", "2", str(BIN / "python"), str(script)],
                            capture_output=True, text=True, timeout=120)
    output = result.stdout
    assert result.returncode != 0, output + result.stderr
    print(f"\nmpiexec -n 2, a frozen worker: ended after {time.monotonic() - start:.1f} s")
    assert time.monotonic() - start < 60
    pid, host = re.search(r"frozen: pid (\d+) on (\S+)", output).groups()
    assert re.search(r"FAILED: rank 1 has been silent for 3 s \(worker_timeout\) while running chunk \d+: "
                     rf"it died or hangs; rank 1 is pid {pid} on {re.escape(host)}\n", output), output
    assert "ran on past its abort" not in output, output
