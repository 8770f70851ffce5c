"""`wm train-mdn`: fit M on V's latents with teacher forcing.

For every batch z is resampled from the stored posterior (z = mu + sigma * eps), so M
sees V's uncertainty, as in the original code. Outputs (in --out): model.pt,
metrics.csv (train and validation loss per epoch, and the copy-last-z baseline), loss.png;
tensorboard/ (the same per epoch as TensorBoard scalars: wm/metrics.py)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wm.files import save_torch, versions, write_csv, write_json
from wm.mdn.model import MDNRNN, mdn_loss
from wm.metrics import duration, metrics_writer, progress
from wm.report import plot_curves
from wm.resume import check_length, fingerprint, load_resumable, stores_digest
from wm.rollouts.readers import open_stores, sequence_batches, sequence_windows
from wm.runtime import autocast, numerics_signature, setup_torch
from wm.seeding import derive_seed, rng

# The columns of metrics.csv that TensorBoard shows (step = epoch).
TENSORBOARD = ("train_loss", "validation_loss", "mdn_mse", "copy_last_z_mse")


def batch_loss(model: MDNRNN, batch: dict, device,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, float, float]:
    """MDN loss of one batch; the mean squared error of M's expected next z (the mixture mean)
    and of the copy-last-z baseline, both against the sampled next z."""
    mu, logvar = (torch.from_numpy(batch[k]).to(device) for k in ("mu", "logvar"))
    noise = torch.randn(mu.shape, generator=generator).to(device)
    z = mu + torch.exp(0.5 * logvar) * noise
    actions = torch.from_numpy(batch["actions"]).to(device)
    mask = torch.from_numpy(batch["mask"]).to(device)
    with autocast(device):
        (log_weights, means, log_stds), _ = model(z[:, :-1], actions)
    loss = mdn_loss(log_weights.float(), means.float(), log_stds.float(), z[:, 1:], mask)
    def masked_mse(prediction):
        return (((prediction - z[:, 1:]).pow(2).mean(-1) * mask).sum() / mask.sum().clamp(min=1)).item()

    expected = (log_weights.float().exp() * means.float()).sum(-1)
    return loss, masked_mse(expected.detach()), masked_mse(z[:, :-1])


def run_fingerprint(config: dict, stores, device: torch.device) -> dict:
    """What a checkpoint must match to be resumed (wm/resume.py): M's settings, the seed, the latents'
    content (V's digest is in their metadata), the device, and on the CPU the thread count."""
    return fingerprint(config, "mdn", latents=stores_digest(stores), device=device.type,
                       torch_threads=torch.get_num_threads() if device.type == "cpu" else None)


def train_mdn(config: dict, latents: list[Path], out: Path) -> None:
    settings = config["mdn"]
    device = setup_torch(config, derive_seed(config["seed"], "mdn"))
    stores = open_stores(latents, "latents")
    z_dim = stores[0].attrs["z_dim"]
    windows = sequence_windows(stores, settings["seq_len"])
    stream = rng(config["seed"], "mdn")
    stream.shuffle(windows)
    # Hold out ~5% of the windows (at least one) to watch for overfitting.
    held = max(1, len(windows) // 20) if len(windows) > 1 else 0
    validation, training = windows[:held], windows[held:]
    model = MDNRNN(z_dim, hidden=settings["hidden"], gaussians=settings["gaussians"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    generator = torch.Generator().manual_seed(derive_seed(config["seed"], "mdn", 1) % 2**63)
    batches = math.ceil(len(training) / settings["batch_size"])
    print(f"train-mdn: {len(training)} training and {len(validation)} validation windows of "
          f"{settings['seq_len']} steps, {settings['epochs']} epochs on {device}")

    # The same resume rule as V's (wm/resume.py): a raised mdn.epochs extends a finished run.
    checkpoint = out / "checkpoint.pt"
    expected = run_fingerprint(config, stores, device)
    rows, first_epoch = [], 0
    if state := load_resumable(checkpoint, expected, lambda path: torch.load(path, weights_only=False)):
        check_length(checkpoint, state["epoch"], config, "mdn")
        print(f"{checkpoint}: resuming after epoch {state['epoch']}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        stream.bit_generator.state = state["numpy_rng"]
        generator.set_state(state["torch_rng"])
        rows, first_epoch = state["rows"], state["epoch"]
    # TensorBoard (wm/metrics.py): the metrics.csv row of each epoch at step = epoch; a resumed run
    # writes from the epoch after its checkpoint's on.
    metrics = metrics_writer(config, out, first_step=first_epoch + 1)
    # One bar for the whole run, so that its time left is the run's; one line per epoch besides.
    bar = progress(total=settings["epochs"] * batches, initial=first_epoch * batches, unit="batch",
                   desc=f"mdn epoch {min(first_epoch + 1, settings['epochs'])}/{settings['epochs']}")
    start = time.perf_counter() - (rows[-1]["seconds"] if rows else 0.0)
    began = time.perf_counter()  # this process's share of the run: what the time left is estimated from
    with metrics, bar:
        for epoch in range(first_epoch, settings["epochs"]):
            model.train()
            losses = []
            bar.set_description(f"mdn epoch {epoch + 1}/{settings['epochs']}", refresh=False)
            for batch in sequence_batches(stores, training, settings["seq_len"], settings["batch_size"], stream):
                loss, _, _ = batch_loss(model, batch, device, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_value_(model.parameters(), settings["grad_clip"])
                optimizer.step()
                losses.append(loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                bar.update()
            val_loss, mdn_error, copy_error = evaluate_windows(model, stores, validation, settings, device, generator)
            rows.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "validation_loss": val_loss,
                         "mdn_mse": mdn_error, "copy_last_z_mse": copy_error,
                         "seconds": round(time.perf_counter() - start, 2)})
            metrics.scalars(epoch + 1, {k: rows[-1][k] for k in TENSORBOARD}, prefix="mdn")
            left = (time.perf_counter() - began) / (epoch + 1 - first_epoch) * (settings["epochs"] - epoch - 1)
            bar.write(f"mdn epoch {epoch + 1}/{settings['epochs']}: train {rows[-1]['train_loss']:.4f} "
                      f"validation {val_loss:.4f} next-z MSE {mdn_error:.4f} (copy-last-z baseline {copy_error:.4f}); "
                      f"{rows[-1]['seconds']:.0f} s, ~{duration(left)} left", file=sys.stdout)
            sys.stdout.flush()
            out.mkdir(parents=True, exist_ok=True)
            metrics.flush()  # before the checkpoint that holds this epoch (wm/metrics.py)
            save_torch(checkpoint, {"fingerprint": expected, "numerics": numerics_signature(), "epoch": epoch + 1,
                                    "rows": rows,
                                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "numpy_rng": stream.bit_generator.state, "torch_rng": generator.get_state()})

    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "metrics.csv", rows)
    plot_curves(rows, "epoch", ["train_loss", "validation_loss"], out / "loss.png",
                "M: mixture negative log-likelihood per z dimension", "loss (nats)")
    write_json(out / "summary.json", {"windows": len(windows), "epochs": settings["epochs"],
                                      "seconds": round(time.perf_counter() - start, 1), "final": rows[-1]})
    save_torch(out / "model.pt", {
        "kind": "mdn", "z_dim": z_dim, "hidden": settings["hidden"], "gaussians": settings["gaussians"],
        "state_dict": model.cpu().state_dict(), "config": settings, "versions": versions(),
    })
    print(f"train-mdn: wrote {out / 'model.pt'} (checkpoint.pt stays: raising mdn.epochs extends this run)")


@torch.inference_mode()
def evaluate_windows(model, stores, windows, settings, device, generator) -> tuple[float, float, float]:
    """Validation loss, M's next-z MSE and the copy-last-z baseline's, averaged over batches."""
    if not windows:
        return float("nan"), float("nan"), float("nan")
    model.eval()
    values = []
    for batch in sequence_batches(stores, windows, settings["seq_len"], settings["batch_size"], None):
        loss, mdn_error, copy_error = batch_loss(model, batch, device, generator)
        values.append((loss.item(), mdn_error, copy_error))
    return tuple(float(v) for v in np.mean(values, axis=0))

