"""CMA-ES: the same fitness sequence with 1, 2 or 3 MPI ranks; resume after a kill reproduces an
uninterrupted run exactly; failures end the job promptly and name the rank, candidate and seed."""

import csv
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import BIN, REPO, tiny_args, wm
from wm.config import load_config
from wm.envs import get_env
from wm.episodes.agent import WorldModelAgent

CAR_RACING = get_env("car_racing")
from wm.episodes.runner import ChunkRunner, Episode, EpisodeError, EpisodeSettings
from wm.mdn.model import load_mdn
from wm.vae.model import load_vae

FITNESS = ["generation", "best", "mean", "worst", "std", "sigma", "heldout_mean"]


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def fitness_log(folder):
    return [{k: row[k] for k in FITNESS} for row in read_rows(folder / "log.csv")]


def train(tiny_run, out, ranks=1, extra=(), **kwargs):
    cmd = [str(BIN / "mpiexec"), "-n", str(ranks), str(BIN / "wm"), "train-controller", *tiny_args(), *extra,
           "--variant", "z_h", "--vae", str(tiny_run / "vae" / "model.pt"),
           "--mdn", str(tiny_run / "mdn" / "model.pt"), "--out", str(out)]
    return cmd if kwargs.get("command_only") else subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                                                                 timeout=600)


@pytest.fixture(scope="module")
def longer(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "longer.yaml"
    path.write_text("controller: {generations: 4, max_steps: 40, eval_every: 2}\n")
    return ["--config", str(path)]


@pytest.fixture(scope="module")
def uninterrupted(tiny_run, longer, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    result = train(tiny_run, out, ranks=1, extra=longer)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_generations_record_common_tracks(uninterrupted):
    lines = [json.loads(l) for l in (uninterrupted / "generations.jsonl").read_text().splitlines()]
    assert [l["generation"] for l in lines] == [1, 2, 3, 4]
    config = load_config(tiny_args()[1::2])
    for line in lines:
        assert len(line["track_seeds"]) == config["controller"]["rollouts"]
        assert np.array(line["returns"]).shape == (config["controller"]["popsize"], config["controller"]["rollouts"])
    assert lines[0]["track_seeds"] != lines[1]["track_seeds"]  # new tracks every generation


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_give_the_same_fitness_sequence(tiny_run, longer, uninterrupted, tmp_path, ranks):
    result = train(tiny_run, tmp_path, ranks=ranks, extra=longer)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{ranks} rank(s)" in result.stdout
    assert fitness_log(tmp_path) == fitness_log(uninterrupted)
    rows = read_rows(tmp_path / "log.csv")
    assert all(int(r["ranks"]) == ranks and 0 < float(r["utilization"]) <= 1.0 for r in rows)


def test_killed_run_resumes_to_the_same_result(tiny_run, longer, uninterrupted, tmp_path):
    proc = subprocess.Popen(train(tiny_run, tmp_path, ranks=2, extra=longer, command_only=True), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    checkpoint = tmp_path / "checkpoint.pkl"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # mpiexec and every rank, mid-run
    proc.wait()
    assert checkpoint.exists() and not (tmp_path / "controller.pt").exists()
    resumed = train(tiny_run, tmp_path, ranks=2, extra=longer)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming" in resumed.stdout
    assert fitness_log(tmp_path) == fitness_log(uninterrupted)
    # Every generation's tracks and returns are recorded once, the same as without the kill.
    assert (tmp_path / "generations.jsonl").read_text() == (uninterrupted / "generations.jsonl").read_text()


def test_diagnose_summarises_every_generation(uninterrupted, tmp_path):
    rows = read_rows(uninterrupted / "diagnostics.csv")  # written by train-controller at its end
    records = [json.loads(l) for l in (uninterrupted / "generations.jsonl").read_text().splitlines()]
    assert [int(r["generation"]) for r in rows] == [r["generation"] for r in records]
    for row, record in zip(rows, records):
        returns = np.array(record["returns"])
        assert float(row["best_mean"]) == pytest.approx(returns.mean(axis=1).max(), abs=0.01)
        assert float(row["track_std_median"]) == pytest.approx(np.median(returns.std(axis=1)), abs=0.01)
        shares = [float(row[f"ended_{e}"]) for e in ("no_progress", "truncated", "terminated", "max_steps")]
        assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    broken = tmp_path / "run"
    broken.mkdir()
    shutil.copy(uninterrupted / "generations.jsonl", broken / "generations.jsonl")
    with open(broken / "generations.jsonl", "a") as f:
        f.write('{"generation": 5, "retu\n')
    result = subprocess.run([str(BIN / "wm"), "diagnose", str(broken)], capture_output=True, text=True)
    assert result.returncode == 2
    assert f"{broken / 'generations.jsonl'}: line 5 is not a generation record" in result.stderr


def override(mapping: dict) -> list[str]:
    return ["--override", json.dumps(mapping)]


@pytest.mark.parametrize("change, named", [
    ({"controller": {"max_steps": 50}}, "controller.max_steps 40 -> 50"),  # the case
    ({"controller": {"no_progress_steps": 10}}, "controller.no_progress_steps 0 -> 10"),
    ({"controller": {"l2_coefficient": 0.0}}, "controller.l2_coefficient 0.01 -> 0.0"),
    ({"controller": {"z_sample": False}}, "controller.z_sample True -> False"),
    ({"controller": {"envs_per_rank": 3}}, "controller.envs_per_rank 4 -> 3"),
    ({"controller": {"popsize": 6}}, "controller.popsize 4 -> 6"),
    ({"env": {"id": "CarRacing-v3"}}, "env_id 'wm/CarRacing-v3' -> 'CarRacing-v3'"),
    ({"torch_threads": 2}, "torch_threads 1 -> 2"),
])
def test_a_finished_run_is_never_reused_with_other_settings(tiny_run, longer, uninterrupted, tmp_path, change,
                                                            named):
    """A finished run's checkpoint stays (to be extended); run again with a setting that changes the
    result, it is refused in one line naming the key, before any work, and nothing is overwritten."""
    shutil.copytree(uninterrupted, tmp_path, dirs_exist_ok=True)
    before = (tmp_path / "controller.pt").read_bytes()
    result = train(tiny_run, tmp_path, ranks=1, extra=[*longer, *override(change)])
    assert result.returncode == 2, result.stdout + result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("wm train-controller: error:")]
    assert len(error) == 1 and named in error[0] and str(tmp_path / "checkpoint.pkl") in error[0], result.stderr
    assert "gen 1/" not in result.stdout  # refused before any generation ran
    assert (tmp_path / "controller.pt").read_bytes() == before


def test_other_v_or_m_files_are_refused(tiny_run, longer, uninterrupted, tmp_path):
    shutil.copytree(uninterrupted, tmp_path / "run")
    other_vae = tmp_path / "vae.pt"
    shutil.copy(tiny_run / "vae" / "model.pt", other_vae)
    with open(other_vae, "ab") as f:  # still a loadable V, but other bytes
        f.write(b"\0")
    cmd = train(tiny_run, tmp_path / "run", ranks=1, extra=longer, command_only=True)
    cmd[cmd.index("--vae") + 1] = str(other_vae)
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and re.search(r"[(;] ?vae '[0-9a-f]{16}' -> '[0-9a-f]{16}'", result.stderr), result.stderr
    assert "refusing to reuse it" in result.stderr and "mdn '" not in result.stderr


def test_the_same_command_on_a_finished_run_writes_the_same_controller(tiny_run, longer, uninterrupted, tmp_path):
    shutil.copytree(uninterrupted, tmp_path, dirs_exist_ok=True)
    (tmp_path / "controller.pt").unlink()
    result = train(tiny_run, tmp_path, ranks=1, extra=longer)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout and "gen 1/" not in result.stdout
    params = [torch.load(folder / "controller.pt", weights_only=False)["params"] for folder in (tmp_path, uninterrupted)]
    assert torch.equal(*params)


def test_raising_generations_extends_a_finished_run(tiny_run, longer, uninterrupted, tmp_path):
    """Training longer is extending: 2 generations, then the same command with generations 4, ends
    where a 4-generation run ends; asking for fewer generations than were run is refused."""
    first = train(tiny_run, tmp_path, ranks=1, extra=[*longer, *override({"controller": {"generations": 2}})])
    assert first.returncode == 0, first.stderr
    assert len(read_rows(tmp_path / "log.csv")) == 2
    extended = train(tiny_run, tmp_path, ranks=2, extra=longer)  # ranks may differ too
    assert extended.returncode == 0, extended.stderr
    assert "resuming" in extended.stdout and "at generation 2 of 4" in extended.stdout
    assert fitness_log(tmp_path) == fitness_log(uninterrupted)
    assert (tmp_path / "generations.jsonl").read_text() == (uninterrupted / "generations.jsonl").read_text()
    fewer = train(tiny_run, tmp_path, ranks=1, extra=[*longer, *override({"controller": {"generations": 3}})])
    assert fewer.returncode == 2
    assert "holds 4 generations, more than controller.generations = 3" in fewer.stderr


def test_export_controller_scores_a_run_midway_without_touching_it(tiny_run, longer, uninterrupted, tmp_path):
    """`wm export-controller` on a run's folder with the run's own arguments, here a run that will go on to
    generation 6 and stands at 4: the controller the finished 4-generation run wrote, and the folder left as
    it was; a checkpoint saved with other settings, or none, is refused in one line."""
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    (run / "controller.pt").unlink()  # as if still running: only the checkpoint says where it stands
    before = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()}
    args = [*tiny_args(), *longer, "--variant", "z_h", "--vae", tiny_run / "vae" / "model.pt",
            "--mdn", tiny_run / "mdn" / "model.pt", "--out", run]
    result = wm("export-controller", *args, *override({"controller": {"generations": 6}}), "--to", tmp_path / "now.pt")
    assert f"the CMA mean of {run / 'checkpoint.pkl'} at generation 4" in result.stdout
    exported = torch.load(tmp_path / "now.pt", weights_only=False)
    finished = torch.load(uninterrupted / "controller.pt", weights_only=False)
    assert torch.equal(exported["params"], finished["params"]) and exported["generations"] == 4
    assert exported["fingerprint"] == finished["fingerprint"] and exported["variant"] == "z_h"
    assert {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()} == before

    other = wm("export-controller", *args, *override({"controller": {"sigma0": 0.2}}), "--to", tmp_path / "other.pt",
               check=False)
    assert other.returncode == 2 and not (tmp_path / "other.pt").exists()
    assert other.stderr.strip().splitlines() == [
        f"wm export-controller: error: {run / 'checkpoint.pkl'}: saved by a run with other settings "
        "(controller.sigma0 0.1 -> 0.2); refusing to reuse it: delete it to start over, or rerun with the "
        "settings it was saved with"]
    none = wm("export-controller", *args[:-1], tmp_path / "empty", "--to", tmp_path / "x.pt", check=False)
    assert none.returncode == 2 and "empty/checkpoint.pkl: no checkpoint to export" in none.stderr


def test_warm_start_from_a_trained_controller(tiny_run, longer, uninterrupted, tmp_path):
    """controller.init: CMA-ES starts its search at a trained controller's parameters."""
    warm = {"controller": {"init": str(uninterrupted / "controller.pt"), "generations": 1, "eval_every": 0}}
    result = train(tiny_run, tmp_path, ranks=1, extra=[*longer, *override(warm)])
    assert result.returncode == 0, result.stderr
    state = pickle.loads((tmp_path / "checkpoint.pkl").read_bytes())
    start = torch.load(uninterrupted / "controller.pt", weights_only=False)["params"].numpy()
    assert state["fingerprint"]["controller.init"] not in ("zeros", warm["controller"]["init"])
    # Generation 1's candidates were drawn around the warm start, not around zero.
    first = json.loads((tmp_path / "generations.jsonl").read_text().splitlines()[0])
    zero = json.loads((uninterrupted / "generations.jsonl").read_text().splitlines()[0])
    assert first["returns"] != zero["returns"]
    assert np.linalg.norm(state["es"].mean - start) < np.linalg.norm(state["es"].mean)


def test_crashing_rollout_names_candidate_and_seed(tiny_run):
    config = load_config(tiny_args()[1::2])
    agent = WorldModelAgent(load_vae(tiny_run / "vae" / "model.pt"), load_mdn(tiny_run / "mdn" / "model.pt"),
                            "z_h", True, env=CAR_RACING)
    runner = ChunkRunner(agent, EpisodeSettings("CarRacing-v3", 20, 0, 2))
    broken = Episode(np.full(867, np.nan), track_seed=1234, noise_seed=1, candidate=7, rollout=3)
    with pytest.raises(EpisodeError, match="candidate 7 rollout 3 track seed 1234"):
        runner.run([broken])


def test_rollouts_report_how_the_controller_drives(tiny_run):
    """Per-episode action statistics (a diagnostic for a controller that does not learn): a bias-only
    controller drives with one constant action, whatever it sees."""
    agent = WorldModelAgent(load_vae(tiny_run / "vae" / "model.pt"), load_mdn(tiny_run / "mdn" / "model.pt"),
                            "z", True, env=CAR_RACING)
    params = np.zeros(99)
    params[-3:] = [np.arctanh(0.5), 0.0, np.arctanh(0.25)]  # steer 0.5, gas 0.5, brake 0.25
    (result,) = ChunkRunner(agent, EpisodeSettings("wm/CarRacing-v3", 25, 0, 1)).run([Episode(params, 5, 6)])
    assert result.steps == 25
    np.testing.assert_allclose(result.action_mean, [0.5, 0.5, 0.25], atol=1e-4)
    np.testing.assert_allclose(result.action_std, [0.0, 0.0, 0.0], atol=1e-3)


def aborted_mpi_script(script, ranks: int) -> str:
    """Run a Python script under mpiexec; it must end the job with an error within a minute. Its stdout."""
    start = time.monotonic()
    result = subprocess.run([str(BIN / "mpiexec"), "-n", str(ranks), str(BIN / "python"), str(script)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, result.stdout + result.stderr
    assert time.monotonic() - start < 60
    return result.stdout


def tiny_runner_script(tiny_run, body: str) -> str:
    """A script for mpiexec: every rank builds the tiny run's z_h ChunkRunner (`runner`) on
    MPI.COMM_WORLD (`comm`), then runs `body`."""
    return f"""
import sys, time
import gymnasium as gym
import numpy as np
from mpi4py import MPI
from wm.config import load_config
from wm.episodes.farm import MPIFarm, abort, serve
from wm.stages.train_controller import build_runner
config = load_config({tiny_args()[1::2]!r})
runner = build_runner(config, "z_h", {str(tiny_run / "vae" / "model.pt")!r}, {str(tiny_run / "mdn" / "model.pt")!r})
comm = MPI.COMM_WORLD
""" + body


def test_worker_failure_ends_the_job_naming_the_rank(tiny_run, tmp_path):
    """A rollout that crashes on a worker rank aborts the whole MPI job with the rank named."""
    script = tmp_path / "fail.py"
    script.write_text(tiny_runner_script(tiny_run, """
if comm.Get_rank() != 0:
    serve(comm, runner, 60)
    sys.exit(0)
def slow_failure(chunk, training=True):  # rank 0 fails late, so the failure reported first is rank 1's
    time.sleep(5)
    raise RuntimeError("rank 0 gave up")
runner.run = slow_failure
try:
    MPIFarm(comm, runner, 60).evaluate(np.full((2, 867), np.nan), [11, 12, 13, 14, 15, 16], [1, 2, 3, 4, 5, 6])
except Exception as exc:
    abort(comm, f"FAILED: {exc}", 1)
"""))
    output = aborted_mpi_script(script, ranks=2)
    assert "FAILED: rank 1: a rollout raised FloatingPointError: non-finite action" in output
    assert "candidate " in output and "track seed 1" in output


def test_a_rank_frozen_after_its_last_chunk_is_named_at_the_end(tmp_path):
    """The end of a job is watched too: a worker that freezes instead of confirming the stop would
    otherwise keep the launcher waiting forever after rank 0 is done."""
    script = tmp_path / "freeze.py"
    script.write_text("""
import os, signal
from types import SimpleNamespace
from mpi4py import MPI
from wm.episodes.farm import TAG_STOP, MPIFarm, abort, serve
comm = MPI.COMM_WORLD
runner = SimpleNamespace(chunk_size=lambda training: 1, busy_seconds=0.0)
if comm.Get_rank() == 1:
    serve(comm, runner, 60)
elif comm.Get_rank() == 2:
    comm.recv(source=0, tag=TAG_STOP)
    os.kill(os.getpid(), signal.SIGSTOP)
else:
    try:
        MPIFarm(comm, runner, 5).close()
    except Exception as exc:
        abort(comm, f"FAILED: {exc}", 1)
""")
    output = aborted_mpi_script(script, ranks=3)
    assert "FAILED: rank(s) [2] did not confirm the end of the job within 5 s" in output, output


def test_chunks_longer_than_the_timeout_are_not_silence(tiny_run, tmp_path):
    """worker_timeout bounds silence, not work: a chunk that runs longer than it (16 evaluation episodes
    on gymnasium's CarRacing take ~2 minutes) must not make its rank give up on rank 0 afterwards."""
    script = tmp_path / "long_chunks.py"
    script.write_text(tiny_runner_script(tiny_run, """
run = runner.run
def slow_run(chunk, training=True):  # rank 1 ends its chunk first, then waits on rank 0
    time.sleep(4 if comm.Get_rank() else 7)
    return run(chunk, training)
runner.run = slow_run
if comm.Get_rank() != 0:
    serve(comm, runner, 2)
else:
    evaluator = MPIFarm(comm, runner, 2)
    try:
        returns, _ = evaluator.evaluate(np.zeros((2, 867)), [11, 12, 13, 14], [1, 2, 3, 4])
        evaluator.close()
    except Exception as exc:
        abort(comm, f"FAILED: {exc}", 1)
    print("returns", returns.shape, np.isfinite(returns).all())
"""))
    result = subprocess.run([str(BIN / "mpiexec"), "-n", "2", str(BIN / "python"), str(script)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "returns (2, 4) True" in result.stdout


@pytest.fixture(scope="module")
def endless(tmp_path_factory):
    """A run far longer than any test waits: the failure tests signal a rank while work remains."""
    path = tmp_path_factory.mktemp("cfg") / "endless.yaml"
    path.write_text("controller: {generations: 100000, worker_timeout: 8}\n")
    return ["--config", str(path)]


def start_three_ranks(tiny_run, out, extra):
    """Start a 3-rank CMA-ES job; once it has checkpointed a generation, return it with each rank's PID
    (from the start-up lines every rank prints) and the output read so far."""
    proc = subprocess.Popen(train(tiny_run, out, ranks=3, extra=extra, command_only=True), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    pids, lines = {}, []
    while not ((out / "checkpoint.pkl").exists() and len(pids) == 3):
        line = proc.stdout.readline()
        assert line, "the job ended before its first checkpoint:\n" + "".join(lines)
        lines.append(line)
        for match in re.finditer(r"rank (\d) of 3: pid (\d+)", line):
            pids[int(match.group(1))] = int(match.group(2))
    return proc, pids, "".join(lines)


def test_a_killed_rank_ends_the_job_and_a_rerun_resumes(tiny_run, longer, endless, tmp_path):
    proc, pids, before = start_three_ranks(tiny_run, tmp_path, [*longer, *endless])
    os.kill(pids[2], signal.SIGKILL)
    start = time.monotonic()
    output = before + proc.communicate(timeout=120)[0]
    assert proc.returncode != 0
    assert time.monotonic() - start < 8 + 30, "the job did not end promptly after a rank died"
    # mpiexec ends the job and reports a PID; the start-up lines map PIDs to ranks.
    assert "BAD TERMINATION" in output and f"rank 2 of 3: pid {pids[2]}" in output, output
    # The checkpoint is tied to neither worker_timeout nor the number of generations, which may be raised
    # to extend a run (wm/resume.py: MAY_DIFFER).
    resumed = train(tiny_run, tmp_path, ranks=3, extra=longer)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming" in resumed.stdout


def test_a_hanging_rank_is_named_within_the_timeout(tiny_run, longer, endless, tmp_path):
    """A rank that stops answering (here: frozen with SIGSTOP) is named after controller.worker_timeout
    seconds and the job is aborted, instead of waiting forever."""
    proc, pids, before = start_three_ranks(tiny_run, tmp_path, [*longer, *endless])
    rank = 2
    os.kill(pids[rank], signal.SIGSTOP)
    start = time.monotonic()
    output = before + proc.communicate(timeout=120)[0]
    assert proc.returncode != 0
    assert time.monotonic() - start < 8 + 30
    assert f"rank {rank} has been silent for 8 s (controller.worker_timeout)" in output, output


def test_bfloat16_encoder_rounds_z_and_nothing_else(tiny_run):
    """config encoder_dtype: bfloat16 runs V's encoder in bfloat16 when the agent drives. On 16 real
    frames of 4 tracks with the committed budget V, z moved by 0.0104 at most (mean 0.0014; z's
    std 0.56) on the Intel Xeon VM, 2026-12-03: bfloat16's 8-bit mantissa, not the CPU, sets
    that size, so the bound below (5x) holds on any CPU. z stays float32 for M and C. The knob is
    fingerprinted only off its default, so every earlier checkpoint still resumes."""
    from wm.stages.train_controller import run_fingerprint
    from wm.envs.car_racing import preprocess
    from wm.resume import differences

    budget = REPO / "docs" / "results" / "budget"
    frames = []
    for seed in range(4):
        env = gym.make("CarRacing-v3")
        obs, _ = env.reset(seed=seed)
        for t in range(60):
            obs, *_ = env.step(np.array([0.1 * np.sin(t / 5), 0.5, 0.0]))
            if t % 15 == 14:
                frames.append(preprocess(obs))
        env.close()
    frames, noise = np.stack(frames), np.zeros((16, 32), np.float32)
    z = {dtype: WorldModelAgent(load_vae(budget / "vae.pt"), load_mdn(budget / "mdn.pt"), "z_h", False,
                                dtype, env=CAR_RACING).encode(frames, noise) for dtype in ("float32", "bfloat16")}
    assert z["bfloat16"].dtype == torch.float32
    error = (z["bfloat16"] - z["float32"]).abs().max().item()
    assert 0 < error < 0.05, error
    with pytest.raises(ValueError, match="encoder_dtype is 'float16'"):
        WorldModelAgent(load_vae(budget / "vae.pt"), load_mdn(budget / "mdn.pt"), "z_h", False, "float16", env=CAR_RACING)

    config = load_config(tiny_args()[1::2])
    vae_path, mdn_path = tiny_run / "vae" / "model.pt", tiny_run / "mdn" / "model.pt"
    base = run_fingerprint(config, "z_h", vae_path, mdn_path)
    assert "encoder_dtype" not in base
    config["encoder_dtype"] = "bfloat16"
    assert differences(base, run_fingerprint(config, "z_h", vae_path, mdn_path)) == \
        ["encoder_dtype '(unset)' -> 'bfloat16'"]
