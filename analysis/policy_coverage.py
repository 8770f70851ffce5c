"""How much of the track each random policy shows V and M: distinct track tiles visited per episode.

    .venv/bin/python analysis/policy_coverage.py [--episodes 8] [--steps 1000]

Same tracks for every policy; prints mean ± std tiles visited and the mean return."""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402

from wm.envs.car_racing import PLUGIN as CAR_RACING, make_env  # noqa: E402
from wm.stages.collect import make_policy, run_episode  # noqa: E402
from wm.seeding import derive_seed, rng  # noqa: E402


def coverage(policy: str, episodes: int, steps: int, env_id: str = "CarRacing-v3") -> dict:
    env = make_env(env_id)
    tiles, returns, lengths = [], [], []
    for e in range(episodes):
        policy_of_episode = make_policy(CAR_RACING, {"policy": policy, "brownian_dt": 0.02}, rng(0, "collect", 99, e, 1))
        episode, visited = run_episode(CAR_RACING, env, derive_seed(0, "collect", 99, e), policy_of_episode, steps)
        tiles.append(visited)
        returns.append(float(episode["rewards"].sum()))
        lengths.append(len(episode["actions"]))
    return {"tiles": np.array(tiles), "returns": np.array(returns), "lengths": np.array(lengths)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--env", default="CarRacing-v3")
    args = parser.parse_args()
    print(f"{args.episodes} episodes x {args.steps} steps per policy, same tracks")
    for policy in ("random_controller", "brownian", "uniform"):
        r = coverage(policy, args.episodes, args.steps, args.env)
        print(f"{policy:<18} tiles visited {r['tiles'].mean():6.1f} +- {r['tiles'].std():5.1f}   "
              f"return {r['returns'].mean():7.1f}   frames {r['lengths'].mean():6.0f}")


if __name__ == "__main__":
    main()
