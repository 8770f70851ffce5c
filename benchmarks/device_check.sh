#!/usr/bin/env bash
# The device check in one command, from anywhere in the repository:
#
#     bash benchmarks/device_check.sh [--quick | --full] [--budget SECONDS] [--only PART,...]
#
# For the GPU node (Python 3.12 with its own torch + CUDA, mpi4py, numba; no network). It needs no
# network and installs nothing into that Python: the carried cp312 wheels (device-wheels/, git-ignored;
# docs/benchmarks.md lists them) that this Python lacks are installed with --no-deps into a scratch
# folder on PYTHONPATH, ahead of the source tree (the package pins Python 3.11 and torch 2.13, so it is
# run from the tree, not installed). An MPI launcher that starts mpi4py ranks is looked for (mpiexec or
# mpirun on PATH, this Python's bin/), else the carried mpich wheel's is used. Then
# benchmarks/device_check.py runs every part under its own time cap and prints one table; the table
# also goes to $OUT/device_check.{json,txt} when $OUT is set, with each part's log beside it.
#
# Before a device run, on a machine with PyPI (the wheels are git-ignored, so a fresh checkout lacks them):
#
#     bash benchmarks/device_check.sh --download-wheels     # ~59 MiB of cp312 wheels into device-wheels/
#
# PYTHON (default python3), WM_WHEELS (default device-wheels/) and WM_DEVICE_SITE (default
# $TMPDIR/wm-device-site) override the defaults.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
WHEELS=${WM_WHEELS:-$REPO/device-wheels}
SITE=${WM_DEVICE_SITE:-${TMPDIR:-/tmp}/wm-device-site}
if [[ "${1:-}" == --download-wheels ]]; then
    exec "$PYTHON" "$REPO/benchmarks/device_check.py" --download-wheels --wheels "$WHEELS"
fi
export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 SDL_VIDEODRIVER=dummy TQDM_DISABLE=1
start=$SECONDS
echo "device_check.sh: $("$PYTHON" -V 2>&1) at $PYTHON; wheels from $WHEELS; scratch site $SITE"
# --setup prints `export NAME=value` lines (the MPI launcher it found) and logs on stderr; if it fails,
# the run goes on and its parts say what is missing.
exports=$("$PYTHON" "$REPO/benchmarks/device_check.py" --setup --wheels "$WHEELS" --site "$SITE") || true
eval "$exports"
echo "device_check.sh: set-up took $((SECONDS - start)) s"
cd "$REPO"
status=0
"$PYTHON" "$REPO/benchmarks/device_check.py" "$@" || status=$?
echo "device_check.sh: $((SECONDS - start)) s in all (exit $status: 0 = every part ran, 2 = a row failed or timed out)"
exit $status
