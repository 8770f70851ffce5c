"""The linear controller of the paper (hardmaru `model.py`): a = tanh(W [z, h] + b), one output per
action of the environment, which the environment's plug-in maps onto its actions (`to_action`:
CarRacing's steer = a0, gas = (a1 + 1) / 2, brake = clip(a2, 0, 1)). The original Doom controller
reads [z, c, h] and has no bias (controller.bias: false): 64 + 512 + 512 = 1,088 parameters.
CMA-ES searches its flat parameter vector, so everything here works on flat vectors and batches of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wm.controller import VARIANTS
from wm.files import checkpoint_env, load_checkpoint


def controller_inputs(variant: str, z_dim: int = 32, hidden: int = 256) -> int:
    """'z_h' (the full model) sees [z, h]: 288 inputs on CarRacing's sizes; 'z' (the ablation) sees z
    alone: 32; 'z_c_h' sees [z, c, h], the LSTM's cell state too: 1,088 on Doom's (64 + 512 + 512)."""
    if variant == "z_h":
        return z_dim + hidden
    if variant == "z":
        return z_dim
    if variant == "z_c_h":
        return z_dim + 2 * hidden
    raise ValueError(f"controller variant must be one of {', '.join(VARIANTS)}, got {variant!r}")


def parameter_count(variant: str, z_dim: int, hidden: int, action_dim: int, bias: bool = True) -> int:
    """(inputs + 1) x actions with a bias, inputs x actions without: CarRacing's (288 + 1) x 3 = 867 for
    the full model, (32 + 1) x 3 = 99 for z only; Doom's 1,088 x 1 without a bias."""
    return (controller_inputs(variant, z_dim, hidden) + bool(bias)) * action_dim


def uses_memory(variant: str) -> bool:
    """Whether C reads M's state (the z-only controller drives without running M)."""
    controller_inputs(variant)
    return variant != "z"


def features(variant: str, z: torch.Tensor, h: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
    """What a `variant` controller reads, (B, inputs): z, [z, h] or [z, c, h] (the original's order)."""
    if variant == "z_h":
        return torch.cat([z, h], dim=1)
    if variant == "z_c_h":
        return torch.cat([z, c, h], dim=1)
    return z


def unflatten(params: torch.Tensor, n_inputs: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, P) flat vectors -> weights (B, A, n_inputs), biases (B, A) or None. The layout is the original
    code's: the weight matrix row-major, then the bias if there is one. P = A (n_inputs + 1) with a bias,
    A n_inputs without; the two cannot be confused while C has fewer outputs than inputs (A < n_inputs)."""
    size = params.shape[1]
    if size % (n_inputs + 1) == 0 and size // (n_inputs + 1) < n_inputs:
        outputs, bias = size // (n_inputs + 1), True
    elif size % n_inputs == 0 and size // n_inputs < n_inputs:
        outputs, bias = size // n_inputs, False
    else:
        raise ValueError(f"{size} controller parameters fit no linear controller on {n_inputs} inputs")
    weights = params[:, : outputs * n_inputs].reshape(-1, outputs, n_inputs)
    return weights, (params[:, outputs * n_inputs :] if bias else None)


def act(params: torch.Tensor, features: torch.Tensor, to_action) -> torch.Tensor:
    """Batched controllers: params (B, P), features (B, n_inputs) -> actions (B, A), each environment
    driven by its own parameter vector; `to_action` is the environment plug-in's mapping of C's tanh
    outputs onto its actions."""
    weights, bias = unflatten(params, features.shape[1])
    linear = torch.bmm(weights, features.unsqueeze(-1)).squeeze(-1)
    return to_action(torch.tanh(linear + bias if bias is not None else linear))


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


def load_controller(path: str | Path, z_dim: int, hidden: int, action_dim: int, env: str | None = None) -> Controller:
    """C from a controller checkpoint, checked against the environment (`env`, an env.name, when given)
    first, then the V (z_dim) and M (hidden, action_dim) it will drive with."""
    checkpoint = load_checkpoint(path, "controller", required=("variant", "params", "config"))
    if env is not None and checkpoint_env(checkpoint) != env:
        raise ValueError(f"{path}: a controller trained for env.name {checkpoint_env(checkpoint)!r}, but this "
                         f"run's env.name is {env!r}")
    variant, params = checkpoint["variant"], checkpoint["params"].numpy()
    if variant not in VARIANTS:
        raise ValueError(f"{path}: unknown controller variant {variant!r} (known: {', '.join(VARIANTS)})")
    settings = checkpoint["config"]
    expected = parameter_count(variant, z_dim, hidden, action_dim, settings.get("bias", True))
    if params.shape != (expected,):
        raise ValueError(f"{path}: controller has {params.shape[0]} parameters, "
                         f"but a '{variant}' controller on this V and M needs {expected}")
    generations = int(checkpoint.get("generations", 0))
    training = {"generations": generations, "environment": settings.get("environment", "real"),
                "solution": checkpoint.get("solution", settings.get("eval_solution")), "init": settings.get("init")}
    if training["environment"] == "dream":
        training["dream_temperature"] = settings.get("dream_temperature")
    training["env"] = checkpoint_env(checkpoint)
    return Controller(variant, params, bool(settings["z_sample"]), training["env"], generations, training)
