#!/bin/bash
# Build wm's OCI image from containers/Dockerfile (which runs containers/install.sh) with podman or docker.
#
#   containers/build.sh [options]
#     --engine podman|docker   default: podman if installed, else docker
#     --tag NAME               default: wm:VERSION (VERSION = wm.__version__, also the image's version label)
#     --base IMAGE             base image (default: the Dockerfile's, debian:bookworm-slim)
#     --torch-wheel FILE       install torch from this local wheel (e.g. the CPU wheel) instead of PyPI
#     --torch-index-url URL    install torch==2.13.0 from this index (a specific CUDA build)
#     --extra "PKG ..."        extra pip requirements, e.g. "snakemake-storage-plugin-s3" (Kubernetes)
#     --ca-bundle FILE         CA bundle for pip behind a TLS-inspecting proxy, passed as a build secret
#                              (never stored in the image). Default: $PIP_CERT if set.
#     any other argument is passed to `podman/docker build` (e.g. --no-cache, --network host)
# Prints the image name on its last line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

engine=""; tag=""; args=(); ca=${PIP_CERT:-}
while (($#)); do
    case $1 in
        --engine) engine=$2; shift ;;
        --tag) tag=$2; shift ;;
        --base) args+=(--build-arg "BASE_IMAGE=$2"); shift ;;
        --torch-wheel)
            wheel=$(realpath "$2"); shift
            args+=(--build-context "wheels=$(dirname "$wheel")" --build-arg "TORCH_WHEEL=$(basename "$wheel")") ;;
        --torch-index-url) args+=(--build-arg "TORCH_INDEX_URL=$2"); shift ;;
        --extra) args+=(--build-arg "WM_EXTRA_PACKAGES=$2"); shift ;;
        --ca-bundle) ca=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$1") ;;
    esac
    shift
done
engine=${engine:-$(command -v podman >/dev/null && echo podman || echo docker)}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' wm/__init__.py)
[[ -n $version ]] || { echo "build.sh: no __version__ in wm/__init__.py" >&2; exit 1; }
tag=${tag:-wm:$version}
[[ -n $ca ]] && args+=(--secret "id=pip_cert,src=$(realpath "$ca")")
if [[ $engine == podman ]]; then
    args+=(--ignorefile containers/Dockerfile.dockerignore)
else
    export DOCKER_BUILDKIT=1  # secrets, bind mounts and named contexts need BuildKit
fi

set -x
"$engine" build -f containers/Dockerfile --build-arg "WM_VERSION=$version" -t "$tag" "${args[@]}" .
{ set +x; } 2>/dev/null
echo "$tag"
