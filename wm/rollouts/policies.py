"""The policies that collect V's and M's training data: the random ones of the first round, and a
trained agent with exploration noise for iterative training (the paper's section on iterative
training). Each is built per episode from its own random generator, so an episode's actions are
fixed by its seed."""

from __future__ import annotations

import math

import numpy as np

from wm.resume import recorded_settings

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


class AgentPolicy:
    """A trained V + M + C driving one environment, with the controller's parameters perturbed once per
    episode by `param_noise` x N(0, I) (a sample like CMA-ES's around its mean, so every episode drives a
    little differently: faster, slower, wider). M's state follows the actions the env received; z is
    sampled from V's posterior when the controller was trained on sampled z."""

    def __init__(self, agent, controller, rng: np.random.Generator, param_noise: float):
        import torch

        self.agent, self.rng, self._torch = agent, rng, torch
        perturbed = controller.params + param_noise * rng.standard_normal(controller.params.shape)
        self.params = torch.from_numpy(perturbed.astype(np.float32))[None]
        hidden = agent.mdn.hidden
        self.state = (torch.zeros(1, 1, hidden), torch.zeros(1, 1, hidden))
        self.h = torch.zeros(1, hidden)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        noise = self.rng.standard_normal((1, self.agent.vae.z_dim), dtype=np.float32)
        z = self.agent.encode(frame[None], noise)
        action = self.agent.act(self.params, z, self.h)
        if self.agent.uses_memory:
            self.h, self.state = self.agent.remember(z, action, self.state)
        return action[0].numpy().astype(np.float64)


def make_policy(name: str, rng: np.random.Generator, brownian_dt: float = 0.02, agent=None,
                param_noise: float = 0.0):
    """The policy of one episode. `agent` is (WorldModelAgent, Controller) for collect.policy agent."""
    if name == "agent":
        if agent is None:
            raise ValueError("collect.policy agent needs the trained V, M and C (wm collect --vae --mdn --controller)")
        return AgentPolicy(*agent, rng, param_noise)
    if name == "uniform":
        return UniformPolicy(rng)
    if name == "brownian":
        return BrownianPolicy(rng, brownian_dt)
    if name == "random_controller":
        return RandomControllerPolicy(rng)
    raise ValueError(f"collect.policy must be random_controller, brownian, uniform or agent, got {name!r}")


def policy_parameters(config: dict, agent_files: dict | None = None) -> dict:
    """What the shard's metadata records about the policy (an agent's by the digests of its files)."""
    name = config["collect"]["policy"]
    params = {"name": name}
    if name == "agent":
        params.update(param_noise=config["collect"]["param_noise"], **(agent_files or {}))
        params.update(recorded_settings({"encoder_dtype": config["encoder_dtype"]}))
    if name == "brownian":
        params["dt"] = config["collect"]["brownian_dt"]
    if name == "random_controller":
        params.update(weights="cauchy", max_scale=0.01, features=RandomControllerPolicy.N_FEATURES)
    return params
