"""The MDN-RNN (hardmaru `rnn/rnn.py`): an LSTM over [z, action] whose output
parameterises, for each of the 32 z dimensions separately, a mixture of 5
one-dimensional Gaussians over that dimension's next value.

Optional heads (issue 15, off by default, so that M is the paper's exactly): from the same LSTM output,
the reward of the step (a regression, trained with mean squared error) and whether the episode ended
there (terminated; a logit, trained with binary cross-entropy), as the original code's VizDoom M
predicts `done`. With them M is a whole environment to learn in (wm/mdn/dream_env.py)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from wm.files import checkpoint_env, load_checkpoint

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class MDNRNN(nn.Module):
    def __init__(self, z_dim: int = 32, action_dim: int = 3, hidden: int = 256, gaussians: int = 5,
                 reward_head: bool = False, done_head: bool = False):
        super().__init__()
        self.z_dim, self.action_dim, self.hidden, self.gaussians = z_dim, action_dim, hidden, gaussians
        self.lstm = nn.LSTM(z_dim + action_dim, hidden, batch_first=True)
        # Per z dimension and component: a mixture logit, a mean and a log standard deviation.
        self.head = nn.Linear(hidden, z_dim * gaussians * 3)
        # Created only when asked for: without them the parameters, the optimizer's state and every
        # random draw of training are those of the paper's M, bit for bit.
        self.reward_head = nn.Linear(hidden, 1) if reward_head else None
        self.done_head = nn.Linear(hidden, 1) if done_head else None

    def outcomes(self, out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """LSTM outputs (..., hidden) -> (reward, done logit), each (...), or None for a head M lacks.
        At step t (after reading z_t and a_t) they predict the reward of that step and whether the
        episode ended with it."""
        reward = self.reward_head(out).squeeze(-1) if self.reward_head is not None else None
        done = self.done_head(out).squeeze(-1) if self.done_head is not None else None
        return reward, done

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


def sample_next_z(log_weights, means, log_stds, temperature: float = 1.0, generator=None,
                  draws: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Draw z_{t+1} with temperature tau: mixture logits / tau, variance * tau.

    `draws` (optional): the randomness given instead of drawn from `generator`, as (u, eps), each
    shaped like the result: u uniform in [0, 1) picks each dimension's component by inverse CDF,
    eps ~ N(0, 1) its noise. The dream environment passes them so that episodes that share a track
    share their random numbers whatever batch they run in (common random numbers)."""
    logits = log_weights / temperature
    if draws is None:
        component = torch.multinomial(
            F.softmax(logits, dim=-1).reshape(-1, logits.shape[-1]), 1, generator=generator
        ).view(*logits.shape[:-1], 1)
    else:
        cdf = F.softmax(logits, dim=-1).cumsum(-1)
        component = (cdf < draws[0].unsqueeze(-1)).sum(-1, keepdim=True).clamp(max=logits.shape[-1] - 1)
    mean = means.gather(-1, component).squeeze(-1)
    std = torch.exp(log_stds.gather(-1, component).squeeze(-1)) * math.sqrt(temperature)
    if draws is None:
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    else:
        noise = draws[1]
    return mean + std * noise


def reward_mask(mask: torch.Tensor, terminated: torch.Tensor | None) -> torch.Tensor:
    """The steps the reward head learns from: valid steps that do not end the episode. An ending
    step's reward is mostly CarRacing's -100 for leaving the playfield, an outlier 30 times the
    size of a tile's reward that would dominate the squared error (measured: with it, a linear
    head on h scores worse than the mean reward); the done head learns that ending instead, and a
    dream ends there."""
    return mask if terminated is None else mask * (1 - terminated)


def head_losses(reward, done_logit, rewards, terminated, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """The heads' losses over valid steps: mean squared error of the reward (on the steps that do
    not end the episode: reward_mask), binary cross-entropy of the done logit against `terminated`
    (0/1). A head M lacks (None) contributes 0."""
    count = mask.sum().clamp(min=1)
    zero = mask.new_zeros(())
    kept = reward_mask(mask, terminated)
    reward_loss = (((reward - rewards).pow(2) * kept).sum() / kept.sum().clamp(min=1)
                   if reward is not None else zero)
    done_loss = ((F.binary_cross_entropy_with_logits(done_logit, terminated, reduction="none") * mask).sum()
                 / count if done_logit is not None else zero)
    return reward_loss, done_loss


def load_mdn(path: str | Path, device: torch.device | str = "cpu") -> MDNRNN:
    """M from a `wm train-mdn` checkpoint, in eval mode."""
    checkpoint = load_checkpoint(path, "mdn")
    # Checkpoints from before the heads existed have neither key: M without heads.
    # Checkpoints from before environments were plug-ins have no action_dim: CarRacing's 3.
    model = MDNRNN(checkpoint["z_dim"], checkpoint.get("action_dim", 3), checkpoint["hidden"], checkpoint["gaussians"],
                   reward_head=checkpoint.get("reward_head", False), done_head=checkpoint.get("done_head", False))
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: MDN-RNN weights do not fit the model ({str(exc).splitlines()[0]})") from None
    model.env = checkpoint_env(checkpoint)  # the env.name it was trained for
    return model.to(device).eval()
