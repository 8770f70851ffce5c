"""The contract of an environment plug-in: everything one environment needs, in one object.

A plug-in is a subpackage of wm/envs/ whose `PLUGIN` is an `EnvPlugin`, named in wm/envs/__init__.py's
ENVIRONMENTS under its `env.name`. The stages (collect, V, M, C, the episode runner, the farm, evaluate,
dream, report) read what they need from it and never name an environment. What a contributor writes
for a third environment is exactly the fields below (docs/environments.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class EnvPlugin:
    name: str                      # config env.name
    ids: tuple[str, ...]           # gymnasium ids env.id may name (collection, CMA-ES's real rollouts)
    evaluation_id: str             # the id `wm evaluate` scores on, as the paper reports it
    # make(env_id) -> gymnasium.Env whose observations `preprocess` takes and whose step() takes
    # the actions `to_action` returns (one row of them, as float64).
    make: Callable
    # One observation -> the 64 x 64 x 3 uint8 frame V sees (crop, resize, colours): the one function
    # collection, training and evaluation all call.
    preprocess: Callable[[np.ndarray], np.ndarray]
    action_names: tuple[str, ...]  # what C's outputs drive, in order; M reads them as its action input
    # C's outputs: (B, len(action_names)) tanh activations -> the environment's actions (torch, batched).
    to_action: Callable
    # collect.policy names of the random data policies -> make(rng, collect settings) -> policy(frame) -> action
    random_policies: dict[str, Callable] = field(default_factory=dict)
    # What the random policies' metadata record in a shard (collect settings -> dict), by policy name.
    policy_parameters: Callable[[str, dict], dict] = lambda name, settings: {}
    max_steps: int = 1000          # the episode cap (collection, CMA-ES and evaluation may ask for fewer)
    solved: float = float("inf")   # the mean return over 100 episodes above which the task counts as solved
    reward: str = ""               # what a step's reward means (for the docs and the report)
    # progress(env) -> a count that grows as the agent gets on (CarRacing: track tiles visited), for
    # controller.no_progress_steps and the episode records; None where the environment has none.
    progress: Callable | None = None
    # The reward of every step when it is a constant (Doom: +1 for surviving it): a dream then pays it
    # and needs no reward head in M. None: M's reward head predicts each step's reward.
    step_reward: float | None = None
    # Random-policy episodes this many frames long or shorter are dropped at collection and redrawn
    # with the next seed (the original Doom data keeps only episodes over 100 frames); each shard
    # records what it dropped. 0: every episode is kept.
    drop_episodes_up_to: int = 0
    # Per-environment defaults (V, M and C sizes, the episode caps, the data policy), merged under the
    # user's config before the schema fills its own defaults: the schema's are CarRacing's.
    defaults: dict = field(default_factory=dict)
    # A 'name' -> 'description' of an episode's ended_by values beyond the runner's own.
    episode_ends: dict = field(default_factory=dict)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def check_id(self, env_id: str, key: str = "env.id") -> str:
        if env_id not in self.ids:
            raise ValueError(f"{key} {env_id!r} is not an id of env.name {self.name!r} "
                             f"(its ids: {', '.join(self.ids)})")
        return env_id

    def check_steps(self, steps: int, knob: str) -> int:
        """Refuse an episode length past the environment's cap."""
        if steps > self.max_steps:
            raise ValueError(f"{knob} is {steps}, more than env.name {self.name!r} allows ({self.max_steps} steps)")
        return steps

    def preprocess_batch(self, observations) -> np.ndarray:
        """A batch of observations -> (N, 64, 64, 3) uint8, frame by frame through `preprocess`."""
        out = np.empty((len(observations), 64, 64, 3), dtype=np.uint8)
        for i, observation in enumerate(observations):
            out[i] = self.preprocess(observation)
        return out
