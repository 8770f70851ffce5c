"""The fast env's drawing buffers, shared by a thread's envs against one private set per env.

wm/envs/car_racing/fast_env.py draws every frame into scratch buffers (the band of frame rows, the
frame after smoothscale's X pass; ~0.8 MB) that the envs of one thread share: the batched runner
steps 16 envs in turn, and 16 private sets fall out of cache. This steps 16 envs round-robin in
the agent's view, 120 steps each, alternately with the shared set and with a private set per env
(`scratch_buffers` swapped per env), on one core, CPU clock, and prints ms per step for each.

    .venv/bin/python benchmarks/bench_env_scratch.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import wm.envs.car_racing.fast_env as fast  # noqa: E402

SHARED = fast.scratch_buffers


def ms_per_step(private: bool, n_envs: int = 16, steps: int = 120) -> float:
    envs = [gym.make("wm/CarRacing-v3").unwrapped for _ in range(n_envs)]
    for i, env in enumerate(envs):
        env.agent_view = True
        env.reset(seed=100 + i)
    own = {id(env): (np.zeros((fast.WINDOW_W, fast.BAND_ROWS), np.uint32),
                     np.zeros((fast.WINDOW_H, fast.STATE_W), np.uint32), SHARED()[2]) for env in envs}
    action = np.array([0.0, 0.3, 0.0])
    start = time.thread_time()
    for _ in range(steps):
        for env in envs:
            if private:
                fast.scratch_buffers = lambda buffers=own[id(env)]: buffers
            env.step(action)
    spent = time.thread_time() - start
    fast.scratch_buffers = SHARED
    return 1e3 * spent / (steps * n_envs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    ms_per_step(False, 2, 5)  # numba compiles or loads its cache
    for _ in range(args.repeats):
        print(f"shared {ms_per_step(False):.3f} ms/step  private {ms_per_step(True):.3f} ms/step", flush=True)


if __name__ == "__main__":
    main()
