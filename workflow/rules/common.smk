# Config validation (before any rule exists) and the names every rule shares.
import copy
import json
import os
import shlex

from snakemake.utils import min_version, update_config, validate

min_version("9.0")

try:
    from wm.config import with_env_defaults
    from wm.resume import env_record, recorded_settings
except ImportError:  # wm not importable where the workflow is parsed: params then hold every key
    def recorded_settings(settings: dict, stage: str | None = None) -> dict:
        return dict(settings)

    def env_record(config: dict) -> dict:
        return {"env": config["env"]["name"]}

    def with_env_defaults(config: dict) -> dict:
        return config

# The environment plug-in's defaults under the config files, as every wm command merges them (wm/config.py).
update_config(config, with_env_defaults(copy.deepcopy(config)))
validate(config, schema="../schemas/config.schema.yaml")

RUN = config["run_dir"]
SHARDS = [f"{i:04d}" for i in range(config["collect"]["shards"])]  # the first round's
VARIANTS = config["controller"]["variants"]

# Rule params leave out the keys added later that are at their default (wm/resume.py's LATER_KEYS and
# LATER_TOP_KEYS): such a key changes nothing, so a run made before it existed is not rerun for it
# (Snakemake reruns a rule whose params changed).
# The precision V's encoder drives in, for the rules where the agent drives (collect by agent, C, evaluation).
ENCODER_DTYPE = recorded_settings({"encoder_dtype": config["encoder_dtype"]})
# The precision V and M train in, for their rules.
TRAIN_DTYPE = recorded_settings({"train_dtype": config["train_dtype"]})
# The environment (env.name) every rule's output belongs to; left out for CarRacing, as before plug-ins.
ENV_RECORD = env_record(config)


def wm_config_args(overlay: dict | None = None):
    """The config files Snakemake merged, in its order of precedence (the Snakefile's configfile,
    then --configfile), and any --config key=value overrides: every wm command sees the same config.
    `overlay` (a later round's keys) is merged over the overrides."""
    cli_files = [str(path) for path in workflow.overwrite_configfiles]
    files = [str(path) for path in workflow.configfiles if str(path) not in cli_files] + cli_files
    args = [f"--config {shlex.quote(path)}" for path in files]
    override = copy.deepcopy(dict(workflow.config_settings.config or {}))
    update_config(override, overlay or {})
    if override:
        args.append(f"--override {shlex.quote(json.dumps(override))}")
    return " ".join(args)


WM_CONFIG = wm_config_args()


# Iterative training (config iterate): every stage after V runs once per round; the first round's files
# lie in RUN/ as they always did, round R's in RUN/round-R/. The {round} wildcard is that folder ("" or
# "round-R/"), so each rule serves every round.
ROUNDS = range(config["iterate"]["rounds"] + 1)


wildcard_constraints:
    round=r"(round-[1-9][0-9]*/)?",


def round_folder(r: int) -> str:
    return f"round-{r}/" if r else ""


def round_of(wildcards) -> int:
    return int(wildcards.round[len("round-") : -1]) if wildcards.round else 0


def round_overlay(r: int) -> dict:
    """What round r changes in the config: iterate's sections, the agent collecting, and M and C
    starting from round r-1's."""
    if r == 0:
        return {}
    previous = f"{RUN}/{round_folder(r - 1)}"
    iterate = config["iterate"]
    return {"collect": {**iterate["collect"], "policy": "agent", "round": r},
            "mdn": {**iterate["mdn"], "init": f"{previous}mdn/model.pt"},
            "controller": {**iterate["controller"], "init": f"{previous}controller/{{variant}}/controller.pt"}}


def round_config(r: int) -> dict:
    merged = copy.deepcopy(config)
    update_config(merged, round_overlay(r))
    return merged


for _r in ROUNDS[1:]:  # a bad key in iterate fails here, before any job runs
    validate(round_config(_r), schema="../schemas/config.schema.yaml")


def round_args(wildcards) -> str:
    return wm_config_args(round_overlay(round_of(wildcards)))


def round_shards(r: int) -> list[str]:
    return [f"{i:04d}" for i in range(round_config(r)["collect"]["shards"])]


def collecting_agent(wildcards) -> dict:
    """Round R >= 1 of iterative training: round R-1's V, M and full-model C drive the episodes."""
    r = round_of(wildcards)
    if r == 0:
        return {}
    previous = f"{RUN}/{round_folder(r - 1)}"
    return {"vae": f"{RUN}/vae/model.pt", "mdn": f"{previous}mdn/model.pt",
            "controller": f"{previous}controller/z_h/controller.pt"}


def every_rounds_latents(wildcards) -> list[str]:
    """Round R's M learns from the latents of rounds 0..R (fine-tuned from round R-1's M: mdn.init)."""
    return [f"{RUN}/{round_folder(r)}latents/shard-{shard}.zarr"
            for r in range(round_of(wildcards) + 1) for shard in round_shards(r)]


def previous_mdn(wildcards) -> list[str]:
    r = round_of(wildcards)
    return [f"{RUN}/{round_folder(r - 1)}mdn/model.pt"] if r else []


def previous_controller(wildcards) -> list[str]:
    """Round R >= 1 continues CMA-ES from round R-1's controller of the same variant (controller.init)."""
    r = round_of(wildcards)
    return [f"{RUN}/{round_folder(r - 1)}controller/{wildcards.variant}/controller.pt"] if r else []


# config[stage], as every stage's rule records it in its params.
def settled(stage: str, wildcards=None) -> dict:
    section = round_config(round_of(wildcards))[stage] if wildcards else config[stage]
    return recorded_settings(section, stage)
