"""The tiny workflow on a real one-node Slurm (tests/slurm_cluster.py), three times at once:

1. `snakemake --profile profiles/slurm`, the profile unchanged (the test only names the partition and
   no account, through the environment variables the profile reads);
2. the plain sbatch chain, workflow/sbatch/submit.sh;
3. the same chain with a V that must fail, to see the rest cancelled.

Every claim is checked against Slurm's own records (`scontrol show job`, kept MinJobAge seconds; there
is no accounting), the jobs' output files, and the outputs themselves (`wm data check`, JSON, CSV).
CMA-ES and the evaluation run with 2 MPI ranks each: the Slurm plugin refuses an MPI job of 1 task,
and 2 ranks is what shows that srun --mpi=pmi2 gives wm one communicator of that size.

Skips only where Slurm cannot run here at all (see slurm_cluster.unavailable_reason)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import BIN, REPO, wm
from slurm_cluster import PARTITION, slurm  # noqa: F401  (the fixture)

RANKS = 2
# What a checkout needs to run the workflow (wm itself is the installed package).
PROJECT_FILES = ["Snakefile", "config.yaml", "workflow", "profiles", "envs", "presets", "tests/configs"]


def copy_project(dest: Path) -> Path:
    """A copy of the workflow files, so the test's .snakemake/ and results never meet the checkout's."""
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / "slurm-test.yaml").write_text(f"run_dir: results\ncontroller: {{ranks: {RANKS}}}\n"
                                          f"evaluate: {{ranks: {RANKS}}}\n")
    return dest


def job_env(cluster) -> dict:
    env = cluster.env()
    env.update(PATH=f"{BIN}:{env['PATH']}", WM_SLURM_PARTITION=PARTITION, WM_SLURM_ACCOUNT="none",
               SDL_VIDEODRIVER="dummy", PYTHONUNBUFFERED="1")
    return env


def seconds(record: dict, key: str) -> datetime:
    return datetime.fromisoformat(record[key])


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def assert_outputs_whole(run_dir: Path) -> None:
    assert wm("data", "check", run_dir / "data").returncode == 0
    assert wm("data", "check", "--kind", "latents", run_dir / "latents").returncode == 0
    assert sorted(p.name for p in (run_dir / "data").glob("shard-*.zarr")) == ["shard-0000.zarr", "shard-0001.zarr"]
    for name in ("vae/model.pt", "mdn/model.pt", "controller/z_h/controller.pt"):
        assert (run_dir / name).stat().st_size > 0, name
    assert json.loads((run_dir / "vae" / "summary.json").read_text())["collapse_guard"]
    assert [int(r["generation"]) for r in read_csv(run_dir / "controller" / "z_h" / "log.csv")] == [1, 2]
    result = json.loads((run_dir / "eval" / "z_h" / "returns.json").read_text())
    assert result["episodes"] == len(result["returns"]) == 2
    assert result["ranks"] == RANKS  # the evaluation's MPI communicator, as wm saw it
    assert (run_dir / "mdn" / "dream.gif").read_bytes()[:4] == b"GIF8"


def assert_ran_with_ranks(log: Path, ranks: int) -> None:
    """wm's own line: the size of the MPI communicator rank 0 saw (1 if srun had started singletons)."""
    text = log.read_text()
    assert re.search(rf"train-controller: {ranks} rank\(s\)", text), text[-2000:]


def submit_chain(cluster, workdir: Path, *configs: str) -> tuple[dict[str, str], float]:
    """workflow/sbatch/submit.sh on the tiny config; returns ({stage: job id}, time of submission)."""
    result = subprocess.run(["workflow/sbatch/submit.sh", "tests/configs/tiny.yaml", "slurm-test.yaml", *configs],
                            cwd=workdir, env=job_env(cluster), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(line.split()[:2] for line in result.stdout.splitlines() if line.strip()), time.monotonic()


@pytest.fixture(scope="module")
def runs(slurm, tmp_path_factory):  # noqa: F811
    """Everything this module checks, submitted to the one cluster at once (it has room: 16 CPUs), so
    the sbatch chains run while Snakemake polls: the plain sbatch chain, a chain whose V fails, and the
    tiny workflow through `snakemake --profile profiles/slurm` (which this fixture waits for)."""
    chain_dir = copy_project(tmp_path_factory.mktemp("sbatch-chain"))
    chain, chain_start = submit_chain(slurm, chain_dir)
    failing_dir = copy_project(tmp_path_factory.mktemp("sbatch-failing"))
    (failing_dir / "bad.yaml").write_text("vae: {guard_max_ratio: 0.0001}\n")  # V cannot pass: its job fails
    failing, _ = submit_chain(slurm, failing_dir, "bad.yaml")

    workdir = copy_project(tmp_path_factory.mktemp("snakemake-slurm"))
    cmd = [str(BIN / "snakemake"), "--profile", "profiles/slurm",
           "--configfile", "tests/configs/tiny.yaml", "slurm-test.yaml",
           # test speed only: status checks from 5 s after each finish on (not 40 s); keep Slurm's logs to read them
           "--slurm-init-seconds-before-status-checks", "5", "--slurm-keep-successful-logs"]
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=workdir, env=job_env(slurm), capture_output=True, text=True, timeout=900)
    print(f"\nsnakemake --profile profiles/slurm (tiny config): {time.monotonic() - start:.0f} s")
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    snakemake_records = [r for r in slurm.all_jobs() if r.get("Comment", "").startswith("rule_")]

    stages = ["collect", "vae", "mdn", "controller-z_h", "evaluate-z_h"]
    chain_records = {stage: slurm.wait([chain[stage]], timeout=600) for stage in stages}
    print(f"workflow/sbatch/submit.sh chain (tiny config, beside the Snakemake run): "
          f"{max(seconds(r, 'EndTime') for r in chain_records['evaluate-z_h']).timestamp() - min(seconds(r, 'SubmitTime') for r in chain_records['collect']).timestamp():.0f} s")
    failing_records = {stage: slurm.wait([failing[stage]], timeout=600) for stage in stages}
    return SimpleNamespace(workdir=workdir, records=snakemake_records, chain_dir=chain_dir, chain=chain,
                           chain_records=chain_records, failing_dir=failing_dir, failing_records=failing_records)


def by_rule(records: list[dict], rule: str) -> list[dict]:
    return [r for r in records if re.fullmatch(rf"rule_{rule}(_wildcards_.*)?", r.get("Comment", ""))]


def test_profile_runs_every_rule_and_outputs_are_whole(runs):
    workdir, records = runs.workdir, runs.records
    assert {r["JobState"] for r in records} == {"COMPLETED"}, [(r["JobId"], r["JobState"]) for r in records]
    assert all(r["ExitCode"] == "0:0" and r["Partition"] == PARTITION for r in records)
    counts = {"collect": 2, "encode": 2, "train_vae": 1, "train_mdn": 1, "dream": 1, "train_controller": 1,
              "evaluate": 1}
    for rule, count in counts.items():
        assert len(by_rule(records, rule)) == count, (rule, [r.get("Comment") for r in records])
    assert len(records) == sum(counts.values())
    assert_outputs_whole(workdir / "results")


def test_profile_submits_shards_as_one_array_job(runs):
    records = runs.records
    for rule in ("collect", "encode"):
        tasks = by_rule(records, rule)
        assert len({t["ArrayJobId"] for t in tasks}) == 1, f"{rule}: not one array job: {tasks}"
        assert sorted(t["ArrayTaskId"] for t in tasks) == ["1", "2"]


def test_profile_asks_for_a_gpu_for_v_and_m(runs):
    records = runs.records
    for rule in ("train_vae", "train_mdn"):
        (job,) = by_rule(records, rule)
        assert "gpu:1" in job.get("TresPerJob", ""), job
        assert job["CPUs/Task"] == "8" and job["MinMemoryNode"] == "32000M", job
    for rule in ("collect", "encode", "dream", "train_controller", "evaluate"):
        assert all("gpu" not in r.get("TresPerJob", "") for r in by_rule(records, rule))


def test_profile_runs_cma_es_and_evaluation_as_one_mpi_job_each_under_srun(runs):
    workdir, records = runs.workdir, runs.records
    for rule, command in [("train_controller", "train-controller"), ("evaluate", "evaluate")]:
        (job,) = by_rule(records, rule)
        assert job["NumTasks"] == str(RANKS) and job["CPUs/Task"] == "1", job
        slurm_log = Path(job["StdOut"]).read_text()
        assert f"srun --mpi=pmi2 -n {RANKS} wm {command}" in slurm_log, slurm_log[-2000:]
    assert_ran_with_ranks(workdir / "results" / "logs" / "train_controller" / "z_h.log", RANKS)


def test_sbatch_chain(runs):
    """workflow/sbatch/submit.sh: an array for collect, GPU jobs for V+encode and M+dream, one MPI job
    each for C and the evaluation, chained with afterok; the same outputs as the Snakemake run."""
    records, ids = runs.chain_records, runs.chain
    states = {stage: [(r["JobId"], r["JobState"]) for r in recs] for stage, recs in records.items()}
    assert all(r["JobState"] == "COMPLETED" and r["ExitCode"] == "0:0" for recs in records.values() for r in recs), states

    collect = records["collect"]
    assert len(collect) == 2 and {r["ArrayJobId"] for r in collect} == {ids["collect"]}
    assert sorted(r["ArrayTaskId"] for r in collect) == ["0", "1"]  # the array index is the shard
    for stage in ("vae", "mdn"):
        assert "gpu:1" in records[stage][0].get("TresPerJob", "")
    (controller,) = records["controller-z_h"]
    (evaluate,) = records["evaluate-z_h"]
    assert controller["NumTasks"] == evaluate["NumTasks"] == str(RANKS)
    # afterok: each stage started only after everything it depends on had ended
    chain = [collect, records["vae"], records["mdn"], [controller], [evaluate]]
    for earlier, later in zip(chain, chain[1:]):
        assert min(seconds(r, "StartTime") for r in later) >= max(seconds(r, "EndTime") for r in earlier)

    run_dir = runs.chain_dir / "results"
    assert_ran_with_ranks(run_dir / "logs" / "train_controller" / "z_h.log", RANKS)
    assert_outputs_whole(run_dir)
    assert "wrote" in (run_dir / "logs" / "sbatch" / f"wm-evaluate-z_h-{ids['evaluate-z_h']}.out").read_text()


def test_sbatch_chain_stops_at_a_failure(runs):
    """A failing stage cancels what depends on it (--kill-on-invalid-dep) instead of leaving it pending."""
    records = runs.failing_records
    assert {r["JobState"] for r in records["collect"]} == {"COMPLETED"}
    (vae,) = records["vae"]
    assert vae["JobState"] == "FAILED" and vae["ExitCode"] != "0:0"
    for stage in ("mdn", "controller-z_h", "evaluate-z_h"):
        (job,) = records[stage]
        assert job["JobState"] == "CANCELLED", (stage, job["JobState"], job.get("Reason"))
    assert "collapsed" in (runs.failing_dir / "results" / "logs" / "train_vae.log").read_text()
