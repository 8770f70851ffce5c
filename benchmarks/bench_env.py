"""Frames per second of gymnasium's CarRacing-v3 and of wm/CarRacing-v3, same seeds, same actions.

    .venv/bin/python benchmarks/bench_env.py [--steps 300] [--repeats 5] [--seeds 0 1 2]

Three envs step the same random action stream from the same seed, one right after the other
(the order rotates), for every seed and repeat, on one pinned core: gymnasium's, ours with full
frames (every observation identical to gymnasium's), and ours in the agent's view
(`agent_view`: only the rows the preprocessing crop reads are drawn, and every step also leaves
`agent_frame` = preprocess(frame), the 64x64 frame V sees, which gymnasium's path would still
have to compute). Each such group of runs gives paired ratios; runs close in time see about the
same background load, so the median ratios hold up when other work shares the machine. Reported:
median frames/s of each env over all runs, on the thread's CPU clock (time.thread_time: the work
itself, which other jobs sharing the core disturb much less than the wall clock) and on the wall
clock, the median paired ratios on both, numba's warm-up (or cache load) before timing, a per-step
CPU time split of ours in both modes from one extra, instrumented pass each, and with
--kernel-split the phases of the numba render (min of 3 CPU timings per frame).
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

import wm.envs.car_racing  # noqa: E402,F401  (registers wm/CarRacing-v3)

STOCK, FAST, AGENT = "CarRacing-v3", "wm/CarRacing-v3", "wm/CarRacing-v3 agent view"


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


def run(env, seed, actions) -> tuple[float, float]:
    """Seconds to step `actions` from the seed's reset (resetting again if an episode ends), on
    the wall clock and on the thread's CPU clock."""
    env.reset(seed=seed)
    start, cpu_start = time.perf_counter(), time.thread_time()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset(seed=seed)
    return time.perf_counter() - start, time.thread_time() - cpu_start


def time_split(env, streams) -> dict[str, float]:
    """Seconds per step in each part of our step, from wrappers put around the parts."""
    spent = defaultdict(float)

    def timed(owner, name, label):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.thread_time() - start

        setattr(owner, name, wrapper)
        return owner, name, original

    fast = env.unwrapped
    patches = [timed(fast, "_render", "render, total")]
    if fast.use_numba:
        from wm.envs.car_racing import _raster, _resample

        patches += [
            timed(fast, "_car_pose", "car pose (Box2D transforms read)"),
            timed(_raster, "prepare_frame", "prepare_frame (transform, cull, indicators)"),
            timed(_raster, "render_observation", "render_observation (draw, smoothscale)"),
        ]
        if fast.agent_view:
            patches.append(timed(_resample, "resize_rgb", "resize_rgb (the 64x64 agent frame)"))
    try:
        elapsed = sum(run(env, seed, actions)[1] for seed, actions in streams.items())
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
    split["render, rest (camera, hud, score, Python)"] = (
        split["render, total"] - sum(split[p] for p in parts))
    split["physics and step() outside rendering"] = split["step, total"] - split["render, total"]
    return split


def kernel_split(env, streams, reps=3) -> dict[str, float]:
    """CPU ms per frame of the phases of our numba render (min of `reps` per frame, summed over
    every 10th frame of one pass), on frames captured from `env` (full frames)."""
    from numba import njit

    from wm.envs.car_racing import _raster, _resample

    frames = []
    original = _raster.render_observation

    def capture(*args):
        frames.append(tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args))
        return original(*args)

    _raster.render_observation = capture
    try:
        run(env, *next(iter(streams.items())))
    finally:
        _raster.render_observation = original
    frames = frames[::10]

    @njit(cache=False)
    def draw(band, height, xs, ys, meta, colors, n, score, score_x, score_y, rows_drawn, world_only):
        bar_top = _raster.bar_top_row(height)
        scratch = _raster.band_scratch(band.shape[1], band.shape[0])
        keep = np.ones(n, np.bool_)
        if world_only:  # the field and the gfxdraw polygons (grass, road) only
            for p in range(n):
                keep[p] = meta[p, 0] == _raster.WORLD
        m = 0
        for p in range(n):
            if keep[p]:
                xs[m], ys[m], meta[m], colors[m] = xs[p], ys[p], meta[p], colors[p]
                m += 1
        for band_lo in range(0, rows_drawn, band.shape[1]):
            rows = min(band.shape[1], rows_drawn - band_lo)
            _raster.draw_band(band, band_lo, rows, height, bar_top, xs, ys, meta, colors, m, score, score_x,
                              score_y, scratch)

    @njit(cache=False)
    def shrink_x(band, windows, bits, shrunk, rows_drawn):
        rows = band.shape[1]
        sums = np.zeros((2, rows), np.uint32)
        carries = np.zeros((2, rows), np.uint32)
        out = np.zeros((shrunk.shape[1], rows), np.uint32)
        for band_lo in range(0, rows_drawn, rows):
            _raster.shrink_band_x(band, min(rows, rows_drawn - band_lo), windows, bits, shrunk, band_lo, sums,
                                  carries, out)

    horizontal, vertical = _resample.resize_coefficients(96, 84, 64, 64)
    scratch = _resample.resize_scratch(96, 84, 64)
    agent_frame = np.zeros((64, 64, 3), np.uint8)

    def phases(f):
        band, height, xs, ys, meta, colors, n, score, sx, sy, windows, bits, shrunk, obs = f[:14]
        copy = lambda: (xs.copy(), ys.copy(), meta.copy(), colors.copy())
        return {
            "render_observation, full frame": lambda: original(*f[:14], 800, 96),
            "render_observation, agent view (rows 0-699)": lambda: original(*f[:14], 700, 84),
            "  draw, agent view rows": lambda: draw(band, height, *copy(), n, score, sx, sy, 700, False),
            "    field only (clear + fill)": lambda: draw(band, height, *copy(), 1, score, sx, sy, 700, True),
            "    field, grass, road (fill + aa edges)": lambda: draw(band, height, *copy(), n, score, sx, sy, 700,
                                                                   True),
            "  smoothscale X pass, 700 rows": lambda: shrink_x(band, windows, bits, shrunk, 700),
            "  smoothscale Y pass, 84 rows": lambda: _raster.shrink_rows(shrunk, obs, bits, 84),
            "resize_rgb (PIL's bilinear 84x96 -> 64x64)": lambda: _resample.resize_rgb(
                obs, 84, *horizontal, *vertical, agent_frame, scratch),
        }

    for fn in phases(frames[0]).values():
        fn()  # compile
    totals = defaultdict(float)
    for f in frames:
        for label, fn in phases(f).items():
            best = float("inf")
            for _ in range(reps):
                start = time.thread_time()
                fn()
                best = min(best, time.thread_time() - start)
            totals[label] += best
    return {label: seconds / len(frames) for label, seconds in totals.items()}, len(frames)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="steps per seed per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kernel-split", action="store_true",
                        help="also time the phases of the numba render (compiles helpers: ~10 s more)")
    args = parser.parse_args()

    pinning = pin_to_one_core()
    streams = action_streams(args.seeds, args.steps)
    envs = {STOCK: gym.make(STOCK), FAST: gym.make(FAST), AGENT: gym.make(FAST)}
    envs[AGENT].unwrapped.agent_view = True
    fast = envs[FAST]
    path = "numba" if fast.unwrapped.use_numba else "pygame fallback (numba not importable)"

    start = time.perf_counter()
    fast.reset(seed=args.seeds[0])  # numba: compiles, or loads its cache, on the first frame
    warm_up = time.perf_counter() - start
    for env in envs.values():
        run(env, args.seeds[0], streams[args.seeds[0]][:50])

    names = list(envs)
    fps = {name: [] for name in names}  # on the CPU clock
    wall_fps = {name: [] for name in names}
    ratios = {FAST: [], AGENT: []}
    wall_ratios = {FAST: [], AGENT: []}
    for repeat in range(args.repeats):
        for seed, actions in streams.items():
            shift = (repeat + seed) % len(names)
            order = names[shift:] + names[:shift]
            seconds = {name: run(envs[name], seed, actions) for name in order}
            for name in order:
                wall_fps[name].append(len(actions) / seconds[name][0])
                fps[name].append(len(actions) / seconds[name][1])
            for name in ratios:
                wall_ratios[name].append(seconds[STOCK][0] / seconds[name][0])
                ratios[name].append(seconds[STOCK][1] / seconds[name][1])
    splits = {FAST: time_split(envs[FAST], streams), AGENT: time_split(envs[AGENT], streams)}

    try:
        import numba

        numba_version = numba.__version__
    except ImportError:
        numba_version = "not installed"
    versions = (f"python {platform.python_version()}, gymnasium {gym.__version__}, numpy {np.__version__}, "
                f"pygame-ce {pygame.version.ver} (smoothscale {pygame.transform.get_smoothscale_backend()}), "
                f"numba {numba_version}")
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; CPU: {cpu_model()} "
          f"({os.cpu_count()} cores, {pinning}); load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(versions)
    print(f"workload: seeds {args.seeds} x {args.steps} steps, same random actions for all, "
          f"{args.repeats} repeats, grouped runs; our render path: {path}")
    print(f"first frame of ours (numba: compile or cache load): {warm_up:.2f} s, not timed below")
    print()
    print("frames/s on the thread's CPU clock (the work itself: other jobs time-slicing the core move it much")
    print("less than the wall clock, though their cache use still slows it) and on the wall clock:")
    print(f"{'env':28s} {'median CPU':>11s} {'median wall':>12s}   CPU frames/s per run (seed x repeat)")
    for name in names:
        runs = " ".join(f"{v:.0f}" for v in fps[name])
        print(f"{name:28s} {statistics.median(fps[name]):11.0f} {statistics.median(wall_fps[name]):12.0f}   {runs}")
    for name, values in ratios.items():
        walls = wall_ratios[name]
        print(f"ratio {name} / {STOCK}: CPU clock, median of paired runs {statistics.median(values):.2f}x "
              f"(range {min(values):.2f}x-{max(values):.2f}x); wall clock {statistics.median(walls):.2f}x "
              f"(range {min(walls):.2f}x-{max(walls):.2f}x)")
    print()
    labels = list(dict.fromkeys(label for split in splits.values() for label in split))
    print(f"per-step CPU time of ours (one instrumented run each, ms): {'full frames':>10s} {'agent view':>12s}")
    for label in labels:
        cells = " ".join(f"{splits[name][label] * 1e3:12.3f}" if label in splits[name] else f"{'-':>12s}"
                         for name in (FAST, AGENT))
        print(f"  {label:50s} {cells}")
    if args.kernel_split and fast.unwrapped.use_numba:
        split, count = kernel_split(envs[FAST], streams)
        print()
        print(f"phases of the numba render (ms per frame, min of 3 per frame, {count} frames of seed "
              f"{args.seeds[0]}; parts overlap: indented lines are parts of the line above):")
        for label, seconds in split.items():
            print(f"  {label:50s} {seconds * 1e3:7.3f}")


if __name__ == "__main__":
    main()
