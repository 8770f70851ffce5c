"""Rollouts of controllers in the real environment, many at once.

A batch of environments steps in lockstep; V's encoder, M's LSTM and the controllers
run on the whole batch each step (each environment with its own controller
parameters). Episodes that end drop out of the batch. Everything random in an
episode (its track, the z noise) comes from that episode's own seeds, so its return
does not depend on which other episodes share its batch or which process runs it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from wm.controller.model import ACTION_DIM, act
from wm.envs import make_env, preprocess_batch
from wm.mdn.model import MDNRNN
from wm.vae.model import ConvVAE, to_input


@dataclass
class Episode:
    """One rollout to run: controller parameters, track seed, noise seed, and which
    (candidate, rollout) of a generation it is, for error messages and bookkeeping."""

    params: np.ndarray
    track_seed: int
    noise_seed: int
    candidate: int = 0
    rollout: int = 0


@dataclass
class EpisodeResult:
    total_return: float
    steps: int
    tiles: int  # track tiles visited
    ended_by: str  # "terminated", "truncated", "max_steps" or "no_progress"
    action_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # steer, gas, brake over the episode
    action_std: tuple[float, float, float] = (0.0, 0.0, 0.0)
    frames: np.ndarray | None = None  # the 96x96 observations, when recorded


class WorldModelAgent:
    """V + M + C for a batch of environments."""

    def __init__(self, vae: ConvVAE, mdn: MDNRNN, inputs: str, z_sample: bool):
        # channels_last runs the encoder's convolutions ~10% faster on the CPU too.
        self.vae = vae.eval().to(memory_format=torch.channels_last)
        self.mdn, self.inputs, self.z_sample = mdn.eval(), inputs, z_sample
        # Only the full model's C reads M's hidden state; the z-only C drives without running M.
        self.uses_memory = inputs == "z_h"

    @torch.inference_mode()
    def encode(self, frames: np.ndarray, noise: np.ndarray) -> torch.Tensor:
        x = to_input(torch.from_numpy(frames)).contiguous(memory_format=torch.channels_last)
        mu, logvar = self.vae.encode(x)
        if not self.z_sample:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.from_numpy(noise)

    @torch.inference_mode()
    def act(self, params: torch.Tensor, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        features = torch.cat([z, h], dim=1) if self.uses_memory else z
        return act(params, features)

    @torch.inference_mode()
    def remember(self, z: torch.Tensor, actions: torch.Tensor, state):
        return self.mdn.step(z, actions, state)


def run_batch(env_id: str, agent: WorldModelAgent, episodes: list[Episode], max_steps: int,
              no_progress_steps: int = 0, record: bool = False, envs: list | None = None,
              timings: dict[str, float] | None = None) -> list[EpisodeResult]:
    """Run every episode to its end, all in lockstep. `envs` may pass environments to reuse;
    `timings` (if given) accumulates seconds spent in env / preprocess / models."""
    envs = envs or [make_env(env_id) for _ in episodes]
    n = len(episodes)
    obs = np.stack([env.reset(seed=ep.track_seed)[0] for env, ep in zip(envs, episodes)])
    noise_rngs = [np.random.default_rng(ep.noise_seed) for ep in episodes]
    params = torch.from_numpy(np.stack([ep.params for ep in episodes]).astype(np.float32))
    hidden = agent.mdn.hidden
    state = (torch.zeros(1, n, hidden), torch.zeros(1, n, hidden))
    h = torch.zeros(n, hidden)
    returns, steps = np.zeros(n), np.zeros(n, dtype=int)
    last_tiles, last_progress = np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    action_sum, action_sq = np.zeros((n, ACTION_DIM)), np.zeros((n, ACTION_DIM))  # per-episode action statistics
    ended_by = [""] * n
    recorded = [[o] for o in obs] if record else None
    active = np.arange(n)  # indices of episodes still running; obs, h, state hold their rows only
    z_dim = agent.vae.z_dim
    clock = time.perf_counter
    spent = {"env": 0.0, "preprocess": 0.0, "models": 0.0}
    for t in range(max_steps):
        t0 = clock()
        frames = preprocess_batch(obs)
        t1 = clock()
        noise = np.stack([noise_rngs[i].standard_normal(z_dim, dtype=np.float32) for i in active])
        z = agent.encode(frames, noise)
        actions = agent.act(params[active], z, h)
        if agent.uses_memory:
            h, state = agent.remember(z, actions, state)
        action_array = actions.numpy().astype(np.float64)
        if not np.isfinite(action_array).all():
            # gymnasium's renderer raises on NaN; the fast env's rasteriser must never see one.
            raise FloatingPointError(f"non-finite action at step {t}: {action_array[~np.isfinite(action_array).all(1)][0]}")
        action_sum[active] += action_array
        action_sq[active] += action_array**2
        t2 = clock()
        spent["preprocess"] += t1 - t0
        spent["models"] += t2 - t1
        keep, next_obs = [], []
        for row, i in enumerate(active):
            t3 = clock()
            o, reward, terminated, truncated, _ = envs[i].step(action_array[row])
            spent["env"] += clock() - t3
            returns[i] += reward
            steps[i] += 1
            if record:
                recorded[i].append(o)
            tiles = envs[i].unwrapped.tile_visited_count
            if tiles > last_tiles[i]:
                last_tiles[i], last_progress[i] = tiles, t
            if terminated or truncated:
                ended_by[i] = "terminated" if terminated else "truncated"
            elif no_progress_steps and t - last_progress[i] >= no_progress_steps:
                ended_by[i] = "no_progress"
            else:
                keep.append(row)
                next_obs.append(o)
        if not keep:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep)
            h = h[index]
            state = (state[0][:, index], state[1][:, index])
            active = active[keep]
        obs = np.stack(next_obs)
    if timings is not None:
        for key, seconds in spent.items():
            timings[key] = timings.get(key, 0.0) + seconds
    mean = action_sum / np.maximum(steps, 1)[:, None]
    std = np.sqrt(np.maximum(action_sq / np.maximum(steps, 1)[:, None] - mean**2, 0.0))
    return [
        EpisodeResult(float(returns[i]), int(steps[i]), int(last_tiles[i]), ended_by[i] or "max_steps",
                      tuple(mean[i].round(4).tolist()), tuple(std[i].round(4).tolist()),
                      np.stack(recorded[i]) if record else None)
        for i in range(n)
    ]
