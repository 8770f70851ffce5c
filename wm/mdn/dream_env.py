"""M as an environment: thousands of dream episodes in lockstep, no rendering and no V.

An episode starts from V's code of a real first frame (z = mu + sigma * eps, from the latents
stores `wm encode` wrote), then each step M's LSTM reads [z_t, a_t], samples z_{t+1} from its
mixture at temperature tau (wm/mdn/model.py's sample_next_z), and its heads give the step's reward
and whether the episode ended (mdn.reward_weight, mdn.done_weight): the original code's VizDoom
"dream" set-up. The caller (a controller) sees z_t and h_t, as in the real environment.

Randomness: every episode has its own seed, and its random numbers (which first frame, the start z's
noise, each step's mixture component and noise) come from a torch.Generator seeded with it, drawn a
block of steps at a time. Episodes with the same seed share their random numbers whatever batch they
run in, so candidates that share a track share their dream (common random numbers); the same seeds
give the same trajectories (up to the batched products' rounding, which depends on the batch, as in
the real runner: docs/numerics.md). On a GPU the model and the episodes' tensors live there; the
generators stay on the CPU, so a GPU run draws the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wm.mdn.model import MDNRNN, sample_next_z
from wm.rollouts.readers import open_stores
from wm.rollouts.storage import write_store

# Steps of random numbers drawn per generator call: few calls, little memory (B x BLOCK x z x 2 floats).
BLOCK = 100


def first_frames(latents: list[str | Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of the first frame of every episode of the latents stores: (N, z_dim) each."""
    mus, logvars = [], []
    for store in open_stores(latents, "latents"):
        for e in range(store.episodes):
            episode = store.episode(e, ["mu", "logvar"])
            mus.append(episode["mu"][0])
            logvars.append(episode["logvar"][0])
    return torch.from_numpy(np.stack(mus)), torch.from_numpy(np.stack(logvars))


def write_dream_starts(latents: list[str | Path], out: Path) -> None:
    """`wm dream-starts`: the first frame of every episode of the latents stores, as one latents store of
    one-frame episodes, in the same order: everything a dream needs to start (first_frames gives the same
    tensors from it), small enough to commit so that a dream-trained run resumes from committed files."""
    stores = open_stores(latents, "latents")
    mu, logvar = first_frames(latents)
    firsts = [store.episode(e) for store in stores for e in range(store.episodes)]
    n, z_dim = mu.shape
    arrays = {"mu": mu.numpy()[:, None], "logvar": logvar.numpy()[:, None],
              "actions": np.stack([ep["actions"][:1] for ep in firsts]),
              "rewards": np.stack([ep["rewards"][:1] for ep in firsts]),
              "terminated": np.stack([ep["terminated"][:1] for ep in firsts])}
    attrs = stores[0].attrs
    write_store(out, "latents", arrays, np.ones(n, np.int32), {
        "source": [str(p) for p in latents], "vae": attrs["vae"], "z_dim": z_dim,
        "seeds": [seed for store in stores for seed in store.attrs["seeds"]],
        **({"env": attrs["env"]} if "env" in attrs else {}), "first_frames_only": True,
    })
    print(f"dream-starts: wrote {out} (the first frames of {n} episodes of {len(stores)} latents stores)")


class DreamEnv:
    """A batch of dream episodes. reset(seeds) -> z (B, z_dim); step(actions) -> (z, reward, done),
    with `h` (B, hidden) the LSTM output C reads next. Finished episodes stay in the batch (the
    caller drops them with keep()); a step past an episode's end is the caller's to ignore."""

    def __init__(self, mdn: MDNRNN, starts: tuple[torch.Tensor, torch.Tensor], temperature: float,
                 done_threshold: float = 0.5, device: torch.device | str = "cpu", step_reward: float | None = None):
        """`step_reward`: the environment plug-in's reward when it is the same every step (Doom's +1 for
        surviving it), which the dream then pays instead of M's reward head, as the original's Doom dream
        counts the steps survived; None: M's reward head predicts each step's reward."""
        if mdn.reward_head is None and step_reward is None:
            raise ValueError("M has no reward head, so it cannot be an environment: train it with "
                             "mdn.reward_weight > 0 (and mdn.done_weight > 0 for episodes that end)")
        self.step_reward = step_reward
        self.mdn, self.temperature, self.threshold = mdn.eval().to(device), temperature, done_threshold
        self.device = torch.device(device)
        self.start_mu, self.start_logvar = (t.float().to(self.device) for t in starts)
        if not len(self.start_mu):
            raise ValueError("no first frames to start dreams from (empty latents stores)")
        self.z_dim, self.hidden = mdn.z_dim, mdn.hidden

    @torch.inference_mode()
    def reset(self, seeds: list[int]) -> torch.Tensor:
        self.generators = [torch.Generator().manual_seed(int(seed) % 2**63) for seed in seeds]
        picks = torch.cat([torch.randint(len(self.start_mu), (1,), generator=g) for g in self.generators])
        eps = torch.stack([torch.randn(self.z_dim, generator=g) for g in self.generators]).to(self.device)
        self.rows = torch.arange(len(seeds))  # which generator each row of the batch draws from
        self.t, self.block = 0, None
        self.state = None
        self.h = torch.zeros(len(seeds), self.hidden, device=self.device)
        mu, logvar = self.start_mu[picks.to(self.device)], self.start_logvar[picks.to(self.device)]
        self.z = mu + torch.exp(0.5 * logvar) * eps
        return self.z

    def _draws(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's (u, eps) for the episodes still in the batch."""
        k = self.t % BLOCK
        if k == 0:
            u = torch.stack([torch.rand(BLOCK, self.z_dim, generator=g) for g in self.generators])
            eps = torch.stack([torch.randn(BLOCK, self.z_dim, generator=g) for g in self.generators])
            self.block = (u.to(self.device), eps.to(self.device))
        index = self.rows.to(self.device)
        return self.block[0][index, k], self.block[1][index, k]

    @torch.inference_mode()
    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, self.state = self.mdn.lstm(torch.cat([self.z, actions.to(self.device)], dim=-1).unsqueeze(1), self.state)
        out = out.squeeze(1)
        log_weights, means, log_stds = self.mdn.mixture(out)
        self.z = sample_next_z(log_weights, means, log_stds, self.temperature, draws=self._draws())
        reward, done_logit = self.mdn.outcomes(out)
        if self.step_reward is not None:
            reward = torch.full((len(out),), self.step_reward, device=self.device)
        done = (torch.sigmoid(done_logit) > self.threshold if done_logit is not None
                else torch.zeros(len(out), dtype=torch.bool, device=self.device))
        self.h = out
        self.t += 1
        return self.z, reward, done

    @property
    def c(self) -> torch.Tensor:
        """The LSTM's cell state (B, hidden), which a z_c_h controller reads beside h."""
        return self.state[1][0] if self.state is not None else torch.zeros_like(self.h)

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only these rows of the batch (indices into the current batch)."""
        index = rows.to(self.device)
        self.z, self.h = self.z[index], self.h[index]
        self.state = (self.state[0][:, index], self.state[1][:, index])
        self.rows = self.rows[rows.cpu()]
