"""The linear controller of the paper (hardmaru `model.py`): a = tanh(W [z, h] + b),
steer = a0, gas = (a1 + 1) / 2, brake = clip(a2, 0, 1). CMA-ES searches its flat
parameter vector, so everything here works on flat vectors and batches of them."""

from __future__ import annotations

import numpy as np
import torch

ACTION_DIM = 3


def controller_inputs(inputs: str, z_dim: int = 32, hidden: int = 256) -> int:
    """'z_h' (the full model) sees [z, h]: 288 inputs; 'z' (the ablation) sees z alone: 32."""
    if inputs == "z_h":
        return z_dim + hidden
    if inputs == "z":
        return z_dim
    raise ValueError(f"controller.inputs must be 'z_h' or 'z', got {inputs!r}")


def parameter_count(inputs: str, z_dim: int = 32, hidden: int = 256) -> int:
    """(288 + 1) x 3 = 867 for the full model, (32 + 1) x 3 = 99 for z only."""
    return (controller_inputs(inputs, z_dim, hidden) + 1) * ACTION_DIM


def unflatten(params: torch.Tensor, n_inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, (n_inputs + 1) * 3) flat vectors -> weights (B, 3, n_inputs), biases (B, 3).
    The layout is the original code's: the weight matrix row-major, then the bias."""
    weights = params[:, : ACTION_DIM * n_inputs].reshape(-1, ACTION_DIM, n_inputs)
    return weights, params[:, ACTION_DIM * n_inputs :]


def act(params: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Batched controllers: params (B, P), features (B, n_inputs) -> actions (B, 3),
    each environment driven by its own parameter vector."""
    weights, bias = unflatten(params, features.shape[1])
    a = torch.tanh(torch.bmm(weights, features.unsqueeze(-1)).squeeze(-1) + bias)
    steer = a[:, 0]
    gas = (a[:, 1] + 1.0) / 2.0
    brake = a[:, 2].clamp(0.0, 1.0)
    return torch.stack([steer, gas, brake], dim=1)


def l2_penalty(params: np.ndarray, coefficient: float) -> float:
    """The original code's regulariser, subtracted from the fitness: coefficient * mean(w^2)."""
    return coefficient * float(np.mean(np.square(params)))
