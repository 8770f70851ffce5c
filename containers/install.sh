#!/bin/bash
# The ONE install recipe of wm: the Dockerfile, the Apptainer definition (wm.def) and the test suite
# (tests/test_install_recipe.py) all run this file, so the image is built the way CI tests it.
#
#   containers/install.sh PREFIX PROJECT_DIR
#
# Makes (or reuses) a Python 3.11 virtual environment at PREFIX and installs into it:
#   1. torch 2.13.0: TORCH_WHEEL (a local wheel file, e.g. the CPU wheel) if set, else from
#      TORCH_INDEX_URL (default: PyPI, whose Linux x86_64 wheel is the CUDA 12 build with its CUDA
#      libraries as pip packages, so no CUDA base image is needed: only the host's driver, through
#      `apptainer --nv` or the NVIDIA container toolkit);
#   2. wm from PROJECT_DIR (not editable) with every pin of its pyproject.toml, including
#      mpi4py + the `mpich` wheel (MPICH, whose mpiexec runs ranks inside one node or pod and whose
#      PMI2 client talks to `srun --mpi=pmi2` across nodes), gymnasium[box2d] and snakemake;
#   3. WM_EXTRA_PACKAGES (optional, space-separated pip requirements), e.g. the Snakemake storage plugin
#      that Kubernetes jobs need: "snakemake-storage-plugin-s3";
# then checks the result: imports, one CarRacing step, a 2-rank MPI communicator, `wm --version`.
#
# Environment: PYTHON (default python3; must be 3.11), TORCH_WHEEL, TORCH_INDEX_URL, WM_EXTRA_PACKAGES,
# PIP_* (pip's own settings: PIP_CERT for a TLS-inspecting proxy, PIP_INDEX_URL, ...).
set -euo pipefail

prefix=${1:?usage: install.sh PREFIX PROJECT_DIR}
project=${2:?usage: install.sh PREFIX PROJECT_DIR}
project=$(cd "$project" && pwd)
python=${PYTHON:-python3}
torch_version=2.13.0

step() { printf '\n== install.sh: %s\n' "$*"; }

if [[ ! -x "$prefix/bin/python" ]]; then
    step "virtual environment at $prefix"
    "$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "wm needs Python 3.11, not " + sys.version)'
    "$python" -m venv "$prefix"
fi
pip=("$prefix/bin/python" -m pip --no-input)
export PIP_DISABLE_PIP_VERSION_CHECK=1

step "torch $torch_version"
if [[ -n ${TORCH_WHEEL:-} ]]; then
    "${pip[@]}" install "$TORCH_WHEEL"
elif [[ -n ${TORCH_INDEX_URL:-} ]]; then
    "${pip[@]}" install "torch==$torch_version" --index-url "$TORCH_INDEX_URL"
else
    "${pip[@]}" install "torch==$torch_version"
fi

step "wm from $project (its pyproject.toml pins)"
# A copy, so that building never writes into the project folder (build/, *.egg-info); -L: the copy
# holds the files that symlinks in wm/ point to (wm/schemas/ links to workflow/schemas/).
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp -rL "$project/pyproject.toml" "$project/README.md" "$project/wm" "$build/"
"${pip[@]}" install "$build"

if [[ -n ${WM_EXTRA_PACKAGES:-} ]]; then
    step "extra packages: $WM_EXTRA_PACKAGES"
    read -r -a extra <<< "$WM_EXTRA_PACKAGES"
    "${pip[@]}" install "${extra[@]}"
fi

step "check"
"${pip[@]}" check
cd /  # away from any source tree: `import wm` must find the installed copy
SDL_VIDEODRIVER=dummy "$prefix/bin/python" - "$torch_version" <<'EOF'
import sys

import Box2D  # noqa: F401  (gymnasium's CarRacing physics)
import gymnasium
import mpi4py
import torch

import wm
from wm.config import validate_config

validate_config({})  # the packaged JSON schema is there and loads
assert torch.__version__.split("+")[0] == sys.argv[1], torch.__version__
assert "site-packages" in wm.__file__, f"wm comes from {wm.__file__}, not the installed package"
env = gymnasium.make("CarRacing-v3")
frame, _ = env.reset(seed=0)
frame, *_ = env.step(env.action_space.sample())
assert frame.shape == (96, 96, 3), frame.shape
env.close()
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA build: {torch.version.cuda}), "
      f"gymnasium {gymnasium.__version__}, mpi4py {mpi4py.__version__}, wm {wm.__version__}")
EOF
# the mpich wheel's launcher, wherever pip put it (<prefix>/bin for a fresh install)
mpiexec=$("$prefix/bin/python" -c 'import importlib.metadata as m; print(next(f.locate() for f in m.files("mpich") if f.name == "mpiexec"))')
"$mpiexec" -n 2 "$prefix/bin/python" -c \
    'from mpi4py import MPI; c = MPI.COMM_WORLD; assert c.Get_size() == 2, c.Get_size(); c.Barrier(); print(f"rank {c.Get_rank()} of {c.Get_size()}: {MPI.Get_library_version().splitlines()[0]}") if c.Get_rank() == 0 else None'
"$prefix/bin/wm" --version
step "done: $prefix/bin/wm"
