#!/bin/sh
# Issue 13: write the solve run's committed results set, docs/results/solve/, from the run's own final
# models, as docs/results/budget/ was written (docs/results.md, "Re-run the evaluation"):
#   sh runs/solve/final_set.sh MDN_RUN Z_H_RUN Z_RUN
# MDN_RUN: the last round's M folder (model.pt, metrics.csv, loss.png), e.g. runs/solve/round-3/mdn;
# Z_H_RUN, Z_RUN: the full model's and the z-only controller's CMA-ES folders (controller.pt, log.csv,
# curve.png, generations.jsonl, diagnostics.*), e.g. runs/solve/round-3/controller/z_h, runs/solve/controller/z.
# V is the committed budget V (every round encoded with it). Steps: export (V float16, M, both C), copy the
# logs and curves, score both controllers on the 100 evaluation tracks with the budget's evaluation settings
# (returns.json, histogram.png, episode.gif; ~6 minutes each on 2 cores), then measure how far another CPU's
# rounding moves their first chunk (numerics.json, ~20 minutes; tests/test_results.py reads it).
set -eu
MDN_RUN=${1:?usage: final_set.sh MDN_RUN Z_H_RUN Z_RUN}
Z_H_RUN=${2:?usage: final_set.sh MDN_RUN Z_H_RUN Z_RUN}
Z_RUN=${3:?usage: final_set.sh MDN_RUN Z_H_RUN Z_RUN}
OUT=${OUT:-docs/results/solve}   # another folder only to try the script
for f in "$MDN_RUN/model.pt" "$Z_H_RUN/controller.pt" "$Z_RUN/controller.pt"; do
  [ -f "$f" ] || { echo "final_set.sh: $f is missing (has that run finished?)" >&2; exit 1; }
done
if [ -e "$OUT" ]; then echo "final_set.sh: $OUT exists; remove it to write it again" >&2; exit 1; fi

.venv/bin/wm export --vae docs/results/budget/vae.pt --mdn "$MDN_RUN/model.pt" \
    --controller "$Z_H_RUN/controller.pt" "$Z_RUN/controller.pt" --out "$OUT"
# V is the budget's float16 file itself (re-exporting it would only rename its source): one blob in git
cp docs/results/budget/vae.pt "$OUT/vae.pt"
cp docs/results/budget/vae_metrics.csv docs/results/budget/reconstructions.png "$OUT/"
cp docs/results/budget/summary.json "$OUT/vae_summary.json"   # V's training summary and collapse guard
cp "$MDN_RUN/metrics.csv" "$OUT/mdn_metrics.csv"
cp "$MDN_RUN/summary.json" "$OUT/mdn_summary.json"
cp "$MDN_RUN/loss.png" "$OUT/mdn_loss.png"
copy_controller_logs() {  # VARIANT RUN_FOLDER
  mkdir -p "$OUT/controller_$1"
  cp "$2/log.csv" "$2/curve.png" "$2/generations.jsonl" "$2/diagnostics.csv" "$2/diagnostics.png" "$OUT/controller_$1/"
}
copy_controller_logs z_h "$Z_H_RUN"
copy_controller_logs z "$Z_RUN"
cp runs/solve/heldout_curve.png "$OUT/controller_z_h/heldout_curve_all_stages.png"

for variant in z_h z; do
  .venv/bin/mpiexec -n 2 .venv/bin/wm evaluate --config config.yaml --config presets/budget.yaml \
      --vae "$OUT/vae.pt" --mdn "$OUT/mdn.pt" --controller "$OUT/controller_$variant.pt" --out "$OUT/eval/$variant"
done
.venv/bin/python analysis/numerics_spread.py --results "$OUT"
