"""`wm evaluate`: the trained agent on held-out episodes of its environment's evaluation id (the
plug-in's: gymnasium's CarRacing-v3 for car_racing), as the paper reports it (mean and standard
deviation of the return over 100 episodes on seeds nothing else used).

Outputs (in --out): returns.json (mean, std, per-episode returns, steps, seeds, config,
versions), histogram.png, and episode.gif of the first episode when evaluate.video is on;
tensorboard/ (the returns' histogram, mean and std at step = the controller's CMA-ES generations,
so that evaluations of a run extended later line up as a curve: wm/metrics.py)."""

from __future__ import annotations

import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from wm.controller.model import Controller
from wm.envs import env_of
from wm.episodes.agent import WorldModelAgent, load_trained_agent
from wm.episodes.farm import run_farm
from wm.episodes.runner import ChunkRunner, Episode, EpisodeSettings, run_batch
from wm.files import atomic_path, file_digest, versions, write_json
from wm.metrics import metrics_writer
from wm.report import plot_histogram
from wm.runtime import numerics_signature, torch_threads
from wm.seeding import TRACK_SETS, seeds


def evaluation_seeds(config: dict, track_set: str = "evaluation") -> tuple[list[int], list[int]]:
    """The tracks of a named held-out set (and each episode's z noise)."""
    if track_set not in TRACK_SETS:
        raise ValueError(f"--tracks {track_set!r}: the track sets are {', '.join(TRACK_SETS)}")
    track_purpose, noise_purpose, count_key = TRACK_SETS[track_set]
    count = config["evaluate"][count_key]
    return seeds(config["seed"], track_purpose, count), seeds(config["seed"], noise_purpose, count)


def evaluation_runner(config: dict, agent: WorldModelAgent, env_id: str | None = None) -> ChunkRunner:
    """Scores are always measured on the plug-in's evaluation id (gymnasium's own CarRacing-v3), as the
    paper reports them (checks may pass another of its ids, such as CarRacing's pixel-identical twin),
    in lockstep batches of evaluate.envs_per_rank episodes, never ended early."""
    settings = config["evaluate"]
    env_id = agent.env.check_id(env_id or agent.env.evaluation_id)
    agent.env.check_steps(settings["max_steps"], "evaluate.max_steps")
    return ChunkRunner(agent, EpisodeSettings(env_id, settings["max_steps"], 0, settings["envs_per_rank"]))


def evaluate(config: dict, vae_path: Path, mdn_path: Path, controller_path: Path, out: Path,
             track_set: str = "evaluation") -> dict:
    torch.set_num_threads(torch_threads(config, per_rank=True))
    agent, controller = load_trained_agent(vae_path, mdn_path, controller_path, config["encoder_dtype"],
                                           env=env_of(config))
    runner = evaluation_runner(config, agent)
    tracks, noises = evaluation_seeds(config, track_set)
    return run_farm(runner, config["evaluate"]["worker_timeout"],
                    lambda farm: score(config, controller, agent, farm, tracks, noises, controller_path, out,
                                       track_set),
                    knob="evaluate.worker_timeout")


def evaluate_in_dream(config: dict, vae_path: Path, mdn_path: Path, controller_path: Path, latents: list[Path],
                      out: Path, track_set: str = "evaluation") -> dict:
    """The controller's dream score (the paper's "virtual score" beside the real one): the held-out set's
    episodes inside M's dream at controller.dream_temperature, started from `latents`' first frames, in
    chunks of controller.dream_batch, to controller.dream_max_steps or M's done head. No real frame."""
    from wm.episodes.dream import run_dream_batch
    from wm.mdn.dream_env import DreamEnv, first_frames
    from wm.runtime import dream_device

    torch.set_num_threads(torch_threads(config, per_rank=False))
    plugin, settings = env_of(config), config["controller"]
    agent, controller = load_trained_agent(vae_path, mdn_path, controller_path, config["encoder_dtype"], env=plugin)
    env = DreamEnv(agent.mdn, first_frames(latents), settings["dream_temperature"], settings["dream_done_threshold"],
                   dream_device(config), step_reward=plugin.step_reward)
    tracks, noises = evaluation_seeds(config, track_set)
    episodes = [Episode(controller.params, track, noise) for track, noise in zip(tracks, noises)]
    start, results = time.perf_counter(), []
    for b in range(0, len(episodes), settings["dream_batch"]):
        results += run_dream_batch(env, plugin, controller.variant, episodes[b : b + settings["dream_batch"]],
                                   settings["dream_max_steps"])
    returns = [r.total_return for r in results]
    summary = {
        "variant": controller.variant, "track_set": f"dream ({track_set} seeds)", "episodes": len(returns),
        "mean": float(np.mean(returns)), "std": float(np.std(returns)), "min": float(np.min(returns)),
        "max": float(np.max(returns)), "returns": returns, "steps": [r.steps for r in results],
        "ended_by": [r.ended_by for r in results], "track_seeds": tracks, "env": plugin.name,
        "dream_temperature": settings["dream_temperature"], "dream_max_steps": settings["dream_max_steps"],
        "dream_batch": settings["dream_batch"], "seconds": round(time.perf_counter() - start, 1),
        "numerics": numerics_signature(), "controller": str(controller_path),
        "controller_sha256": file_digest(controller_path), "controller_training": controller.training,
        "dream_starts": [str(p) for p in latents], "config": config, "versions": versions(),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "returns.json", summary)
    plot_histogram(returns, out / "histogram.png", f"{controller.variant} in M's dream at tau "
                   f"{settings['dream_temperature']}: {summary['mean']:.0f} +- {summary['std']:.0f}")
    print(f"evaluate [{controller.variant}] in M's dream at tau {settings['dream_temperature']}: "
          f"{summary['mean']:.1f} +- {summary['std']:.1f} over {len(returns)} dreams")
    return summary


def evaluate_random_policy(config: dict, out: Path, track_set: str = "evaluation") -> dict:
    """The baseline: collect.policy, one of the plug-in's random data policies, on the held-out set's
    seeds (each episode's policy drawn from its noise seed), on the evaluation id, to evaluate.max_steps."""
    from wm.stages.collect import make_policy, run_episode
    from wm.metrics import progress

    plugin, settings = env_of(config), config["evaluate"]
    name = config["collect"]["policy"]
    if name not in plugin.random_policies:
        raise ValueError(f"collect.policy {name!r} is not a random data policy of env.name {plugin.name!r} "
                         f"(its policies: {', '.join(plugin.random_policies)})")
    plugin.check_steps(settings["max_steps"], "evaluate.max_steps")
    tracks, noises = evaluation_seeds(config, track_set)
    env = plugin.make(plugin.evaluation_id)
    returns, steps, start = [], [], time.perf_counter()
    for track, noise in progress(list(zip(tracks, noises)), desc=f"evaluate {name} ({track_set})", unit="episode"):
        policy = make_policy(plugin, config["collect"], np.random.default_rng(noise))
        episode, _ = run_episode(plugin, env, track, policy, settings["max_steps"])
        returns.append(float(episode["rewards"].astype(np.float64).sum()))
        steps.append(len(episode["rewards"]))
    env.close()
    summary = {
        "variant": f"random:{name}", "track_set": track_set, "episodes": len(returns),
        "mean": float(np.mean(returns)), "std": float(np.std(returns)),
        "min": float(np.min(returns)), "max": float(np.max(returns)), "returns": returns, "steps": steps,
        "track_seeds": tracks, "env": plugin.name, "env_id": plugin.evaluation_id,
        "policy": {"name": name, **plugin.policy_parameters(name, config["collect"])},
        "seconds": round(time.perf_counter() - start, 1), "config": config, "versions": versions(),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "returns.json", summary)
    plot_histogram(returns, out / "histogram.png",
                   f"random policy {name}: {len(returns)} {track_set} episodes, {summary['mean']:.0f} +- {summary['std']:.0f}")
    print(f"evaluate-random [{name}]: {summary['mean']:.1f} +- {summary['std']:.1f} over {len(returns)} {track_set} episodes")
    return summary


def score(config, controller: Controller, agent, farm, tracks, noises, controller_path: Path, out: Path,
          track_set: str) -> dict:
    """Rank 0's part: run the held-out episodes on every rank, then write the results."""
    settings = config["evaluate"]
    variant, params = controller.variant, controller.params
    actions = agent.env.action_names
    start = time.perf_counter()
    _, results = farm.evaluate(params[None], tracks, noises, training=False,
                               progress=f"evaluate {variant} ({track_set})")
    returns = [r.total_return for r in results]
    summary = {
        "variant": variant, "track_set": track_set, "episodes": len(returns),
        "mean": float(np.mean(returns)), "std": float(np.std(returns)),
        "min": float(np.min(returns)), "max": float(np.max(returns)), "returns": returns,
        "steps": [r.steps for r in results], "tiles": [r.tiles for r in results],
        "ended_by": [r.ended_by for r in results], "track_seeds": tracks,
        "env": agent.env.name, "env_id": agent.env.evaluation_id,
        "encoder_dtype": config["encoder_dtype"],
        # How the controller drives (a diagnostic: a constant action or a saturated gas shows here).
        "action_mean": dict(zip(actions, np.mean([r.action_mean for r in results], axis=0).round(4).tolist())),
        "action_std_within_episode": dict(zip(actions, np.mean([r.action_std for r in results], axis=0).round(4).tolist())),
        "seconds": round(time.perf_counter() - start, 1), "ranks": farm.ranks,
        "envs_per_rank": settings["envs_per_rank"], "z_sample": agent.z_sample,
        # What decides the bits of these returns (rank 0's; the ranks of one job share a node kind).
        "numerics": numerics_signature(),
        # How the scored controller was trained, not only where its file lies.
        "controller": str(controller_path), "controller_sha256": file_digest(controller_path),
        "controller_training": controller.training,
        "config": config, "versions": versions(),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "returns.json", summary)
    plot_histogram(returns, out / "histogram.png",
                   f"{variant}: {len(returns)} {track_set} tracks, {summary['mean']:.0f} +- {summary['std']:.0f}")
    # An evaluation is not resumed but redone: this one replaces any written at its step or later.
    step = controller.generations
    with metrics_writer(config, out, first_step=step) as metrics:
        metrics.histogram("evaluate/returns", returns, step)
        metrics.scalars(step, {"mean": summary["mean"], "std": summary["std"]}, prefix="evaluate")
    if settings["video"]:
        first = Episode(params, tracks[0], noises[0])
        recorded = run_batch(agent.env.evaluation_id, agent, [first], settings["max_steps"], record=True)[0]
        with atomic_path(out / "episode.gif") as tmp:
            iio.imwrite(tmp, recorded.frames[::2], extension=".gif", duration=40, loop=0)
    print(f"evaluate [{variant}]: {summary['mean']:.1f} +- {summary['std']:.1f} over {len(returns)} {track_set} tracks")
    return summary
