"""What one sbatch job of the chain asks Slurm for: the Slurm profile's resources for the rule it runs.

profiles/slurm/config.yaml is the one place cluster resources are written. `snakemake --profile
profiles/slurm` reads it through snakemake-executor-plugin-slurm; submit.sh reads it through this
script, which renders the profile the same way Snakemake does (yte, with the same WM_SLURM_*
environment variables) and maps each resource to the option the plugin passes for it:

    runtime (minutes)              --time=MINUTES
    mem_mb_per_cpu, else mem_mb    --mem-per-cpu=MB, else --mem=MB   (the plugin's precedence)
    cpus_per_task, else threads    --cpus-per-task=N  (threads: set-threads, else threads=N given here, else 1)
    tasks                          --ntasks=N         (else 1; for MPI rules submit.sh passes the rule's tasks=ranks)
    gpu [, gpu_model]              --gpus=[MODEL:]N
    gres                           --gres=...
    slurm_partition                --partition=...
    slurm_account                  --account=...      (the plugin would validate it; sbatch does here)
    constraint, qos, nodes         --constraint=..., --qos=..., --nodes=...
    slurm_extra                    its words, as they are
    mpi                            not an sbatch option: a first line WM_MPI=LAUNCHER, for the job's environment

A resource is default-resources, then what the rule's own value given on the command line says, then
set-resources (Snakemake's order). String values are evaluated as Snakemake evaluates them, with
attempt=1 (the chain does not retry, so "2000 * attempt" is 2000). A resource this script does not know
is an error, not silently dropped.

Usage (from the project folder), printing one sbatch option a line (after the WM_MPI line, if any):
    python workflow/sbatch/resources.py [--profile DIR] RULE [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import yte

# Resources the plugin does not turn into sbatch options (disk and tmpdir are Snakemake's own).
NOT_SBATCH = {"mpi", "disk_mb", "disk", "tmpdir"}
KNOWN = {"runtime", "mem_mb", "mem", "mem_mb_per_cpu", "cpus_per_task", "tasks", "gpu", "gpu_model", "gres",
         "slurm_partition", "slurm_account", "constraint", "qos", "nodes", "slurm_extra"} | NOT_SBATCH


def load_profile(profile: Path) -> dict:
    """The profile as Snakemake reads it: a YTE template rendered with this environment."""
    with open(profile / "config.yaml") as f:
        return yte.process_yaml(f, require_use_yte=True) or {}


def evaluate(name: str, value, threads: int):
    """A resource value as Snakemake evaluates a profile's string: a Python expression if it is one
    (attempt=1), else the string itself; runtime and mem may be human-friendly ("3d", "32G")."""
    if isinstance(value, str):
        try:
            value = eval(value, {"attempt": 1, "threads": threads})  # noqa: S307 (the profile is ours)
        except (NameError, SyntaxError):
            pass
    if name in ("runtime", "mem") and isinstance(value, str):
        from snakemake.resources import Resource
        value = Resource.parse_human_friendly(name, value)
    return value


def rule_resources(profile: dict, rule: str, given: dict[str, str]) -> tuple[dict, int]:
    """(resources, threads) of RULE under the profile: default-resources < given < set-resources."""
    threads = int(given.pop("threads", 1))
    threads = int((profile.get("set-threads") or {}).get(rule, threads))
    merged = dict(profile.get("default-resources") or {})
    merged.update(given)
    merged.update((profile.get("set-resources") or {}).get(rule) or {})
    resources = {name: evaluate(name, value, threads) for name, value in merged.items()}
    if "mem" in resources:  # Snakemake's unit-less name, in MB after parsing
        resources.setdefault("mem_mb", resources.pop("mem"))
    unknown = sorted(set(resources) - KNOWN)
    if unknown:
        raise SystemExit(f"resources.py: rule {rule}: no sbatch option known for resource(s) {unknown} "
                         f"(known: {sorted(KNOWN)}); add the mapping to workflow/sbatch/resources.py")
    return resources, threads


def sbatch_options(resources: dict, threads: int) -> list[str]:
    """The sbatch options snakemake-executor-plugin-slurm would pass for these resources."""
    options = []
    if resources.get("runtime"):
        options.append(f"--time={int(resources['runtime'])}")
    if resources.get("mem_mb_per_cpu"):
        options.append(f"--mem-per-cpu={int(resources['mem_mb_per_cpu'])}")
    elif resources.get("mem_mb"):
        options.append(f"--mem={int(resources['mem_mb'])}")
    options.append(f"--cpus-per-task={max(1, int(resources.get('cpus_per_task') or threads))}")
    options.append(f"--ntasks={int(resources.get('tasks') or 1)}")
    if resources.get("nodes"):
        options.append(f"--nodes={int(resources['nodes'])}")
    if resources.get("gpu_model"):
        options.append(f"--gpus={resources['gpu_model']}:{resources.get('gpu') or 1}")
    elif resources.get("gpu"):
        options.append(f"--gpus={resources['gpu']}")
    for name, option in [("gres", "--gres"), ("slurm_partition", "--partition"), ("slurm_account", "--account"),
                         ("constraint", "--constraint"), ("qos", "--qos")]:
        if resources.get(name):
            options.append(f"{option}={resources[name]}")
    if resources.get("slurm_extra"):
        options.extend(shlex.split(str(resources["slurm_extra"])))
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=Path(os.environ.get("WM_SLURM_PROFILE", "profiles/slurm")),
                        help="the Snakemake profile folder (default: $WM_SLURM_PROFILE or profiles/slurm)")
    parser.add_argument("rule")
    parser.add_argument("given", nargs="*", metavar="KEY=VALUE",
                        help="the rule's own resources (e.g. tasks=64 threads=64), under the profile's")
    args = parser.parse_args(argv)
    given = {}
    for item in args.given:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"expected KEY=VALUE, got {item!r}")
        given[key] = int(value) if value.isdecimal() else value
    resources, threads = rule_resources(load_profile(args.profile), args.rule, given)
    if resources.get("mpi"):
        print(f"WM_MPI={resources['mpi']}")
    print("\n".join(sbatch_options(resources, threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
