#!/bin/sh
# Stage 3 of the DoomTakeCover budget run (issue 29): score the controller CMA-ES evolved in M's dream at
# temperature TAU (runs/doom-budget/train.sh TAU), in the real game and in the dream, into the committed set:
#   sh runs/doom-budget/score.sh TAU          (the random policies' baselines once: sh runs/doom-budget/score.sh random)
# Real: `wm evaluate` on the 100 evaluation episodes of VizdoomTakeCover-v1 (2 MPI ranks; returns.json,
# histogram.png, episode.gif). Dream: `wm evaluate --dream` on the same seeds at TAU. Then V's decoding of
# the controller's dream (dream.gif: its first 300 steps at most), from the first frame of shard 0 (collected again if it is missing:
# the same seed gives the same bytes).
set -eu
TAU=${1:?usage: score.sh TAU | random}
SET=docs/results/doom-budget
BIN=.venv/bin
CONF="--config config.yaml --config presets/doom-budget.yaml"
if [ "$TAU" = random ]; then  # the data policy (a turn held 1-10 steps), and a new turn every step
  "$BIN/wm" evaluate-random $CONF --out "$SET/random_policy"
  "$BIN/wm" evaluate-random $CONF --override '{"collect": {"policy": "uniform"}}' --out "$SET/random_uniform"
  exit 0
fi
RUN=runs/doom-budget/tau-$TAU/z_c_h
OUT=$SET/tau-$TAU
OVERRIDE="{\"controller\": {\"dream_temperature\": $TAU}}"
mkdir -p "$OUT"
cp "$RUN/controller.pt" "$OUT/controller_z_c_h.pt"
cp "$RUN/log.csv" "$RUN/curve.png" "$OUT/"
"$BIN/mpiexec" -n 2 "$BIN/wm" evaluate $CONF --vae "$SET/vae.pt" --mdn "$SET/mdn.pt" \
    --controller "$OUT/controller_z_c_h.pt" --out "$OUT/eval"
"$BIN/wm" evaluate $CONF --override "$OVERRIDE" --vae "$SET/vae.pt" --mdn "$SET/mdn.pt" \
    --controller "$OUT/controller_z_c_h.pt" --dream "$SET/dream_starts.zarr" --out "$OUT/eval_dream"
SHARD=results/doom-budget/data/shard-0000.zarr
[ -d "$SHARD" ] || "$BIN/wm" collect $CONF --shard 0 --out "$SHARD"
"$BIN/wm" dream $CONF --override "$OVERRIDE" --vae "$SET/vae.pt" --mdn "$SET/mdn.pt" --shard "$SHARD" \
    --controller "$OUT/controller_z_c_h.pt" --start 0 --steps 300 --out "$OUT/dream.gif"
