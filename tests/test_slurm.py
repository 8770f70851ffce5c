"""The tiny workflow on a real one-node Slurm (tests/slurm_cluster.py), four times at once:

1. `snakemake --profile profiles/slurm`, the profile unchanged (the test only names the partition and
   no account, through the environment variables the profile reads);
2. the plain sbatch chain, workflow/sbatch/submit.sh (one job per rule);
3. the same chain with a V that must fail, to see the rest cancelled;
4. the tiny Doom workflow (tests/configs/tiny-doom.yaml: real vizdoom, C trained in M's dream, scored in
   the real game) through the same profile: the same rules, array jobs and MPI job for another environment.

Every claim is checked against Slurm's own records (`scontrol show job`, kept MinJobAge seconds; there
is no accounting), the jobs' output files, and the outputs themselves (`wm data check`, JSON, CSV).
The resources each sbatch job asks for are checked against profiles/slurm/config.yaml read directly,
twice: in `submit.sh --dry-run` on the paper preset (no Slurm needed) and in Slurm's records of the run.
CMA-ES and the evaluation run with 2 MPI ranks each: the Slurm plugin refuses an MPI job of 1 task,
and 2 ranks is what shows that srun --mpi=pmi2 gives wm one communicator of that size.

Skips only where Slurm cannot run here at all (see slurm_cluster.unavailable_reason)."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yte

from conftest import BIN, REPO, wm
from slurm_cluster import PARTITION, slurm  # noqa: F401  (the fixture)

from wm.config import load_config

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


# The chain's jobs: stage (submit.sh's name, the job script's stem) -> the rule it runs.
STAGE_RULE = {"collect": "collect", "vae": "train_vae", "encode": "encode", "mdn": "train_mdn", "dream": "dream",
              "controller": "train_controller", "evaluate": "evaluate"}
CHAIN_STAGES = ["collect", "vae", "encode", "mdn", "dream", "controller-z_h", "evaluate-z_h"]
ARRAYS = {"collect", "encode"}
# Each job script's #SBATCH lines may name the job, nothing it asks for (that is the profile's).
RESOURCE_OPTIONS = re.compile(r"^#SBATCH\s+(?!--job-name=).*$", re.M)


def rule_of(stage: str) -> str:
    return STAGE_RULE[stage.split("-")[0]]


def profile_request(rule: str, ranks: int, env: dict) -> dict:
    """What profiles/slurm/config.yaml gives RULE, read directly (yte, as Snakemake reads it), in sbatch's
    terms as snakemake-executor-plugin-slurm turns it into options: default-resources under
    set-resources; memory per CPU wins over per job; CPUs per task, else set-threads, else 1."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with open(REPO / "profiles" / "slurm" / "config.yaml") as f:
            conf = yte.process_yaml(f, require_use_yte=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    res = {**conf["default-resources"], **conf["set-resources"].get(rule, {})}
    memory = (("per-cpu", int(res["mem_mb_per_cpu"])) if res.get("mem_mb_per_cpu")
              else ("per-job", int(eval(str(res["mem_mb"]), {"attempt": 1}))))  # the first attempt
    mpi = res.get("mpi")
    return {"minutes": int(res["runtime"]), "memory": memory,
            "cpus_per_task": int(res.get("cpus_per_task") or conf.get("set-threads", {}).get(rule, 1)),
            "ntasks": ranks if mpi else 1, "gpus": int(res["gpu"]) if res.get("gpu") else None,
            "partition": res.get("slurm_partition"), "account": res.get("slurm_account"), "mpi": mpi}


def dry_run_requests(line: str) -> dict:
    """One `sbatch ...` line of `submit.sh --dry-run` (after its WM_MPI=... prefix, if any), in the same terms."""
    words = shlex.split(line)
    mpi = None
    if words[0].startswith("WM_MPI="):
        mpi = words.pop(0).split("=", 1)[1]
    opts = dict(w[2:].split("=", 1) for w in words if w.startswith("--") and "=" in w)
    memory = ("per-cpu", int(opts["mem-per-cpu"])) if "mem-per-cpu" in opts else ("per-job", int(opts["mem"]))
    return {"minutes": int(opts["time"]), "memory": memory, "cpus_per_task": int(opts["cpus-per-task"]),
            "ntasks": int(opts["ntasks"]), "gpus": int(opts["gpus"]) if "gpus" in opts else None,
            "partition": opts.get("partition"), "account": opts.get("account"), "mpi": mpi,
            "script": Path(words[-1]).stem}


def minutes(time_limit: str) -> int:
    """scontrol's TimeLimit ([D-]HH:MM:SS) in minutes."""
    days, _, hms = time_limit.rpartition("-")
    h, m, _ = map(int, hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m


def recorded_request(record: dict) -> dict:
    """What Slurm recorded a job as asking for (scontrol show job), in the same terms."""
    memory = (("per-cpu", int(record["MinMemoryCPU"].rstrip("M"))) if "MinMemoryCPU" in record
              else ("per-job", int(record["MinMemoryNode"].rstrip("M"))))
    gpus = re.search(r"gpu:(\d+)", record.get("TresPerJob", ""))
    return {"minutes": minutes(record["TimeLimit"]), "memory": memory, "cpus_per_task": int(record["CPUs/Task"]),
            "ntasks": int(record["NumTasks"]), "gpus": int(gpus.group(1)) if gpus else None,
            "partition": record["Partition"]}


def test_sbatch_scripts_ask_for_nothing_themselves():
    """The job scripts' #SBATCH lines name the job only: a size written there would be a second source."""
    for script in sorted((REPO / "workflow" / "sbatch").glob("*.sbatch")):
        found = RESOURCE_OPTIONS.findall(script.read_text())
        assert not found, (script.name, found)
    assert {p.stem for p in (REPO / "workflow" / "sbatch").glob("*.sbatch")} == set(STAGE_RULE)


@pytest.mark.parametrize("env", [
    {"WM_SLURM_PARTITION": "cpu", "WM_SLURM_GPU_PARTITION": "gpu", "WM_SLURM_ACCOUNT": "proj1"},
    {"WM_SLURM_PARTITION": "", "WM_SLURM_GPU_PARTITION": "", "WM_SLURM_ACCOUNT": "none"},
], ids=["partitions-and-account", "cluster-defaults"])
def test_sbatch_dry_run_asks_for_the_profiles_resources(env):
    """`submit.sh --dry-run presets/paper.yaml`: one job per rule, each asking for exactly what the Slurm
    profile gives its rule (and the MPI ones for the preset's ranks), under the same WM_SLURM_* variables."""
    result = subprocess.run(["workflow/sbatch/submit.sh", "--dry-run", "presets/paper.yaml"], cwd=REPO,
                            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(("sbatch ", "WM_MPI="))]
    requests = [dry_run_requests(line) for line in lines]
    paper = load_config([REPO / "config.yaml", REPO / "presets" / "paper.yaml"])
    ranks = {"train_controller": paper["controller"]["ranks"], "evaluate": paper["evaluate"]["ranks"]}
    variants = len(paper["controller"]["variants"])
    scripts = ["collect", "vae", "encode", "mdn", "dream"] + ["controller", "evaluate"] * variants
    assert [r["script"] for r in requests] == scripts
    for request in requests:
        rule = STAGE_RULE[request.pop("script")]
        assert request == profile_request(rule, ranks.get(rule, 1), env), rule
    for line, stage in zip(lines, ["collect", "vae", "encode", "mdn", "dream"]):
        assert (f"--array=0-{paper['collect']['shards'] - 1}" in line) == (stage in ARRAYS), line
    assert "--dependency=afterok:<encode>" in lines[3] and "--dependency=afterok:<mdn>" in lines[4]


def test_sbatch_refuses_iterative_training_instead_of_running_one_round():
    """The sbatch chain is one round: with iterate.rounds > 0 it says so in one line and submits nothing."""
    result = subprocess.run(["workflow/sbatch/submit.sh", "--dry-run", "presets/budget.yaml", "presets/iterate.yaml"],
                            cwd=REPO, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"submit.sh: iterate.rounds is 1 in {REPO / 'config.yaml'} {REPO / 'presets/budget.yaml'} "
        f"{REPO / 'presets/iterate.yaml'}; this chain runs one round (iterate.rounds: 0): run iterative training "
        "with snakemake --profile profiles/slurm"]


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
    doom_dir = copy_project(tmp_path_factory.mktemp("snakemake-slurm-doom"))

    def profile_run(cwd: Path, *configs: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(BIN / "snakemake"), "--profile", "profiles/slurm", "--configfile", "tests/configs/tiny.yaml", *configs,
             "slurm-test.yaml",
             # test speed only: status checks from 1 s after each submission or finish on (not 40 s; the plugin adds
             # 10 s to the wait after each check that finds nothing finished); keep Slurm's logs to read them
             "--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs"],
            cwd=cwd, env=job_env(slurm), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    start = time.monotonic()
    car, doom = profile_run(workdir), profile_run(doom_dir, "tests/configs/tiny-doom.yaml")
    for name, process in (("tiny config", car), ("tiny Doom config", doom)):
        out, err = process.communicate(timeout=900)
        print(f"\nsnakemake --profile profiles/slurm ({name}): {time.monotonic() - start:.0f} s")
        assert process.returncode == 0, f"{name}:\n{out[-3000:]}\n{err[-6000:]}"
    records = [r for r in slurm.all_jobs() if r.get("Comment", "").startswith("rule_")]
    snakemake_records = [r for r in records if not r.get("WorkDir", "").startswith(str(doom_dir))]
    doom_records = [r for r in records if r.get("WorkDir", "").startswith(str(doom_dir))]

    stages = CHAIN_STAGES
    chain_records = {stage: slurm.wait([chain[stage]], timeout=600) for stage in stages}
    print(f"workflow/sbatch/submit.sh chain (tiny config, beside the Snakemake run): "
          f"{max(seconds(r, 'EndTime') for r in chain_records['evaluate-z_h']).timestamp() - min(seconds(r, 'SubmitTime') for r in chain_records['collect']).timestamp():.0f} s")
    failing_records = {stage: slurm.wait([failing[stage]], timeout=600) for stage in stages}
    return SimpleNamespace(workdir=workdir, records=snakemake_records, doom_dir=doom_dir, doom_records=doom_records,
                           chain_dir=chain_dir, chain=chain,
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


def test_doom_runs_through_the_same_profile(runs):
    """The tiny Doom workflow: every rule a completed Slurm job, shards as array jobs, C's CMA-ES (in M's dream)
    and the real game's evaluation as MPI jobs of 2 ranks; whole outputs of env.name doom."""
    records, run_dir = runs.doom_records, runs.doom_dir / "results"
    assert records and {r["JobState"] for r in records} == {"COMPLETED"}, [(r["JobId"], r["JobState"]) for r in records]
    counts = {"collect": 2, "encode": 2, "train_vae": 1, "train_mdn": 1, "dream": 1, "train_controller": 1,
              "evaluate": 1}
    for rule, count in counts.items():
        assert len(by_rule(records, rule)) == count, (rule, [r.get("Comment") for r in records])
    for rule in ("collect", "encode"):
        assert len({t["ArrayJobId"] for t in by_rule(records, rule)}) == 1
    for rule in ("train_controller", "evaluate"):
        (job,) = by_rule(records, rule)
        assert job["NumTasks"] == str(RANKS), job
    assert_ran_with_ranks(run_dir / "logs" / "train_controller" / "z_c_h.log", RANKS)
    assert wm("data", "check", run_dir / "data").returncode == 0
    log = read_csv(run_dir / "controller" / "z_c_h" / "log.csv")
    assert [int(r["generation"]) for r in log] == [1, 2] and all(r["heldout_mean"] == "nan" for r in log)
    result = json.loads((run_dir / "eval" / "z_c_h" / "returns.json").read_text())
    assert result["env"] == "doom" and result["env_id"] == "VizdoomTakeCover-v1" and result["ranks"] == RANKS
    assert result["controller_training"]["environment"] == "dream" and len(result["returns"]) == 2
    assert all(r == s for r, s in zip(result["returns"], result["steps"]))  # +1 a step alive
    assert (run_dir / "mdn" / "dream.gif").read_bytes()[:4] == b"GIF8"


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
    """workflow/sbatch/submit.sh: one job per rule, chained with afterok: arrays for collect and encode,
    GPU jobs for V and M, a small job for the dream, one MPI job each for C and the evaluation; the
    same outputs as the Snakemake run."""
    records, ids = runs.chain_records, runs.chain
    states = {stage: [(r["JobId"], r["JobState"]) for r in recs] for stage, recs in records.items()}
    assert all(r["JobState"] == "COMPLETED" and r["ExitCode"] == "0:0" for recs in records.values() for r in recs), states

    for stage in ARRAYS:
        tasks = records[stage]
        assert len(tasks) == 2 and {r["ArrayJobId"] for r in tasks} == {ids[stage]}
        assert sorted(r["ArrayTaskId"] for r in tasks) == ["0", "1"]  # the array index is the shard
    for stage in ("vae", "mdn"):
        assert "gpu:1" in records[stage][0].get("TresPerJob", "")
    (controller,) = records["controller-z_h"]
    (evaluate,) = records["evaluate-z_h"]
    assert controller["NumTasks"] == evaluate["NumTasks"] == str(RANKS)
    # afterok: each stage started only after everything it depends on had ended
    order = [("collect", "vae"), ("vae", "encode"), ("encode", "mdn"), ("mdn", "dream"), ("mdn", "controller-z_h"),
             ("controller-z_h", "evaluate-z_h")]
    for earlier, later in order:
        assert (min(seconds(r, "StartTime") for r in records[later])
                >= max(seconds(r, "EndTime") for r in records[earlier])), (earlier, later)

    run_dir = runs.chain_dir / "results"
    assert_ran_with_ranks(run_dir / "logs" / "train_controller" / "z_h.log", RANKS)
    assert_outputs_whole(run_dir)
    evaluate_log = (run_dir / "logs" / "sbatch" / f"wm-evaluate-z_h-{ids['evaluate-z_h']}.out").read_text()
    assert f"with {RANKS} ranks (srun --mpi=pmi2)" in evaluate_log, evaluate_log  # the profile's launcher


def test_sbatch_chain_jobs_got_the_profiles_resources(runs, slurm):  # noqa: F811
    """Slurm's record of every chain job: what profiles/slurm/config.yaml gives its rule (read directly,
    under the test's WM_SLURM_* variables), and what the Snakemake run's job of the same rule got."""
    env = {k: v for k, v in job_env(slurm).items() if k.startswith("WM_SLURM_")}
    for stage, records in runs.chain_records.items():
        rule = rule_of(stage)
        expected = profile_request(rule, RANKS, env)
        expected = {k: v for k, v in expected.items() if k not in ("account", "mpi")}  # not in scontrol here
        for record in records:
            assert recorded_request(record) == expected, (stage, record["JobId"])
        for record in by_rule(runs.records, rule):
            snakemake = recorded_request(record)
            if rule in ARRAYS:  # the plugin adds a MB or so to an array job's memory for its payload
                assert 0 <= snakemake.pop("memory")[1] - expected["memory"][1] <= 16, (rule, record["JobId"])
                snakemake["memory"] = expected["memory"]
            assert snakemake == expected, (rule, record["JobId"])


def test_sbatch_chain_stops_at_a_failure(runs):
    """A failing stage cancels what depends on it (--kill-on-invalid-dep) instead of leaving it pending."""
    records = runs.failing_records
    assert {r["JobState"] for r in records["collect"]} == {"COMPLETED"}
    (vae,) = records["vae"]
    assert vae["JobState"] == "FAILED" and vae["ExitCode"] != "0:0"
    for stage in ("encode", "mdn", "dream", "controller-z_h", "evaluate-z_h"):
        assert {job["JobState"] for job in records[stage]} == {"CANCELLED"}, (stage, records[stage])
    assert "collapsed" in (runs.failing_dir / "results" / "logs" / "train_vae.log").read_text()
