# Config validation (before any rule exists) and the names every rule shares.
import json
import os
import shlex

from snakemake.utils import min_version, validate

min_version("9.0")

validate(config, schema="../schemas/config.schema.yaml")

RUN = config["run_dir"]
SHARDS = [f"{i:04d}" for i in range(config["collect"]["shards"])]
VARIANTS = config["controller"]["variants"]


def wm_config_args():
    """The config files Snakemake merged, in its order of precedence (the Snakefile's configfile,
    then --configfile), and any --config key=value overrides: every wm command sees the same config."""
    cli_files = [str(path) for path in workflow.overwrite_configfiles]
    files = [str(path) for path in workflow.configfiles if str(path) not in cli_files] + cli_files
    args = [f"--config {shlex.quote(path)}" for path in files]
    if workflow.config_settings.config:
        args.append(f"--override {shlex.quote(json.dumps(dict(workflow.config_settings.config)))}")
    return " ".join(args)


WM_CONFIG = wm_config_args()

