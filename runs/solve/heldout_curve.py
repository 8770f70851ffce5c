"""The solve run's held-out curve: the CMA mean's score on the run's 32 fixed tracks, for the budget run
it starts from and for each stage after it, with the CMA-ES training frames counted from the budget
run's start (held-out episodes not included). Prints one table (the one in docs/results.md).

    .venv/bin/python runs/solve/heldout_curve.py
"""

import csv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNS = {  # each stage continues the one before it (controller.init)
    "budget (from zero)": "docs/results/budget/controller_z_h/log.csv",
    "stage 1: continued, 16 rollouts": "runs/solve/controller/z_h/log.csv",
    "stage 2: round 1 (new M), continued": "runs/solve/round-1/controller/z_h/log.csv",
    "stage 3: round 2 (new M), continued": "runs/solve/round-2/controller/z_h/log.csv",
    "stage 4: round 3 (new M), continued": "runs/solve/round-3/controller/z_h/log.csv",
}

print(f"{'run':<38} {'gen':>4} {'held-out':>16} {'frames so far':>14} {'pop mean':>9}")
budget_frames = 0
for name, path in RUNS.items():
    frames = budget_frames if name != "budget (from zero)" else 0
    if not (REPO / path).exists():
        continue  # a stage not started yet
    for row in csv.DictReader(open(REPO / path)):
        frames += int(row["frames"])
        if row["heldout_mean"] != "nan":
            print(f"{name:<38} {row['generation']:>4} {float(row['heldout_mean']):7.1f} +- {float(row['heldout_std']):5.1f} "
                  f"{frames / 1e6:12.1f} M {float(row['mean']):9.1f}")
    if not name.startswith("stage 1"):
        budget_frames = frames  # stage 1 is a branch; each round continues the stage before it at its last checkpoint
