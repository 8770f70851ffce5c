"""Real CMA-ES from the dream-trained start against the budget run from zero, generation by generation:
the same training tracks per generation (seed 0, 8 rollouts), so the mean training fitness compares
directly; cumulative real frames beside it. Writes docs/results/dream/finetune_vs_zero.csv.

  .venv/bin/python docs/results/dream/compare_finetune.py results/dream/finetune_tau1.25/z_h/log.csv
"""
import csv
import sys

zero = list(csv.DictReader(open("docs/results/budget/controller_z_h/log.csv")))
dream = list(csv.DictReader(open(sys.argv[1])))
rows, frames_zero, frames_dream = [], 0, 0
for i, z in enumerate(zero):
    frames_zero += int(z["frames"])
    row = {"generation": int(z["generation"]), "zero_mean": round(float(z["mean"]), 1),
           "zero_best": round(float(z["best"]), 1), "zero_heldout": z["heldout_mean"][:6],
           "zero_frames": frames_zero}
    if i < len(dream):
        frames_dream += int(dream[i]["frames"])
        row.update({"dream_start_mean": round(float(dream[i]["mean"]), 1),
                    "dream_start_best": round(float(dream[i]["best"]), 1),
                    "dream_start_heldout": dream[i]["heldout_mean"][:6], "dream_start_frames": frames_dream})
    rows.append(row)
    if i >= len(dream) + 4:  # the from-zero run a few generations further, to its first held-out score (gen 10)
        break
fields = list(rows[0]) + [k for k in ("dream_start_mean", "dream_start_best", "dream_start_heldout",
                                      "dream_start_frames") if k not in rows[0]]
with open("docs/results/dream/finetune_vs_zero.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fields)
    writer.writeheader()
    writer.writerows(rows)
for row in rows:
    print(row)
