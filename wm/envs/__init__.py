"""Environments: gymnasium's CarRacing, a faster pixel-identical twin, and the shared preprocessing."""

from __future__ import annotations

import gymnasium as gym

from wm.envs.preprocess import FRAME_SIZE, preprocess, preprocess_batch

FAST_ENV_ID = "wm/CarRacing-v3"

if FAST_ENV_ID not in gym.registry:
    gym.register(
        id=FAST_ENV_ID,
        entry_point="wm.envs.fast_car_racing:FastCarRacing",
        max_episode_steps=1000,
    )


def make_env(env_id: str = "CarRacing-v3", **kwargs) -> gym.Env:
    """A continuous-action CarRacing (gymnasium's or ours), with the TimeLimit of its registration."""
    if env_id not in ("CarRacing-v3", FAST_ENV_ID):
        raise ValueError(f"env.id must be 'CarRacing-v3' or '{FAST_ENV_ID}', got {env_id!r}")
    return gym.make(env_id, continuous=True, **kwargs)


__all__ = ["FAST_ENV_ID", "FRAME_SIZE", "make_env", "preprocess", "preprocess_batch"]
