"""Take Cover: the real game's frames/s against M's dream's steps/s, side by side in one run.

The real paths, at the resolution wm collects at (VizdoomTakeCover-v1's 320 x 240): the game alone
(random turns, no preprocessing), the game with the plug-in's preprocessing (what `wm collect` does a
frame), and the agent in the real game as `wm evaluate` runs it (wm.episodes.runner.run_batch: --envs games
in lockstep, V, M and a z_c_h controller batched over them). The dream path: the same controller in
M's dream (wm.episodes.dream.run_dream_batch: LSTM 512, the mixture sampled at tau 1.15, the step reward
paid as Doom's +1; the done head is left out, so every dream runs all its steps) at the batch each rank
steps in the budget run's CMA-ES (controller.dream_batch, 512) and the paper preset's (16). Untrained V
and M at Doom's sizes (z 64, LSTM 512: speed does not depend on the weights); one process pinned to one
core, one torch thread. Repeats alternate between the paths; the median is reported.

    .venv/bin/python benchmarks/bench_doom.py [--frames 2000] [--steps 300] [--batches 16 512]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from wm.envs.doom import PLUGIN as DOOM, make_env
from wm.episodes.agent import WorldModelAgent
from wm.episodes.dream import run_dream_batch
from wm.episodes.runner import Episode, run_batch
from wm.mdn.dream_env import DreamEnv
from wm.mdn.model import MDNRNN
from wm.vae.model import ConvVAE


def game(frames: int, preprocess: bool) -> tuple[int, float]:
    env, rng = make_env(), np.random.default_rng(0)
    observation, _ = env.reset(seed=1)
    start = time.perf_counter()
    for t in range(frames):
        if preprocess:
            DOOM.preprocess(observation)
        observation, _, terminated, truncated, _ = env.step(np.array([rng.uniform(-1, 1)]))
        if terminated or truncated:
            observation, _ = env.reset(seed=t)
    seconds = time.perf_counter() - start
    env.close()
    return frames, seconds


def agent_in_game(agent, params, episodes: int, steps: int, pool) -> tuple[int, float]:
    work = [Episode(params, 1000 + k, 1000 + k) for k in range(episodes)]
    start, frames = time.perf_counter(), 0
    for b in range(0, len(work), len(pool)):
        frames += sum(r.steps for r in run_batch(DOOM.evaluation_id, agent, work[b : b + len(pool)], steps, envs=pool))
    return frames, time.perf_counter() - start


def dream(env, params, batch: int, steps: int) -> tuple[int, float]:
    work = [Episode(params, 1000 + k, 1000 + k) for k in range(batch)]
    start = time.perf_counter()
    frames = sum(r.steps for r in run_dream_batch(env, DOOM, "z_c_h", work, steps))
    return frames, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=2000, help="frames of the game alone, per repeat")
    parser.add_argument("--episodes", type=int, default=8, help="agent episodes in the real game, per repeat")
    parser.add_argument("--envs", type=int, default=8, help="real games in lockstep (evaluate.envs_per_rank)")
    parser.add_argument("--steps", type=int, default=300, help="steps per agent and dream episode at most")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 512], help="dream batch sizes")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vae, mdn = ConvVAE(z_dim=64).eval(), MDNRNN(64, DOOM.action_dim, 512, 5).eval()
    agent = WorldModelAgent(vae, mdn, "z_c_h", True, env=DOOM)
    params = np.random.default_rng(0).normal(0, 0.05, 1_088)  # C on [z, c, h] without a bias
    starts = (torch.randn(100, 64), torch.full((100, 64), -2.0))
    dream_env = DreamEnv(mdn, starts, 1.15, step_reward=DOOM.step_reward)
    pool = [make_env() for _ in range(args.envs)]
    paths = {"game alone": lambda: game(args.frames, False),
             "game + preprocess (wm collect)": lambda: game(args.frames, True),
             f"agent in the game ({args.envs} in lockstep, wm evaluate)":
                 lambda: agent_in_game(agent, params, args.episodes, args.steps, pool)}
    for batch in args.batches:
        paths[f"dream, batch {batch}"] = lambda batch=batch: dream(dream_env, params, batch, args.steps)
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, run in paths.items():
            frames, seconds = run()
            rates[name].append(frames / seconds)
    median = {name: float(np.median(r)) for name, r in rates.items()}
    print(f"bench_doom: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 core, "
          f"1 torch thread, median of {args.repeats} alternating repeats")
    base = median["game + preprocess (wm collect)"]
    for name, rate in median.items():
        print(f"  {name:48s} {rate:10,.0f} steps/s   {rate / base:6.2f}x the game with preprocessing")
    for batch in args.batches:
        print(f"dream (batch {batch}) / agent in the real game: "
              f"{median[f'dream, batch {batch}'] / median[f'agent in the game ({args.envs} in lockstep, wm evaluate)']:.1f}x")
    for env in pool:
        env.close()


if __name__ == "__main__":
    main()
