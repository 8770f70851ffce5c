"""V's encoder at the evaluator's batch (16 frames), one core, one torch thread: the ways torch offers
to run it on the CPU, side by side, with how far each moves mu from the eager float32 encoder.

  eager contiguous             the plain module
  eager channels_last          what wm's agent runs (wm/episodes/agent.py)
  jit freeze + optimize        torch.jit.trace, freeze, optimize_for_inference (oneDNN conv fusion)
  torch.compile                inductor (needs a C++ compiler)
  eager channels_last bf16     config encoder_dtype: bfloat16 (opt-in; it moves the score)

The committed budget V, random frames (the cost does not depend on them); CPU clock; median of 5.

    .venv/bin/python benchmarks/bench_encoder.py
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import torch

from wm.vae.model import load_vae

REPO = Path(__file__).resolve().parents[1]


class Encoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        return self.vae.encode(x)


@torch.inference_mode()
def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vae = load_vae(REPO / "docs" / "results" / "budget" / "vae.pt").eval()
    x = torch.rand(16, 3, 64, 64)
    x_last = x.contiguous(memory_format=torch.channels_last)
    last = copy.deepcopy(vae).to(memory_format=torch.channels_last)
    bf16 = copy.deepcopy(vae).to(memory_format=torch.channels_last, dtype=torch.bfloat16)
    frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(Encoder(copy.deepcopy(vae)), x).eval()))
    paths = {"eager contiguous": lambda: vae.encode(x), "eager channels_last": lambda: last.encode(x_last),
             "jit freeze + optimize_for_inference": lambda: frozen(x)}
    try:
        compiled = torch.compile(Encoder(copy.deepcopy(vae)))
        compiled(x)
        paths["torch.compile"] = lambda: compiled(x)
    except Exception as exc:  # inductor needs a working C++ toolchain
        print(f"torch.compile: not available ({type(exc).__name__}: {str(exc)[:120]})")
    paths["eager channels_last bfloat16"] = lambda: bf16.encode(x_last.to(torch.bfloat16))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{cpu}, torch {torch.__version__}; batch 16, one thread, CPU clock, median of 5 x 20 batches; "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    reference = vae.encode(x)[0]
    for name, path in paths.items():
        for _ in range(3):
            mu = path()[0]
        times = []
        for _ in range(5):
            start = time.thread_time()
            for _ in range(20):
                path()
            times.append((time.thread_time() - start) / (20 * 16) * 1e3)
        print(f"{name:<38} {sorted(times)[2]:6.3f} ms a frame   max |mu - eager float32| "
              f"{(mu.float() - reference).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
