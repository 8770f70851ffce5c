"""Controllers driving inside M's dream (wm/mdn/dream_env.py): the dream twin of runner.py.

run_dream_batch runs a chunk of episodes (each with its own controller parameters, as in the real
runner) in lockstep in a DreamEnv and returns the same EpisodeResults, so the farm, CMA-ES's
ask/tell loop, its logs and checkpoints run unchanged on dream fitness. DreamRunner is the chunk
runner `wm train-controller` uses with controller.environment: dream: training chunks run in the
dream, the periodic held-out score's chunks (training=False) in the real environment."""

from __future__ import annotations

import time

import numpy as np
import torch

from wm.controller.model import act, features
from wm.envs import EnvPlugin
from wm.episodes.runner import ChunkRunner, Episode, EpisodeResult, checked_results
from wm.mdn.dream_env import DreamEnv
from wm.seeding import derive_seed


def dream_seed(episode: Episode) -> int:
    """The seed of one dream episode's random numbers, from its track and noise seeds: the episodes
    of one (generation, rollout) share it across candidates, as they share a real track."""
    return derive_seed(episode.track_seed, "dream", episode.noise_seed)


@torch.inference_mode()
def run_dream_batch(env: DreamEnv, plugin: EnvPlugin, variant: str, episodes: list[Episode],
                    max_steps: int) -> list[EpisodeResult]:
    """Every episode to its end (M's done head, or max_steps), all in lockstep; ended episodes drop
    out of the batch. C's outputs become actions as in `plugin`'s real environment."""
    n = len(episodes)
    z = env.reset([dream_seed(ep) for ep in episodes])
    params = torch.from_numpy(np.stack([ep.params for ep in episodes]).astype(np.float32)).to(env.device)
    returns, steps = torch.zeros(n, dtype=torch.float64), np.zeros(n, dtype=int)
    action_sum, action_sq = np.zeros((n, plugin.action_dim)), np.zeros((n, plugin.action_dim))
    ended_by = [""] * n
    active = np.arange(n)
    for t in range(max_steps):
        actions = act(params[torch.from_numpy(active).to(env.device)], features(variant, z, env.h, env.c),
                      plugin.to_action)
        z, reward, done = env.step(actions)
        action_array = actions.cpu().numpy().astype(np.float64)
        action_sum[active] += action_array
        action_sq[active] += action_array**2
        returns[torch.from_numpy(active)] += reward.double().cpu()
        steps[active] += 1
        done = done.cpu().numpy()
        for row in np.flatnonzero(done):
            ended_by[active[row]] = "terminated"
        keep = np.flatnonzero(~done)
        if not len(keep):
            break
        if len(keep) < len(active):
            env.keep(torch.from_numpy(keep))
            z = env.z
            active = active[keep]
    mean = action_sum / np.maximum(steps, 1)[:, None]
    std = np.sqrt(np.maximum(action_sq / np.maximum(steps, 1)[:, None] - mean**2, 0.0))
    return [EpisodeResult(float(returns[i]), int(steps[i]), 0, ended_by[i] or "max_steps",
                          tuple(mean[i].round(4).tolist()), tuple(std[i].round(4).tolist()))
            for i in range(n)]


class DreamRunner:
    """ChunkRunner's interface (chunk_size, run, busy_seconds) for the farm: training chunks of
    `dream_batch` (controller.dream_batch) episodes of at most `dream_max_steps` steps in the dream;
    other chunks (the held-out score) through `real`, a ChunkRunner in the real environment, at its
    own batch size, so they are the real path's chunks."""

    def __init__(self, env: DreamEnv, variant: str, dream_batch: int, dream_max_steps: int, real: ChunkRunner):
        self.env, self.variant, self.real = env, variant, real
        self.dream_batch, self.dream_max_steps = dream_batch, dream_max_steps
        self.busy_seconds = 0.0

    def chunk_size(self, training: bool) -> int:
        return self.dream_batch if training else self.real.chunk_size(training)

    def run(self, chunk: list[Episode], training: bool = True) -> list[EpisodeResult]:
        start = time.perf_counter()
        if not training:
            results = self.real.run(chunk, training)
            self.busy_seconds += time.perf_counter() - start
            return results
        results = checked_results(chunk, "dream rollout",
                                  lambda: run_dream_batch(self.env, self.real.agent.env, self.variant, chunk,
                                                          self.dream_max_steps))
        self.busy_seconds += time.perf_counter() - start
        return results
