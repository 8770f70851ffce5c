"""`wm encode`: V's posterior (mu, log sigma^2) for every frame of a shard, stored beside the
actions so that M can resample z for every batch, as the original code does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wm.files import file_digest
from wm.rollouts.storage import StoreError, open_store, write_store
from wm.runtime import setup_torch
from wm.vae.model import load_vae, to_input


@torch.inference_mode()
def encode_shard(config: dict, vae_path: Path, shard: Path, out: Path, batch: int = 500) -> None:
    device = setup_torch(config, 0)
    model = load_vae(vae_path, device)
    source = open_store(shard, "rollouts")
    if source.env != model.env:
        raise StoreError(f"{shard}: a store of env.name {source.env!r}, but {vae_path} is a V trained for "
                         f"{model.env!r}")
    episodes, steps, action_dim = source.group["actions"].shape
    z_dim = model.z_dim
    arrays = {
        "mu": np.zeros((episodes, steps, z_dim), np.float32),
        "logvar": np.zeros((episodes, steps, z_dim), np.float32),
        "actions": np.zeros((episodes, steps, action_dim), np.float32),
        "rewards": np.zeros((episodes, steps), np.float32),
        "terminated": np.zeros((episodes, steps), bool),
    }
    for e in range(episodes):
        episode = source.episode(e)
        length = len(episode["actions"])
        for b in range(0, length, batch):
            mu, logvar = model.encode(to_input(torch.from_numpy(episode["frames"][b : b + batch]).to(device)))
            arrays["mu"][e, b : b + len(mu)] = mu.cpu().numpy()
            arrays["logvar"][e, b : b + len(mu)] = logvar.cpu().numpy()
        for name in ("actions", "rewards", "terminated"):
            arrays[name][e, :length] = episode[name]
    write_store(out, "latents", arrays, source.lengths, {
        "source": str(shard), "vae": {"path": str(vae_path), "sha256": file_digest(vae_path)}, "z_dim": z_dim,
        "seeds": source.attrs["seeds"], **({"env": source.env} if "env" in source.attrs else {}),
    })
    print(f"encode: wrote {out} ({source.frames} frames)")
