"""Dream steps/s (wm/mdn/dream_env.py) against the real evaluator's frames/s, side by side in one run.

The real path: the CMA-ES evaluator (wm.episodes.runner.run_batch), `--envs` environments of
wm's fast CarRacing in lockstep with V, M and C batched over them (gymnasium's env with --gymnasium).
The dream path: wm.episodes.dream.run_dream_batch, the same controller driving M's dream (M's LSTM,
the mixture sampled at tau 1.15, the reward and done heads; no rendering, no V) for batches of
each --batches size. Untrained V and M (speed does not depend on the weights; the done head is
left out, so every dream runs all its steps); one process pinned to one core, one torch thread
(--device cuda: the dream on the GPU). Repeats alternate between the paths; the median is reported.

    .venv/bin/python benchmarks/bench_dream.py [--episodes 16] [--steps 300] [--batches 16 256 1024]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from wm.episodes.agent import WorldModelAgent  # noqa: E402
from wm.episodes.dream import run_dream_batch  # noqa: E402
from wm.episodes.runner import Episode, run_batch  # noqa: E402
from wm.envs.car_racing import FAST_ENV_ID, PLUGIN as CAR_RACING, make_env  # noqa: E402
from wm.mdn.dream_env import DreamEnv  # noqa: E402
from wm.mdn.model import MDNRNN  # noqa: E402
from wm.vae.model import ConvVAE  # noqa: E402


def real(env_id, vae, mdn, params, episodes, steps, envs) -> tuple[int, float]:
    agent = WorldModelAgent(vae, mdn, "z_h", True, env=CAR_RACING)
    pool = [make_env(env_id) for _ in range(envs)]
    work = [Episode(params, 1000 + k, 1000 + k) for k in range(episodes)]
    start, frames = time.perf_counter(), 0
    for b in range(0, len(work), envs):
        frames += sum(r.steps for r in run_batch(env_id, agent, work[b : b + envs], steps, envs=pool))
    return frames, time.perf_counter() - start


def dream(env, params, batch, steps) -> tuple[int, float]:
    work = [Episode(params, 1000 + k, 1000 + k) for k in range(batch)]
    start = time.perf_counter()
    frames = sum(r.steps for r in run_dream_batch(env, CAR_RACING, "z_h", work, steps))
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    return frames, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=16, help="real episodes")
    parser.add_argument("--steps", type=int, default=300, help="steps per episode, real and dream")
    parser.add_argument("--envs", type=int, default=16, help="real environments per lockstep batch")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 256, 1024], help="dream batch sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gymnasium", action="store_true", help="the real path on gymnasium's CarRacing-v3")
    parser.add_argument("--device", default="cpu", help="where the dream runs (cpu or cuda)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vae, mdn = ConvVAE().eval(), MDNRNN(reward_head=True).eval()
    params = np.random.default_rng(0).normal(0, 0.1, 867)
    params[-2] = 0.5
    env_id = "CarRacing-v3" if args.gymnasium else FAST_ENV_ID
    starts = (torch.randn(200, 32), torch.full((200, 32), -3.0))
    dream_env = DreamEnv(MDNRNN(reward_head=True).eval(), starts, 1.15, device=args.device)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{args.steps} steps per episode, one core ({cpu}), torch {torch.__version__}, Python "
          f"{platform.python_version()}; dream on {args.device}; median of {args.repeats} alternating repeats")
    paths = {f"real: wm batched x{args.envs} ({env_id}), {args.episodes} episodes":
             lambda: real(env_id, vae, mdn, params, args.episodes, args.steps, args.envs)}
    for batch in args.batches:
        paths[f"dream: batch of {batch}"] = lambda batch=batch: dream(dream_env, params, batch, args.steps)
    runs = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, path in paths.items():
            runs[name].append(path())
    reference = None
    for name, results in runs.items():
        frames, seconds = sorted(results, key=lambda r: r[0] / r[1])[len(results) // 2]
        rate = frames / seconds
        ratio = f"  {rate / reference:7.1f}x the real evaluator" if reference else ""
        print(f"{name:<52} {rate:10.1f} steps/s{ratio}")
        reference = reference or rate


if __name__ == "__main__":
    main()
