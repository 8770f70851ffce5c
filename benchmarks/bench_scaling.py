"""CMA-ES scaling: one generation's wall time with 1, 2, ... MPI ranks, measured in one run.

    .venv/bin/python benchmarks/bench_scaling.py [--ranks 1 2] [--popsize 8] [--rollouts 4] [--steps 200]

Runs `mpiexec -n N wm train-controller` on untrained V and M (speed does not depend on the weights)
for two generations per rank count and takes the second generation's time (the first includes
start-up). Efficiency(N) = T(1) / (N x T(N)). Episodes are spread in chunks of --envs; the log's
`utilization` column is the share of the ranks' time spent in rollouts."""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from wm.files import save_torch
from wm.mdn.model import MDNRNN
from wm.vae.model import ConvVAE

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--popsize", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--envs", type=int, default=4, help="episodes per chunk (controller.envs_per_rank)")
    parser.add_argument("--env", default="CarRacing-v3")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wm-scaling-"))
    torch.manual_seed(0)
    save_torch(work / "vae.pt", {"kind": "vae", "z_dim": 32, "state_dict": ConvVAE().state_dict()})
    save_torch(work / "mdn.pt", {"kind": "mdn", "z_dim": 32, "hidden": 256, "gaussians": 5,
                                 "state_dict": MDNRNN().state_dict()})
    print(f"population {args.popsize} x {args.rollouts} rollouts x {args.steps} steps, chunks of {args.envs}, "
          f"{args.env}, {os.cpu_count()} cores")
    times = {}
    for ranks in args.ranks:
        config = work / f"config-{ranks}.yaml"
        config.write_text(yaml.safe_dump({
            "env": {"id": args.env}, "controller": {
                "popsize": args.popsize, "rollouts": args.rollouts, "generations": 2, "max_steps": args.steps,
                "eval_every": 0, "ranks": ranks, "envs_per_rank": args.envs}}))
        out = work / f"run-{ranks}"
        subprocess.run([str(BIN / "mpiexec"), "-n", str(ranks), str(BIN / "wm"), "train-controller",
                        "--config", str(REPO / "config.yaml"), "--config", str(config), "--variant", "z_h",
                        "--vae", str(work / "vae.pt"), "--mdn", str(work / "mdn.pt"), "--out", str(out)],
                       check=True, cwd=REPO, capture_output=True)
        with open(out / "log.csv") as f:
            rows = list(csv.DictReader(f))
        seconds = float(rows[1]["seconds"]) - float(rows[0]["seconds"])
        times[ranks] = seconds
        efficiency = times[args.ranks[0]] * args.ranks[0] / (ranks * seconds)
        print(f"{ranks:>3} ranks: generation {seconds:7.2f} s, {float(rows[1]['frames']) / seconds:7.1f} frames/s, "
              f"speed-up {times[args.ranks[0]] / seconds:5.2f}, efficiency {efficiency:6.1%}, "
              f"ranks busy {float(rows[1]['utilization']):.1%}")


if __name__ == "__main__":
    main()
