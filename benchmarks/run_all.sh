#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md, one after another, each printed with its command, date and load.
# Run it on quiet cores (nothing else on the machine: a long run and a benchmark do not share 2 cores).
#
#   bash benchmarks/run_all.sh [OUT_DIR]        # default: runs/benchmarks/<UTC date and time>
#
# The loader benchmark needs shards: it collects 4 shards of the budget preset's random-policy episodes
# (the budget run's first 4 shards, the same seeds) and encodes them with the committed V, in a scratch folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WM=${WM:-.venv/bin/wm}
OUT=${1:-runs/benchmarks/$(date -u +%Y%m%dT%H%MZ)}
mkdir -p "$OUT"
LOG="$OUT/run_all.log"
: > "$LOG"

bench() {  # one benchmark: its command, then its output, into the log and the terminal
    local started=$SECONDS
    { echo; echo "\$ $*"; echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"; } | tee -a "$LOG"
    "$@" 2>&1 | grep -v -e '^pygame ' -e '^Hello from the pygame' | tee -a "$LOG"
    echo "# $((SECONDS - started)) s" | tee -a "$LOG"
}

{ echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores;" \
       "$($PY -c 'import sys, torch; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}")')"; } | tee -a "$LOG"

bench "$PY" benchmarks/bench_env.py
bench "$PY" benchmarks/bench_evaluator.py --repeats 3
bench "$PY" benchmarks/bench_encoder.py
bench "$PY" benchmarks/bench_train.py --threads 1 2 --repeats 3 --batches 4
bench "$PY" benchmarks/bench_dream.py
bench "$PY" benchmarks/bench_doom.py
bench "$PY" benchmarks/bench_scaling.py --ranks 1 2 --popsize 8 --rollouts 4 --steps 300 --envs 4 --env wm/CarRacing-v3
bench "$PY" analysis/policy_coverage.py --episodes 8 --steps 1000 --env wm/CarRacing-v3
bench "$PY" benchmarks/paper_cost.py

# The readers against training on real shards: 4 budget shards, collected and encoded afresh in a
# scratch folder that is removed afterwards.
C="--config config.yaml --config presets/budget.yaml"
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
for i in 0 1 2 3; do
    "$WM" collect $C --shard $i --out "$DATA/data/shard-$(printf %04d $i).zarr" >> "$OUT/collect.log" 2>&1 &
done
wait
for s in "$DATA"/data/shard-*.zarr; do
    "$WM" encode $C --vae docs/results/budget/vae.pt --shard "$s" --out "$DATA/latents/$(basename "$s")" >> "$OUT/encode.log" 2>&1
done
bench "$PY" benchmarks/bench_loader.py "$DATA"/data/shard-*.zarr --latents "$DATA"/latents/*.zarr

# The device check's CPU rows (its GPU rows say skipped without CUDA): the rehearsal of the GPU node's run.
mkdir -p "$OUT/device_check"
OUT="$OUT/device_check" PYTHON="$PY" bench bash benchmarks/device_check.sh --quick

echo "run_all: wrote $LOG"
