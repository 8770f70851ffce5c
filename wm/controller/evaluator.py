"""Evaluating many (controller, track) pairs: the work of one CMA-ES generation.

The pairs are cut into fixed chunks of `envs_per_rank` episodes, each run as one
lockstep batch. A chunk's results depend only on its contents, so any number of
processes (MPI ranks, see distributed.py) gives the same returns as one."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from wm.controller.rollout import Episode, EpisodeResult, WorldModelAgent, run_batch
from wm.envs import make_env


@dataclass
class RolloutSettings:
    env_id: str
    max_steps: int
    no_progress_steps: int
    envs_per_batch: int


class RolloutError(RuntimeError):
    """A rollout that raised or returned a non-finite value; names its candidate and seed."""


def make_chunks(candidates: np.ndarray, track_seeds: list[int], noise_seeds: list[int], size: int) -> list[list[Episode]]:
    """Every (candidate, rollout) pair in candidate-major order, cut into chunks of `size`."""
    episodes = [Episode(params, track, noise, c, r)
                for c, params in enumerate(candidates)
                for r, (track, noise) in enumerate(zip(track_seeds, noise_seeds))]
    return [episodes[i : i + size] for i in range(0, len(episodes), size)]


def progress_bar(desc: str | None, total: int):
    return tqdm(total=total, desc=desc, unit="episode", disable=desc is None, mininterval=2)


def returns_matrix(results: list[EpisodeResult], candidates: int, rollouts: int) -> np.ndarray:
    return np.array([r.total_return for r in results]).reshape(candidates, rollouts)


class ChunkRunner:
    """Runs chunks in this process, reusing one pool of environments."""

    def __init__(self, agent: WorldModelAgent, settings: RolloutSettings):
        self.agent, self.settings = agent, settings
        self.envs = [make_env(settings.env_id) for _ in range(settings.envs_per_batch)]
        self.busy_seconds = 0.0

    def run(self, chunk: list[Episode], training: bool = True) -> list[EpisodeResult]:
        start = time.perf_counter()
        try:
            results = run_batch(
                self.settings.env_id, self.agent, chunk, self.settings.max_steps,
                self.settings.no_progress_steps if training else 0, envs=self.envs[: len(chunk)],
            )
        except Exception as exc:
            where = ", ".join(f"candidate {e.candidate} rollout {e.rollout} track seed {e.track_seed}" for e in chunk[:3])
            raise RolloutError(f"a rollout raised {type(exc).__name__}: {exc} (chunk of {len(chunk)} episodes: "
                               f"{where}{', ...' if len(chunk) > 3 else ''})") from exc
        for episode, result in zip(chunk, results):
            if not np.isfinite(result.total_return):
                raise RolloutError(f"return is {result.total_return} for candidate {episode.candidate} "
                                   f"rollout {episode.rollout} on track seed {episode.track_seed}")
        self.busy_seconds += time.perf_counter() - start
        return results


class LocalEvaluator:
    """All chunks in this one process."""

    ranks = 1

    def __init__(self, runner: ChunkRunner):
        self.runner = runner

    def evaluate(self, candidates: np.ndarray, track_seeds: list[int], noise_seeds: list[int],
                 training: bool = True, progress: str | None = None) -> tuple[np.ndarray, list[EpisodeResult]]:
        """Returns (returns of shape (candidates, rollouts), every episode's result);
        `progress` names a progress bar over episodes."""
        chunks = make_chunks(candidates, track_seeds, noise_seeds, self.runner.settings.envs_per_batch)
        results = []
        with progress_bar(progress, len(candidates) * len(track_seeds)) as bar:
            for chunk in chunks:
                results += self.runner.run(chunk, training)
                bar.update(len(chunk))
        return returns_matrix(results, len(candidates), len(track_seeds)), results

    def busy_seconds(self) -> list[float]:
        return [self.runner.busy_seconds]

    def close(self) -> None:
        pass
