#!/bin/sh
# Issue 30, step 1: the committed solve controllers scored once on the final set (200 tracks of seed
# purpose final_track, fixed on 2026-12-05 before any further training), with the evaluation settings
# the 100-track scores used (presets/budget.yaml: 16 lockstep episodes a rank, 2 ranks):
#   sh runs/final/score_solve.sh [VARIANT...]     (default: z_h z; ~11 minutes each on 2 cores)
# writes docs/results/solve/eval_final/VARIANT/ (returns.json, histogram.png, episode.gif).
set -eu
SET=docs/results/solve
VARIANTS=${*:-z_h z}
for variant in $VARIANTS; do
  if [ -e "$SET/eval_final/$variant/returns.json" ]; then
    echo "score_solve.sh: $SET/eval_final/$variant was scored already (the final set is scored once)" >&2; exit 1
  fi
done
for variant in $VARIANTS; do
  .venv/bin/mpiexec -n 2 .venv/bin/wm evaluate --config config.yaml --config presets/budget.yaml \
      --vae "$SET/vae.pt" --mdn "$SET/mdn.pt" --controller "$SET/controller_$variant.pt" \
      --tracks final --out "$SET/eval_final/$variant"
done
