#!/bin/bash
# The whole pipeline as plain sbatch jobs, for clusters where Snakemake is not an option. One job per
# Snakemake rule, chained with --dependency=afterok:
#   collect (ONE array job, a task per shard) -> train_vae (GPU) -> encode (ONE array job)
#   -> train_mdn (GPU) -> dream, and per variant: train_controller (ONE MPI job) -> evaluate (ONE MPI job).
# Each job runs the same `wm` command as its rule, reads the same config files, writes the same layout
# under run_dir, and asks Slurm for what profiles/slurm/config.yaml gives that rule.
#
# Usage (from the project folder, with the environment that has `wm` active, e.g. source .venv/bin/activate):
#   workflow/sbatch/submit.sh [--dry-run] [--from STAGE] [CONFIG.yaml ...]
#     CONFIG.yaml  merged in order over ./config.yaml, as `snakemake --configfile` does
#     --from STAGE start at collect|vae|encode|mdn|dream|controller|evaluate (earlier outputs must exist)
#     --dry-run    print the sbatch commands instead of submitting them
# Environment:
#   WM_SLURM_PARTITION, WM_SLURM_GPU_PARTITION, WM_SLURM_ACCOUNT   read by the profile, as for Snakemake
#   WM_SLURM_PROFILE        the profile whose resources the jobs ask for (default: profiles/slurm)
#   WM_SBATCH_ARGS          extra arguments for every sbatch call, e.g. "--qos=long"
#   WM_EXEC                 prefix for every wm command, e.g. "apptainer exec --nv wm.sif"
# Sizes (time, memory, CPUs, GPUs, partition, account) are the profile's default-resources, set-resources
# and set-threads for each job's rule, turned into sbatch options by resources.py in this folder.
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
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
stages=(collect vae encode mdn dream controller evaluate)
[[ " ${stages[*]} " == *" $from "* ]] || { echo "submit.sh: --from must be one of: ${stages[*]}" >&2; exit 2; }

[[ -f config.yaml ]] || { echo "submit.sh: run me from the project folder (no ./config.yaml here)" >&2; exit 2; }
WM_SBATCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WM_CONFIGS="$(realpath config.yaml) ${configs[*]}"
export WM_SBATCH_DIR WM_CONFIGS WM_EXEC="${WM_EXEC:-}"
source "$WM_SBATCH_DIR/common.sh"
profile=${WM_SLURM_PROFILE:-profiles/slurm}
[[ -f $profile/config.yaml ]] || { echo "submit.sh: no Slurm profile at $profile/config.yaml" >&2; exit 2; }

rounds=$(cfg iterate.rounds)
if ((rounds > 0)); then  # the chain below is one round: refuse rather than run round 0 and stop there
    echo "submit.sh: iterate.rounds is $rounds in $WM_CONFIGS; this chain runs one round (iterate.rounds: 0):" \
         "run iterative training with snakemake --profile profiles/slurm" >&2
    exit 2
fi
run=$(cfg run_dir)
[[ $run == /* ]] || run="$PWD/$run"
export WM_RUN=$run
shards=$(cfg collect.shards)
ranks=$(cfg controller.ranks)
eval_ranks=$(cfg evaluate.ranks)
read -r -a variants <<< "$(cfg controller.variants)"
common=(--parsable --chdir="$PWD" --export=ALL --kill-on-invalid-dep=yes)
read -r -a extra <<< "${WM_SBATCH_ARGS:-}"

# resources RULE [KEY=VALUE ...]: the profile's resources for RULE as sbatch options, one a line, after
# a line WM_MPI=LAUNCHER for an MPI rule. KEY=VALUE: the rule's own resources, under the profile's (the
# MPI rules' tasks and threads are both the config's ranks). All read before anything is submitted.
resources() { ${WM_EXEC:-} python "$WM_SBATCH_DIR/resources.py" --profile "$profile" "$@"; }
declare -A rule_resources
for spec in collect train_vae encode train_mdn dream "train_controller tasks=$ranks threads=$ranks" \
        "evaluate tasks=$eval_ranks threads=$eval_ranks"; do
    read -r -a words <<< "$spec"
    rule_resources[${words[0]}]=$(resources "${words[@]}")
done

# submit NAME DEPENDENCY RULE SBATCH_ARGS... : submits with the resources the profile gives RULE; prints
# the job id, or a placeholder with --dry-run. An MPI rule's launcher reaches the job as WM_MPI.
submit() {
    local name=$1 dependency=$2 rule=$3 mpi="" options; shift 3
    mapfile -t options <<< "${rule_resources[$rule]}"
    if [[ ${options[0]} == WM_MPI=* ]]; then mpi=${options[0]#WM_MPI=}; options=("${options[@]:1}"); fi
    local args=("${common[@]}" "${options[@]}" "${extra[@]}")
    [[ " $* " == *" --output="* ]] || args+=(--output="$WM_RUN/logs/sbatch/%x-%j.out")
    [[ -n $dependency ]] && args+=(--dependency="afterok:$dependency")
    local env=()
    [[ -n $mpi ]] && env=("WM_MPI=$mpi")
    if [[ -n $dry_run ]]; then
        echo "${mpi:+WM_MPI='$mpi' }sbatch ${args[*]} $*" >&2
        echo "<$name>"
    else
        env "${env[@]}" sbatch "${args[@]}" "$@" | cut -d';' -f1
    fi
}
skip() { [[ " ${stages[*]:0:$(stage_index "$from")} " == *" $1 "* ]]; }
stage_index() { local i; for i in "${!stages[@]}"; do [[ ${stages[$i]} == "$1" ]] && echo "$i"; done; }
array_log="$WM_RUN/logs/sbatch/%x-%A_%a.out"
[[ -n $dry_run ]] || mkdir -p "$WM_RUN/logs/sbatch"

collect=""; vae=""; encode=""; mdn=""; dream=""
skip collect || collect=$(submit collect "" collect --array="0-$((shards - 1))" --output="$array_log" \
    "$WM_SBATCH_DIR/collect.sbatch")
skip vae || vae=$(submit vae "$collect" train_vae "$WM_SBATCH_DIR/vae.sbatch")
skip encode || encode=$(submit encode "$vae" encode --array="0-$((shards - 1))" --output="$array_log" \
    "$WM_SBATCH_DIR/encode.sbatch")
skip mdn || mdn=$(submit mdn "$encode" train_mdn "$WM_SBATCH_DIR/mdn.sbatch")
skip dream || dream=$(submit dream "$mdn" dream "$WM_SBATCH_DIR/dream.sbatch")
echo "run_dir $WM_RUN"
echo "collect ${collect:-skipped} (array of $shards)"
echo "vae     ${vae:-skipped}"
echo "encode  ${encode:-skipped} (array of $shards)"
echo "mdn     ${mdn:-skipped}"
echo "dream   ${dream:-skipped}"
for variant in "${variants[@]}"; do
    export WM_VARIANT=$variant
    controller=""
    skip controller || controller=$(submit "controller-$variant" "$mdn" train_controller \
        --job-name="wm-controller-$variant" "$WM_SBATCH_DIR/controller.sbatch")
    evaluate=$(submit "evaluate-$variant" "$controller" evaluate --job-name="wm-evaluate-$variant" \
        "$WM_SBATCH_DIR/evaluate.sbatch")
    echo "controller-$variant ${controller:-skipped} ($ranks MPI tasks)"
    echo "evaluate-$variant $evaluate ($eval_ranks MPI tasks)"
done
