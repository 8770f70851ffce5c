"""Frames per second of gymnasium's CarRacing-v3 and of wm/CarRacing-v3, same seeds, same actions.

    .venv/bin/python benchmarks/bench_env.py [--steps 300] [--repeats 5] [--seeds 0 1 2]

Both envs step the same random action stream from the same seed, one right after the other
(which goes first alternates), for every seed and repeat, on one pinned core. Each such pair
of runs gives a ratio; pairs are close in time, so the median ratio holds up when other work
shares the machine. Reported: median frames/s of each env over all runs, the median paired
ratio, numba's warm-up (or cache load) before timing, and a per-step time split of ours from
one extra, instrumented pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402

import wm.envs  # noqa: E402,F401  (registers wm/CarRacing-v3)

STOCK, FAST = "CarRacing-v3", "wm/CarRacing-v3"


def pin_to_one_core() -> str:
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"
    finally:
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def action_streams(seeds, steps):
    """Random driving: mostly gas, some braking, steering everywhere; off-track often."""
    streams = {}
    for seed in seeds:
        rng = np.random.default_rng(1000 + seed)
        steer = rng.uniform(-1, 1, steps)
        gas = np.where(rng.random(steps) < 0.8, rng.uniform(0, 1, steps), 1.0)
        brake = np.where(rng.random(steps) < 0.3, rng.uniform(0, 0.3, steps), 0.0)
        streams[seed] = [np.array(a, dtype=np.float32) for a in zip(steer, gas, brake)]
    return streams


def run(env, seed, actions) -> float:
    """Seconds to step `actions` from the seed's reset (resetting again if an episode ends)."""
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset(seed=seed)
    return time.perf_counter() - start


def time_split(env, streams) -> dict[str, float]:
    """Seconds per step in each part of our step, from wrappers put around the parts."""
    spent = defaultdict(float)

    def timed(owner, name, label):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start

        setattr(owner, name, wrapper)
        return owner, name, original

    fast = env.unwrapped
    patches = [timed(fast, "_render", "render, total")]
    if fast.use_numba:
        from wm.envs import _raster

        patches += [
            timed(fast, "_car_pose", "car pose (Box2D transforms read)"),
            timed(_raster, "prepare_frame", "prepare_frame (transform, cull, indicators)"),
            timed(_raster, "render_observation", "render_observation (draw, smoothscale)"),
        ]
    try:
        elapsed = sum(run(env, seed, actions) for seed, actions in streams.items())
        frames = sum(len(actions) for actions in streams.values())
    finally:
        for owner, name, original in patches:
            if owner is fast:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
    split = {"step, total": elapsed / frames}
    split.update({label: seconds / frames for label, seconds in spent.items()})
    parts = [label for label in spent if label != "render, total"]
    split["render, rest (camera, score, Python)"] = (
        split["render, total"] - sum(split[p] for p in parts))
    split["physics and step() outside rendering"] = split["step, total"] - split["render, total"]
    return split


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="steps per seed per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    pinning = pin_to_one_core()
    streams = action_streams(args.seeds, args.steps)
    stock = gym.make(STOCK)
    fast = gym.make(FAST)
    path = "numba" if fast.unwrapped.use_numba else "pygame fallback (numba not importable)"

    start = time.perf_counter()
    fast.reset(seed=args.seeds[0])  # numba: compiles, or loads its cache, on the first frame
    warm_up = time.perf_counter() - start
    run(fast, args.seeds[0], streams[args.seeds[0]][:50])
    run(stock, args.seeds[0], streams[args.seeds[0]][:50])

    fps = {STOCK: [], FAST: []}
    ratios = []
    for repeat in range(args.repeats):
        for seed, actions in streams.items():
            order = (STOCK, FAST) if (repeat + seed) % 2 == 0 else (FAST, STOCK)
            seconds = {env_id: run(stock if env_id == STOCK else fast, seed, actions) for env_id in order}
            for env_id in order:
                fps[env_id].append(len(actions) / seconds[env_id])
            ratios.append(seconds[STOCK] / seconds[FAST])
    split = time_split(fast, streams)

    try:
        import numba

        numba_version = numba.__version__
    except ImportError:
        numba_version = "not installed"
    versions = (f"python {platform.python_version()}, gymnasium {gym.__version__}, numpy {np.__version__}, "
                f"pygame-ce {pygame.version.ver} (smoothscale {pygame.transform.get_smoothscale_backend()}), "
                f"numba {numba_version}")
    median_stock, median_fast = statistics.median(fps[STOCK]), statistics.median(fps[FAST])
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; CPU: {cpu_model()} "
          f"({os.cpu_count()} cores, {pinning})")
    print(versions)
    print(f"workload: seeds {args.seeds} x {args.steps} steps, same random actions for both, "
          f"{args.repeats} repeats, paired runs; our render path: {path}")
    print(f"first frame of ours (numba: compile or cache load): {warm_up:.2f} s, not timed below")
    print()
    print(f"{'env':18s} {'median frames/s':>16s}   per run (seed x repeat)")
    for env_id in (STOCK, FAST):
        runs = " ".join(f"{v:.0f}" for v in fps[env_id])
        print(f"{env_id:18s} {statistics.median(fps[env_id]):16.0f}   {runs}")
    print(f"ratio: median of paired runs {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}x-{max(ratios):.2f}x); of the medians {median_fast / median_stock:.2f}x")
    print()
    print("per-step time of wm/CarRacing-v3 (one instrumented run, ms):")
    for label, seconds in split.items():
        print(f"  {label:50s} {seconds * 1e3:7.3f}")


if __name__ == "__main__":
    main()
