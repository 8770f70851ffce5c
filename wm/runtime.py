"""Process set-up shared by the training commands: threads, device, seeds."""

from __future__ import annotations

import torch


def setup_torch(config: dict, seed: int) -> torch.device:
    """Apply config's thread count, seed torch, and pick the device (CUDA when present and allowed)."""
    if config["torch_threads"] > 0:
        torch.set_num_threads(config["torch_threads"])
    torch.manual_seed(seed % 2**63)
    wanted = config["device"]
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for but torch sees no CUDA device")
    device = torch.device("cuda" if wanted in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def autocast(device: torch.device):
    """bf16 autocast on CUDA (the VAE and LSTM train stably in it); a no-op on the CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
