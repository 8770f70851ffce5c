"""Take Cover's random policies, each built per episode from its own random generator, so that an
episode's actions are fixed by its seed:
- repeated_random, the data policy, as the original code's `doomrnn/extract.py`: a turn value drawn
  uniformly from [-1, 1] and held for a number of steps drawn uniformly from 1-10, then another;
- uniform: a new turn value every step (the game's three actions about equally often), the baseline
  beside the paper's random policy (210 +- 108)."""

from __future__ import annotations

import numpy as np

LONGEST_HOLD = 10  # steps an action is held at most (the original: np.random.randint(1, 11))


class RepeatedRandomPolicy:
    def __init__(self, rng: np.random.Generator):
        self.rng, self.left, self.action = rng, 0, None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.left == 0:
            self.action = np.array([self.rng.uniform(-1.0, 1.0)])
            self.left = int(self.rng.integers(1, LONGEST_HOLD + 1))
        self.left -= 1
        return self.action


def uniform_policy(rng: np.random.Generator):
    return lambda frame: np.array([rng.uniform(-1.0, 1.0)])


RANDOM_POLICIES = {"repeated_random": lambda rng, settings: RepeatedRandomPolicy(rng),
                   "uniform": lambda rng, settings: uniform_policy(rng)}


def policy_parameters(name: str, settings: dict) -> dict:
    if name == "uniform":
        return {"turn": "uniform(-1, 1) every step"}
    return {"turn": "uniform(-1, 1)", "hold_steps": f"uniform 1-{LONGEST_HOLD}"}
