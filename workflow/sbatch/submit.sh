#!/bin/bash
# The whole pipeline as plain sbatch jobs, for clusters where Snakemake is not an option:
#   collect (ONE array job, a task per shard) -> V + encode (GPU) -> M + dream (GPU)
#   -> C per variant (ONE MPI job, srun) -> evaluate per variant (ONE MPI job, srun),
# chained with --dependency=afterok. Each job runs the same `wm` commands as the Snakemake rules,
# reads the same config files, and writes the same layout under run_dir.
#
# Usage (from the project folder, with the environment that has `wm` active, e.g. source .venv/bin/activate):
#   workflow/sbatch/submit.sh [--dry-run] [--from STAGE] [CONFIG.yaml ...]
#     CONFIG.yaml  merged in order over ./config.yaml, as `snakemake --configfile` does
#     --from STAGE start at collect|vae|mdn|controller|evaluate (the earlier outputs must exist)
#     --dry-run    print the sbatch commands instead of submitting them
# Environment (the same names as profiles/slurm):
#   WM_SLURM_PARTITION      partition for the CPU jobs (default: the cluster's default partition)
#   WM_SLURM_GPU_PARTITION  partition for V and M (default: WM_SLURM_PARTITION)
#   WM_SLURM_ACCOUNT        sbatch --account (default or "none": none given)
#   WM_SBATCH_ARGS          extra arguments for every sbatch call, e.g. "--qos=long"
#   WM_EXEC                 prefix for every wm command, e.g. "apptainer exec --nv wm.sif"
# Sizes (time, memory, CPUs, GPUs) are the #SBATCH lines at the top of each *.sbatch script.
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
dry_run=""
from=collect
configs=()
while (($#)); do
    case $1 in
        --dry-run) dry_run=1 ;;
        --from) from=${2:?--from needs a stage}; shift ;;
        -h|--help) usage ;;
        -*) echo "submit.sh: unknown option $1" >&2; usage 2 >&2 ;;
        *) configs+=("$(realpath "$1")") ;;
    esac
    shift
done
stages=(collect vae mdn controller evaluate)
[[ " ${stages[*]} " == *" $from "* ]] || { echo "submit.sh: --from must be one of: ${stages[*]}" >&2; exit 2; }

[[ -f config.yaml ]] || { echo "submit.sh: run me from the project folder (no ./config.yaml here)" >&2; exit 2; }
WM_SBATCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WM_CONFIGS="$(realpath config.yaml) ${configs[*]}"
export WM_SBATCH_DIR WM_CONFIGS WM_EXEC="${WM_EXEC:-}"
source "$WM_SBATCH_DIR/common.sh"

run=$(cfg run_dir)
[[ $run == /* ]] || run="$PWD/$run"
export WM_RUN=$run
shards=$(cfg collect.shards)
ranks=$(cfg controller.ranks)
eval_ranks=$(cfg evaluate.ranks)
read -r -a variants <<< "$(cfg controller.variants)"
[[ -n $dry_run ]] || mkdir -p "$WM_RUN/logs/sbatch"

common=(--parsable --chdir="$PWD" --export=ALL --kill-on-invalid-dep=yes)
[[ -n ${WM_SLURM_ACCOUNT:-} && $WM_SLURM_ACCOUNT != none ]] && common+=(--account="$WM_SLURM_ACCOUNT")
read -r -a extra <<< "${WM_SBATCH_ARGS:-}"
common+=("${extra[@]}")
cpu=(); gpu=()
[[ -n ${WM_SLURM_PARTITION:-} ]] && cpu=(--partition="$WM_SLURM_PARTITION")
gpu_partition=${WM_SLURM_GPU_PARTITION:-${WM_SLURM_PARTITION:-}}
[[ -n $gpu_partition ]] && gpu=(--partition="$gpu_partition")

# submit NAME DEPENDENCY SBATCH_ARGS... : prints the job id (or a placeholder with --dry-run)
submit() {
    local name=$1 dependency=$2; shift 2
    local args=("${common[@]}")
    [[ " $* " == *" --output="* ]] || args+=(--output="$WM_RUN/logs/sbatch/%x-%j.out")
    [[ -n $dependency ]] && args+=(--dependency="afterok:$dependency")
    if [[ -n $dry_run ]]; then
        echo "sbatch ${args[*]} $*" >&2
        echo "<$name>"
    else
        sbatch "${args[@]}" "$@" | cut -d';' -f1
    fi
}
skip() { [[ " ${stages[*]:0:$(stage_index "$from")} " == *" $1 "* ]]; }
stage_index() { local i; for i in "${!stages[@]}"; do [[ ${stages[$i]} == "$1" ]] && echo "$i"; done; }

collect=""; vae=""; mdn=""
skip collect || collect=$(submit collect "" "${cpu[@]}" --array="0-$((shards - 1))" \
    --output="$WM_RUN/logs/sbatch/%x-%A_%a.out" "$WM_SBATCH_DIR/collect.sbatch")
skip vae || vae=$(submit vae "$collect" "${gpu[@]}" "$WM_SBATCH_DIR/vae.sbatch")
skip mdn || mdn=$(submit mdn "$vae" "${gpu[@]}" "$WM_SBATCH_DIR/mdn.sbatch")
echo "run_dir $WM_RUN"
echo "collect ${collect:-skipped} (array of $shards)"
echo "vae     ${vae:-skipped}"
echo "mdn     ${mdn:-skipped}"
for variant in "${variants[@]}"; do
    export WM_VARIANT=$variant
    controller=""
    skip controller || controller=$(submit "controller-$variant" "$mdn" "${cpu[@]}" \
        --ntasks="$ranks" --job-name="wm-controller-$variant" "$WM_SBATCH_DIR/controller.sbatch")
    evaluate=$(submit "evaluate-$variant" "$controller" "${cpu[@]}" \
        --ntasks="$eval_ranks" --job-name="wm-evaluate-$variant" "$WM_SBATCH_DIR/evaluate.sbatch")
    echo "controller-$variant ${controller:-skipped} ($ranks MPI tasks)"
    echo "evaluate-$variant $evaluate ($eval_ranks MPI tasks)"
done
