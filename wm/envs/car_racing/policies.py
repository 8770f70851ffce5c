"""CarRacing's random data policies, which collect the first round of V's and M's training data.
Each is built per episode from its own random generator, so an episode's actions are fixed by its seed."""

from __future__ import annotations

import math

import numpy as np

LOW = np.array([-1.0, 0.0, 0.0])
HIGH = np.array([1.0, 1.0, 1.0])


class UniformPolicy:
    """Independent uniform actions every step: jittery, stays near the start (a baseline)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.rng.uniform(LOW, HIGH)


class BrownianPolicy:
    """ctallec/world-models' policy: a_{t+1} = clip(a_t + sqrt(dt) * N(0, I)), a_0 uniform."""

    def __init__(self, rng: np.random.Generator, dt: float):
        self.rng, self.scale = rng, math.sqrt(dt)
        self.action = rng.uniform(LOW, HIGH)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        current = self.action
        self.action = np.clip(current + self.scale * self.rng.standard_normal(3), LOW, HIGH)
        return current


class RandomControllerPolicy:
    """The original code's "random policy" (hardmaru `extract.py`): the controller's
    architecture with weights drawn once per episode from a Cauchy distribution scaled by
    a factor drawn uniformly from [0, 0.01] (`init_random_model_params`). The original feeds
    it the z of an untrained V; here it sees a fixed 32-number summary of the frame
    (4 x 8 mean-pooled grey levels in [-1, 1]), which plays the same part cheaply."""

    N_FEATURES = 32

    def __init__(self, rng: np.random.Generator, max_scale: float = 0.01):
        self.scale = rng.uniform(0.0, max_scale)
        self.weights = rng.standard_cauchy((3, self.N_FEATURES)) * self.scale
        self.bias = rng.standard_cauchy(3) * self.scale

    @staticmethod
    def features(frame: np.ndarray) -> np.ndarray:
        grey = frame.mean(axis=2)  # 64 x 64
        pooled = grey.reshape(4, 16, 8, 8).mean(axis=(1, 3))
        return (pooled.ravel() / 127.5) - 1.0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        a = np.tanh(self.weights @ self.features(frame) + self.bias)
        return np.array([a[0], (a[1] + 1.0) / 2.0, np.clip(a[2], 0.0, 1.0)])


# collect.policy -> make(rng, collect settings): the plug-in's random_policies.
RANDOM_POLICIES = {
    "random_controller": lambda rng, settings: RandomControllerPolicy(rng),
    "brownian": lambda rng, settings: BrownianPolicy(rng, settings["brownian_dt"]),
    "uniform": lambda rng, settings: UniformPolicy(rng),
}


def policy_parameters(name: str, settings: dict) -> dict:
    """What a shard's metadata records about a random policy, beyond its name."""
    if name == "brownian":
        return {"dt": settings["brownian_dt"]}
    if name == "random_controller":
        return {"weights": "cauchy", "max_scale": 0.01, "features": RandomControllerPolicy.N_FEATURES}
    return {}
