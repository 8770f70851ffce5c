#!/usr/bin/env bash
# Run by Snakemake inside the freshly created conda environment of envs/wm.yaml (`--sdm conda`),
# from the folder snakemake runs in: installs wm from this checkout, editable and without
# dependencies (wm.yaml holds them, pinned as in pyproject.toml), so that `wm` in every rule is this
# checkout's code. Snakemake reruns this only when wm.yaml or this file changes.
set -euo pipefail
if ! grep -qs '^name = "wm"' pyproject.toml; then
    echo "wm.post-deploy.sh: $(pwd) is not the wm checkout (no pyproject.toml naming wm); run snakemake from the project folder" >&2
    exit 1
fi
python -m pip install --no-deps --editable .
python -m pip check
wm --version
