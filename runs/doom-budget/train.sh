#!/bin/sh
# The DoomTakeCover budget run (issue 29), every stage resumable from committed files:
#   sh runs/doom-budget/train.sh [TAU]        (TAU: the dream's temperature, default 1.15, the paper's)
# 1. Data, V, latents and M through the workflow (`snakemake --until train_mdn` on presets/doom-budget.yaml:
#    1,000 random rollouts, reproducible from the run seed; V and M resume from their checkpoints), then the
#    committed set's models: V in float16, M, and the latents' first frames where dreams start
#    (docs/results/doom-budget/vae.pt, mdn.pt, dream_starts.zarr). Skipped once those are committed.
# 2. C by CMA-ES inside M's dream only, on 2 MPI ranks, in runs/doom-budget/tau-TAU/z_c_h/: it resumes
#    from its checkpoint.pkl (committed as the run goes) and extends when controller.generations is raised.
# Stage 3, the real game's score of each controller: runs/doom-budget/score.sh.
set -eu
TAU=${1:-1.15}
RUN=results/doom-budget
SET=docs/results/doom-budget
BIN=.venv/bin
export PATH="$PWD/$BIN:$PATH"  # the workflow's rules call wm, as under make run
if [ ! -f "$SET/vae.pt" ] || [ ! -f "$SET/mdn.pt" ] || [ ! -d "$SET/dream_starts.zarr" ]; then
  "$BIN/snakemake" --profile profiles/local --configfile presets/doom-budget.yaml --until train_mdn
  "$BIN/wm" export --vae "$RUN/vae/model.pt" --mdn "$RUN/mdn/model.pt" --out "$SET"
  "$BIN/wm" dream-starts --latents "$RUN"/latents/shard-*.zarr --out "$SET/dream_starts.zarr"
  cp "$RUN/vae/metrics.csv" "$SET/vae_metrics.csv"
  cp "$RUN/vae/summary.json" "$SET/vae_summary.json"
  cp "$RUN/vae/reconstructions.png" "$SET/reconstructions.png"
  cp "$RUN/mdn/metrics.csv" "$SET/mdn_metrics.csv"
  cp "$RUN/mdn/summary.json" "$SET/mdn_summary.json"
  cp "$RUN/mdn/loss.png" "$SET/mdn_loss.png"
fi
"$BIN/mpiexec" -n 2 "$BIN/wm" train-controller --config config.yaml --config presets/doom-budget.yaml \
    --override "{\"controller\": {\"dream_temperature\": $TAU}}" --variant z_c_h \
    --vae "$SET/vae.pt" --mdn "$SET/mdn.pt" --latents "$SET/dream_starts.zarr" \
    --out "runs/doom-budget/tau-$TAU/z_c_h"
