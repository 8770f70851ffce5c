"""The linear controller of the paper (hardmaru `model.py`): a = tanh(W [z, h] + b), one output per
action of the environment, which the environment's plug-in maps onto its actions (`to_action`:
CarRacing's steer = a0, gas = (a1 + 1) / 2, brake = clip(a2, 0, 1)). CMA-ES searches its flat
parameter vector, so everything here works on flat vectors and batches of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wm.controller import VARIANTS
from wm.files import checkpoint_env, load_checkpoint


def controller_inputs(variant: str, z_dim: int = 32, hidden: int = 256) -> int:
    """'z_h' (the full model) sees [z, h]: 288 inputs; 'z' (the ablation) sees z alone: 32."""
    if variant == "z_h":
        return z_dim + hidden
    if variant == "z":
        return z_dim
    raise ValueError(f"controller variant must be one of {', '.join(VARIANTS)}, got {variant!r}")


def parameter_count(variant: str, z_dim: int, hidden: int, action_dim: int) -> int:
    """(inputs + 1) x actions: CarRacing's (288 + 1) x 3 = 867 for the full model, (32 + 1) x 3 = 99 for z only."""
    return (controller_inputs(variant, z_dim, hidden) + 1) * action_dim


def uses_memory(variant: str) -> bool:
    """Whether C reads M's hidden state (the z-only controller drives without running M)."""
    controller_inputs(variant)
    return variant == "z_h"


def unflatten(params: torch.Tensor, n_inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, (n_inputs + 1) * A) flat vectors -> weights (B, A, n_inputs), biases (B, A).
    The layout is the original code's: the weight matrix row-major, then the bias."""
    outputs = params.shape[1] // (n_inputs + 1)
    weights = params[:, : outputs * n_inputs].reshape(-1, outputs, n_inputs)
    return weights, params[:, outputs * n_inputs :]


def act(params: torch.Tensor, features: torch.Tensor, to_action) -> torch.Tensor:
    """Batched controllers: params (B, P), features (B, n_inputs) -> actions (B, A), each environment
    driven by its own parameter vector; `to_action` is the environment plug-in's mapping of C's tanh
    outputs onto its actions."""
    weights, bias = unflatten(params, features.shape[1])
    return to_action(torch.tanh(torch.bmm(weights, features.unsqueeze(-1)).squeeze(-1) + bias))


def l2_penalty(params: np.ndarray, coefficient: float) -> float:
    """The original code's regulariser, subtracted from the fitness: coefficient * mean(w^2)."""
    return coefficient * float(np.mean(np.square(params)))


@dataclass
class Controller:
    """A trained C as `wm train-controller` saved it: which inputs it reads, its flat parameters,
    and whether it was trained on z sampled from V's posterior (so it is driven the same way)."""

    variant: str
    params: np.ndarray
    z_sample: bool
    env: str  # the env.name it was trained for
    generations: int = 0  # CMA-ES generations it was evolved for
    training: dict | None = None  # how: generations, where fitness was measured (real or dream) and at which tau


def load_controller(path: str | Path, z_dim: int, hidden: int, action_dim: int) -> Controller:
    """C from a controller checkpoint, checked against the V (z_dim) and M (hidden, action_dim) it will
    drive with."""
    checkpoint = load_checkpoint(path, "controller")
    variant, params = checkpoint["variant"], checkpoint["params"].numpy()
    if variant not in VARIANTS:
        raise ValueError(f"{path}: unknown controller variant {variant!r} (known: {', '.join(VARIANTS)})")
    expected = parameter_count(variant, z_dim, hidden, action_dim)
    if params.shape != (expected,):
        raise ValueError(f"{path}: controller has {params.shape[0]} parameters, "
                         f"but a '{variant}' controller on this V and M needs {expected}")
    settings, generations = checkpoint["config"], int(checkpoint.get("generations", 0))
    training = {"generations": generations, "environment": settings.get("environment", "real"),
                "solution": checkpoint.get("solution", settings.get("eval_solution")), "init": settings.get("init")}
    if training["environment"] == "dream":
        training["dream_temperature"] = settings.get("dream_temperature")
    training["env"] = checkpoint_env(checkpoint)
    return Controller(variant, params, bool(settings["z_sample"]), training["env"], generations, training)
