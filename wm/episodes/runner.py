"""The batched episode runner: many agent episodes in the real environment at once.

A batch of environments steps in lockstep; V's encoder, M's LSTM and the controllers
run on the whole batch each step (each environment with its own controller
parameters). Episodes that end drop out of the batch. Everything random in an
episode (its track, the z noise) comes from that episode's own seeds.

Work is cut into fixed chunks of `envs_per_rank` episodes, each run as one lockstep
batch. A chunk's results depend only on its contents, so any number of processes (MPI
ranks, see farm.py) gives the same returns as one. (Which episodes share a batch does
change the rounding of the batched matrix products, and driving amplifies it: the
chunking is part of a result, docs/numerics.md.)"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from wm.envs import EnvPlugin
from wm.episodes.agent import WorldModelAgent


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
    tiles: int  # the environment's progress count at the end (CarRacing: track tiles visited; else 0)
    ended_by: str  # "terminated", "truncated", "max_steps" or "no_progress"
    action_mean: tuple[float, ...] = ()  # each of the environment's actions, over the episode
    action_std: tuple[float, ...] = ()
    frames: np.ndarray | None = None  # the raw observations, when recorded


def run_batch(env_id: str, agent: WorldModelAgent, episodes: list[Episode], max_steps: int,
              no_progress_steps: int = 0, record: bool = False, envs: list | None = None,
              timings: dict[str, float] | None = None, agent_view: bool = True,
              clock=time.perf_counter) -> list[EpisodeResult]:
    """Run every episode to its end, all in lockstep. `envs` may pass environments to reuse;
    `timings` (if given) accumulates seconds spent in env / preprocess / models, read from
    `clock` (benchmarks pass time.thread_time on a shared machine). `agent_view` False makes
    V's frames come from preprocess of the full frames even on the fast env (the same bytes,
    slower; for benchmarks)."""
    envs = envs or [agent.env.make(env_id) for _ in episodes]
    n = len(episodes)
    # The fast env's agent view: each step also leaves the frame V sees, preprocess(observation),
    # drawn without the indicator bar the crop drops (byte-identical; docs/fast_env.md). Off when
    # the 96x96 frames are recorded, and for gymnasium's env.
    agent_view = agent_view and not record and all(hasattr(env.unwrapped, "agent_view") for env in envs[:n])
    previous_views = [env.unwrapped.agent_view for env in envs[:n]] if agent_view else []
    for env in envs[:n] if agent_view else ():
        env.unwrapped.agent_view = True
    try:
        return _run_batch(envs, agent, episodes, max_steps, no_progress_steps, record, timings, agent_view, clock)
    finally:
        for env, previous in zip(envs, previous_views):
            env.unwrapped.agent_view = previous


def _run_batch(envs, agent, episodes, max_steps, no_progress_steps, record, timings, agent_view, clock):
    n = len(episodes)
    plugin: EnvPlugin = agent.env
    if no_progress_steps and plugin.progress is None:
        raise ValueError(f"controller.no_progress_steps needs a progress count, which env.name {plugin.name!r} lacks")
    obs = [env.reset(seed=ep.track_seed)[0] for env, ep in zip(envs, episodes)]
    if not agent_view:
        obs = np.stack(obs)
    noise_rngs = [np.random.default_rng(ep.noise_seed) for ep in episodes]
    params = torch.from_numpy(np.stack([ep.params for ep in episodes]).astype(np.float32))
    hidden = agent.mdn.hidden
    state = (torch.zeros(1, n, hidden), torch.zeros(1, n, hidden))
    h = torch.zeros(n, hidden)
    returns, steps = np.zeros(n), np.zeros(n, dtype=int)
    last_tiles, last_progress = np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    action_sum, action_sq = np.zeros((n, plugin.action_dim)), np.zeros((n, plugin.action_dim))  # per episode
    ended_by = [""] * n
    recorded = [[o] for o in obs] if record else None
    active = np.arange(n)  # indices of episodes still running; obs, h, state hold their rows only
    z_dim = agent.vae.z_dim
    spent = {"env": 0.0, "preprocess": 0.0, "models": 0.0}
    for t in range(max_steps):
        t0 = clock()
        if agent_view:
            frames = np.stack([envs[i].unwrapped.agent_frame for i in active])
        else:
            frames = plugin.preprocess_batch(obs)
        t1 = clock()
        noise = np.stack([noise_rngs[i].standard_normal(z_dim, dtype=np.float32) for i in active])
        z = agent.encode(frames, noise)
        actions = agent.act(params[active], z, h, state)
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
            tiles = plugin.progress(envs[i]) if plugin.progress else 0
            if tiles > last_tiles[i]:
                last_tiles[i], last_progress[i] = tiles, t
            if terminated or truncated:
                ended_by[i] = "terminated" if terminated else "truncated"
            elif no_progress_steps and t - last_progress[i] >= no_progress_steps:
                ended_by[i] = "no_progress"
            else:
                keep.append(row)
                if not agent_view:
                    next_obs.append(o)
        if not keep:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep)
            h = h[index]
            state = (state[0][:, index], state[1][:, index])
            active = active[keep]
        if not agent_view:
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


@dataclass
class EpisodeSettings:
    """How a chunk's episodes run: the env id (one of the agent's plug-in's ids), the step limit, early
    termination (training only) and the lockstep batch size."""

    env_id: str
    max_steps: int
    no_progress_steps: int
    envs_per_rank: int


class EpisodeError(RuntimeError):
    """An episode that raised or returned a non-finite value; names its candidate and seed."""


def make_chunks(candidates: np.ndarray, track_seeds: list[int], noise_seeds: list[int],
                envs_per_rank: int) -> list[list[Episode]]:
    """Every (candidate, rollout) pair in candidate-major order, cut into chunks of `envs_per_rank`."""
    episodes = [Episode(params, track, noise, c, r)
                for c, params in enumerate(candidates)
                for r, (track, noise) in enumerate(zip(track_seeds, noise_seeds))]
    return [episodes[i : i + envs_per_rank] for i in range(0, len(episodes), envs_per_rank)]


def returns_matrix(results: list[EpisodeResult], candidates: int, rollouts: int) -> np.ndarray:
    return np.array([r.total_return for r in results]).reshape(candidates, rollouts)


class ChunkRunner:
    """Runs chunks in this process, reusing one pool of environments."""

    def __init__(self, agent: WorldModelAgent, settings: EpisodeSettings):
        self.agent, self.settings = agent, settings
        self._envs: list | None = None
        self.busy_seconds = 0.0

    @property
    def envs(self) -> list:
        """The pool, made at the first chunk (a dream run's real runner may never need one)."""
        if self._envs is None:
            self._envs = [self.agent.env.make(self.settings.env_id) for _ in range(self.settings.envs_per_rank)]
        return self._envs

    def chunk_size(self, training: bool) -> int:
        """Episodes a chunk holds (one lockstep batch): envs_per_rank, in training and held-out scores alike."""
        return self.settings.envs_per_rank

    def run(self, chunk: list[Episode], training: bool = True) -> list[EpisodeResult]:
        start = time.perf_counter()
        results = checked_results(chunk, "rollout", lambda: run_batch(
            self.settings.env_id, self.agent, chunk, self.settings.max_steps,
            self.settings.no_progress_steps if training else 0, envs=self.envs[: len(chunk)]))
        self.busy_seconds += time.perf_counter() - start
        return results


def checked_results(chunk: list[Episode], kind: str, run) -> list[EpisodeResult]:
    """run() for a chunk, with any failure or non-finite return turned into one EpisodeError
    naming the episodes (the farm reports it as the rank's failure)."""
    try:
        results = run()
    except Exception as exc:
        where = ", ".join(f"candidate {e.candidate} rollout {e.rollout} track seed {e.track_seed}" for e in chunk[:3])
        raise EpisodeError(f"a {kind} raised {type(exc).__name__}: {exc} (chunk of {len(chunk)} episodes: "
                           f"{where}{', ...' if len(chunk) > 3 else ''})") from exc
    for episode, result in zip(chunk, results):
        if not np.isfinite(result.total_return):
            raise EpisodeError(f"{kind} return is {result.total_return} for candidate {episode.candidate} "
                               f"rollout {episode.rollout} on track seed {episode.track_seed}")
    return results
