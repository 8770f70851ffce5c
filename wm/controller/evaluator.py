"""Evaluating many (controller, track) pairs: the work of one CMA-ES generation.

The pairs are cut into fixed chunks of `envs_per_rank` episodes, each run as one
lockstep batch. A chunk's results depend only on its contents, so any number of
processes (MPI ranks) gives the same returns as one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wm.controller.rollout import Episode, EpisodeResult, WorldModelAgent, run_batch
from wm.envs import make_env


@dataclass
class RolloutSettings:
    env_id: str
    max_steps: int
    no_progress_steps: int
    envs_per_batch: int


def make_chunks(candidates: np.ndarray, track_seeds: list[int], noise_seeds: list[int], size: int) -> list[list[Episode]]:
    """Every (candidate, rollout) pair in candidate-major order, cut into chunks of `size`."""
    episodes = [Episode(params, track, noise) for params in candidates for track, noise in zip(track_seeds, noise_seeds)]
    return [episodes[i : i + size] for i in range(0, len(episodes), size)]


class ChunkRunner:
    """Runs chunks in this process, reusing one pool of environments."""

    def __init__(self, agent: WorldModelAgent, settings: RolloutSettings):
        self.agent, self.settings = agent, settings
        self.envs = [make_env(settings.env_id) for _ in range(settings.envs_per_batch)]

    def run(self, chunk: list[Episode], training: bool = True) -> list[EpisodeResult]:
        results = run_batch(
            self.settings.env_id, self.agent, chunk, self.settings.max_steps,
            self.settings.no_progress_steps if training else 0, envs=self.envs[: len(chunk)],
        )
        for episode, result in zip(chunk, results):
            if not np.isfinite(result.total_return):
                raise FloatingPointError(f"return is {result.total_return} on track seed {episode.track_seed}")
        return results


class LocalEvaluator:
    """All chunks in this one process."""

    def __init__(self, runner: ChunkRunner):
        self.runner = runner

    def evaluate(self, candidates: np.ndarray, track_seeds: list[int], noise_seeds: list[int],
                 training: bool = True) -> tuple[np.ndarray, int]:
        """Returns (returns of shape (candidates, rollouts), frames stepped)."""
        chunks = make_chunks(candidates, track_seeds, noise_seeds, self.runner.settings.envs_per_batch)
        results = [r for chunk in chunks for r in self.runner.run(chunk, training)]
        returns = np.array([r.total_return for r in results]).reshape(len(candidates), len(track_seeds))
        return returns, sum(r.steps for r in results)

    def close(self) -> None:
        pass
