"""`wm train-vae`: fit V on every collected frame, then check it did not collapse.

Outputs (in --out): model.pt, metrics.csv (one row per logging interval), summary.json
(final losses and the collapse guard's numbers), reconstructions.png; tensorboard/ (the rows as
TensorBoard scalars at their optimizer step, with frames/s: wm/metrics.py)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from wm.files import save_torch, versions, write_csv, write_json
from wm.metrics import metrics_writer, progress
from wm.report import plot_reconstructions
from wm.resume import check_length, env_record, fingerprint, load_resumable, recorded_settings, stores_digest
from wm.rollouts.readers import frame_batches, open_stores, sample_frames
from wm.runtime import autocast, numerics_signature, setup_torch
from wm.seeding import derive_seed, rng
from wm.vae.model import ConvVAE, to_input, vae_loss


class CollapseError(RuntimeError):
    """V reconstructs no better than always drawing the mean frame (the failed reproduction's bug)."""


@torch.inference_mode()
def reconstruction_error(model: ConvVAE, frames: np.ndarray, device: torch.device, batch: int = 256) -> float:
    """Mean per-image sum of squared error of decode(mu) on frames in [0, 1]."""
    model.eval()
    total = 0.0
    for b in range(0, len(frames), batch):
        x = to_input(torch.from_numpy(frames[b : b + batch]).to(device))
        mu, _ = model.encode(x)
        total += (model.decode(mu) - x).pow(2).sum().item()
    return total / len(frames)


def mean_frame_error(frames: np.ndarray) -> float:
    """The same error for a model that always outputs the mean of these frames."""
    x = frames.astype(np.float64) / 255.0
    return float(((x - x.mean(axis=0)) ** 2).sum(axis=(1, 2, 3)).mean())


@torch.inference_mode()
def reconstruct(model: ConvVAE, frames: np.ndarray, device: torch.device) -> np.ndarray:
    """decode(mu) of uint8 frames (N, 64, 64, 3), as uint8 frames."""
    model.eval()
    mu, _ = model.encode(to_input(torch.from_numpy(frames).to(device)))
    return (model.decode(mu).float().clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).cpu().numpy()


def collapse_guard(model, frames, device, max_ratio: float) -> dict:
    vae_error = reconstruction_error(model, frames, device)
    baseline = mean_frame_error(frames)
    return {"vae_error": vae_error, "mean_frame_error": baseline, "ratio": vae_error / baseline,
            "max_ratio": max_ratio, "passed": vae_error / baseline < max_ratio}


def run_fingerprint(config: dict, stores, device: torch.device) -> dict:
    """What a checkpoint must match to be resumed (wm/resume.py): V's settings, the seed, the data's
    content, the device, and on the CPU the thread count (it changes the rounding)."""
    return fingerprint(config, "vae", data=stores_digest(stores), device=device.type, **env_record(config),
                       torch_threads=torch.get_num_threads() if device.type == "cpu" else None,
                       **recorded_settings({"train_dtype": config["train_dtype"]}))


def train_vae(config: dict, data: list[Path], out: Path) -> None:
    settings = config["vae"]
    device = setup_torch(config, derive_seed(config["seed"], "vae"))
    stores = open_stores(data, "rollouts", config["env"]["name"])
    total_frames = sum(s.frames for s in stores)
    batches_per_epoch = math.ceil(total_frames / settings["batch_size"])
    model = ConvVAE(settings["z_dim"]).to(device)
    # channels_last: faster on CUDA, and on the CPU with bf16 autocast (benchmarks/bench_train.py); in
    # float32 on the CPU it is not, and the default keeps the CPU's float32 path as it always was.
    channels_last = device.type == "cuda" or config["train_dtype"] == "bfloat16"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    stream = rng(config["seed"], "vae")
    print(f"train-vae: {total_frames} frames in {len(stores)} shards, {settings['epochs']} epochs on {device}")

    # An epoch checkpoint lets a long training survive the end of a session: the same command
    # resumes, and a raised vae.epochs extends a finished run (wm/resume.py).
    checkpoint = out / "checkpoint.pt"
    expected = run_fingerprint(config, stores, device)
    rows, step, first_epoch = [], 0, 0
    if state := load_resumable(checkpoint, expected, lambda path: torch.load(path, weights_only=False)):
        check_length(checkpoint, state["epoch"], config, "vae")
        print(f"{checkpoint}: resuming after epoch {state['epoch']}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        stream.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        rows, step, first_epoch = state["rows"], state["step"], state["epoch"]
    log_every = max(1, batches_per_epoch // 10)
    # TensorBoard (wm/metrics.py): one point per metrics.csv row at its optimizer step; a resumed run
    # writes from the step after its checkpoint's on, and the readers drop what a killed run wrote past it.
    metrics = metrics_writer(config, out, first_step=step + 1)
    # One bar for the whole run: the time left is the run's, not the epoch's.
    bar = progress(total=settings["epochs"] * batches_per_epoch, initial=first_epoch * batches_per_epoch,
                   unit="batch", desc=f"vae epoch {min(first_epoch + 1, settings['epochs'])}/{settings['epochs']}")
    last_seconds = rows[-1]["seconds"] if rows else 0.0
    start = time.perf_counter() - last_seconds
    with metrics, bar:
        for epoch in range(first_epoch, settings["epochs"]):
            model.train()
            sums = np.zeros(3)
            count = frames_seen = 0
            bar.set_description(f"vae epoch {epoch + 1}/{settings['epochs']}", refresh=False)
            for frames in frame_batches(stores, settings["batch_size"], settings["shuffle_episodes"], stream):
                x = to_input(torch.from_numpy(frames).to(device, non_blocking=True))
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(device, config["train_dtype"]):
                    recon, mu, logvar = model(x)
                loss, recon_term, kl = vae_loss(recon.float(), x, mu.float(), logvar.float(), settings["kl_tolerance"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                sums += [loss.item(), recon_term.item(), kl.item()]
                count += 1
                frames_seen += len(frames)
                if step % log_every == 0 or count == batches_per_epoch:
                    seconds = time.perf_counter() - start
                    rows.append({"epoch": epoch + 1, "step": step, "loss": sums[0] / count,
                                 "reconstruction": sums[1] / count, "kl": sums[2] / count,
                                 "seconds": round(seconds, 2)})
                    metrics.scalars(step, {"loss": rows[-1]["loss"], "reconstruction": rows[-1]["reconstruction"],
                                           "kl": rows[-1]["kl"],
                                           "frames_per_second": frames_seen / max(seconds - last_seconds, 1e-9)},
                                    prefix="vae")
                    bar.set_postfix(loss=f"{sums[0] / count:.1f}", kl=f"{sums[2] / count:.1f}", refresh=False)
                    sums[:] = 0
                    count = frames_seen = 0
                    last_seconds = seconds
                bar.update()
            metrics.flush()  # before the checkpoint that holds these steps (wm/metrics.py)
            save_torch(checkpoint, {"fingerprint": expected, "numerics": numerics_signature(), "epoch": epoch + 1,
                                    "step": step, "rows": rows,
                                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "numpy_rng": stream.bit_generator.state, "torch_rng": torch.get_rng_state()})
    elapsed = time.perf_counter() - start

    sample = sample_frames(stores, config["vae"]["guard_frames"], rng(config["seed"], "vae", 1))
    guard = collapse_guard(model, sample, device, settings["guard_max_ratio"])
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "metrics.csv", rows)
    shown = sample[:: max(1, len(sample) // 8)][:8]
    plot_reconstructions(shown, reconstruct(model, shown, device), out / "reconstructions.png")
    write_json(out / "summary.json", {
        "frames": total_frames, "epochs": settings["epochs"], "steps": step, "seconds": round(elapsed, 1),
        "frames_per_second": round(total_frames * settings["epochs"] / elapsed, 1),
        "final": rows[-1] if rows else None, "collapse_guard": guard, "device": str(device),
    })
    print(f"train-vae: reconstruction error {guard['vae_error']:.1f} vs mean-frame baseline "
          f"{guard['mean_frame_error']:.1f} (ratio {guard['ratio']:.3f}, must be < {guard['max_ratio']})")
    if not guard["passed"]:
        raise CollapseError(
            f"V collapsed: its reconstruction error is {guard['ratio']:.2f} x that of always drawing the mean frame "
            f"(limit vae.guard_max_ratio = {guard['max_ratio']}); see {out / 'reconstructions.png'}. "
            "Train longer (vae.epochs), collect more varied data, or check the loss.")
    save_torch(out / "model.pt", {
        "kind": "vae", "z_dim": settings["z_dim"], "state_dict": model.cpu().state_dict(),
        "config": settings, "collapse_guard": guard, **env_record(config), "versions": versions(),
    })
    print(f"train-vae: wrote {out / 'model.pt'} (checkpoint.pt stays: raising vae.epochs extends this run)")

