"""The cluster profiles without a cluster: each parses (yte + Snakemake's own profile reader), and
`snakemake --profile ... --dry-run` plans every rule of the tiny workflow with the resources each job
would ask for. The Slurm profile also runs for real in tests/test_slurm.py. No Kubernetes cluster is
reachable here: its dry run checks existence in S3 against a local S3 server (moto), the closest to
the documented command that runs without a cluster. Also: the Snakefile's container image."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yte

from conftest import BIN, REPO, TINY

import wm

def profile(name: str, **env) -> dict:
    """The profile as Snakemake reads it (yte templating, with the given environment)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with open(REPO / "profiles" / name / "config.yaml") as f:
            return yte.process_yaml(f, require_use_yte=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def dry_run(python: str, profile_name: str, tmp_path: Path, env: dict, ranks: int = 3,
            configs: tuple[Path, ...] = ()) -> dict[str, list[dict]]:
    """snakemake --profile PROFILE --dry-run on the tiny config and `configs` (with `ranks` MPI ranks); returns
    each rule's jobs as {"threads": ..., "resources": {...}, "shell": ...}."""
    extra = tmp_path / "ranks.yaml"
    extra.write_text(f"run_dir: results-dry-run\ncontroller: {{ranks: {ranks}}}\nevaluate: {{ranks: {ranks}}}\n")
    result = subprocess.run([python, "-m", "snakemake", "--profile", f"profiles/{profile_name}", "--dry-run",
                             "--configfile", str(TINY), *map(str, configs), str(extra)], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env}, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=rule \w+:)", result.stdout):
        name = re.match(r"rule (\w+):", block)
        if not name:
            continue
        threads = re.search(r"^\s+threads: (\d+)", block, re.M)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        parsed = dict(item.split("=", 1) for item in re.split(r", (?=\w+=)", resources.group(1))) if resources else {}
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        jobs.setdefault(name.group(1), []).append({"threads": int(threads.group(1)) if threads else 1,
                                                   "resources": parsed, "shell": shell.group(1) if shell else ""})
    return jobs


RULES = {"collect": 2, "train_vae": 1, "encode": 2, "train_mdn": 1, "dream": 1, "train_controller": 1,
         "evaluate": 1, "all": 1}


# --- Slurm ---------------------------------------------------------------------------------------
def test_slurm_profile_block_at_the_top_is_the_only_cluster_specific_part():
    plain = profile("slurm", WM_SLURM_PARTITION="", WM_SLURM_GPU_PARTITION="", WM_SLURM_ACCOUNT="")
    assert "slurm_partition" not in plain["default-resources"] and "slurm_account" not in plain["default-resources"]
    assert "slurm_partition" not in plain["set-resources"]["train_vae"] and "slurm-no-account" not in plain
    named = profile("slurm", WM_SLURM_PARTITION="cpu", WM_SLURM_GPU_PARTITION="gpu", WM_SLURM_ACCOUNT="proj1")
    assert named["default-resources"]["slurm_partition"] == "cpu"
    assert named["default-resources"]["slurm_account"] == "proj1"
    assert named["set-resources"]["train_vae"]["slurm_partition"] == "gpu"
    assert named["set-resources"]["train_mdn"]["slurm_partition"] == "gpu"
    assert profile("slurm", WM_SLURM_PARTITION="cpu")["set-resources"]["train_vae"]["slurm_partition"] == "cpu"
    assert profile("slurm", WM_SLURM_ACCOUNT="none").get("slurm-no-account") is True
    assert named["executor"] == "slurm" and named["slurm-status-command"] == "squeue"
    assert set(named["slurm-array-jobs"].split(",")) == {"collect", "encode"}


def test_slurm_profile_plans_every_rule_with_its_resources(tmp_path):
    env = {"WM_SLURM_PARTITION": "cpu", "WM_SLURM_GPU_PARTITION": "gpu", "WM_SLURM_ACCOUNT": "none"}
    jobs = dry_run(sys.executable, "slurm", tmp_path, env, ranks=3)
    assert {rule: len(j) for rule, j in jobs.items()} == RULES
    for job in jobs["collect"]:
        assert job["resources"]["slurm_partition"] == "cpu" and job["resources"]["cpus_per_task"] == "1"
    for rule in ("train_vae", "train_mdn"):
        (job,) = jobs[rule]
        assert job["resources"]["gpu"] == "1" and job["resources"]["slurm_partition"] == "gpu"
        assert job["threads"] == 8 and job["resources"]["mem_mb"] == "32000"
    for rule in ("train_controller", "evaluate"):
        (job,) = jobs[rule]
        res = job["resources"]
        assert res["mpi"] == "srun --mpi=pmi2" and res["tasks"] == "3" and res["cpus_per_task"] == "1", res
        assert res["mem_mb_per_cpu"] == "2000" and res["slurm_partition"] == "cpu"
    assert "gpu" not in jobs["dream"][0]["resources"]


# --- Kubernetes ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_env(s3_server):
    """The local S3 server (conftest.s3_server) with a bucket, and what the k8s profile reads from the
    environment; returns (python, env)."""
    s3_server.create_bucket("wm-test")
    return s3_server.python, {**s3_server.credentials, "WM_K8S_STORAGE_PREFIX": "s3://wm-test/run",
                              "WM_K8S_IMAGE": "registry.example/wm:test", "WM_K8S_NAMESPACE": "wm"}


def test_k8s_profile_parses():
    conf = profile("k8s", WM_K8S_IMAGE="registry.example/wm:1", WM_K8S_NAMESPACE="ns",
                   WM_K8S_STORAGE_PREFIX="s3://b/p")
    assert conf["executor"] == "kubernetes" and conf["container-image"] == "registry.example/wm:1"
    assert conf["kubernetes-namespace"] == "ns"
    assert conf["default-storage-provider"] == "s3" and conf["default-storage-prefix"] == "s3://b/p"
    assert profile("k8s")["container-image"].endswith(f"wm:{wm.__version__}-k8s")


def test_k8s_profile_plans_every_rule_with_its_resources(s3_env, tmp_path):
    python, env = s3_env
    jobs = dry_run(python, "k8s", tmp_path, env, ranks=3)
    assert {rule: len(j) for rule, j in jobs.items()} == RULES
    for rule in ("train_vae", "train_mdn"):
        (job,) = jobs[rule]
        assert job["resources"]["gpu"] == "1" and job["resources"]["gpu_manufacturer"] == "nvidia"
        assert job["threads"] == 8
    for rule in ("train_controller", "evaluate"):  # one pod of `ranks` CPUs, mpiexec inside
        (job,) = jobs[rule]
        assert job["threads"] == 3 and job["resources"]["mpi"] == "mpiexec" and job["resources"]["tasks"] == "3"
        assert job["resources"]["mem_mb"] == "6000"  # 2000 per rank
    for rule in ("collect", "encode", "dream"):
        assert all("gpu" not in job["resources"] for job in jobs[rule])
    # every input and output goes through S3 (local copies under .snakemake/storage/s3/BUCKET/PREFIX)
    for rule in RULES.keys() - {"all"}:
        for job in jobs[rule]:
            paths = re.findall(r"--(?:out|vae|mdn|shard|controller) (\S+/\S+)", job["shell"])
            assert paths and all(p.startswith(".snakemake/storage/s3/wm-test/run/results-dry-run/")
                                 for p in paths), job["shell"]


def test_k8s_profile_plans_the_doom_workflow(s3_env, tmp_path):
    """The tiny Doom config plans the same rules through profiles/k8s: V and M on a GPU, C's CMA-ES (in M's
    dream, variant z_c_h) and the real game's evaluation as one MPI pod each."""
    python, env = s3_env
    jobs = dry_run(python, "k8s", tmp_path, env, ranks=3, configs=(REPO / "tests" / "configs" / "tiny-doom.yaml",))
    assert {rule: len(j) for rule, j in jobs.items()} == RULES
    assert all(job["resources"]["gpu"] == "1" for rule in ("train_vae", "train_mdn") for job in jobs[rule])
    (controller,) = jobs["train_controller"]
    assert "--variant z_c_h" in controller["shell"] and "tiny-doom.yaml" in controller["shell"]
    assert controller["resources"]["mpi"] == "mpiexec" and controller["resources"]["tasks"] == "3"
    assert "eval/z_c_h" in jobs["evaluate"][0]["shell"]


# --- The Snakefile's container image -------------------------------------------------------------
def container_images(**env) -> dict[str, str]:
    code = """
import json
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    w = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path("Snakefile"),
                     config_settings=ConfigSettings(configfiles=[Path("tests/configs/tiny.yaml")]))
    print(json.dumps({rule.name: rule.container_img for rule in w._workflow.rules}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_every_rule_names_the_image_of_this_version():
    images = container_images()
    assert set(images.values()) == {f"docker://ghcr.io/wm-project/wm:{wm.__version__}"}, images
    assert set(container_images(WM_IMAGE="/shared/images/wm.sif").values()) == {"/shared/images/wm.sif"}
