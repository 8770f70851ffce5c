"""The agent: V's encoder, M's LSTM and C, run on a whole batch of environments at once."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from wm.controller.model import Controller, act, controller_inputs, features, load_controller, uses_memory
from wm.envs import EnvPlugin
from wm.mdn.model import MDNRNN, load_mdn
from wm.vae.model import ConvVAE, load_vae, to_input


# config encoder_dtype: the precision V's encoder drives in (training V is unaffected).
ENCODER_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class WorldModelAgent:
    """V + M + C for a batch of environments of one plug-in (`env`), each driven by its own controller
    parameters."""

    def __init__(self, vae: ConvVAE, mdn: MDNRNN, variant: str, z_sample: bool, encoder_dtype: str = "float32",
                 *, env: EnvPlugin):
        controller_inputs(variant, vae.z_dim, mdn.hidden)  # refuses an unknown variant
        if mdn.action_dim != env.action_dim:
            raise ValueError(f"M reads {mdn.action_dim} action values, but env.name {env.name!r} has "
                             f"{env.action_dim} ({', '.join(env.action_names)})")
        self.env = env
        if encoder_dtype not in ENCODER_DTYPES:
            raise ValueError(f"encoder_dtype is {encoder_dtype!r}; expected one of {sorted(ENCODER_DTYPES)}")
        # channels_last runs the encoder's convolutions ~10% faster on the CPU too; bfloat16 weights
        # (config encoder_dtype) ~2.5x faster where the CPU has AMX or AVX512-BF16 (docs/benchmarks.md).
        self.encoder_dtype = ENCODER_DTYPES[encoder_dtype]
        if self.encoder_dtype != torch.float32:
            vae = copy.deepcopy(vae)  # a module's .to() converts in place: leave the caller's V as it was
        self.vae = vae.eval().to(memory_format=torch.channels_last, dtype=self.encoder_dtype)
        self.mdn, self.variant, self.z_sample = mdn.eval(), variant, z_sample
        self.uses_memory = uses_memory(variant)

    @torch.inference_mode()
    def encode(self, frames: np.ndarray, noise: np.ndarray) -> torch.Tensor:
        x = to_input(torch.from_numpy(frames)).to(self.encoder_dtype).contiguous(memory_format=torch.channels_last)
        mu, logvar = (t.float() for t in self.vae.encode(x))
        if not self.z_sample:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.from_numpy(noise)

    @torch.inference_mode()
    def act(self, params: torch.Tensor, z: torch.Tensor, h: torch.Tensor, state=None) -> torch.Tensor:
        """C's actions from z, M's output h and its LSTM state (h, c), which only z_c_h reads."""
        c = state[1][0] if state is not None else torch.zeros_like(h)
        return act(params, features(self.variant, z, h, c), self.env.to_action)

    @torch.inference_mode()
    def remember(self, z: torch.Tensor, actions: torch.Tensor, state):
        return self.mdn.step(z, actions, state)


def check_env(path: Path, kind: str, trained_for: str, env: EnvPlugin) -> None:
    """One line, before any work, when a V, M or C checkpoint was trained for another environment."""
    if trained_for != env.name:
        raise ValueError(f"{path}: a {kind} trained for env.name {trained_for!r}, but this run's env.name is "
                         f"{env.name!r}")


def load_models(vae_path: Path, mdn_path: Path, env: EnvPlugin) -> tuple[ConvVAE, MDNRNN]:
    """V and M, checked to be `env`'s and to fit together."""
    vae, mdn = load_vae(vae_path), load_mdn(mdn_path)
    check_env(vae_path, "V", vae.env, env)
    check_env(mdn_path, "M", mdn.env, env)
    if vae.z_dim != mdn.z_dim:
        raise ValueError(f"{vae_path} has z_dim {vae.z_dim} but {mdn_path} was trained on z_dim {mdn.z_dim}")
    return vae, mdn


def load_agent(vae_path: Path, mdn_path: Path, variant: str, z_sample: bool,
               encoder_dtype: str = "float32", *, env: EnvPlugin) -> WorldModelAgent:
    """The agent from V's and M's checkpoints, checked to fit together."""
    vae, mdn = load_models(vae_path, mdn_path, env)
    return WorldModelAgent(vae, mdn, variant, z_sample, encoder_dtype, env=env)


def load_trained_agent(vae_path: Path, mdn_path: Path, controller_path: Path,
                       encoder_dtype: str = "float32", *, env: EnvPlugin) -> tuple[WorldModelAgent, Controller]:
    """The agent a controller checkpoint drives, and the controller: C is driven as it was trained,
    on sampled z if its CMA-ES run sampled z (its checkpoint says)."""
    vae, mdn = load_models(vae_path, mdn_path, env)
    controller = load_controller(controller_path, vae.z_dim, mdn.hidden, env.action_dim, env.name)
    return WorldModelAgent(vae, mdn, controller.variant, controller.z_sample, encoder_dtype, env=env), controller
