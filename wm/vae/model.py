"""The paper's ConvVAE (hardmaru `vae/vae.py`), layer for layer: 4,348,547 parameters."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from wm.files import checkpoint_env, load_checkpoint

Z_DIM = 32


class ConvVAE(nn.Module):
    """Encoder: 4 stride-2 convs (32/64/128/256, kernel 4, ReLU) -> mu, logvar.
    Decoder: dense to 1024 -> 4 stride-2 transposed convs (kernels 5/5/6/6) -> sigmoid."""

    def __init__(self, z_dim: int = Z_DIM):
        super().__init__()
        self.z_dim = z_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 128, 4, stride=2), nn.ReLU(),
            nn.Conv2d(128, 256, 4, stride=2), nn.ReLU(),
            nn.Flatten(),  # 256 x 2 x 2 = 1024
        )
        self.fc_mu = nn.Linear(1024, z_dim)
        self.fc_logvar = nn.Linear(1024, z_dim)
        self.fc_decode = nn.Linear(z_dim, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 6, stride=2), nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, 3, 64, 64) floats in [0, 1] -> (mu, logvar), each (N, z_dim)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc_decode(z).view(-1, 1024, 1, 1)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def to_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (N, 64, 64, 3) -> float (N, 3, 64, 64) in [0, 1], the VAE's input."""
    return frames.permute(0, 3, 1, 2).float().div_(255.0)


def vae_loss(
    recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, kl_tolerance: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The original code's loss: per-image sum of squared error, plus the KL to N(0, I)
    floored at kl_tolerance * z_dim nats per image (so the posterior keeps some
    information instead of collapsing onto the prior), both averaged over the batch.
    Returns (loss, reconstruction term, KL term before the floor)."""
    reconstruction = (recon - x).pow(2).sum(dim=(1, 2, 3))
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    kl_floored = torch.clamp(kl, min=kl_tolerance * mu.shape[1])
    return (reconstruction + kl_floored).mean(), reconstruction.mean(), kl.mean()


def load_vae(path: str | Path, device: torch.device | str = "cpu") -> ConvVAE:
    """V from a `wm train-vae` (or `wm export`, float16) checkpoint, in float32 and eval mode."""
    checkpoint = load_checkpoint(path, "vae")
    model = ConvVAE(checkpoint["z_dim"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: VAE weights do not fit the model ({str(exc).splitlines()[0]})") from None
    model.env = checkpoint_env(checkpoint)  # the env.name it was trained for
    return model.to(device).eval()
