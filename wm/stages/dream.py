"""`wm dream`: roll M forward from a real frame and decode its z's with V, next to what really
happened, so a person can see whether M learned the track.

Starting from a recorded frame, M is fed the recorded actions and its own sampled z's
(temperature tau); the GIF shows the real frames (left) and V's decoding of the dream (right)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from wm.envs import env_of
from wm.files import atomic_path
from wm.mdn.model import load_mdn, sample_next_z
from wm.rollouts.storage import open_store
from wm.seeding import derive_seed
from wm.vae.model import load_vae, to_input


@torch.inference_mode()
def dream(config: dict, vae_path: Path, mdn_path: Path, shard: Path, out: Path,
          start: int | None = None, steps: int | None = None, temperature: float | None = None,
          controller: Path | None = None) -> dict:
    if controller is not None:
        return driven_dream(config, vae_path, mdn_path, shard, out, controller, start, steps, temperature)
    tau = config["mdn"]["temperature"] if temperature is None else temperature
    start = config["mdn"]["dream_start"] if start is None else start
    steps = config["mdn"]["dream_steps"] if steps is None else steps
    vae, mdn = load_vae(vae_path), load_mdn(mdn_path)
    episode = open_store(shard, "rollouts").episode(0)
    length = len(episode["actions"])
    if not 0 <= start < length - 1:
        raise ValueError(f"dream start {start} (mdn.dream_start or --start) is outside the first episode of {shard} (0..{length - 2})")
    steps = min(steps, length - 1 - start)
    real = episode["frames"][start : start + steps + 1]
    actions = torch.from_numpy(episode["actions"][start : start + steps])
    generator = torch.Generator().manual_seed(derive_seed(config["seed"], "dream") % 2**63)
    z, _ = vae.encode(to_input(torch.from_numpy(real[:1])))
    state, dreamed = None, [z]
    for t in range(steps):
        out_t, state = mdn.lstm(torch.cat([z, actions[t : t + 1]], dim=-1).unsqueeze(1), state)
        log_weights, means, log_stds = mdn.mixture(out_t.squeeze(1))
        z = sample_next_z(log_weights, means, log_stds, tau, generator)
        dreamed.append(z)
    decoded = (vae.decode(torch.cat(dreamed)).clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()
    # How far the dream drifts from V's encoding of the real frames, per step.
    real_z, _ = vae.encode(to_input(torch.from_numpy(real)))
    drift = (torch.cat(dreamed) - real_z).pow(2).mean(dim=1).numpy()
    frames = np.concatenate([real, np.zeros((len(real), 64, 4, 3), np.uint8), decoded], axis=2)
    frames = np.repeat(np.repeat(frames, 3, axis=1), 3, axis=2)  # 3x larger for viewing
    with atomic_path(out) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=50, loop=0)
    print(f"dream: wrote {out} ({steps} steps at temperature {tau}; mean squared z drift "
          f"{drift[: steps // 4 + 1].mean():.3f} over the first quarter, {drift.mean():.3f} overall)")
    return {"steps": steps, "temperature": tau, "z_drift": drift.tolist()}


@torch.inference_mode()
def driven_dream(config: dict, vae_path: Path, mdn_path: Path, shard: Path, out: Path, controller_path: Path,
                 start: int | None, steps: int | None, temperature: float | None) -> dict:
    """C driving in M's dream from a recorded frame (default: the episode's first, where dream
    training starts), at controller.dream_temperature unless --temperature; up to --steps steps
    (default controller.dream_max_steps) or M's done head."""
    from wm.controller.model import act, features, load_controller
    from wm.episodes.agent import load_models
    from wm.mdn.dream_env import DreamEnv

    tau = config["controller"]["dream_temperature"] if temperature is None else temperature
    start = 0 if start is None else start
    steps = config["controller"]["dream_max_steps"] if steps is None else steps
    plugin = env_of(config)
    vae, mdn = load_models(vae_path, mdn_path, plugin)
    c = load_controller(controller_path, vae.z_dim, mdn.hidden, plugin.action_dim, plugin.name)
    episode = open_store(shard, "rollouts").episode(0)
    mu, logvar = vae.encode(to_input(torch.from_numpy(episode["frames"][start : start + 1])))
    env = DreamEnv(mdn, (mu, logvar), tau, config["controller"]["dream_done_threshold"],
                   step_reward=plugin.step_reward)
    z = env.reset([derive_seed(config["seed"], "dream", 1)])
    params = torch.from_numpy(np.asarray(c.params, np.float32))[None]
    zs, total, ended = [z], 0.0, "max_steps"
    for t in range(steps):
        z, reward, done = env.step(act(params, features(c.variant, z, env.h, env.c), plugin.to_action))
        zs.append(z)
        total += float(reward[0])
        if bool(done[0]):
            ended = "terminated"
            break
    decoded = (vae.decode(torch.cat(zs)).clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()
    frames = np.repeat(np.repeat(decoded, 3, axis=1), 3, axis=2)
    with atomic_path(out) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=50, loop=0)
    print(f"dream: wrote {out} ({len(zs) - 1} steps of {controller_path} driving in M's dream at temperature "
          f"{tau}; dream return {total:.1f}, ended by {ended})")
    return {"steps": len(zs) - 1, "temperature": tau, "dream_return": total, "ended_by": ended}
