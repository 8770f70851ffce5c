"""VizDoom's Take Cover (`VizdoomTakeCover-v1`, the vizdoom package's gymnasium id): the paper's second
experiment, where C learns inside M's dream only. Fireballs come from the far wall; the agent moves
left or right and earns +1 for every step it stays alive, up to the paper's 2,100 steps.

C has one output a in [-1, 1], as the original code's: a < -1/3 moves left, a > 1/3 right, else
nothing (`doomreal.py`'s threshold); M reads a itself, so the dream sees the value C chose. vizdoom is
imported only when a Doom run makes its environment."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from wm.envs.doom.policies import RANDOM_POLICIES, policy_parameters
from wm.envs.doom.preprocess import preprocess
from wm.envs.plugin import EnvPlugin

GYMNASIUM_ID = "VizdoomTakeCover-v1"
EPISODE_STEPS = 2100  # the paper's cap (~60 s of game); the scenario itself has none
TURN_THRESHOLD = 1 / 3
NOTHING, LEFT, RIGHT = 0, 1, 2  # VizdoomTakeCover-v1's Discrete(3) (its cfg's buttons MOVE_LEFT, MOVE_RIGHT)


def turn_button(turn: float) -> int:
    """C's one output -> the discrete action of the game."""
    if turn < -TURN_THRESHOLD:
        return LEFT
    if turn > TURN_THRESHOLD:
        return RIGHT
    return NOTHING


class TakeCover(gym.Wrapper):
    """The game with C's action space: observations the screen (H x W x 3 uint8), actions one turn
    value in [-1, 1] (an array of one float), episodes truncated at EPISODE_STEPS."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = env.observation_space["screen"]
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return observation["screen"], info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(turn_button(float(np.asarray(action).reshape(-1)[0])))
        return observation["screen"], reward, terminated, truncated, info


def make_env(env_id: str = GYMNASIUM_ID, **kwargs) -> gym.Env:
    PLUGIN.check_id(env_id)
    from vizdoom import gymnasium_wrapper  # noqa: F401  (registers the Vizdoom* ids)

    return gym.wrappers.TimeLimit(TakeCover(gym.make(env_id, **kwargs)), EPISODE_STEPS)


def to_action(a: torch.Tensor) -> torch.Tensor:
    """C's tanh output is the turn value itself (the game thresholds it, M reads it)."""
    return a


PLUGIN = EnvPlugin(
    name="doom",
    ids=(GYMNASIUM_ID,),
    evaluation_id=GYMNASIUM_ID,
    make=make_env,
    preprocess=preprocess,
    action_names=("turn",),
    to_action=to_action,
    random_policies=RANDOM_POLICIES,
    policy_parameters=policy_parameters,
    max_steps=EPISODE_STEPS,
    solved=750.0,  # the paper: solved is a mean above 750 over 100 consecutive episodes
    reward="+1 for every step alive (the return is the steps survived, at most 2,100)",
    step_reward=1.0,
    drop_episodes_up_to=100,  # the original keeps only random episodes longer than 100 frames
    defaults={
        "env": {"id": GYMNASIUM_ID},
        "collect": {"policy": "repeated_random", "max_steps": EPISODE_STEPS},
        "vae": {"z_dim": 64},
        "mdn": {"hidden": 512, "gaussians": 5, "done_weight": 1.0},
        "controller": {"variants": ["z_c_h"], "environment": "dream", "bias": False,
                       "max_steps": EPISODE_STEPS, "no_progress_steps": 0, "dream_temperature": 1.15,
                       "dream_max_steps": EPISODE_STEPS,
                       # dream only: the periodic held-out score would play the real game
                       "eval_every": 0},
        "evaluate": {"max_steps": EPISODE_STEPS},
    },
)

__all__ = ["GYMNASIUM_ID", "PLUGIN", "make_env", "preprocess", "turn_button"]
