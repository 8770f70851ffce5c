"""The device check's V and M step parts (benchmarks/device_check.py --part v_step, m_step,
v_compile_*, m_compile_*): one training step of wm's V and M loops, measured on the CPU and on CUDA,
in bf16 or not, channels_last or not, compiled or not. bench_train.py times the same steppers.
"""

from __future__ import annotations

import time

from device_check_common import REPO, compile_blocker, cuda_blocker, first_line, python_headers_note

def measure(step, sync, warmup: int, min_steps: int, min_seconds: float, max_steps: int = 10**6) -> tuple[int, float, float]:
    """(timed steps, their seconds, seconds of the warm-up steps: cudnn autotuning, compilation)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warm = time.perf_counter() - t0
    steps, start = 0, time.perf_counter()
    while steps < min_steps or (time.perf_counter() - start < min_seconds and steps < max_steps):
        step()
        steps += 1
    sync()
    return steps, time.perf_counter() - start, warm


def presets(quick: bool) -> dict:
    """The config the V and M steps take their sizes from: the paper preset, or config.yaml when quick."""
    from wm.config import load_config

    files = [REPO / "config.yaml"] + ([] if quick else [REPO / "presets" / "paper.yaml"])
    return load_config(files)


def torch_setup(device: str = "auto"):
    """wm.runtime.setup_torch, as the training stages call it (threads, seed, cudnn/TF32 on CUDA)."""
    from wm.runtime import setup_torch

    return setup_torch({"torch_threads": 0, "device": device}, 0)


def syncer(device):
    import torch

    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def precision(device, bf16: bool):
    """wm.runtime.autocast in bf16 (config train_dtype bfloat16, on CUDA or the CPU) when bf16, else off."""
    from wm.runtime import autocast

    return autocast(device, "bfloat16" if bf16 else "float32")


def vae_stepper(device, bf16: bool, channels_last: bool, compiled: bool, settings: dict):
    """A step of wm/vae/train.py's loop, line for line (frames from numpy each step, as the reader gives them)."""
    import numpy as np
    import torch

    from wm.vae.model import ConvVAE, to_input, vae_loss

    torch.manual_seed(0)
    model = ConvVAE(settings["z_dim"]).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    frames = np.random.default_rng(0).integers(0, 256, (settings["batch_size"], 64, 64, 3), dtype=np.uint8)
    losses = []

    def step():
        x = to_input(torch.from_numpy(frames).to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with precision(device, bf16):
            recon, mu, logvar = forward(x)
        loss, recon_term, kl = vae_loss(recon.float(), x, mu.float(), logvar.float(), settings["kl_tolerance"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append([loss.item(), recon_term.item(), kl.item()][0])

    return step, losses


def mdn_stepper(device, bf16: bool, compiled: bool, settings: dict):
    """A step of wm/mdn/train.py's loop: its batch_loss (autocast inside), backward, clip, Adam."""
    import numpy as np
    import torch

    import wm.mdn.train as mdn_train
    from wm.mdn.model import MDNRNN

    torch.manual_seed(0)
    model = MDNRNN(32, hidden=settings["hidden"], gaussians=settings["gaussians"]).to(device)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    generator = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(0)
    b, t = settings["batch_size"], settings["seq_len"]
    batch = {"mu": rng.normal(0, 1, (b, t + 1, 32)).astype(np.float32),
             "logvar": rng.normal(-2, 0.3, (b, t + 1, 32)).astype(np.float32),
             "actions": rng.uniform(-1, 1, (b, t, 3)).astype(np.float32),
             "mask": np.ones((b, t), np.float32)}
    losses = []

    def step():
        loss, _, _ = mdn_train.batch_loss(forward, batch, device, generator,
                                          train_dtype="bfloat16" if bf16 else "float32")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), settings["grad_clip"])
        optimizer.step()
        losses.append(loss.item())

    return step, losses


def finite_note(losses) -> str:
    import math

    return "" if all(math.isfinite(v) for v in losses) else f"NON-FINITE LOSS ({losses[-1]})"


def run_v_variant(ctx, device, bf16, channels_last, compiled, settings, label, baseline=False):
    step, losses = vae_stepper(device, bf16, channels_last, compiled, settings)
    gpu = device.type == "cuda"
    warmup = 3 if (gpu or compiled or not ctx.quick) else 1
    seconds = (2.5 if gpu else 4.0) if not ctx.quick else 1.5
    steps, spent, warm = measure(step, syncer(device), warmup, 3 if not ctx.quick else 2, seconds)
    fps = settings["batch_size"] * steps / spent
    notes = [f"{steps} steps", f"warm-up {warm:.1f} s" if compiled else "", finite_note(losses)]
    ctx.row("V step", device.type, label, fps, "frames/s", "; ".join(n for n in notes if n), baseline)


def v_group(quick: bool) -> tuple[dict, str]:
    settings = presets(quick)["vae"]
    return settings, f"batch {settings['batch_size']}"


def part_v_step(ctx) -> None:
    import torch

    settings, size = v_group(ctx.quick)
    device = torch_setup()
    threads = torch.get_num_threads()
    cpu = torch.device("cpu")
    run_v_variant(ctx, cpu, False, False, False, settings,
                  f"fp32 NCHW eager, {threads} threads, {size} (wm's CPU path)", baseline=True)
    run_v_variant(ctx, cpu, False, True, False, settings, f"fp32 channels_last eager, {threads} threads")
    if blocker := cuda_blocker():
        ctx.row("V step", "cuda", "fp32/bf16 x NCHW/channels_last, eager", note=blocker)
        return
    for bf16, cl in [(False, False), (True, False), (False, True), (True, True)]:
        label = f"{'bf16' if bf16 else 'fp32 (TF32)'} {'channels_last' if cl else 'NCHW'} eager"
        label += " (wm's CUDA path)" if bf16 and cl else ""
        try:
            run_v_variant(ctx, device, bf16, cl, False, settings, label)
        except Exception as exc:
            ctx.row("V step", "cuda", label, note=f"failed: {first_line(exc)}")


def compile_skipped(ctx, group: str, device_type: str) -> bool:
    """Whether torch.compile cannot run on `device_type` here; if so, one row says why."""
    blocker = (device_type == "cuda" and cuda_blocker()) or compile_blocker(device_type)
    if blocker:
        ctx.row(group, device_type, "torch.compile", note=blocker)
    return bool(blocker)


def run_compiled(ctx, group: str, device_type: str, setting: str, run) -> None:
    """One torch.compile variant of a part, labelled with its setting (and threads on the CPU); a compile
    that fails becomes a row saying why."""
    import torch

    label = f"{setting} torch.compile" + (f", {torch.get_num_threads()} threads" if device_type == "cpu" else "")
    try:
        run(label)
    except Exception as exc:
        ctx.row(group, device_type, label, note=f"failed: {first_line(exc)}{python_headers_note()}")


def part_v_compile(ctx, device_type: str) -> None:
    settings, _ = v_group(ctx.quick)
    device = torch_setup("cpu" if device_type == "cpu" else "auto")
    if compile_skipped(ctx, "V step", device_type):
        return
    variants = [(False, False)] if device_type == "cpu" else [(True, True), (False, False)]
    for bf16, cl in variants:
        run_compiled(ctx, "V step", device_type, f"{'bf16' if bf16 else 'fp32'} {'channels_last' if cl else 'NCHW'}",
                     lambda label: run_v_variant(ctx, device, bf16, cl, True, settings, label))


def run_m_variant(ctx, device, bf16, compiled, settings, label, baseline=False):
    step, losses = mdn_stepper(device, bf16, compiled, settings)
    gpu = device.type == "cuda"
    warmup = 2 if (gpu or compiled) else 1
    seconds = (2.5 if gpu else 3.0) if not ctx.quick else 1.0
    steps, spent, warm = measure(step, syncer(device), warmup, 2, seconds)
    rate = settings["batch_size"] * settings["seq_len"] * steps / spent
    notes = [f"{steps} steps", f"warm-up {warm:.1f} s" if compiled else "", finite_note(losses)]
    ctx.row("M step", device.type, label, rate, "steps/s", "; ".join(n for n in notes if n), baseline)


def m_group(quick: bool) -> tuple[dict, str]:
    settings = presets(quick)["mdn"]
    return settings, f"batch {settings['batch_size']} x {settings['seq_len']}"


def part_m_step(ctx) -> None:
    import torch

    settings, size = m_group(ctx.quick)
    device = torch_setup()
    cpu = torch.device("cpu")
    run_m_variant(ctx, cpu, False, False, settings,
                  f"fp32 eager, {torch.get_num_threads()} threads, {size} (wm's CPU path)", baseline=True)
    if blocker := cuda_blocker():
        ctx.row("M step", "cuda", "fp32/bf16, eager", note=blocker)
        return
    for bf16 in (False, True):
        label = "bf16 eager (wm's CUDA path)" if bf16 else "fp32 (TF32) eager"
        try:
            run_m_variant(ctx, device, bf16, False, settings, label)
        except Exception as exc:
            ctx.row("M step", "cuda", label, note=f"failed: {first_line(exc)}")


def part_m_compile(ctx, device_type: str) -> None:
    settings, _ = m_group(ctx.quick)
    device = torch_setup("cpu" if device_type == "cpu" else "auto")
    if compile_skipped(ctx, "M step", device_type):
        return
    bf16 = device_type == "cuda"
    run_compiled(ctx, "M step", device_type, "bf16" if bf16 else "fp32",
                 lambda label: run_m_variant(ctx, device, bf16, True, settings, label))
