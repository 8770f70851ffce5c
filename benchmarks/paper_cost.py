"""What the paper preset costs, from per-frame costs measured here on one core.

    .venv/bin/python benchmarks/paper_cost.py [--config presets/paper.yaml] [--frames 600]

Measures, on one core with one torch thread (CPU clock, time.thread_time, so that other jobs
time-slicing the core disturb it little): an environment step with full frames (gymnasium's and
wm's fast one) and the shared preprocessing, for collection and the final evaluation; a CMA-ES
frame as CMA-ES runs it (wm.episodes.runner.run_batch on the fast env in the agent's view, V + M + C
batched over controller.envs_per_rank environments, the committed budget V, M and C driving, with
its env / preprocess / models split), once more with V's encoder in bfloat16 (config
encoder_dtype, opt-in); a V training step and an M training step per frame. Then multiplies by the
preset's frame counts (episodes of 1,000 frames; CMA-ES rollouts run to 1,000 steps unless
no_progress_steps cuts them, which this estimate ignores) and prints core-hours and wall time on a
64-core node and on a 16-core node (V and M then train on the 16 CPU cores), and the bounds on a
16-core node with a GPU: no GPU step is measured here, so the lower bound lets the GPU take V and
M's training and the evaluator's models off the cores at no cost, the upper bound runs them on the
cores."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_evaluator import batched  # noqa: E402  (benchmarks/, the script's own folder)
from wm.config import load_config  # noqa: E402
from wm.controller.model import load_controller  # noqa: E402
from wm.envs.car_racing import FAST_ENV_ID, PLUGIN as CAR_RACING, make_env, preprocess  # noqa: E402
from wm.mdn.model import MDNRNN, load_mdn, mdn_loss  # noqa: E402
from wm.vae.model import ConvVAE, load_vae, vae_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUDGET = REPO / "docs" / "results" / "budget"


def env_ms(env_id: str, frames: int) -> float:
    env = make_env(env_id)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    start = time.thread_time()
    for _ in range(frames):
        obs, _, terminated, truncated, _ = env.step(rng.uniform([-1, 0, 0], [1, 1, 1]))
        if terminated or truncated:
            env.reset(seed=2)
    return 1e3 * (time.thread_time() - start) / frames


def cma_frame_ms(env_id: str, envs: int, steps: int, encoder_dtype: str) -> dict[str, float]:
    """A CMA-ES frame's CPU ms, whole and split, as the batched runner drives it: the committed budget
    agent on `envs` tracks for `steps` steps (after one short untimed batch: numba, torch warm-up)."""
    vae, mdn = load_vae(BUDGET / "vae.pt"), load_mdn(BUDGET / "mdn.pt")
    params = load_controller(BUDGET / "controller_z_h.pt", vae.z_dim, mdn.hidden, CAR_RACING.action_dim).params
    batched(env_id, vae, mdn, params, list(range(envs)), 5, envs, encoder_dtype=encoder_dtype)
    frames, _, cpu_seconds, spent = batched(env_id, vae, mdn, params, list(range(1000, 1000 + envs)), steps, envs,
                                            encoder_dtype=encoder_dtype)
    split = {k: 1e3 * v / frames for k, v in spent.items() if k != "returns"}
    return {"total": 1e3 * cpu_seconds / frames, **split,
            "overhead": 1e3 * cpu_seconds / frames - sum(split.values())}


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
        start = time.thread_time()
        for _ in range(batches):
            step()
        times.append((time.thread_time() - start) / batches)
    return 1e3 * times[0] / 100, 1e3 * times[1] / (16 * 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "presets" / "paper.yaml"))
    parser.add_argument("--frames", type=int, default=600, help="environment steps per full-frame measurement")
    parser.add_argument("--steps", type=int, default=1000, help="steps of the CMA-ES batch (envs_per_rank tracks)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = load_config([REPO / "config.yaml", args.config])
    c, v, m = config["collect"], config["vae"], config["controller"]
    import wm.envs.car_racing.fast_env  # noqa: F401  (registers the fast env)

    fast, gym = env_ms(FAST_ENV_ID, args.frames), env_ms("CarRacing-v3", args.frames)
    frame = np.zeros((96, 96, 3), np.uint8)
    start = time.thread_time()
    for _ in range(1000):
        preprocess(frame)
    prep = time.thread_time() - start  # ms per frame: seconds for 1,000
    cma = {dtype: cma_frame_ms(FAST_ENV_ID, m["envs_per_rank"], args.steps, dtype) for dtype in ("float32", "bfloat16")}
    vae_ms, mdn_ms = train_ms()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{cpu}, torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"CPU ms per frame on one core: gymnasium step {gym:.3f}, wm fast step {fast:.3f} (full frames), "
          f"preprocess {prep:.3f}, V training {vae_ms:.3f}, M training {mdn_ms:.3f} a step")
    for dtype, ms in cma.items():
        print(f"CMA-ES frame, batched x{m['envs_per_rank']}, agent view, encoder {dtype}: {ms['total']:.3f} "
              f"({', '.join(f'{k} {x:.3f}' for k, x in ms.items() if k != 'total')})")
    frames_collect = c["shards"] * c["episodes_per_shard"] * c["max_steps"]
    frames_cma = m["generations"] * m["popsize"] * m["rollouts"] * m["max_steps"] * len(m["variants"])
    frames_heldout = (m["generations"] // max(m["eval_every"], 1) if m["eval_every"] else 0) \
        * m["eval_episodes"] * m["max_steps"] * len(m["variants"])
    frames_evaluate = len(m["variants"]) * config["evaluate"]["episodes"] * 1000
    print(f"{args.config}: {frames_collect / 1e6:.1f} M frames collected, {(frames_cma + frames_heldout) / 1e9:.2f} G "
          f"frames in CMA-ES ({', '.join(m['variants'])})")
    for dtype, ms in cma.items():
        stages = {  # core-hours
            "collect": frames_collect * (fast + prep) / 3.6e6,
            "train V": frames_collect * v["epochs"] * vae_ms / 3.6e6,
            "train M": frames_collect * config["mdn"]["epochs"] * mdn_ms / 3.6e6,
            "CMA-ES": (frames_cma + frames_heldout) * ms["total"] / 3.6e6,
            "evaluate": frames_evaluate * (gym + prep + ms["models"]) / 3.6e6,
        }
        total = sum(stages.values())
        print(f"encoder {dtype}" + (" (the default)" if dtype == "float32" else " (opt-in: it moves the score, docs/benchmarks.md)"))
        for stage, hours in stages.items():
            print(f"  {stage:<9} {hours:10.1f} core-hours   64 cores {hours / 64:8.1f} h   16 cores {hours / 16:8.1f} h")
        print(f"  {'total':<9} {total:10.1f} core-hours   64 cores {total / 64:8.1f} h ({total / 64 / 24:.1f} days)   "
              f"16 cores {total / 16:8.1f} h ({total / 16 / 24:.1f} days)")
        # No GPU step is measured here: at best a GPU takes V's and M's training and the evaluator's
        # models off the cores for free (every environment step still runs on them); at worst all is on the cores.
        models_hours = (frames_cma + frames_heldout + frames_evaluate) * ms["models"] / 3.6e6
        on_cores = total - stages["train V"] - stages["train M"] - models_hours
        print(f"  16 cores and a GPU: between {on_cores / 16:.1f} h ({on_cores / 16 / 24:.1f} days, {on_cores:.0f} "
              f"core-hours; the GPU runs V and M at no cost) and {total / 16:.1f} h (V and M on the cores)")


if __name__ == "__main__":
    main()
