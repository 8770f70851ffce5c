"""`wm collect`: one shard of random-policy episodes, written as one Zarr store.

Episode e of shard s gets its track seed and its policy's random stream from
(run seed, shard, episode): the same shard index always gives byte-identical arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wm.envs import make_env, preprocess
from wm.files import versions
from wm.metrics import progress
from wm.rollouts.policies import make_policy, policy_parameters
from wm.rollouts.storage import write_store
from wm.seeding import derive_seed, rng


def run_episode(env, track_seed: int, policy, max_steps: int) -> tuple[dict[str, np.ndarray], int]:
    """One episode; frames[t] is the (preprocessed) observation the action at t answered.
    Also returns how many track tiles the car visited (the policy's coverage of the track)."""
    obs, _ = env.reset(seed=track_seed)
    frames, actions, rewards, terminated = [], [], [], []
    for _ in range(max_steps):
        frame = preprocess(obs)
        action = policy(frame)
        obs, reward, term, trunc, _ = env.step(action.astype(np.float32))
        frames.append(frame)
        actions.append(action)
        rewards.append(reward)
        terminated.append(term)
        if term or trunc:
            break
    return {
        "frames": np.stack(frames),
        "actions": np.asarray(actions, dtype=np.float32),
        "rewards": np.asarray(rewards, dtype=np.float32),
        "terminated": np.asarray(terminated, dtype=bool),
    }, int(env.unwrapped.tile_visited_count)


def collect_shard(config: dict, shard: int, out: Path) -> None:
    settings = config["collect"]
    episodes, max_steps = settings["episodes_per_shard"], settings["max_steps"]
    env = make_env(config["env"]["id"])
    layout = {
        "frames": np.zeros((episodes, max_steps, 64, 64, 3), np.uint8),
        "actions": np.zeros((episodes, max_steps, 3), np.float32),
        "rewards": np.zeros((episodes, max_steps), np.float32),
        "terminated": np.zeros((episodes, max_steps), bool),
    }
    lengths = np.zeros(episodes, np.int32)
    seeds, tiles = [], []
    with progress(total=episodes * max_steps, desc=f"collect shard {shard}", unit="frame") as bar:
        for e in range(episodes):
            track_seed = derive_seed(config["seed"], "collect", shard, e)
            policy = make_policy(settings["policy"], rng(config["seed"], "collect", shard, e, 1),
                                 settings["brownian_dt"])
            episode, visited = run_episode(env, track_seed, policy, max_steps)
            lengths[e] = len(episode["actions"])
            for name, values in episode.items():
                layout[name][e, : lengths[e]] = values
            seeds.append(track_seed)
            tiles.append(visited)
            bar.update(max_steps)
    env.close()
    write_store(out, "rollouts", layout, lengths, {
        "env_id": config["env"]["id"],
        "shard": shard,
        "run_seed": config["seed"],
        "seeds": seeds,
        "tiles_visited": tiles,
        "max_steps": max_steps,
        "policy": policy_parameters(config),
        "versions": versions(),
    })
    print(f"collect: wrote {out} ({episodes} episodes, {int(lengths.sum())} frames)")
