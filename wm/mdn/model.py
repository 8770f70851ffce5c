"""The MDN-RNN (hardmaru `rnn/rnn.py`): an LSTM over [z, action] whose output
parameterises, for each of the 32 z dimensions separately, a mixture of 5
one-dimensional Gaussians over that dimension's next value."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from wm.files import load_checkpoint

ACTION_DIM = 3
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class MDNRNN(nn.Module):
    def __init__(self, z_dim: int = 32, action_dim: int = ACTION_DIM, hidden: int = 256, gaussians: int = 5):
        super().__init__()
        self.z_dim, self.action_dim, self.hidden, self.gaussians = z_dim, action_dim, hidden, gaussians
        self.lstm = nn.LSTM(z_dim + action_dim, hidden, batch_first=True)
        # Per z dimension and component: a mixture logit, a mean and a log standard deviation.
        self.head = nn.Linear(hidden, z_dim * gaussians * 3)

    def mixture(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LSTM outputs (..., hidden) -> (log_weights, means, log_stds), each (..., z_dim, gaussians);
        log_weights normalised over the components with logsumexp."""
        params = self.head(out).view(*out.shape[:-1], self.z_dim, self.gaussians, 3)
        logits, means, log_stds = params.unbind(-1)
        return logits - torch.logsumexp(logits, dim=-1, keepdim=True), means, log_stds

    def forward(self, z: torch.Tensor, actions: torch.Tensor, state=None):
        """Teacher-forced pass over sequences: z (B, T, z_dim), actions (B, T, 3) ->
        mixture parameters for z_{t+1} at every t, and the final LSTM state."""
        out, state = self.lstm(torch.cat([z, actions], dim=-1), state)
        return self.mixture(out), state

    def step(self, z: torch.Tensor, actions: torch.Tensor, state=None):
        """One step for a batch of environments: z (B, z_dim), actions (B, 3) -> (h, state).
        h (B, hidden) is what the controller sees."""
        out, state = self.lstm(torch.cat([z, actions], dim=-1).unsqueeze(1), state)
        return out.squeeze(1), state


def mixture_log_prob(log_weights, means, log_stds, target: torch.Tensor) -> torch.Tensor:
    """log p(target) under the per-dimension mixtures, summed over z dimensions.
    target (..., z_dim) -> (...). Computed in log space with logsumexp throughout."""
    x = target.unsqueeze(-1)
    log_normal = -0.5 * ((x - means) * torch.exp(-log_stds)).pow(2) - log_stds - LOG_SQRT_2PI
    return torch.logsumexp(log_weights + log_normal, dim=-1).sum(-1)


def mdn_loss(log_weights, means, log_stds, target, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood per z dimension (the original code's scale), averaged over valid steps."""
    nll = -mixture_log_prob(log_weights, means, log_stds, target) / target.shape[-1]
    if mask is None:
        return nll.mean()
    return (nll * mask).sum() / mask.sum().clamp(min=1)


def sample_next_z(log_weights, means, log_stds, temperature: float = 1.0, generator=None) -> torch.Tensor:
    """Draw z_{t+1} with temperature tau: mixture logits / tau, variance * tau."""
    logits = log_weights / temperature
    component = torch.multinomial(
        F.softmax(logits, dim=-1).reshape(-1, logits.shape[-1]), 1, generator=generator
    ).view(*logits.shape[:-1], 1)
    mean = means.gather(-1, component).squeeze(-1)
    std = torch.exp(log_stds.gather(-1, component).squeeze(-1)) * math.sqrt(temperature)
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + std * noise


def load_mdn(path: str | Path, device: torch.device | str = "cpu") -> MDNRNN:
    """M from a `wm train-mdn` checkpoint, in eval mode."""
    checkpoint = load_checkpoint(path, "mdn")
    model = MDNRNN(checkpoint["z_dim"], hidden=checkpoint["hidden"], gaussians=checkpoint["gaussians"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: MDN-RNN weights do not fit the model ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()
