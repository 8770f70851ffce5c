"""Real CMA-ES from the dream-trained start against the budget run from zero, generation by generation:
the same training tracks per generation (seed 0, 8 rollouts), so the mean training fitness compares
directly; cumulative real frames and the held-out score on the same 32 tracks beside it. Writes
docs/results/dream/finetune_vs_zero.csv and prints the real frames each run took to first reach the
from-zero run's final held-out score (the budget preset's 856.9 at generation 40).

  .venv/bin/python analysis/dream_compare_finetune.py runs/dream/finetune_tau1.25/z_h/log.csv
"""
import csv
import math
import sys


def cumulative(rows):
    frames, out = 0, []
    for row in rows:
        frames += int(row["frames"])
        heldout = float(row["heldout_mean"])
        out.append({"generation": int(row["generation"]), "mean": round(float(row["mean"]), 1),
                    "best": round(float(row["best"]), 1),
                    "heldout": "" if math.isnan(heldout) else round(heldout, 1), "frames": frames})
    return out


zero = cumulative(csv.DictReader(open("docs/results/budget/controller_z_h/log.csv")))
dream = cumulative(csv.DictReader(open(sys.argv[1])))
rows = []
for i in range(max(len(zero), len(dream))):
    row = {"generation": i + 1}
    for name, run in (("zero", zero), ("dream_start", dream)):
        if i < len(run):
            row.update({f"{name}_{key}": run[i][key] for key in ("mean", "best", "heldout", "frames")})
    rows.append(row)
fields = list(dict.fromkeys(key for row in rows for key in row))
with open("docs/results/dream/finetune_vs_zero.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fields)
    writer.writeheader()
    writer.writerows(rows)
for row in rows:
    print(row)

target = max(r["heldout"] for r in zero if r["heldout"] != "")
for name, run in (("from zero", zero), ("from the dream start", dream)):
    reached = [r for r in run if r["heldout"] != "" and r["heldout"] >= target]
    best = max((r for r in run if r["heldout"] != ""), key=lambda r: r["heldout"])
    print(f"{name}: held-out >= {target} " + (f"first at generation {reached[0]['generation']}, "
          f"{reached[0]['frames']:,} real frames" if reached else
          f"not reached in {len(run)} generations ({run[-1]['frames']:,} real frames; best "
          f"{best['heldout']} at generation {best['generation']})"))
