"""`wm train-controller`: evolve C with CMA-ES (pycma's ask/tell), fitness = mean return
over `rollouts` tracks in the real environment minus the original code's L2 penalty.
With controller.environment: dream the rollouts run inside M instead (wm/episodes/dream.py:
M's reward and done heads, temperature controller.dream_temperature, starts from --latents' first
frames); the same loop, checkpoints and logs, and the periodic held-out score still in the real
environment, so log.csv shows how the dream's controller transfers (its `frames` then counts dream
steps).

Candidates of a generation share their tracks (common random numbers). After every
generation the whole optimizer state is checkpointed atomically; the same command
resumes from it and reproduces an uninterrupted run exactly, and raising
controller.generations extends a finished run (the resume rule: wm/resume.py).
Outputs (in --out): controller.pt (the CMA mean or the best candidate, per
controller.eval_solution), log.csv (one row per generation), curve.png,
generations.jsonl, diagnostics; checkpoint.pkl, kept to extend the run; tensorboard/ (log.csv's
columns and frames/s per generation as TensorBoard scalars: wm/metrics.py)."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import cma
import numpy as np
import torch

from wm.stages.diagnostics import diagnose
from wm.controller import VARIANTS
from wm.controller.model import l2_penalty, load_controller, parameter_count
from wm.envs import env_of
from wm.episodes.agent import load_agent
from wm.episodes.farm import run_farm
from wm.episodes.runner import ChunkRunner, EpisodeSettings
from wm.files import atomic_path, file_digest, save_torch, versions, write_csv
from wm.metrics import MetricsWriter, duration, metrics_writer
from wm.report import plot_curves
from wm.resume import ResumeError, check_length, env_record, fingerprint, load_resumable, recorded_settings, stores_digest
from wm.rollouts.readers import open_stores
from wm.runtime import dream_device, numerics_signature, torch_threads
from wm.seeding import derive_seed, seeds

LOG_FIELDS = ["generation", "best", "mean", "worst", "std", "sigma", "best_so_far", "heldout_mean",
              "heldout_std", "seconds", "frames", "ranks", "utilization"]


def init_path(config: dict, variant: str) -> Path | None:
    """controller.init: None for the paper's zeros, else the warm start's checkpoint for this variant."""
    init = config["controller"]["init"]
    return None if init == "zeros" else Path(init.format(variant=variant))


def controller_size(config: dict, variant: str) -> int:
    """C's parameter count for this run's V (vae.z_dim), M (mdn.hidden) and environment's actions."""
    return parameter_count(variant, config["vae"]["z_dim"], config["mdn"]["hidden"], env_of(config).action_dim,
                           config["controller"]["bias"])


def run_fingerprint(config: dict, variant: str, vae_path: Path, mdn_path: Path,
                    latents: list[Path] | None = None) -> dict:
    """What a checkpoint must match to be resumed (wm/resume.py): every controller setting but the
    few that may differ, the env, the exact V, M and warm start, and the thread count (rounding).
    A dream run adds its first frames' content (`latents`) and the device the dream runs on; a real
    run has neither key, so its fingerprint is what it was before dreams existed."""
    init = init_path(config, variant)
    dream = {"dream_starts": stores_digest(open_stores(latents, "latents")),
             "dream_device": dream_device(config).type} if latents else {}
    return fingerprint(config, "controller", variant=variant, parameters=controller_size(config, variant),
                       env_id=config["env"]["id"], **env_record(config),
                       vae=file_digest(vae_path), mdn=file_digest(mdn_path),
                       torch_threads=torch.get_num_threads(),
                       # the warm start by content, not by where it lies
                       **{"controller.init": file_digest(init) if init else "zeros"}, **dream,
                       **recorded_settings({"encoder_dtype": config["encoder_dtype"]}))


def read_checkpoint(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f)


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(state, f)


def initial_mean(config: dict, variant: str) -> np.ndarray:
    """The search's starting point: zeros (the paper), or a trained controller's parameters."""
    n = controller_size(config, variant)
    init = init_path(config, variant)
    if init is None:
        return np.zeros(n)
    start = load_controller(init, config["vae"]["z_dim"], config["mdn"]["hidden"], env_of(config).action_dim,
                            config["env"]["name"])
    if start.variant != variant:
        raise ValueError(f"controller.init: {init} is a '{start.variant}' controller, not '{variant}'")
    return start.params.astype(np.float64)


def new_state(config: dict, variant: str, expected: dict) -> dict:
    settings = config["controller"]
    mean = initial_mean(config, variant)
    es = cma.CMAEvolutionStrategy(list(mean), settings["sigma0"], {
        "popsize": settings["popsize"], "seed": derive_seed(config["seed"], "cma", VARIANTS.index(variant)) % 2**32,
        "verbose": -9, "maxiter": 10**9,
    })
    return {"fingerprint": expected, "es": es, "generation": 0, "best_params": mean.copy(),
            "best_fitness": -np.inf, "log": [], "numpy_random_state": np.random.get_state()}


def build_runner(config: dict, variant: str, vae_path: Path, mdn_path: Path, latents: list[Path] | None = None):
    """The farm's chunk runner: real rollouts (ChunkRunner), or with controller.environment: dream a
    DreamRunner (dream training rollouts from `latents`' first frames, real held-out ones)."""
    settings = config["controller"]
    plugin = env_of(config)
    plugin.check_steps(settings["max_steps"], "controller.max_steps")
    agent = load_agent(vae_path, mdn_path, variant, settings["z_sample"], config["encoder_dtype"], env=plugin)
    real = ChunkRunner(agent, EpisodeSettings(plugin.check_id(config["env"]["id"]), settings["max_steps"],
                                              settings["no_progress_steps"], settings["envs_per_rank"]))
    if settings["environment"] == "real":
        return real
    from wm.episodes.dream import DreamRunner
    from wm.mdn.dream_env import DreamEnv, first_frames

    env = DreamEnv(agent.mdn, first_frames(latents), settings["dream_temperature"],
                   settings["dream_done_threshold"], dream_device(config), step_reward=plugin.step_reward)
    return DreamRunner(env, variant, settings["dream_batch"], settings["dream_max_steps"], real)


def heldout_seeds(config: dict, count: int) -> tuple[list[int], list[int]]:
    """The fixed tracks (and z noise) of the periodic held-out score."""
    return seeds(config["seed"], "heldout_track", count), seeds(config["seed"], "heldout_noise", count)


def run_generations(config: dict, variant: str, farm, state: dict, checkpoint: Path,
                    metrics: MetricsWriter | None = None) -> dict:
    """The ask/tell loop; returns the final state. `metrics` gets each generation's log.csv row as
    TensorBoard scalars (step = generation) before the checkpoint that holds it."""
    settings = config["controller"]
    if metrics is None:
        metrics = MetricsWriter(checkpoint.parent, enabled=False)
    es: cma.CMAEvolutionStrategy = state["es"]
    np.random.set_state(state["numpy_random_state"])  # pycma samples from numpy's global generator
    start = time.perf_counter() - (state["log"][-1]["seconds"] if state["log"] else 0.0)
    began, first_generation = time.perf_counter(), state["generation"]
    while state["generation"] < settings["generations"]:
        generation = state["generation"]
        candidates = np.asarray(es.ask())
        tracks = seeds(config["seed"], "train_track", settings["rollouts"], generation)
        noises = seeds(config["seed"], "train_noise", settings["rollouts"], generation)
        busy_before = sum(farm.busy_seconds())
        wall_before = time.perf_counter()
        returns, results = farm.evaluate(candidates, tracks, noises, training=True,
                                         progress=f"[{variant}] gen {generation + 1}/{settings['generations']}")
        frames = sum(r.steps for r in results)
        # Share of the ranks' time spent running rollouts during this generation's evaluation.
        utilization = (sum(farm.busy_seconds()) - busy_before) / (farm.ranks * (time.perf_counter() - wall_before))
        fitness = returns.mean(axis=1) - np.array([l2_penalty(c, settings["l2_coefficient"]) for c in candidates])
        es.tell(list(candidates), list(-fitness))  # pycma minimises
        if fitness.max() > state["best_fitness"]:
            state["best_fitness"], state["best_params"] = float(fitness.max()), candidates[fitness.argmax()].copy()
        row = {"generation": generation + 1, "best": fitness.max(), "mean": fitness.mean(), "worst": fitness.min(),
               "std": fitness.std(), "sigma": es.sigma, "best_so_far": state["best_fitness"],
               "heldout_mean": float("nan"), "heldout_std": float("nan"),
               "seconds": round(time.perf_counter() - start, 2), "frames": frames,
               "ranks": farm.ranks, "utilization": round(utilization, 4)}
        if settings["eval_every"] and (generation + 1) % settings["eval_every"] == 0:
            solution = chosen_solution(state, settings["eval_solution"])
            # training=False: in the real environment, cut as the real path cuts it, also when training dreams.
            held, _ = farm.evaluate(solution[None], *heldout_seeds(config, settings["eval_episodes"]),
                                    training=False, progress=f"held-out score, generation {generation + 1}")
            row["heldout_mean"], row["heldout_std"] = float(held.mean()), float(held.std())
        metrics.scalars(generation + 1, tensorboard_scalars(row, state["log"][-1] if state["log"] else None),
                        prefix="controller")
        state["log"].append(row)
        record_generation(checkpoint.parent / "generations.jsonl", generation, tracks, returns, results)
        write_log(checkpoint.parent / "log.csv", state["log"])  # every generation, to watch a long run
        state["generation"] = generation + 1
        state["numpy_random_state"] = np.random.get_state()
        metrics.flush()  # before the checkpoint that holds this generation (wm/metrics.py)
        save_checkpoint(checkpoint, state)
        left = (time.perf_counter() - began) / (state["generation"] - first_generation) \
            * (settings["generations"] - state["generation"])
        print(f"[{variant}] gen {generation + 1}/{settings['generations']}: best {row['best']:.1f} "
              f"mean {row['mean']:.1f} worst {row['worst']:.1f} sigma {es.sigma:.4f}"
              + (f" held-out {row['heldout_mean']:.1f} +- {row['heldout_std']:.1f}" if row["heldout_mean"] == row["heldout_mean"] else "")
              + f" ({row['seconds']:.0f} s, {frames} frames, {farm.ranks} ranks {utilization:.0%} busy; "
              f"~{duration(left)} left)", flush=True)
    return state


def tensorboard_scalars(row: dict, previous: dict | None) -> dict:
    """Every numeric column of a log.csv row but the step itself, and frames/s: the generation's
    training frames over its seconds (held-out scoring included: the wall time a generation took).
    The held-out score only in the generations that measured it (MetricsWriter skips NaN)."""
    seconds = row["seconds"] - (previous["seconds"] if previous else 0.0)
    return {**{k: row[k] for k in LOG_FIELDS if k != "generation"},
            "frames_per_second": row["frames"] / seconds if seconds > 0 else float("nan")}


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


def run_latents(config: dict, latents: list[Path] | None) -> list[Path] | None:
    """The dream's starting latents, None for a real run (whose fingerprint has no dream keys); sets the
    run's torch thread count, which the fingerprint records."""
    torch.set_num_threads(torch_threads(config, per_rank=True))
    return latents if config["controller"]["environment"] == "dream" else None


def saved_state(config: dict, variant: str, vae_path: Path, mdn_path: Path, out: Path,
                latents: list[Path] | None) -> tuple[Path, dict, dict | None]:
    """The run's checkpoint path, the fingerprint it must hold and the state saved there (None if none)."""
    checkpoint = out / "checkpoint.pkl"
    expected = run_fingerprint(config, variant, vae_path, mdn_path, latents)
    return checkpoint, expected, load_resumable(checkpoint, expected, read_checkpoint)


def train_controller(config: dict, variant: str, vae_path: Path, mdn_path: Path, out: Path,
                     latents: list[Path] | None = None) -> None:
    """Under `mpiexec -n N` (or srun) rank 0 runs CMA-ES and all ranks evaluate; alone, one process does both.
    `latents`: the stores whose first frames start the dreams (controller.environment: dream only)."""
    settings = config["controller"]
    if settings["environment"] == "dream" and not latents:
        raise ValueError("controller.environment: dream starts its rollouts from real first frames: "
                         "pass the latents stores with --latents")
    latents = run_latents(config, latents)
    runner = build_runner(config, variant, vae_path, mdn_path, latents)

    def optimize(farm) -> None:
        checkpoint, expected, state = saved_state(config, variant, vae_path, mdn_path, out, latents)
        if state is None:
            state = new_state(config, variant, expected)
        else:
            check_length(checkpoint, state["generation"], config, "controller")
            print(f"train-controller: resuming {checkpoint} at generation {state['generation']} "
                  f"of {settings['generations']}", flush=True)
        state["numerics"] = numerics_signature()
        out.mkdir(parents=True, exist_ok=True)
        print(f"train-controller: {farm.ranks} rank(s), {controller_size(config, variant)} parameters, "
              f"population {settings['popsize']} x {settings['rollouts']} rollouts"
              + (f" in M's dream (temperature {settings['dream_temperature']}, batches of {settings['dream_batch']}; "
                 "held-out score in the real environment)" if settings["environment"] == "dream" else ""), flush=True)
        # TensorBoard (wm/metrics.py), on rank 0 only (this body runs there): a resumed run writes from
        # the generation after its checkpoint's on.
        with metrics_writer(config, out, first_step=state["generation"] + 1) as metrics:
            state = run_generations(config, variant, farm, state, checkpoint, metrics)
        write_outputs(config, variant, state, out)

    run_farm(runner, settings["worker_timeout"], optimize, knob="controller.worker_timeout")


def write_outputs(config: dict, variant: str, state: dict, out: Path) -> None:
    write_log(out / "log.csv", state["log"])
    plot_curves(state["log"], "generation", ["best", "mean", "worst", "heldout_mean"], out / "curve.png",
                f"CMA-ES ({variant}): fitness per generation", "return")
    save_controller(config, variant, state, out / "controller.pt")
    diagnose(out)
    print(f"train-controller: wrote {out / 'controller.pt'}")


def save_controller(config: dict, variant: str, state: dict, path: Path) -> None:
    """The CMA mean or the best candidate (controller.eval_solution) at the state's generation."""
    settings = config["controller"]
    solution = chosen_solution(state, settings["eval_solution"])
    save_torch(path, {
        "kind": "controller", "variant": variant, "params": torch.from_numpy(solution.copy()),
        "solution": settings["eval_solution"], "generations": state["generation"],
        "fingerprint": state["fingerprint"], "config": settings, **env_record(config), "versions": versions(),
    })


def export_controller(config: dict, variant: str, vae_path: Path, mdn_path: Path, out: Path, to: Path,
                      latents: list[Path] | None = None) -> None:
    """The controller of a stopped or running train-controller folder `out` at its last checkpointed
    generation, written to `to` as the finished run would write controller.pt: to score a run midway
    (`wm evaluate`) without ending or extending it. Same arguments as the run's, so that the checkpoint is
    checked against them as a resume would check it; nothing in `out` is written."""
    checkpoint, _, state = saved_state(config, variant, vae_path, mdn_path, out, run_latents(config, latents))
    if state is None:
        raise ResumeError(f"{checkpoint}: no checkpoint to export (train-controller writes one every generation)")
    save_controller(config, variant, state, to)
    print(f"export-controller: wrote {to} (the CMA {config['controller']['eval_solution']} of {checkpoint} "
          f"at generation {state['generation']})")
