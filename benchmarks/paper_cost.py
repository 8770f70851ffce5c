"""What the paper preset costs, from per-frame costs measured here on one core.

    .venv/bin/python benchmarks/paper_cost.py [--config presets/paper.yaml] [--frames 600]

Measures, on one core with one torch thread: an environment step (gymnasium's and wm's fast
one), the shared preprocessing, V + M + C batched over controller.envs_per_rank environments,
a V training step and an M training step per frame. Then multiplies by the preset's frame counts
(episodes of 1,000 frames; CMA-ES rollouts run to 1,000 steps unless no_progress_steps cuts them,
which this estimate ignores) and prints core-hours and wall time on a 64-core node and on a
16-core node (V and M then train on 16 CPU cores here; a GPU's speed is not measured here), and the
bounds on a 16-core node with a GPU."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from wm.config import load_config  # noqa: E402
from wm.episodes.agent import WorldModelAgent  # noqa: E402
from wm.episodes.runner import Episode, run_batch  # noqa: E402
from wm.envs import FAST_ENV_ID, make_env, preprocess  # noqa: E402
from wm.mdn.model import MDNRNN, mdn_loss  # noqa: E402
from wm.vae.model import ConvVAE, to_input, vae_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def env_ms(env_id: str, frames: int) -> float:
    env = make_env(env_id)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(frames):
        obs, _, terminated, truncated, _ = env.step(rng.uniform([-1, 0, 0], [1, 1, 1]))
        if terminated or truncated:
            env.reset(seed=2)
    return 1e3 * (time.perf_counter() - start) / frames


def models_ms(envs: int, steps: int, env_id: str) -> float:
    agent = WorldModelAgent(ConvVAE(), MDNRNN(), "z_h", True)
    spent: dict[str, float] = {}
    results = run_batch(env_id, agent, [Episode(np.zeros(867), s, s) for s in range(envs)], steps, timings=spent)
    return 1e3 * spent["models"] / sum(r.steps for r in results)


def train_ms(batches: int = 5) -> tuple[float, float]:
    vae, mdn = ConvVAE(), MDNRNN()
    x = torch.rand(100, 3, 64, 64)
    z, a = torch.randn(16, 100, 32), torch.rand(16, 100, 3)

    def vae_step():
        recon, mu, logvar = vae(x)
        vae_loss(recon, x, mu, logvar, 0.5)[0].backward()

    def mdn_step():
        (log_weights, means, log_stds), _ = mdn(z[:, :-1], a[:, :-1])
        mdn_loss(log_weights, means, log_stds, z[:, 1:]).backward()

    times = []
    for step in (vae_step, mdn_step):
        step()
        start = time.perf_counter()
        for _ in range(batches):
            step()
        times.append((time.perf_counter() - start) / batches)
    return 1e3 * times[0] / 100, 1e3 * times[1] / (16 * 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "presets" / "paper.yaml"))
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    config = load_config([REPO / "config.yaml", args.config])
    c, v, m = config["collect"], config["vae"], config["controller"]
    try:
        import wm.envs.fast_car_racing  # noqa: F401
        fast = env_ms(FAST_ENV_ID, args.frames)
    except ImportError:
        fast = None
    gym = env_ms("CarRacing-v3", args.frames)
    frame = np.zeros((96, 96, 3), np.uint8)
    start = time.perf_counter()
    for _ in range(1000):
        preprocess(frame)
    prep = (time.perf_counter() - start)
    models = models_ms(m["envs_per_rank"], max(20, args.frames // m["envs_per_rank"]), fast and FAST_ENV_ID or "CarRacing-v3")
    vae_ms, mdn_ms = train_ms()
    env_step = fast if fast is not None else gym
    print(f"per frame on one core: gymnasium step {gym:.3f} ms, wm fast step "
          f"{'n/a' if fast is None else f'{fast:.3f} ms'}, preprocess {prep:.3f} ms, "
          f"V+M+C batched x{m['envs_per_rank']} {models:.3f} ms, V training {vae_ms:.3f} ms, M training {mdn_ms:.3f} ms/step")
    frames_collect = c["shards"] * c["episodes_per_shard"] * c["max_steps"]
    frames_cma = m["generations"] * m["popsize"] * m["rollouts"] * m["max_steps"] * len(m["variants"])
    frames_heldout = (m["generations"] // max(m["eval_every"], 1) if m["eval_every"] else 0) \
        * m["eval_episodes"] * m["max_steps"] * len(m["variants"])
    stages = {
        "collect": frames_collect * (env_step + prep),
        "train V": frames_collect * v["epochs"] * vae_ms,
        "train M": frames_collect * config["mdn"]["epochs"] * mdn_ms,
        "CMA-ES": (frames_cma + frames_heldout) * (env_step + prep + models),
        "evaluate": len(m["variants"]) * config["evaluate"]["episodes"] * 1000 * (gym + prep + models),
    }
    print(f"{args.config}: {frames_collect / 1e6:.1f} M frames collected, {(frames_cma + frames_heldout) / 1e9:.2f} G "
          f"frames in CMA-ES ({', '.join(m['variants'])})")
    total = 0.0
    for stage, ms in stages.items():
        hours = ms / 3.6e6
        total += hours
        print(f"  {stage:<9} {hours:10.1f} core-hours   64 cores {hours / 64:8.1f} h   16 cores {hours / 16:8.1f} h")
    print(f"  {'total':<9} {total:10.1f} core-hours   64 cores {total / 64:8.1f} h ({total / 64 / 24:.1f} days)   "
          f"16 cores {total / 16:8.1f} h ({total / 16 / 24:.1f} days)")
    # A GPU can take V and M off the cores; every environment step still runs on them. No GPU step was
    # measured here, so the GPU node's wall time is bounded: V and M free at best, on the 16 cores at worst.
    on_cores = total - (stages["train V"] + stages["train M"]) / 3.6e6
    print(f"  16 cores and a GPU: between {on_cores / 16:.1f} h ({on_cores / 16 / 24:.1f} days; V and M take no time) "
          f"and {total / 16:.1f} h (V and M on the cores)")


if __name__ == "__main__":
    main()
