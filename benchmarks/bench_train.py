"""V's and M's training steps on the CPU: wm's default against the layouts and precisions a CPU offers.

A training step here is what wm/vae/train.py and wm/mdn/train.py run per batch: forward, loss,
backward and Adam, on a batch of the configured size (vae.batch_size frames of 64x64x3; mdn.batch_size
windows of mdn.seq_len steps), with random inputs (the step's cost does not depend on them).
The variants, each measured side by side in alternating repeats of one process:
  default          float32, contiguous (NCHW): what wm trains with on the CPU
  channels_last    float32, NHWC tensors (what wm uses on CUDA)
  bf16 autocast    torch.autocast("cpu", bfloat16): AMX / AVX512-BF16 kernels where the CPU has them
  bf16 + chlast    both
for each torch thread count given. Wall clock (the threads run in parallel) and the process's CPU
clock are both printed; on a shared machine read the ratio, measured in one run.

    .venv/bin/python benchmarks/bench_train.py [--threads 1 2] [--repeats 3] [--batches 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from wm.config import load_config
from wm.mdn.model import MDNRNN, mdn_loss
from wm.vae.model import ConvVAE, vae_loss

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {"default": (False, False), "channels_last": (True, False),
            "bf16 autocast": (False, True), "bf16 + channels_last": (True, True)}


def vae_step_fn(batch_size: int, kl_tolerance: float, channels_last: bool, bf16: bool):
    model = ConvVAE()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch_size, 3, 64, 64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            recon, mu, logvar = model(x)
        loss = vae_loss(recon.float(), x, mu.float(), logvar.float(), kl_tolerance)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step, batch_size


def mdn_step_fn(batch_size: int, length: int, bf16: bool):
    model = MDNRNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    z, a = torch.randn(batch_size, length + 1, 32), torch.rand(batch_size, length + 1, 3)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            (log_weights, means, log_stds), _ = model(z[:, :-1], a[:, :-1])
        loss = mdn_loss(log_weights.float(), means.float(), log_stds.float(), z[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step, batch_size * length


def timed(step, batches: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; the median is reported")
    parser.add_argument("--batches", type=int, default=4, help="training steps per timing")
    args = parser.parse_args()
    config = load_config([os.path.join(REPO, "config.yaml")])
    v, m = config["vae"], config["mdn"]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{cpu}, torch {torch.__version__}, Python {platform.python_version()}; median of {args.repeats} "
          f"alternating repeats of {args.batches} steps; {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        steps = {f"V {name}": vae_step_fn(v["batch_size"], v["kl_tolerance"], *flags) for name, flags in VARIANTS.items()}
        steps |= {f"M {name}": mdn_step_fn(m["batch_size"], m["seq_len"], bf16)
                  for name, bf16 in (("default", False), ("bf16 autocast", True))}
        for step, _ in steps.values():
            step()  # warm-up: kernels chosen, buffers allocated
        runs = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, (step, _) in steps.items():
                runs[name].append(timed(step, args.batches))
        print(f"torch threads {threads}:")
        reference = {}
        for name, results in runs.items():
            per_batch = steps[name][1]
            wall, cpu_seconds = sorted(results)[len(results) // 2]
            unit = "frame" if name.startswith("V") else "step"
            ms = 1e3 * wall / (args.batches * per_batch)
            net = name.split()[0]
            reference.setdefault(net, ms)
            print(f"  {name:<24} {ms:7.3f} ms a {unit} wall  ({1e3 * cpu_seconds / (args.batches * per_batch):7.3f} "
                  f"CPU)  speed-up {reference[net] / ms:4.2f}x")


if __name__ == "__main__":
    main()
