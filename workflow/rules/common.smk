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


try:
    from wm.resume import LATER_KEYS
except ImportError:  # wm not importable where the workflow is parsed: params then hold every key
    LATER_KEYS = {}

# config[stage] without the keys added later that are at their default (wm/resume.py's LATER_KEYS):
# such a key changes nothing, so a run made before it existed is not rerun for it (Snakemake reruns a
# rule whose params changed). Every stage's rule uses it.
settled = lambda stage: {k: v for k, v in config[stage].items()
                         if not (k in LATER_KEYS.get(stage, {}) and v == LATER_KEYS[stage][k])}
