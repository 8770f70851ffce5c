# Sourced by submit.sh and by every job script here. The job scripts find it through WM_SBATCH_DIR
# (Slurm runs a copy of a batch script from its spool folder, not from here); submit.sh exports:
#   WM_SBATCH_DIR  this folder
#   WM_CONFIGS     the config files, merged in order as `snakemake --configfile` merges them
#   WM_RUN         the run folder (config run_dir), the same layout the Snakemake workflow writes
#   WM_EXEC        optional prefix for every wm command, e.g. "apptainer exec --nv wm.sif"
#   WM_MPI         (MPI jobs only) the rule's `mpi` launcher from the Slurm profile, e.g. "srun --mpi=pmi2"
set -euo pipefail
: "${WM_CONFIGS:?WM_CONFIGS is not set: submit the jobs with workflow/sbatch/submit.sh}"

WM_CONFIG_ARGS=()
for file in $WM_CONFIGS; do WM_CONFIG_ARGS+=(--config "$file"); done
read -r -a WM <<< "${WM_EXEC:-} wm"

# cfg KEY: one value of the merged, validated config (defaults filled in), e.g. `cfg collect.shards`.
cfg() {
    ${WM_EXEC:-} python -c 'import functools, sys; from wm.config import load_config; v = functools.reduce(lambda d, k: d[k], sys.argv[1].split("."), load_config(sys.argv[2:])); print(*v) if isinstance(v, list) else print(v)' "$1" $WM_CONFIGS
}

shard_name() { printf 'shard-%04d' "$1"; }

