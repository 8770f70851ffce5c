"""The agent: V's encoder, M's LSTM and C, run on a whole batch of environments at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wm.controller.model import Controller, act, controller_inputs, load_controller, uses_memory
from wm.mdn.model import MDNRNN, load_mdn
from wm.vae.model import ConvVAE, load_vae, to_input


class WorldModelAgent:
    """V + M + C for a batch of environments, each driven by its own controller parameters."""

    def __init__(self, vae: ConvVAE, mdn: MDNRNN, variant: str, z_sample: bool):
        controller_inputs(variant, vae.z_dim, mdn.hidden)  # refuses an unknown variant
        # channels_last runs the encoder's convolutions ~10% faster on the CPU too.
        self.vae = vae.eval().to(memory_format=torch.channels_last)
        self.mdn, self.variant, self.z_sample = mdn.eval(), variant, z_sample
        self.uses_memory = uses_memory(variant)

    @torch.inference_mode()
    def encode(self, frames: np.ndarray, noise: np.ndarray) -> torch.Tensor:
        x = to_input(torch.from_numpy(frames)).contiguous(memory_format=torch.channels_last)
        mu, logvar = self.vae.encode(x)
        if not self.z_sample:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.from_numpy(noise)

    @torch.inference_mode()
    def act(self, params: torch.Tensor, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        features = torch.cat([z, h], dim=1) if self.uses_memory else z
        return act(params, features)

    @torch.inference_mode()
    def remember(self, z: torch.Tensor, actions: torch.Tensor, state):
        return self.mdn.step(z, actions, state)


def load_agent(vae_path: Path, mdn_path: Path, variant: str, z_sample: bool) -> WorldModelAgent:
    """The agent from V's and M's checkpoints, checked to fit together."""
    vae, mdn = load_vae(vae_path), load_mdn(mdn_path)
    if vae.z_dim != mdn.z_dim:
        raise ValueError(f"{vae_path} has z_dim {vae.z_dim} but {mdn_path} was trained on z_dim {mdn.z_dim}")
    return WorldModelAgent(vae, mdn, variant, z_sample)


def load_trained_agent(vae_path: Path, mdn_path: Path, controller_path: Path) -> tuple[WorldModelAgent, Controller]:
    """The agent a controller checkpoint drives, and the controller: C is driven as it was trained,
    on sampled z if its CMA-ES run sampled z (its checkpoint says)."""
    vae, mdn = load_vae(vae_path), load_mdn(mdn_path)
    controller = load_controller(controller_path, vae.z_dim, mdn.hidden)
    return WorldModelAgent(vae, mdn, controller.variant, controller.z_sample), controller
