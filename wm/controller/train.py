"""`wm train-controller`: evolve C with CMA-ES (pycma's ask/tell), fitness = mean return
over `rollouts` tracks in the real environment minus the original code's L2 penalty.

Candidates of a generation share their tracks (common random numbers). After every
generation the whole optimizer state is checkpointed atomically; the same command
resumes from it and reproduces an uninterrupted run exactly. Outputs (in --out):
controller.pt (the CMA mean or the best candidate, per controller.eval_solution),
log.csv (one row per generation), curve.png; checkpoint.pkl while running."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import cma
import numpy as np
import torch

from wm.controller.diagnostics import diagnose
from wm.controller.distributed import run_with_evaluator
from wm.controller.evaluator import ChunkRunner, RolloutSettings
from wm.controller.model import controller_inputs, l2_penalty, parameter_count
from wm.controller.rollout import WorldModelAgent
from wm.files import atomic_path, file_digest, save_torch, versions, write_csv
from wm.mdn.train import load_mdn
from wm.report import plot_curves
from wm.seeding import derive_seed
from wm.vae.train import load_vae

VARIANTS = ["z_h", "z"]
LOG_FIELDS = ["generation", "best", "mean", "worst", "std", "sigma", "best_so_far", "heldout_mean",
              "heldout_std", "seconds", "frames", "ranks", "utilization"]


def fingerprint(config: dict, variant: str, vae_path: Path, mdn_path: Path) -> dict:
    """What a checkpoint must match to be resumed: same search space, same V and M, same seeds."""
    settings = config["controller"]
    return {
        "variant": variant, "parameters": parameter_count(variant), "seed": config["seed"],
        "popsize": settings["popsize"], "rollouts": settings["rollouts"], "sigma0": settings["sigma0"],
        "vae": file_digest(vae_path), "mdn": file_digest(mdn_path),
    }


def load_checkpoint(path: Path, expected: dict) -> dict | None:
    if not path.exists():
        return None
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except Exception as exc:
        raise ValueError(f"{path}: unreadable CMA-ES checkpoint ({type(exc).__name__}: {exc}); "
                         "delete it to start over") from None
    if state.get("fingerprint") != expected:
        found = state.get("fingerprint", {})
        diff = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
        raise ValueError(f"{path}: checkpoint is from another configuration ({json.dumps(diff)} as (found, expected)); "
                         "delete it or use its configuration")
    return state


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(state, f)


def new_state(config: dict, variant: str, expected: dict) -> dict:
    settings = config["controller"]
    n = parameter_count(variant)
    es = cma.CMAEvolutionStrategy(n * [0.0], settings["sigma0"], {
        "popsize": settings["popsize"], "seed": derive_seed(config["seed"], "cma", VARIANTS.index(variant)) % 2**32,
        "verbose": -9, "maxiter": 10**9,
    })
    return {"fingerprint": expected, "es": es, "generation": 0, "best_params": np.zeros(n),
            "best_fitness": -np.inf, "log": [], "numpy_random_state": np.random.get_state()}


def build_runner(config: dict, variant: str, vae_path: Path, mdn_path: Path) -> ChunkRunner:
    settings = config["controller"]
    vae, mdn = load_vae(vae_path), load_mdn(mdn_path)
    if vae.z_dim != mdn.z_dim:
        raise ValueError(f"{vae_path} has z_dim {vae.z_dim} but {mdn_path} was trained on z_dim {mdn.z_dim}")
    controller_inputs(variant, vae.z_dim, mdn.hidden)
    agent = WorldModelAgent(vae, mdn, variant, settings["z_sample"])
    return ChunkRunner(agent, RolloutSettings(config["env"]["id"], settings["max_steps"],
                                              settings["no_progress_steps"], settings["envs_per_rank"]))


def heldout_seeds(config: dict, count: int) -> tuple[list[int], list[int]]:
    return ([derive_seed(config["seed"], "heldout_track", k) for k in range(count)],
            [derive_seed(config["seed"], "rollout_noise", 10**9, k) for k in range(count)])


def run_generations(config: dict, variant: str, evaluator, state: dict, checkpoint: Path) -> dict:
    """The ask/tell loop; returns the final state."""
    settings = config["controller"]
    es: cma.CMAEvolutionStrategy = state["es"]
    np.random.set_state(state["numpy_random_state"])  # pycma samples from numpy's global generator
    start = time.perf_counter() - (state["log"][-1]["seconds"] if state["log"] else 0.0)
    while state["generation"] < settings["generations"]:
        generation = state["generation"]
        candidates = np.asarray(es.ask())
        tracks = [derive_seed(config["seed"], "train_track", generation, r) for r in range(settings["rollouts"])]
        noises = [derive_seed(config["seed"], "rollout_noise", generation, r) for r in range(settings["rollouts"])]
        busy_before = sum(evaluator.busy_seconds())
        wall_before = time.perf_counter()
        returns, results = evaluator.evaluate(candidates, tracks, noises, training=True)
        frames = sum(r.steps for r in results)
        # Share of the ranks' time spent running rollouts during this generation's evaluation.
        utilization = (sum(evaluator.busy_seconds()) - busy_before) / (evaluator.ranks * (time.perf_counter() - wall_before))
        fitness = returns.mean(axis=1) - np.array([l2_penalty(c, settings["l2_coefficient"]) for c in candidates])
        es.tell(list(candidates), list(-fitness))  # pycma minimises
        if fitness.max() > state["best_fitness"]:
            state["best_fitness"], state["best_params"] = float(fitness.max()), candidates[fitness.argmax()].copy()
        row = {"generation": generation + 1, "best": fitness.max(), "mean": fitness.mean(), "worst": fitness.min(),
               "std": fitness.std(), "sigma": es.sigma, "best_so_far": state["best_fitness"],
               "heldout_mean": float("nan"), "heldout_std": float("nan"),
               "seconds": round(time.perf_counter() - start, 2), "frames": frames,
               "ranks": evaluator.ranks, "utilization": round(utilization, 4)}
        if settings["eval_every"] and (generation + 1) % settings["eval_every"] == 0:
            solution = chosen_solution(state, settings["eval_solution"])
            held, _ = evaluator.evaluate(solution[None], *heldout_seeds(config, settings["eval_episodes"]),
                                         training=False, progress=f"held-out score, generation {generation + 1}")
            row["heldout_mean"], row["heldout_std"] = float(held.mean()), float(held.std())
        state["log"].append(row)
        record_generation(checkpoint.parent / "generations.jsonl", generation, tracks, returns, results)
        write_log(checkpoint.parent / "log.csv", state["log"])  # every generation, to watch a long run
        state["generation"] = generation + 1
        state["numpy_random_state"] = np.random.get_state()
        save_checkpoint(checkpoint, state)
        print(f"[{variant}] gen {generation + 1}/{settings['generations']}: best {row['best']:.1f} "
              f"mean {row['mean']:.1f} worst {row['worst']:.1f} sigma {es.sigma:.4f}"
              + (f" held-out {row['heldout_mean']:.1f} +- {row['heldout_std']:.1f}" if row["heldout_mean"] == row["heldout_mean"] else "")
              + f" ({row['seconds']:.0f} s, {frames} frames, {evaluator.ranks} ranks {utilization:.0%} busy)", flush=True)
    return state


def record_generation(path: Path, generation: int, tracks: list[int], returns: np.ndarray, results) -> None:
    """One JSON line per generation: its track seeds, every candidate's return on each, and how
    episodes ended. Lines past the checkpoint (from a run killed mid-generation) are dropped first."""
    lines = path.read_text().splitlines()[:generation] if path.exists() else []
    ended = {}
    for result in results:
        ended[result.ended_by] = ended.get(result.ended_by, 0) + 1
    lines.append(json.dumps({"generation": generation + 1, "track_seeds": tracks,
                             "returns": np.round(returns, 3).tolist(), "ended_by": ended,
                             "mean_steps": float(np.mean([r.steps for r in results]))}))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def write_log(path: Path, rows: list[dict]) -> None:
    write_csv(path, [{k: row[k] for k in LOG_FIELDS} for row in rows])


def chosen_solution(state: dict, which: str) -> np.ndarray:
    return np.asarray(state["es"].mean if which == "mean" else state["best_params"], dtype=np.float64)


def train_controller(config: dict, variant: str, vae_path: Path, mdn_path: Path, out: Path) -> None:
    """Under `mpiexec -n N` (or srun) rank 0 runs CMA-ES and all ranks evaluate; alone, one process does both."""
    if config["torch_threads"] == 0:
        torch.set_num_threads(1)  # parallelism comes from ranks; one thread each is fastest per core
    settings = config["controller"]
    runner = build_runner(config, variant, vae_path, mdn_path)

    def optimize(evaluator) -> None:
        out.mkdir(parents=True, exist_ok=True)
        checkpoint = out / "checkpoint.pkl"
        expected = fingerprint(config, variant, vae_path, mdn_path)
        state = load_checkpoint(checkpoint, expected)
        if state is None:
            state = new_state(config, variant, expected)
        else:
            print(f"train-controller: resuming {checkpoint} at generation {state['generation']}", flush=True)
        print(f"train-controller: {evaluator.ranks} rank(s), {parameter_count(variant)} parameters, "
              f"population {settings['popsize']} x {settings['rollouts']} rollouts", flush=True)
        state = run_generations(config, variant, evaluator, state, checkpoint)
        write_outputs(config, variant, state, out)

    run_with_evaluator(runner, settings["worker_timeout"], optimize)


def write_outputs(config: dict, variant: str, state: dict, out: Path) -> None:
    settings = config["controller"]
    write_log(out / "log.csv", state["log"])
    plot_curves(state["log"], "generation", ["best", "mean", "worst", "heldout_mean"], out / "curve.png",
                f"CMA-ES ({variant}): fitness per generation", "return")
    solution = chosen_solution(state, settings["eval_solution"])
    save_torch(out / "controller.pt", {
        "kind": "controller", "variant": variant, "params": torch.from_numpy(solution.copy()),
        "solution": settings["eval_solution"], "generations": state["generation"],
        "fingerprint": state["fingerprint"], "config": settings, "versions": versions(),
    })
    diagnose(out)
    print(f"train-controller: wrote {out / 'controller.pt'}")
