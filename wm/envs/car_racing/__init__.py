"""CarRacing (gymnasium's `CarRacing-v3`, continuous steer / gas / brake), with wm's pixel-identical
fast twin `wm/CarRacing-v3` (fast_env.py, docs/fast_env.md): the paper's first experiment."""

from __future__ import annotations

import gymnasium as gym
import torch

from wm.envs.car_racing.policies import RANDOM_POLICIES, policy_parameters
from wm.envs.car_racing.preprocess import preprocess
from wm.envs.plugin import EnvPlugin

GYMNASIUM_ID = "CarRacing-v3"
FAST_ENV_ID = "wm/CarRacing-v3"
EPISODE_STEPS = 1000  # CarRacing-v3's TimeLimit

if FAST_ENV_ID not in gym.registry:
    gym.register(id=FAST_ENV_ID, entry_point="wm.envs.car_racing.fast_env:FastCarRacing",
                 max_episode_steps=EPISODE_STEPS)


def make_env(env_id: str = GYMNASIUM_ID, **kwargs) -> gym.Env:
    """A continuous-action CarRacing (gymnasium's or ours), with the TimeLimit of its registration."""
    PLUGIN.check_id(env_id)
    return gym.make(env_id, continuous=True, **kwargs)


def to_action(a: torch.Tensor) -> torch.Tensor:
    """The original code's mapping (hardmaru `model.py`): steer = a0, gas = (a1 + 1) / 2, brake =
    clip(a2, 0, 1) (brake >= 0.9 locks the wheels in gymnasium's car dynamics)."""
    steer = a[:, 0]
    gas = (a[:, 1] + 1.0) / 2.0
    brake = a[:, 2].clamp(0.0, 1.0)
    return torch.stack([steer, gas, brake], dim=1)


def tiles_visited(env) -> int:
    return env.unwrapped.tile_visited_count


PLUGIN = EnvPlugin(
    name="car_racing",
    ids=(GYMNASIUM_ID, FAST_ENV_ID),
    evaluation_id=GYMNASIUM_ID,
    make=make_env,
    preprocess=preprocess,
    action_names=("steer", "gas", "brake"),
    to_action=to_action,
    random_policies=RANDOM_POLICIES,
    policy_parameters=policy_parameters,
    max_steps=EPISODE_STEPS,
    solved=900.0,  # gymnasium's threshold for CarRacing-v3
    reward="-0.1 a frame, +1000/N for each of the track's N tiles first visited; -100 for leaving the playfield",
    progress=tiles_visited,
    # The schema's defaults are CarRacing's (z = 32, LSTM 256, 1,000-step episodes): nothing to add.
    defaults={},
)

__all__ = ["FAST_ENV_ID", "GYMNASIUM_ID", "PLUGIN", "make_env", "preprocess"]
