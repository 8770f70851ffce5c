"""`wm train-mdn`: fit M on V's latents with teacher forcing.

For every batch z is resampled from the stored posterior (z = mu + sigma * eps), so M
sees V's uncertainty, as in the original code. Outputs (in --out): model.pt,
metrics.csv (train and validation loss per epoch, and the copy-last-z baseline), loss.png;
tensorboard/ (the same per epoch as TensorBoard scalars: wm/metrics.py).

With mdn.reward_weight or mdn.done_weight above 0, M also learns the step's reward and whether the
episode ended (wm/mdn/model.py's heads) from the rewards and terminations the latents stores hold;
the loss is the mixture NLL + reward_weight * reward MSE + done_weight * done BCE, and metrics.csv
gets each head's validation error beside a trivial baseline's (HEAD_COLUMNS). With both at 0 (the
default) nothing of this runs: the same parameters, random draws and outputs as before the heads."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wm.envs import env_of
from wm.files import file_digest, save_torch, versions, write_csv, write_json
from wm.mdn.model import MDNRNN, head_losses, load_mdn, mdn_loss, reward_mask
from wm.metrics import duration, metrics_writer, progress
from wm.report import plot_curves
from wm.resume import check_length, env_record, fingerprint, load_resumable, recorded_settings, stores_digest
from wm.rollouts.readers import open_stores, sequence_batches, sequence_windows
from wm.rollouts.storage import StoreError
from wm.runtime import autocast, numerics_signature, setup_torch
from wm.seeding import derive_seed, rng

# The columns of metrics.csv that TensorBoard shows (step = epoch).
TENSORBOARD = ("train_loss", "validation_loss", "mdn_mse", "copy_last_z_mse")
# metrics.csv's (and TensorBoard's) columns for the heads, written only when M has them. Each error
# stands beside a trivial baseline's on the same validation steps: for the reward (on the steps that
# do not end an episode, wm/mdn/model.py's reward_mask), always predicting the validation steps' own
# mean reward (so reward_baseline_mse is their variance); for the episode end, a constant probability
# equal to the validation steps' own termination rate (its BCE is that rate's binary entropy; "never
# ends", p = 0, would score infinity). done_recall: the share of terminating steps M calls (p > 0.5);
# done_false_alarm: the share of the other steps it calls.
HEAD_COLUMNS = {"reward": ("train_reward_mse", "reward_mse", "reward_baseline_mse"),
                "done": ("train_done_bce", "done_bce", "done_baseline_bce", "done_recall", "done_false_alarm")}


def head_weights(settings: dict) -> tuple[float, float]:
    """(mdn.reward_weight, mdn.done_weight); 0 turns a head off (the default: the paper's M)."""
    return float(settings.get("reward_weight", 0.0)), float(settings.get("done_weight", 0.0))


def batch_loss(model: MDNRNN, batch: dict, device, generator: torch.Generator | None = None,
               weights: tuple[float, float] = (0.0, 0.0), stats: dict | None = None,
               train_dtype: str = "auto") -> tuple[torch.Tensor, float, float]:
    """MDN loss of one batch; the mean squared error of M's expected next z (the mixture mean)
    and of the copy-last-z baseline, both against the sampled next z. With heads (`weights` above 0,
    the batch from outcome_batches) the loss adds weight x each head's loss, and `stats` (if given)
    receives the sums the heads' metrics are made of (accumulate, head_metrics). `train_dtype`: the
    config key of that name (wm.runtime.autocast)."""
    mu, logvar = (torch.from_numpy(batch[k]).to(device) for k in ("mu", "logvar"))
    noise = torch.randn(mu.shape, generator=generator).to(device)
    z = mu + torch.exp(0.5 * logvar) * noise
    actions = torch.from_numpy(batch["actions"]).to(device)
    mask = torch.from_numpy(batch["mask"]).to(device)
    with autocast(device, train_dtype):
        if not any(weights):
            (log_weights, means, log_stds), _ = model(z[:, :-1], actions)
        else:  # the same pass, keeping the LSTM's outputs for the heads
            out, _ = model.lstm(torch.cat([z[:, :-1], actions], dim=-1))
            log_weights, means, log_stds = model.mixture(out)
            reward, done_logit = model.outcomes(out)
    loss = mdn_loss(log_weights.float(), means.float(), log_stds.float(), z[:, 1:], mask)
    def masked_mse(prediction):
        return (((prediction - z[:, 1:]).pow(2).mean(-1) * mask).sum() / mask.sum().clamp(min=1)).item()

    expected = (log_weights.float().exp() * means.float()).sum(-1)
    mdn_error, copy_error = masked_mse(expected.detach()), masked_mse(z[:, :-1])
    if any(weights):
        rewards, terminated, head_mask = (torch.from_numpy(batch[k]).to(device).float()
                                          for k in ("rewards", "terminated", "head_mask"))
        reward = reward.float() if reward is not None else None
        done_logit = done_logit.float() if done_logit is not None else None
        reward_loss, done_loss = head_losses(reward, done_logit, rewards, terminated, head_mask)
        if stats is not None:
            stats["nll"] = loss.item()
            accumulate(stats, reward, done_logit, rewards, terminated, head_mask, reward_loss, done_loss)
        loss = loss + weights[0] * reward_loss + weights[1] * done_loss
    return loss, mdn_error, copy_error


@torch.no_grad()
def accumulate(stats: dict, reward, done_logit, rewards, terminated, mask, reward_loss, done_loss) -> None:
    """Add one batch's sums to `stats`: counts, squared errors, BCE, termination counts."""
    n = float(mask.sum())
    stats["steps"] = stats.get("steps", 0.0) + n
    if reward is not None:
        kept = reward_mask(mask, terminated)
        m = float(kept.sum())
        stats["reward_steps"] = stats.get("reward_steps", 0.0) + m
        stats["reward_se"] = stats.get("reward_se", 0.0) + float(reward_loss) * m
        stats["reward_sum"] = stats.get("reward_sum", 0.0) + float((rewards * kept).sum())
        stats["reward_sq"] = stats.get("reward_sq", 0.0) + float((rewards.pow(2) * kept).sum())
    if done_logit is not None:
        called = (done_logit > 0).float() * mask
        stats["done_bce"] = stats.get("done_bce", 0.0) + float(done_loss) * n
        stats["ends"] = stats.get("ends", 0.0) + float((terminated * mask).sum())
        stats["hits"] = stats.get("hits", 0.0) + float((called * terminated).sum())
        stats["alarms"] = stats.get("alarms", 0.0) + float((called * (1 - terminated)).sum())


def head_metrics(stats: dict, prefix: str = "") -> dict:
    """metrics.csv's head columns from accumulated sums (HEAD_COLUMNS); `prefix` 'train_' gives
    the training-set errors only."""
    n = max(stats.get("steps", 0.0), 1.0)
    row = {}
    if "reward_se" in stats:
        m = max(stats["reward_steps"], 1.0)
        row[f"{prefix}reward_mse"] = stats["reward_se"] / m
        if not prefix:
            mean = stats["reward_sum"] / m
            row["reward_baseline_mse"] = max(stats["reward_sq"] / m - mean**2, 0.0)
    if "done_bce" in stats:
        row[f"{prefix}done_bce"] = stats["done_bce"] / n
        if not prefix:
            rate = stats["ends"] / n
            row["done_baseline_bce"] = (0.0 if rate in (0.0, 1.0)
                                        else -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate)))
            row["done_recall"] = stats["hits"] / stats["ends"] if stats["ends"] else float("nan")
            row["done_false_alarm"] = stats["alarms"] / max(n - stats["ends"], 1.0)
    return row


def outcome_batches(stores, windows, seq_len: int, batch_size: int, rng):
    """sequence_batches' batches (the same order for the same rng: it draws the same shuffle), plus
    what the heads learn from, per step t of a window: rewards, terminated (0/1) and head_mask.
    A head's target exists one step further than the next z does: the last step of an episode has
    a reward and its termination but no next frame, so head_mask also covers it (and its action)
    when it falls inside the window. The mixture's loss is unchanged: the LSTM is causal, and that
    step is masked for it."""
    order = list(range(len(windows)))
    if rng is not None:
        rng.shuffle(order)
    ordered = [windows[i] for i in order]
    for b, batch in enumerate(sequence_batches(stores, ordered, seq_len, batch_size, None)):
        picked = ordered[b * batch_size : (b + 1) * batch_size]
        for key in ("rewards", "terminated", "head_mask"):
            batch[key] = np.zeros((len(picked), seq_len), np.float32)
        cache: dict = {}
        for row, (s, e, start) in enumerate(picked):
            if (s, e) not in cache:
                cache[(s, e)] = stores[s].episode(e, ["actions", "rewards", "terminated"])
            episode = cache[(s, e)]
            steps = min(seq_len, len(episode["actions"]) - start)
            batch["actions"][row, :steps] = episode["actions"][start : start + steps]
            batch["rewards"][row, :steps] = episode["rewards"][start : start + steps]
            batch["terminated"][row, :steps] = episode["terminated"][start : start + steps]
            batch["head_mask"][row, :steps] = 1.0
        yield batch


def run_fingerprint(config: dict, stores, device: torch.device) -> dict:
    """What a checkpoint must match to be resumed (wm/resume.py): M's settings, the seed, the latents'
    content (V's digest is in their metadata), the device, on the CPU the thread count, and the
    fine-tuned M by content (mdn.init), not by where it lies."""
    init = config["mdn"]["init"]
    start = {"mdn.init": file_digest(Path(init))} if init != "random" else {}
    return fingerprint(config, "mdn", latents=stores_digest(stores), device=device.type, **env_record(config),
                       torch_threads=torch.get_num_threads() if device.type == "cpu" else None, **start,
                       **recorded_settings({"train_dtype": config["train_dtype"]}))


def start_from(model: MDNRNN, path: Path) -> None:
    """mdn.init: M's weights from a trained M of the same shape; heads the trained M lacks start fresh."""
    start = load_mdn(path)
    shape = lambda m: (m.z_dim, m.hidden, m.gaussians)
    if shape(start) != shape(model):
        raise ValueError(f"mdn.init: {path} has (z_dim, hidden, gaussians) {shape(start)}, "
                         f"this run needs {shape(model)}")
    missing, _ = model.load_state_dict(start.state_dict(), strict=False)
    print(f"train-mdn: starting from {path}" + (f" ({len(missing)} head tensors fresh)" if missing else ""))


def train_mdn(config: dict, latents: list[Path], out: Path) -> None:
    settings = config["mdn"]
    device = setup_torch(config, derive_seed(config["seed"], "mdn"))
    stores = open_stores(latents, "latents", config["env"]["name"])
    z_dim = stores[0].attrs["z_dim"]
    if z_dim != config["vae"]["z_dim"]:
        raise StoreError(f"{stores[0].path}: latents of a V with z_dim {z_dim}, but this run's vae.z_dim is "
                         f"{config['vae']['z_dim']}")
    action_dim = env_of(config).action_dim
    windows = sequence_windows(stores, settings["seq_len"])
    stream = rng(config["seed"], "mdn")
    stream.shuffle(windows)
    # Hold out ~5% of the windows (at least one) to watch for overfitting.
    held = max(1, len(windows) // 20) if len(windows) > 1 else 0
    validation, training = windows[:held], windows[held:]
    weights = head_weights(settings)
    model = MDNRNN(z_dim, action_dim, settings["hidden"], settings["gaussians"],
                   reward_head=weights[0] > 0, done_head=weights[1] > 0).to(device)
    if settings["init"] != "random":
        start_from(model, Path(settings["init"]))
    batches_of = outcome_batches if any(weights) else sequence_batches
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
            losses, train_stats = [], {}
            bar.set_description(f"mdn epoch {epoch + 1}/{settings['epochs']}", refresh=False)
            for batch in batches_of(stores, training, settings["seq_len"], settings["batch_size"], stream):
                stats = {} if any(weights) else None
                loss, _, _ = batch_loss(model, batch, device, generator, weights, stats, config["train_dtype"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_value_(model.parameters(), settings["grad_clip"])
                optimizer.step()
                losses.append(stats.pop("nll") if stats else loss.item())  # train_loss: the mixture's NLL
                for key, value in (stats or {}).items():
                    train_stats[key] = train_stats.get(key, 0.0) + value
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                bar.update()
            val_stats = {} if any(weights) else None
            val_loss, mdn_error, copy_error = evaluate_windows(model, stores, validation, settings, device, generator,
                                                               config["train_dtype"], val_stats)
            rows.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "validation_loss": val_loss,
                         "mdn_mse": mdn_error, "copy_last_z_mse": copy_error,
                         **(head_metrics(train_stats, "train_") | head_metrics(val_stats) if any(weights) else {}),
                         "seconds": round(time.perf_counter() - start, 2)})
            metrics.scalars(epoch + 1, {k: v for k, v in rows[-1].items() if k in TENSORBOARD or k in
                                        HEAD_COLUMNS["reward"] + HEAD_COLUMNS["done"]}, prefix="mdn")
            left = (time.perf_counter() - began) / (epoch + 1 - first_epoch) * (settings["epochs"] - epoch - 1)
            bar.write(f"mdn epoch {epoch + 1}/{settings['epochs']}: train {rows[-1]['train_loss']:.4f} "
                      f"validation {val_loss:.4f} next-z MSE {mdn_error:.4f} (copy-last-z baseline {copy_error:.4f}); "
                      + "".join(f"{k} {rows[-1][k]:.4f} " for k in ("reward_mse", "reward_baseline_mse", "done_bce",
                                                                    "done_baseline_bce") if k in rows[-1])
                      + f"{rows[-1]['seconds']:.0f} s, ~{duration(left)} left", file=sys.stdout)
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
        # Only when M has heads, so that a run without them writes the same file as before they existed.
        **({"reward_head": weights[0] > 0, "done_head": weights[1] > 0} if any(weights) else {}),
        # Off CarRacing (whose M reads 3 actions, as every M before plug-ins did): the environment.
        **({**env_record(config), "action_dim": action_dim} if env_record(config) else {}),
        "state_dict": model.cpu().state_dict(), "config": settings, "versions": versions(),
    })
    print(f"train-mdn: wrote {out / 'model.pt'} (checkpoint.pt stays: raising mdn.epochs extends this run)")


@torch.inference_mode()
def evaluate_windows(model, stores, windows, settings, device, generator, train_dtype: str,
                     stats: dict | None = None) -> tuple[float, float, float]:
    """Validation loss, M's next-z MSE and the copy-last-z baseline's, averaged over batches; with
    heads (`stats` given), their sums over every validation step go into `stats`."""
    if not windows:
        return float("nan"), float("nan"), float("nan")
    model.eval()
    values = []
    weights = head_weights(settings)
    batches_of = outcome_batches if any(weights) else sequence_batches
    for batch in batches_of(stores, windows, settings["seq_len"], settings["batch_size"], None):
        batch_stats = {} if any(weights) else None
        loss, mdn_error, copy_error = batch_loss(model, batch, device, generator, weights, batch_stats, train_dtype)
        if batch_stats:
            loss = torch.tensor(batch_stats.pop("nll"))
            for key, value in batch_stats.items():
                stats[key] = stats.get(key, 0.0) + value
        values.append((loss.item(), mdn_error, copy_error))
    return tuple(float(v) for v in np.mean(values, axis=0))

