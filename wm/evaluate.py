"""`wm evaluate`: the trained agent on held-out tracks of gymnasium's CarRacing-v3, as the
paper reports it (mean and standard deviation of the return over 100 random tracks).

Outputs (in --out): returns.json (mean, std, per-episode returns, steps, seeds, config,
versions), histogram.png, and episode.gif of the first episode when evaluate.video is on."""

from __future__ import annotations

import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from wm.controller.distributed import run_with_evaluator
from wm.controller.evaluator import ChunkRunner, RolloutSettings
from wm.controller.rollout import Episode, WorldModelAgent, run_batch
from wm.files import atomic_path, load_checkpoint, versions, write_json
from wm.mdn.train import load_mdn
from wm.report import plot_histogram
from wm.seeding import derive_seed
from wm.vae.train import load_vae


EVALUATION_ENV = "CarRacing-v3"
ACTIONS = ("steer", "gas", "brake")


def load_controller(path: Path, vae, mdn) -> tuple[str, np.ndarray]:
    from wm.controller.model import parameter_count

    checkpoint = load_checkpoint(path, "controller")
    variant, params = checkpoint["variant"], checkpoint["params"].numpy()
    expected = parameter_count(variant, vae.z_dim, mdn.hidden)
    if params.shape != (expected,):
        raise ValueError(f"{path}: controller has {params.shape[0]} parameters, "
                         f"but a '{variant}' controller on this V and M needs {expected}")
    return variant, params


def evaluation_seeds(config: dict) -> tuple[list[int], list[int]]:
    count = config["evaluate"]["episodes"]
    return ([derive_seed(config["seed"], "evaluate_track", k) for k in range(count)],
            [derive_seed(config["seed"], "rollout_noise", 2 * 10**9, k) for k in range(count)])


def evaluate(config: dict, vae_path: Path, mdn_path: Path, controller_path: Path, out: Path) -> dict:
    if config["torch_threads"] == 0:
        torch.set_num_threads(1)
    settings = config["evaluate"]
    vae, mdn = load_vae(vae_path), load_mdn(mdn_path)
    variant, params = load_controller(controller_path, vae, mdn)
    agent = WorldModelAgent(vae, mdn, variant, config["controller"]["z_sample"])
    # Scores are always measured on gymnasium's own CarRacing-v3, as the paper reports them.
    runner = ChunkRunner(agent, RolloutSettings(EVALUATION_ENV, settings["max_steps"], 0,
                                                config["controller"]["envs_per_rank"]))
    tracks, noises = evaluation_seeds(config)
    return run_with_evaluator(runner, config["controller"]["worker_timeout"],
                              lambda evaluator: score(config, variant, params, agent, evaluator, tracks, noises,
                                                      controller_path, out))


def score(config, variant, params, agent, evaluator, tracks, noises, controller_path: Path, out: Path) -> dict:
    """Rank 0's part: run the held-out episodes on every rank, then write the results."""
    settings = config["evaluate"]
    start = time.perf_counter()
    _, results = evaluator.evaluate(params[None], tracks, noises, training=False, progress=f"evaluate {variant}")
    returns = [r.total_return for r in results]
    summary = {
        "variant": variant, "episodes": len(returns), "mean": float(np.mean(returns)), "std": float(np.std(returns)),
        "min": float(np.min(returns)), "max": float(np.max(returns)), "returns": returns,
        "steps": [r.steps for r in results], "tiles": [r.tiles for r in results],
        "ended_by": [r.ended_by for r in results], "track_seeds": tracks, "env_id": EVALUATION_ENV,
        # How the controller drives (a diagnostic: a constant action or a saturated gas shows here).
        "action_mean": dict(zip(ACTIONS, np.mean([r.action_mean for r in results], axis=0).round(4).tolist())),
        "action_std_within_episode": dict(zip(ACTIONS, np.mean([r.action_std for r in results], axis=0).round(4).tolist())),
        "seconds": round(time.perf_counter() - start, 1), "ranks": evaluator.ranks,
        "controller": str(controller_path),
        "config": config, "versions": versions(),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "returns.json", summary)
    plot_histogram(returns, out / "histogram.png",
                   f"{variant}: {len(returns)} held-out tracks, {summary['mean']:.0f} +- {summary['std']:.0f}")
    if settings["video"]:
        first = Episode(params, tracks[0], noises[0])
        recorded = run_batch(EVALUATION_ENV, agent, [first], settings["max_steps"], record=True)[0]
        with atomic_path(out / "episode.gif") as tmp:
            iio.imwrite(tmp, recorded.frames[::2], extension=".gif", duration=40, loop=0)
    print(f"evaluate [{variant}]: {summary['mean']:.1f} +- {summary['std']:.1f} over {len(returns)} tracks")
    return summary
