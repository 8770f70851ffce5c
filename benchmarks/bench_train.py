"""V's and M's training steps on the CPU: wm's default against the layouts and precisions a CPU offers.

A training step here is what wm/vae/train.py and wm/mdn/train.py run per batch (device_check_steps.py's
vae_stepper and mdn_stepper: forward, loss, backward, clip, Adam), on a batch of the configured size
(vae.batch_size frames of 64x64x3; mdn.batch_size windows of mdn.seq_len steps), with random inputs.
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

from device_check_steps import mdn_stepper, vae_stepper  # benchmarks/: the steps of wm's training loops
from wm.config import load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {"default": (False, False), "channels_last": (True, False),
            "bf16 autocast": (False, True), "bf16 + channels_last": (True, True)}


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
        cpu = torch.device("cpu")
        steps = {f"V {name}": (vae_stepper(cpu, bf16, last, False, v)[0], v["batch_size"])
                 for name, (last, bf16) in VARIANTS.items()}
        steps |= {f"M {name}": (mdn_stepper(cpu, bf16, False, m)[0], m["batch_size"] * m["seq_len"])
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
