"""The random policies: how much of the track each shows V and M (the measurement behind the default)."""

import numpy as np

from analysis.policy_coverage import coverage
from wm.envs.car_racing.policies import BrownianPolicy, RandomControllerPolicy, UniformPolicy


def test_coverage_of_the_track_per_policy(capsys):
    results = {p: coverage(p, episodes=3, steps=200) for p in ("random_controller", "brownian", "uniform")}
    with capsys.disabled():
        for policy, r in results.items():
            print(f"\n{policy:<18} tiles visited per episode {r['tiles'].mean():5.1f} (3 episodes x 200 steps)", end="")
    # White noise jitters in place; the original code's random controller drives through the track.
    assert results["random_controller"]["tiles"].mean() > 1.5 * results["uniform"]["tiles"].mean()
    assert results["brownian"]["tiles"].mean() >= results["uniform"]["tiles"].mean()


def test_brownian_actions_are_smooth_and_uniform_ones_are_not():
    rng = np.random.default_rng(0)
    frame = np.zeros((64, 64, 3), np.uint8)
    policy = BrownianPolicy(rng, 0.02)
    brownian = np.array([policy(frame) for _ in range(500)])
    uniform = np.array([UniformPolicy(rng)(frame) for _ in range(500)])
    assert np.abs(np.diff(brownian, axis=0)).mean() < 0.15 < np.abs(np.diff(uniform, axis=0)).mean()
    for actions in (brownian, uniform):
        assert (actions[:, 0] >= -1).all() and (actions[:, 0] <= 1).all() and (actions[:, 1:] >= 0).all()


def test_random_controller_is_fixed_per_episode_and_differs_between_episodes():
    frame = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    first = RandomControllerPolicy(np.random.default_rng(1))
    again = RandomControllerPolicy(np.random.default_rng(1))
    other = RandomControllerPolicy(np.random.default_rng(2))
    assert np.array_equal(first(frame), again(frame))
    assert not np.array_equal(first(frame), other(frame))
    assert 0 <= first.scale <= 0.01
