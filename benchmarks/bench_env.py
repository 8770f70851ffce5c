"""Frames per second of gymnasium's CarRacing-v3 and of wm/CarRacing-v3, same seeds, same actions.

    .venv/bin/python benchmarks/bench_env.py [--steps 300] [--repeats 5] [--seeds 0 1 2]

Both envs are stepped over the same seeds and the same random action streams, one after the
other within each repeat (which goes first alternates), on one pinned core; the medians over
repeats are reported, with their ratio and a per-step time split of ours from one extra,
instrumented run. numba's JIT warm-up (or cache load) happens before timing and is reported.
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


def run(env, streams) -> tuple[int, float]:
    """Steps every stream from its seed's reset (and again after an episode ends)."""
    frames, elapsed = 0, 0.0
    for seed, actions in streams.items():
        env.reset(seed=seed)
        start = time.perf_counter()
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset(seed=seed)
        elapsed += time.perf_counter() - start
        frames += len(actions)
    return frames, elapsed


def time_split(env, streams) -> dict[str, float]:
    """Seconds per step in each part of our step, from wrappers put around the parts."""
    from wm.envs import _raster

    spent = defaultdict(float)

    def timed(owner, name, label, when=None):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            if when is not None and not when(args):
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start

        setattr(owner, name, wrapper)
        return owner, name, original

    fast = env.unwrapped
    patches = [
        timed(fast, "_render", "render, total"),
        timed(fast, "_car_pose", "car pose (Box2D reads)"),
        timed(_raster, "prepare_frame", "prepare_frame (transform, cull)"),
        timed(_raster, "draw_rows", "draw_rows (rasterise)"),
        timed(pygame.transform, "smoothscale", "smoothscale X pass (pygame)", when=lambda args: len(args) == 3),
        timed(_raster, "shrink_rows", "smoothscale Y pass (ported)"),
    ]
    try:
        frames, elapsed = run(env, streams)
    finally:
        for owner, name, original in patches:
            if owner is fast:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
    split = {"step, total": elapsed / frames}
    split.update({label: seconds / frames for label, seconds in spent.items()})
    parts = [label for label in spent if label != "render, total"]
    split["render, rest (camera, score, indicators, Python)"] = (
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
    stock.reset(seed=args.seeds[0])
    run(fast, {args.seeds[0]: streams[args.seeds[0]][:50]})
    run(stock, {args.seeds[0]: streams[args.seeds[0]][:50]})

    fps = {STOCK: [], FAST: []}
    for repeat in range(args.repeats):
        order = (STOCK, FAST) if repeat % 2 == 0 else (FAST, STOCK)
        for env_id in order:
            frames, elapsed = run(stock if env_id == STOCK else fast, streams)
            fps[env_id].append(frames / elapsed)
    split = time_split(fast, streams)

    import numba

    versions = (f"python {platform.python_version()}, gymnasium {gym.__version__}, numpy {np.__version__}, "
                f"pygame-ce {pygame.version.ver} (smoothscale {pygame.transform.get_smoothscale_backend()}), "
                f"numba {numba.__version__}")
    median_stock, median_fast = statistics.median(fps[STOCK]), statistics.median(fps[FAST])
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; CPU: {cpu_model()} "
          f"({os.cpu_count()} cores, {pinning})")
    print(versions)
    print(f"workload: seeds {args.seeds} x {args.steps} steps, same random actions for both, "
          f"{args.repeats} repeats; our render path: {path}")
    print(f"numba warm-up (first frame: compile or cache load): {warm_up:.2f} s, not timed below")
    print()
    print(f"{'env':18s} {'median frames/s':>16s}   per repeat")
    for env_id in (STOCK, FAST):
        runs = " ".join(f"{v:7.0f}" for v in fps[env_id])
        print(f"{env_id:18s} {statistics.median(fps[env_id]):16.0f}   {runs}")
    print(f"ratio (median of ours / median of gymnasium's): {median_fast / median_stock:.2f}x")
    print()
    print("per-step time of wm/CarRacing-v3 (one instrumented run, ms):")
    for label, seconds in split.items():
        print(f"  {label:50s} {seconds * 1e3:7.3f}")


if __name__ == "__main__":
    main()
