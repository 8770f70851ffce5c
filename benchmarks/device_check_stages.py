"""The device check's parts that run wm's own stages whole (benchmarks/device_check.py --part
evaluator, loader, m_loop, cmaes): the evaluator with V on the CPU and on the GPU, collection, the
Zarr reader and train_vae, encode_shard and train_mdn, and a generation of CMA-ES under mpiexec.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from device_check_common import MODELS, REPO, cuda_blocker, first_line, usable_cores
from device_check_steps import precision, torch_setup

def device_v_agent(vae, mdn, variant, z_sample, device, bf16):
    """wm's agent with V's encoder on `device`: the package's agent keeps V on the CPU, so this
    moves the frames there and z back; M, C and the environments stay on the CPU."""
    import torch

    from wm.envs import get_env
    from wm.episodes.agent import WorldModelAgent
    from wm.vae.model import to_input

    class DeviceVAgent(WorldModelAgent):
        def __init__(self):
            super().__init__(vae, mdn, variant, z_sample, env=get_env("car_racing"))
            self.vae = self.vae.to(device)

        @torch.inference_mode()
        def encode(self, frames, noise):
            x = to_input(torch.from_numpy(frames).to(device)).contiguous(memory_format=torch.channels_last)
            with precision(device, bf16):
                mu, logvar = self.vae.encode(x)
            mu, logvar = mu.float().cpu(), logvar.float().cpu()
            if not self.z_sample:
                return mu
            return mu + torch.exp(0.5 * logvar) * torch.from_numpy(noise)

    return DeviceVAgent()


def part_evaluator(ctx) -> None:
    import numpy as np
    import torch

    from wm.controller.model import load_controller
    from wm.episodes.agent import WorldModelAgent
    from wm.episodes.runner import Episode, run_batch
    from wm.envs.car_racing import FAST_ENV_ID, PLUGIN as CAR_RACING, make_env
    from wm.mdn.model import load_mdn
    from wm.runtime import torch_threads
    from wm.vae.model import load_vae

    torch.set_num_threads(torch_threads({"torch_threads": 0}, per_rank=True))  # as a CMA-ES or evaluate rank
    episodes, steps, envs = (4, 100, 4) if ctx.quick else (16, 300, 16)
    vae, mdn = load_vae(MODELS / "vae.pt"), load_mdn(MODELS / "mdn.pt")
    controller = load_controller(MODELS / "controller_z_h.pt", vae.z_dim, mdn.hidden, CAR_RACING.action_dim)
    pool = [make_env(FAST_ENV_ID) for _ in range(envs)]
    seeds = list(range(2000, 2000 + episodes))
    size = f"{episodes} episodes x {steps} steps, lockstep x{envs}, {FAST_ENV_ID}, committed V/M/C z_h, 1 thread; "

    def run(agent, label, device, baseline=False):
        run_batch(FAST_ENV_ID, agent, [Episode(controller.params, 1, 1)] * 2, 10, envs=pool[:2])  # warm-up
        spent, frames, returns = {}, 0, []
        start = time.perf_counter()
        for b in range(0, episodes, envs):
            chunk = [Episode(controller.params, s, s) for s in seeds[b : b + envs]]
            results = run_batch(FAST_ENV_ID, agent, chunk, steps, envs=pool[: len(chunk)], timings=spent)
            frames += sum(r.steps for r in results)
            returns += [r.total_return for r in results]
        seconds = time.perf_counter() - start
        split = ", ".join(f"{k} {1e3 * v / frames:.3f}" for k, v in spent.items())
        ctx.row("evaluator", device, label, frames / seconds, "frames/s",
                (size if baseline else "") + f"ms/frame: {split}; mean return {np.mean(returns):.1f}", baseline)

    run(WorldModelAgent(copy.deepcopy(vae), mdn, controller.variant, controller.z_sample, env=CAR_RACING),
        "V on the CPU (wm's agent, channels_last)", "cpu", baseline=True)
    if blocker := cuda_blocker():
        ctx.row("evaluator", "cuda", "V on the GPU", note=blocker)
        return
    gpu = torch_setup()  # cudnn and TF32 as the training stages set them; it also sets the threads:
    torch.set_num_threads(1)
    for bf16 in (False, True):
        label = f"V on the GPU, {'bf16' if bf16 else 'fp32 (TF32)'}; M, C, env on the CPU"
        try:
            run(device_v_agent(copy.deepcopy(vae), mdn, controller.variant, controller.z_sample, gpu, bf16),
                label, "cuda")
        except Exception as exc:
            ctx.row("evaluator", "cuda", label, note=f"failed: {first_line(exc)}")


def loader_config(ctx, device: str) -> dict:
    from wm.config import load_config

    shards, episodes, steps = (2, 1, 200) if ctx.quick else (8, 2, 1000)
    override = {
        "device": device, "seed": 0,
        "env": {"id": "wm/CarRacing-v3"},
        "collect": {"shards": shards, "episodes_per_shard": episodes, "max_steps": steps, "policy": "random_controller"},
        # Speed, not quality: a short run, and a collapse guard that always passes.
        "vae": {"epochs": 1 if ctx.quick else 2, "batch_size": 100, "guard_frames": 100 if ctx.quick else 500,
                "guard_max_ratio": 1.0e9},
        "mdn": {"epochs": 1, "seq_len": 50 if ctx.quick else 100, "batch_size": 4 if ctx.quick else 16},
    }
    return load_config([REPO / "config.yaml"], json.dumps(override))


def _collect(job):
    config, shard, out = job
    from wm.stages.collect import collect_shard

    collect_shard(config, shard, Path(out))
    return out


def part_loader(ctx) -> None:
    import multiprocessing

    import numpy as np

    from benchmarks.bench_loader import rate
    from wm.rollouts.readers import frame_batches, open_stores
    from wm.vae.train import train_vae

    config = loader_config(ctx, "cpu")
    shards = ctx.work / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    jobs = [(config, s, str(shards / f"shard-{s:03d}.zarr")) for s in range(config["collect"]["shards"])]
    processes = min(len(jobs), usable_cores())
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        paths = [Path(p) for p in pool.map(_collect, jobs)]
    stores = open_stores(paths, "rollouts")
    frames = sum(s.frames for s in stores)
    ctx.row("collect", "cpu", f"collect_shard x{len(jobs)} shards in {processes} processes", frames / (time.perf_counter() - start),
            "frames/s", f"{frames} frames in all (incl. start-up)")
    buffer = config["vae"]["shuffle_episodes"]
    read = rate(frame_batches(stores, 100, buffer, np.random.default_rng(0)), 10**9, len)
    epochs = config["vae"]["epochs"]
    ctx.row("V loop", "cpu", f"reader alone: frame_batches, buffer {buffer} episodes, one epoch", read, "frames/s")
    loops = {}
    for device in ("cpu", "cuda"):
        if device == "cuda" and (blocker := cuda_blocker()):
            ctx.row("V loop", "cuda", "train_vae", note=blocker)
            continue
        out = ctx.work / f"vae-{device}"
        try:
            train_vae(loader_config(ctx, device), paths, out)
            summary = json.loads((out / "summary.json").read_text())
            loops[device] = summary["frames_per_second"]
            note = f"{frames} frames x {epochs} epochs, {summary['seconds']} s; reader / loop {read / loops[device]:.1f}x"
            ctx.row("V loop", device, "train_vae (reader + step + checkpoint), batch 100", loops[device],
                    "frames/s", note, baseline=device == "cpu")
        except Exception as exc:
            ctx.row("V loop", device, "train_vae", note=f"failed: {first_line(exc)}")


def part_m_loop(ctx) -> None:
    from wm.mdn.train import train_mdn
    from wm.rollouts.readers import open_stores
    from wm.vae.encode import encode_shard

    shards = sorted((ctx.work / "shards").glob("shard-*.zarr"))
    if not shards:
        ctx.row("encode", "cpu", "encode_shard", note="skipped: no shards (the loader part did not write them)")
        return
    frames = sum(s.frames for s in open_stores(shards, "rollouts"))
    for device in ("cpu", "cuda"):
        if device == "cuda" and (blocker := cuda_blocker()):
            ctx.row("encode", "cuda", "encode_shard + train_mdn", note=blocker)
            continue
        config = loader_config(ctx, device)
        latents = [ctx.work / f"latents-{device}" / s.name for s in shards]
        try:
            start = time.perf_counter()
            for shard, out in zip(shards, latents):
                out.parent.mkdir(parents=True, exist_ok=True)
                encode_shard(config, MODELS / "vae.pt", shard, out)
            ctx.row("encode", device, f"encode_shard x{len(shards)} (committed V, batch 500)",
                    frames / (time.perf_counter() - start), "frames/s", baseline=device == "cpu")
        except Exception as exc:
            ctx.row("encode", device, "encode_shard", note=f"failed: {first_line(exc)}")
            continue
        out = ctx.work / f"mdn-{device}"
        try:
            train_mdn(config, latents, out)
            summary = json.loads((out / "summary.json").read_text())
            with open(out / "metrics.csv") as f:
                seconds = float(list(csv.DictReader(f))[-1]["seconds"])  # the epoch, with its validation
            transitions = sum(int(s.lengths.sum()) - len(s.lengths) for s in open_stores(latents, "latents"))
            m = config["mdn"]
            ctx.row("M loop", device, f"train_mdn, 1 epoch + validation, batch {m['batch_size']} x {m['seq_len']}",
                    transitions / seconds, "steps/s", f"{summary['windows']} windows, {seconds:.1f} s",
                    baseline=device == "cpu")
        except Exception as exc:
            ctx.row("M loop", device, "train_mdn", note=f"failed: {first_line(exc)}")


def generation_seconds(log_csv: Path) -> tuple[float, float, float]:
    """The second generation's (seconds, frames, utilization) from train-controller's log.csv
    (the first includes start-up), as benchmarks/bench_scaling.py reads it."""
    with open(log_csv) as f:
        rows = list(csv.DictReader(f))
    return (float(rows[1]["seconds"]) - float(rows[0]["seconds"]), float(rows[1]["frames"]),
            float(rows[1]["utilization"]))


def part_cmaes(ctx, deadline: float) -> None:
    import yaml

    launcher = os.environ.get("WM_MPIEXEC", "")
    extra = shlex.split(os.environ.get("WM_MPIEXEC_ARGS", ""))
    if not launcher:
        local = Path(sys.executable).parent / "mpiexec"
        launcher = str(local) if local.exists() else (shutil.which("mpiexec") or "")
    cores = usable_cores()
    popsize, rollouts, steps, envs, counts = (4, 2, 50, 2, [1, 2]) if ctx.quick else (32, 4, 150, 4, [1, 4, 8, 16])
    ctx.info(mpi=os.environ.get("WM_MPI_NOTE") or f"{launcher or 'none'} (found by device_check.py)")
    size = f"population {popsize} x {rollouts} rollouts x {steps} steps, chunks of {envs}, wm/CarRacing-v3"
    if not launcher:
        ctx.row("CMA-ES gen", "cpu", size, note=f"skipped: {os.environ.get('WM_MPI_NOTE', 'no mpiexec found')}")
        return
    times = {}
    for ranks in counts:
        label = f"{ranks} rank{'s' if ranks > 1 else ''}, one generation of wm train-controller"
        if ranks > cores:
            ctx.row("CMA-ES gen", "cpu", label, note=f"skipped: {cores} cores here")
            continue
        config = ctx.work / f"cmaes-{ranks}.yaml"
        config.write_text(yaml.safe_dump({"env": {"id": "wm/CarRacing-v3"}, "controller": {
            "popsize": popsize, "rollouts": rollouts, "generations": 2, "max_steps": steps, "eval_every": 0,
            "ranks": ranks, "envs_per_rank": envs}}))
        out = ctx.work / f"cmaes-{ranks}"
        command = [launcher, *extra, "-n", str(ranks), sys.executable, "-m", "wm.cli", "train-controller",
                   "--config", str(REPO / "config.yaml"), "--config", str(config), "--variant", "z_h",
                   "--vae", str(MODELS / "vae.pt"), "--mdn", str(MODELS / "mdn.pt"), "--out", str(out)]
        try:
            subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True,
                           timeout=max(5.0, deadline - time.time() - 2))
            seconds, frames, busy = generation_seconds(out / "log.csv")
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["?"]
            ctx.row("CMA-ES gen", "cpu", label, note=f"failed: exit {exc.returncode}: {tail[0][:160]}")
            continue
        except Exception as exc:
            ctx.row("CMA-ES gen", "cpu", label, note=f"failed: {first_line(exc)}")
            break
        times[ranks] = seconds
        first = min(times)
        efficiency = times[first] * first / (ranks * seconds)
        ctx.row("CMA-ES gen", "cpu", label, frames / seconds, "frames/s",
                (f"{size}; " if ranks == counts[0] else "")
                + f"generation {seconds:.2f} s, efficiency {efficiency:.1%}, ranks busy {busy:.1%}",
                baseline=ranks == counts[0])
