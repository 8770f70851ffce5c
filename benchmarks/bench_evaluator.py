"""Evaluator frames/s on one core: wm's batched rollouts versus the plain loop of the public code.

The plain loop (the reference): one gymnasium CarRacing-v3, the shared preprocessing, then V's
encoder, M's LSTM cell and C at batch size 1, every step, one episode after another.
wm's path: `envs` environments in lockstep with V, M and C batched over them (wm.episodes.runner),
with gymnasium's env and, when present, wm's pixel-identical fast env, twice: with full frames
shrunk by the shared preprocessing (PIL), as before, and in the agent's view the runner now asks
for (the fast env draws only the rows the crop reads and leaves V's 64x64 frame itself, byte for
byte preprocess's); and once more in the agent's view with V's encoder in bfloat16 (config
encoder_dtype; off by default: it changes z by rounding, its effect on the score is measured apart).
Each path first runs one short untimed episode (numba compiles or loads its cache, torch warms up).

Both run the same episodes (same tracks, same controller, same number of steps) in one process
pinned to one core, one torch thread; the script prints frames/s, the ratio and the per-frame split.
Every figure is measured twice: on the wall clock, and on the thread's CPU clock (time.thread_time:
the work itself, which other jobs time-slicing the core disturb much less than the wall clock; on a
shared machine it is the one to read). The per-frame split uses the CPU clock.

    .venv/bin/python benchmarks/bench_evaluator.py [--episodes 16] [--steps 300] [--envs 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from wm.controller.model import act  # noqa: E402
from wm.episodes.agent import WorldModelAgent  # noqa: E402
from wm.episodes.runner import Episode, run_batch  # noqa: E402
from wm.envs.car_racing import FAST_ENV_ID, PLUGIN as CAR_RACING, make_env, preprocess  # noqa: E402
from wm.mdn.model import MDNRNN  # noqa: E402
from wm.vae.model import ConvVAE, to_input  # noqa: E402


@torch.inference_mode()
def plain_loop(vae, mdn, params, seeds, steps) -> tuple[int, float, float, dict]:
    """The public reimplementations' evaluation loop, batch size 1 throughout."""
    env = make_env("CarRacing-v3")
    frames, spent = 0, {"env": 0.0, "preprocess": 0.0, "models": 0.0}
    p = torch.from_numpy(params[None].astype(np.float32))
    clock = time.thread_time
    start, cpu_start = time.perf_counter(), clock()
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        state, h = None, torch.zeros(1, mdn.hidden)
        for _ in range(steps):
            t0 = clock()
            x = to_input(torch.from_numpy(preprocess(obs)[None]))
            t1 = clock()
            mu, logvar = vae.encode(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            a = act(p, torch.cat([z, h], dim=1), CAR_RACING.to_action)
            h, state = mdn.step(z, a, state)
            t2 = clock()
            obs, _, terminated, truncated, _ = env.step(a[0].numpy().astype(np.float64))
            spent["env"] += clock() - t2
            spent["preprocess"] += t1 - t0
            spent["models"] += t2 - t1
            frames += 1
            if terminated or truncated:
                break
    return frames, time.perf_counter() - start, clock() - cpu_start, spent


def batched(env_id, vae, mdn, params, seeds, steps, envs, agent_view=True,
            encoder_dtype="float32") -> tuple[int, float, float, dict]:
    agent = WorldModelAgent(vae, mdn, "z_h", True, encoder_dtype, env=CAR_RACING)
    pool = [make_env(env_id) for _ in range(envs)]
    episodes = [Episode(params, seed, seed) for seed in seeds]
    frames, spent, returns = 0, {}, []
    start, cpu_start = time.perf_counter(), time.thread_time()
    for b in range(0, len(episodes), envs):
        results = run_batch(env_id, agent, episodes[b : b + envs], steps, envs=pool, timings=spent,
                            agent_view=agent_view, clock=time.thread_time)
        frames += sum(r.steps for r in results)
        returns += [r.total_return for r in results]
    seconds, cpu_seconds = time.perf_counter() - start, time.thread_time() - cpu_start
    spent["returns"] = returns  # not a time: the paths on one env must agree on every episode
    return frames, seconds, cpu_seconds, spent


def report(name, frames, seconds, cpu_seconds, spent, reference=None) -> tuple[float, float]:
    spent = {k: v for k, v in spent.items() if k != "returns"}
    fps, cpu_fps = frames / seconds, frames / cpu_seconds
    split = ", ".join(f"{k} {1e3 * v / frames:.3f}" for k, v in spent.items())
    overhead = 1e3 * (cpu_seconds - sum(spent.values())) / frames
    ratio = (f"  ratio {cpu_fps / reference[1]:5.2f}x (wall {fps / reference[0]:5.2f}x)" if reference else "")
    print(f"{name:<60} {cpu_fps:7.1f} frames/s CPU, {fps:7.1f} wall{ratio}\n"
          f"{'':<60} CPU ms/frame: {split}, overhead {overhead:.3f}")
    return fps, cpu_fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--envs", type=int, default=16, help="environments per lockstep batch")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; the median is reported")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vae, mdn = ConvVAE().eval(), MDNRNN().eval()
    params = np.random.default_rng(0).normal(0, 0.1, 867)
    params[-2] = 0.5  # some gas, so the car moves through the track
    seeds = list(range(1000, 1000 + args.episodes))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{args.episodes} episodes x {args.steps} steps, one core ({cpu}), torch {torch.__version__}, "
          f"Python {platform.python_version()}; median (by CPU time) of {args.repeats} alternating repeats; "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    # Each path is a function of (seeds, steps), so that it can first run once untimed: numba's
    # first call compiles or loads its cache, torch's first call sets up its kernels.
    paths = {"plain loop (gymnasium, batch 1)": lambda s, n: plain_loop(vae, mdn, params, s, n),
             f"wm batched x{args.envs} (gymnasium env)":
                 lambda s, n: batched("CarRacing-v3", vae, mdn, params, s, n, args.envs)}
    try:
        import wm.envs.car_racing.fast_env  # noqa: F401

        paths[f"wm batched x{args.envs} ({FAST_ENV_ID}, full frames + PIL preprocess)"] = \
            lambda s, n: batched(FAST_ENV_ID, vae, mdn, params, s, n, args.envs, agent_view=False)
        paths[f"wm batched x{args.envs} ({FAST_ENV_ID}, agent view)"] = \
            lambda s, n: batched(FAST_ENV_ID, vae, mdn, params, s, n, args.envs)
        # Reduced precision changes z by rounding: off by default (config encoder_dtype), measured here.
        paths[f"wm batched x{args.envs} ({FAST_ENV_ID}, agent view, bfloat16 encoder)"] = \
            lambda s, n: batched(FAST_ENV_ID, vae, mdn, params, s, n, args.envs, encoder_dtype="bfloat16")
    except Exception as exc:  # the fast env is optional
        print(f"{FAST_ENV_ID}: not available ({type(exc).__name__}: {exc})")
    for path in paths.values():
        path(seeds[:1], 5)
    runs = {name: [] for name in paths}
    for _ in range(args.repeats):  # alternate, so that a change in machine load hits every path alike
        for name, path in paths.items():
            runs[name].append(path(seeds, args.steps))
    reference = None
    for name, results in runs.items():
        frames, seconds, cpu_seconds, spent = sorted(results, key=lambda r: r[0] / r[2])[len(results) // 2]
        fps = report(name, frames, seconds, cpu_seconds, spent, reference)
        reference = reference or fps
    fast = [results[0][3]["returns"] for name, results in runs.items() if FAST_ENV_ID in name and "bfloat16" not in name]
    if len(fast) == 2:
        print(f"{FAST_ENV_ID}: both paths give the same {len(fast[0])} returns: {fast[0] == fast[1]}")


if __name__ == "__main__":
    main()
