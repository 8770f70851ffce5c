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


def _s3_sees_uploaded_folders():
    """With S3 storage (profiles/k8s): snakemake-storage-plugin-s3 0.3.6 remembers a "no" from is_dir(),
    so the driver, which checks a directory() output (a Zarr store) before its pod runs, never sees the
    folder the pod then uploads ("Missing files after 5 seconds ... (missing in storage)"; found by
    tests/test_k8s.py). Ask S3 again while the answer is no. Nothing happens without the plugin."""
    import sys

    s3 = sys.modules.get("snakemake_storage_plugin_s3")
    if s3 is None or getattr(s3.StorageObject.is_dir, "wm_rechecks", False):
        return

    def is_dir(self):
        if not self._is_dir:
            self._is_dir = any(self.get_subkeys())
        return self._is_dir

    is_dir.wm_rechecks = True
    s3.StorageObject.is_dir = is_dir


_s3_sees_uploaded_folders()
