"""`wm collect`: one shard of episodes, written as one Zarr store: the random policy's (the first
round), or a trained agent's with exploration noise (collect.policy agent: iterative training).

Episode e of shard s gets its track seed and its policy's random stream from
(run seed, shard, episode): the same shard index always gives byte-identical arrays. An agent's
episodes draw from their own streams, so its tracks are not the random round's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wm.envs import EnvPlugin, env_of
from wm.files import file_digest, versions
from wm.metrics import progress
from wm.resume import env_record, recorded_settings
from wm.rollouts.storage import write_store
from wm.seeding import derive_seed, rng


def run_episode(plugin: EnvPlugin, env, track_seed: int, policy, max_steps: int) -> tuple[dict[str, np.ndarray], int]:
    """One episode; frames[t] is the (preprocessed) observation the action at t answered.
    Also returns the environment's progress count at the end (CarRacing: the track tiles the car
    visited, the policy's coverage of the track), or 0 where it has none."""
    obs, _ = env.reset(seed=track_seed)
    frames, actions, rewards, terminated = [], [], [], []
    for _ in range(max_steps):
        frame = plugin.preprocess(obs)
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
    }, int(plugin.progress(env)) if plugin.progress else 0


def load_collecting_agent(config: dict, models: dict[str, Path] | None):
    """(agent, controller) and the digests of their files for collect.policy agent, else (None, {})."""
    if config["collect"]["policy"] != "agent":
        return None, {}
    if not models or None in models.values():
        raise ValueError("collect.policy is agent: wm collect needs --vae, --mdn and --controller")
    import torch

    from wm.episodes.agent import load_trained_agent
    from wm.runtime import torch_threads

    # Shards run side by side (an array job), as MPI ranks do: one thread each unless torch_threads says.
    torch.set_num_threads(torch_threads(config, per_rank=True))
    agent = load_trained_agent(models["vae"], models["mdn"], models["controller"], config["encoder_dtype"],
                               env=env_of(config))
    return agent, {name: file_digest(path) for name, path in models.items()}


def episode_streams(config: dict, purpose: str, shard: int, episode: int,
                    redraw: int = 0) -> tuple[int, np.random.Generator]:
    """Episode `episode` of shard `shard`: its track seed and its policy's random stream. Round 1 (and every
    run made before collect.round) keys them by (shard, episode); round R >= 2 by (shard, episode, R), four
    entropy words against round 1's two and three, so that no round's tracks or noise repeat another's.
    Redraw k >= 1 of a dropped episode (EnvPlugin.drop_episodes_up_to) adds (2 or 3, k), which no round uses."""
    seed, round_ = config["seed"], config["collect"]["round"]
    if redraw:
        return (derive_seed(seed, purpose, shard, episode, 2, round_, redraw),
                rng(seed, purpose, shard, episode, 3, round_, redraw))
    if round_ == 1:
        return derive_seed(seed, purpose, shard, episode), rng(seed, purpose, shard, episode, 1)
    return derive_seed(seed, purpose, shard, episode, 0, round_), rng(seed, purpose, shard, episode, 1, round_)


# Redraws of one episode before collection gives up: a data policy that keeps dying this early is a bug.
MAX_REDRAWS = 100


def collect_shard(config: dict, shard: int, out: Path, models: dict[str, Path] | None = None) -> None:
    """`models` (vae, mdn, controller paths) drive the episodes when collect.policy is agent."""
    settings = config["collect"]
    episodes, max_steps = settings["episodes_per_shard"], settings["max_steps"]
    plugin = env_of(config)
    plugin.check_steps(max_steps, "collect.max_steps")
    agent, agent_files = load_collecting_agent(config, models)
    purpose = "collect_agent" if agent else "collect"
    env = plugin.make(plugin.check_id(config["env"]["id"]))
    layout = {
        "frames": np.zeros((episodes, max_steps, 64, 64, 3), np.uint8),
        "actions": np.zeros((episodes, max_steps, plugin.action_dim), np.float32),
        "rewards": np.zeros((episodes, max_steps), np.float32),
        "terminated": np.zeros((episodes, max_steps), bool),
    }
    lengths = np.zeros(episodes, np.int32)
    seeds, tiles, dropped = [], [], []
    # The original data keeps only random episodes longer than this (Doom: 100 frames); an agent's all.
    shortest_dropped = 0 if agent else plugin.drop_episodes_up_to
    with progress(total=episodes * max_steps, desc=f"collect shard {shard}", unit="frame") as bar:
        for e in range(episodes):
            for redraw in range(MAX_REDRAWS + 1):
                track_seed, noise = episode_streams(config, purpose, shard, e, redraw)
                policy = make_policy(plugin, settings, noise, agent)
                episode, visited = run_episode(plugin, env, track_seed, policy, max_steps)
                if len(episode["actions"]) > shortest_dropped:
                    break
                dropped.append({"episode": e, "seed": track_seed, "frames": len(episode["actions"])})
            else:
                raise RuntimeError(f"collect shard {shard}: episode {e} ended within {shortest_dropped} frames "
                                   f"{MAX_REDRAWS + 1} times in a row (env.name {plugin.name!r} drops such episodes)")
            lengths[e] = len(episode["actions"])
            for name, values in episode.items():
                layout[name][e, : lengths[e]] = values
            seeds.append(track_seed)
            tiles.append(visited)
            bar.update(max_steps)
    env.close()
    write_store(out, "rollouts", layout, lengths, {
        "env_id": config["env"]["id"], **env_record(config),
        "shard": shard,
        "run_seed": config["seed"],
        "seeds": seeds,
        "tiles_visited": tiles,
        # episodes dropped for ending within the plug-in's drop_episodes_up_to frames, each redrawn
        **({"dropped": dropped, "drop_episodes_up_to": shortest_dropped} if shortest_dropped else {}),
        "max_steps": max_steps,
        "policy": policy_parameters(plugin, config, agent_files),
        **recorded_settings({"round": settings["round"]}, "collect"),
        "versions": versions(),
    })
    print(f"collect: wrote {out} ({episodes} episodes, {int(lengths.sum())} frames)")



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
        action = self.agent.act(self.params, z, self.h, self.state)
        if self.agent.uses_memory:
            self.h, self.state = self.agent.remember(z, action, self.state)
        return action[0].numpy().astype(np.float64)




def make_policy(plugin: EnvPlugin, settings: dict, rng: np.random.Generator, agent=None):
    """The policy of one episode: one of the environment's random data policies (collect.policy), or
    `agent`, (WorldModelAgent, Controller), for collect.policy agent."""
    name = settings["policy"]
    if name == "agent":
        if agent is None:
            raise ValueError("collect.policy agent needs the trained V, M and C (wm collect --vae --mdn --controller)")
        return AgentPolicy(*agent, rng, settings["param_noise"])
    if name not in plugin.random_policies:
        raise ValueError(f"collect.policy {name!r} is not a data policy of env.name {plugin.name!r} "
                         f"(its policies: {', '.join([*plugin.random_policies, 'agent'])})")
    return plugin.random_policies[name](rng, settings)


def policy_parameters(plugin: EnvPlugin, config: dict, agent_files: dict | None = None) -> dict:
    """What the shard's metadata records about the policy (an agent's by the digests of its files)."""
    name = config["collect"]["policy"]
    params = {"name": name}
    if name == "agent":
        params.update(param_noise=config["collect"]["param_noise"], **(agent_files or {}))
        params.update(recorded_settings({"encoder_dtype": config["encoder_dtype"]}))
    else:
        params.update(plugin.policy_parameters(name, config["collect"]))
    return params
