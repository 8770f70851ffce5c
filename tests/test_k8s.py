"""`snakemake --profile profiles/k8s` for real, against a stand-in Kubernetes API server
(tests/k8s_api.py: every Job's pod runs as a local process in its own empty folder) and a local S3
server (moto): the tiny workflow with every rule as a pod, inputs and outputs only through S3.

One run shared by most tests here (a module fixture), with C's folder on a PersistentVolumeClaim
(--kubernetes-persistent-volumes) and C's first pod evicted (deleted, as by a drain, a preemption or a
lost node) right after its first checkpoint: Snakemake retries it (the profile's retries: 2) and the
new pod resumes from the checkpoint on the claim. The outputs are read back from S3 and checked as
tests/test_workflow.py checks the local run's; every Job spec the server received is checked against
profiles/k8s/config.yaml.

A pod that fails in place: snakemake-executor-plugin-kubernetes 0.5.1 asks for its log with
previous=true, which a kubelet refuses for a container that never restarted (restartPolicy Never), and
would end the whole run with no retry and no log shown; workflow/rules/plugin_fixes.smk reads the current
log instead, so the retries run and each attempt's error names the file holding the pod's log
(test_a_failing_pod_fails_the_run_with_its_log_shown_after_the_retries, on a one-rule workflow).

Skips only where the Kubernetes executor plugin, or the S3 plugin and moto, are missing and cannot be
installed (see conftest.s3_server)."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yte
from PIL import Image

from conftest import BIN, REPO, TINY, wm
from k8s_api import FakeKubernetes, after_file, wheel_from_installed

pytest.importorskip("snakemake_executor_plugin_kubernetes",
                    reason="snakemake-executor-plugin-kubernetes is not installed (pip install -e '.[cluster]')")

IMAGE = "registry.example/wm:k8s-test"
NAMESPACE = "wm"
BUCKET = "wm-k8s"
CLAIM = "wm-checkpoints"
RANKS = 2
RUN = "results-tiny"  # tests/configs/tiny.yaml's run_dir, under the S3 prefix


def profile() -> dict:
    with open(REPO / "profiles" / "k8s" / "config.yaml") as f:
        return yte.process_yaml(f, require_use_yte=True)


def snakemake(cmd: list[str], env: dict, log: Path) -> tuple[int, str, float]:
    start = time.monotonic()
    result = subprocess.run([str(BIN / "snakemake"), *cmd], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    out = result.stdout + result.stderr
    log.write_text(out)
    return result.returncode, out, time.monotonic() - start


def download(python: str, endpoint: str, prefix: str, dest: Path, key: str = "") -> Path:
    """Everything under s3://BUCKET/prefix/key into dest (boto3, in the Python that has it)."""
    code = """
import boto3, pathlib, sys
endpoint, bucket, prefix, dest = sys.argv[1:5]
s3 = boto3.client('s3', endpoint_url=endpoint, aws_access_key_id='test', aws_secret_access_key='test',
                  region_name='us-east-1')
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
    for obj in page.get('Contents', []):
        path = pathlib.Path(dest, obj['Key'])
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj['Key'], str(path))
"""
    subprocess.run([python, "-c", code, endpoint, BUCKET, f"{prefix}/{key}", str(dest)], check=True, timeout=300)
    return dest / prefix


def forget_run(prefix: str, cfg_dir: Path, job_names: list[str]) -> None:
    """Remove what the run left in the checkout's .snakemake/ (Snakemake's records of our S3 paths,
    the plugin's logs of our Jobs, our config file); nothing else there is touched."""
    ours = f"s3://{BUCKET}/{prefix}/"
    for sub in ("metadata", "incomplete"):
        folder = REPO / ".snakemake" / sub
        for entry in folder.iterdir() if folder.is_dir() else []:
            try:
                name = base64.urlsafe_b64decode(entry.name + "=" * (-len(entry.name) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            if name.startswith(ours):
                entry.unlink()
    for name in job_names:
        (REPO / ".snakemake" / "auxiliary" / "kubernetes-logs" / f"{name}.log").unlink(missing_ok=True)
    shutil.rmtree(cfg_dir, ignore_errors=True)
    shutil.rmtree(REPO / ".snakemake" / "storage" / "s3" / BUCKET / prefix, ignore_errors=True)


def image_env(s3_server, wheels: Path) -> dict:
    """The "image": this venv (snakemake, wm, the S3 plugin) and the variables containers/Dockerfile sets.
    Every pod first runs `pip install --target .snakemake/pip-deployments snakemake-storage-plugin-s3`
    (the plugin's auto-deployment); here offline, from a wheel of the installed plugin, without its
    dependencies (the image has them), as docs/cluster.md suggests for clusters without PyPI."""
    wheel_from_installed("snakemake-storage-plugin-s3", wheels)
    return {"PATH": f"{s3_server.bin}:{BIN}:/usr/local/bin:/usr/bin:/bin", "PYTHONUNBUFFERED": "1",
            "MPLBACKEND": "Agg", "SDL_VIDEODRIVER": "dummy", "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheels), "PIP_NO_DEPS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def driver_env(s3_server, cluster: FakeKubernetes, root: Path, prefix: str, **extra) -> dict:
    return {**os.environ, "PATH": f"{s3_server.bin}:{BIN}:{os.environ['PATH']}",
            "KUBECONFIG": str(cluster.write_kubeconfig(root / "kubeconfig", NAMESPACE)),
            **s3_server.credentials, "WM_K8S_IMAGE": IMAGE, "WM_K8S_NAMESPACE": NAMESPACE,
            "WM_K8S_STORAGE_PREFIX": f"s3://{BUCKET}/{prefix}", **extra}


@pytest.fixture(scope="module")
def k8s(s3_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("k8s")
    s3_server.create_bucket(BUCKET)
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    secret_key = f"wm-secret-{uuid.uuid4().hex}"  # to find where the credentials travel
    local_run = f"/workdir/.snakemake/storage/s3/{BUCKET}/{prefix}/{RUN}"  # where a pod sees the run's files
    fault = after_file("train_controller", 1, f"{local_run}/controller/z_h/checkpoint.pkl", "evict")
    cluster = FakeKubernetes(root / "cluster", {IMAGE: image_env(s3_server, root / "wheels")},
                             namespaces=[NAMESPACE], claims=[CLAIM], faults=[fault]).start()
    # A config file must lie below the working directory to travel in the source archive.
    cfg_dir = REPO / ".snakemake" / f"k8s-test-{prefix}"
    cfg_dir.mkdir(parents=True)
    (cfg_dir / "ranks.yaml").write_text(f"controller: {{ranks: {RANKS}}}\nevaluate: {{ranks: {RANKS}}}\n")
    cmd = ["--profile", "profiles/k8s", "--configfile", str(TINY.relative_to(REPO)),
           str((cfg_dir / "ranks.yaml").relative_to(REPO)),
           "--kubernetes-persistent-volumes", f"{CLAIM}:{local_run}/controller/z_h",
           "--seconds-between-status-checks", "2"]  # a test setting: the default polls every 10 s
    try:
        code, out, seconds = snakemake(cmd, driver_env(s3_server, cluster, root, prefix,
                                                       SNAKEMAKE_STORAGE_S3_SECRET_KEY=secret_key),
                                       root / "snakemake.log")
        print(f"\nsnakemake --profile profiles/k8s: exit {code} after {seconds:.0f} s")
        assert code == 0, out[-5000:]
        out_dir = download(s3_server.python, s3_server.endpoint, prefix, root / "s3") / RUN
        yield SimpleNamespace(cluster=cluster, out=out, code=code, dir=out_dir, prefix=prefix,
                              secret_key=secret_key, fault=fault, local_run=local_run)
    finally:
        cluster.stop()
        print("\n".join(cluster.events))
        forget_run(prefix, cfg_dir, [j["metadata"]["name"] for j in cluster.received_jobs])


def job_rule(job: dict) -> str:
    return re.search(r"--target-jobs '?(\w+):", job["spec"]["template"]["spec"]["containers"][0]["args"][1]).group(1)


def container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def is_png(path: Path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 100


# --- C's first pod is evicted; its retry resumes ---------------------------------------------
def test_the_evicted_pod_is_retried_and_c_resumes_from_the_checkpoint_on_the_claim(k8s):
    first, second = k8s.cluster.pods_of("train_controller")
    assert k8s.fault.fired == [first.name] and first.reason == "Evicted" and (first.attempt, second.attempt) == (1, 2)
    # the plugin found no pod to read a log from, reported the failure, and Snakemake retried
    assert f"Job {first.job} failed. For details, please issue:" in k8s.out, k8s.out[-4000:]
    log = (k8s.dir / "logs" / "train_controller" / "z_h.log").read_text()
    assert re.search(r"train-controller: resuming \S+/controller/z_h/checkpoint.pkl at generation 1 of 2", log), log
    assert [int(r["generation"]) for r in read_csv(k8s.dir / "controller" / "z_h" / "log.csv")] == [1, 2]
    assert (k8s.cluster.claims[CLAIM] / "checkpoint.pkl").exists()  # on the volume, not in S3
    assert not (k8s.dir / "controller" / "z_h" / "checkpoint.pkl").exists()
    # every other rule ran once
    rules = [job_rule(j) for j in k8s.cluster.received_jobs]
    assert sorted(rules) == sorted(["collect", "collect", "train_vae", "encode", "encode", "train_mdn", "dream",
                                    "train_controller", "train_controller", "evaluate"]), rules


# --- the outputs, read back from S3 -------------------------------------------------------------
def test_every_output_is_in_s3_and_whole(k8s):
    out = k8s.dir
    assert sorted(p.name for p in (out / "data").glob("shard-*.zarr")) == ["shard-0000.zarr", "shard-0001.zarr"]
    assert wm("data", "check", out / "data").returncode == 0
    assert wm("data", "check", "--kind", "latents", out / "latents").returncode == 0
    from wm.mdn.model import load_mdn
    from wm.vae.model import load_vae

    assert load_vae(out / "vae" / "model.pt").z_dim == 32
    assert json.loads((out / "vae" / "summary.json").read_text())["collapse_guard"]
    assert is_png(out / "vae" / "reconstructions.png")
    assert load_mdn(out / "mdn" / "model.pt").hidden == 256
    assert np.isfinite(float(read_csv(out / "mdn" / "metrics.csv")[0]["train_loss"]))
    with Image.open(out / "mdn" / "dream.gif") as dream:
        assert dream.n_frames == 21
    assert is_png(out / "controller" / "z_h" / "curve.png") and (out / "controller" / "z_h" / "controller.pt").exists()
    result = json.loads((out / "eval" / "z_h" / "returns.json").read_text())
    assert result["episodes"] == len(result["returns"]) == 2 and result["ranks"] == RANKS
    assert is_png(out / "eval" / "z_h" / "histogram.png")
    for log in ("collect/0000.log", "train_vae.log", "encode/0001.log", "train_mdn.log", "dream.log",
                "evaluate/z_h.log"):
        assert (out / "logs" / log).exists(), log


def test_pods_shared_nothing_with_the_driver_but_s3(k8s):
    cluster = k8s.cluster
    secret = cluster.received_secrets[0]
    secret_env = {name.upper() for name in secret["data"]}
    image_env = set(cluster.images[IMAGE])
    pods = list(cluster.history)
    assert len({p.workdir for p in pods}) == len(pods) == len(cluster.received_jobs)
    for pod in pods:
        log = cluster.log(pod)
        assert f"Working directory: {pod.workdir.resolve()}" in log, log[:3000]  # its own empty folder
        assert set(pod.env) <= image_env | secret_env | {"HOSTNAME", "HOME", "TMPDIR", "KUBERNETES_SERVICE_HOST",
                                                         "KUBERNETES_SERVICE_PORT"}, set(pod.env) - image_env
        assert pod.env["SNAKEMAKE_STORAGE_S3_SECRET_KEY"] == k8s.secret_key  # from the secret only
        assert "KUBECONFIG" not in pod.env and "WM_K8S_STORAGE_PREFIX" not in pod.env
    for rule, inputs in (("train_vae", ["data/shard-0000.zarr", "data/shard-0001.zarr"]),
                         ("encode", ["vae/model.pt"]), ("train_mdn", ["latents/shard-0001.zarr"]),
                         ("evaluate", ["controller/z_h/controller.pt", "mdn/model.pt"])):
        for pod in cluster.pods_of(rule):
            log = cluster.log(pod)
            for path in inputs:
                assert f"Retrieving from storage: s3://{BUCKET}/{k8s.prefix}/{RUN}/{path}" in log, (rule, log[-3000:])
    # the driver downloaded nothing: its local storage copies stay empty
    local = REPO / ".snakemake" / "storage" / "s3" / BUCKET / k8s.prefix
    assert not local.exists() or not any(p.is_file() for p in local.rglob("*"))


def test_secret_holds_the_s3_settings_and_no_job_spec_does(k8s):
    (secret,) = k8s.cluster.received_secrets  # one per run
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["snakemake_storage_s3_secret_key"] == k8s.secret_key
    assert data["snakemake_storage_s3_endpoint_url"].startswith("http://127.0.0.1:")
    for job in k8s.cluster.received_jobs:
        assert k8s.secret_key not in json.dumps(job)
        env = container(job)["env"]
        assert {e["name"] for e in env} == {k.upper() for k in data}
        assert all(e["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": e["name"].lower()}
                   for e in env), env
    assert ("secret", secret["metadata"]["name"]) in k8s.cluster.deleted  # the run removed it at the end
    # the plugin deletes each finished Job, but not a failed one whose pod had vanished (the evicted C)
    evicted = {p.job for p in k8s.cluster.history if p.reason == "Evicted"}
    assert len(evicted) == 1
    for job in k8s.cluster.received_jobs:
        name = job["metadata"]["name"]
        assert (("job", name) in k8s.cluster.deleted) == (name not in evicted), name
    assert not k8s.cluster.unhandled(), k8s.cluster.unhandled()
    assert all(f"/namespaces/{NAMESPACE}/" in path for method, path, _ in k8s.cluster.requests if method == "POST")


def expected_requests(rule: str, conf: dict) -> tuple[dict, dict | None]:
    """What profiles/k8s/config.yaml gives a rule, as the plugin turns it into requests and limits."""
    res = {**conf["default-resources"], **conf["set-resources"].get(rule, {})}
    threads = conf.get("set-threads", {}).get(rule, RANKS if rule in ("train_controller", "evaluate") else 1)
    mem = res["mem_mb"]
    mem = eval(mem, {"threads": threads}) if isinstance(mem, str) else mem
    requests = {"cpu": f"{int(threads * 0.95 * 1000)}m", "memory": f"{mem}M", "ephemeral-storage": f"{res['disk_mb']}M"}
    limits = None
    if "gpu" in res:
        requests["nvidia.com/gpu"] = str(res["gpu"])
    if res.get("scale", 1) == 0:
        limits = {**requests, "cpu": f"{threads * 1000}m"}
    return requests, limits


def test_every_job_asks_for_what_the_profile_promises(k8s):
    conf = profile()
    jobs = {}
    for job in k8s.cluster.received_jobs:
        jobs.setdefault(job_rule(job), []).append(job)
    assert {rule: len(j) >= 1 for rule, j in jobs.items()} == {r: True for r in (
        "collect", "train_vae", "encode", "train_mdn", "dream", "train_controller", "evaluate")}
    assert len(jobs["collect"]) == len(jobs["encode"]) == 2
    for rule, rule_jobs in jobs.items():
        requests, limits = expected_requests(rule, conf)
        for job in rule_jobs:
            c, spec = container(job), job["spec"]["template"]["spec"]
            assert c["image"] == IMAGE and c["command"] == ["/bin/sh"] and c["workingDir"] == "/workdir"
            assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
            assert c["resources"]["requests"] == requests, (rule, c["resources"])
            assert c["resources"].get("limits") == limits, (rule, c["resources"])
            claim = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
            assert claim == [{"name": CLAIM, "persistentVolumeClaim": {"claimName": CLAIM}}]
            if rule in ("train_vae", "train_mdn"):
                assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                                                "effect": "NoSchedule"}]
            else:
                assert "tolerations" not in spec and "nvidia.com/gpu" not in c["resources"]["requests"]
            if rule in ("train_controller", "evaluate"):  # ONE pod; the rule's shell starts the ranks
                assert f"mpiexec -n {RANKS} wm" in k8s.cluster.log(next(
                    p for p in k8s.cluster.history if p.job == job["metadata"]["name"]))
    # the GPU pods landed on the tainted GPU node, the others could not
    for pod in k8s.cluster.history:
        assert pod.node == ("gpu-0" if pod.rule in ("train_vae", "train_mdn") else "cpu-0"), pod.name


def test_a_gpu_request_without_a_limit_is_refused(tmp_path):
    """Why the profile sets `scale: 0` for V and M: the plugin's default (scale 1) sends requests only,
    and kube-apiserver refuses an extended resource without a limit. Checked through the kubernetes
    client against the same harness (no pod runs)."""
    import kubernetes

    with FakeKubernetes(tmp_path, {IMAGE: {}}) as cluster:
        conf = kubernetes.client.Configuration()
        conf.host, conf.api_key = cluster.url, {"authorization": f"Bearer {cluster.token}"}
        api = kubernetes.client.BatchV1Api(kubernetes.client.ApiClient(conf))

        def job(name, resources):
            c = kubernetes.client.V1Container(name="snakemake", image=IMAGE, command=["true"], resources=resources)
            return kubernetes.client.V1Job(metadata=kubernetes.client.V1ObjectMeta(name=name), spec=kubernetes.client.V1JobSpec(
                template=kubernetes.client.V1PodTemplateSpec(spec=kubernetes.client.V1PodSpec(
                    containers=[c], restart_policy="Never")), backoff_limit=0))

        gpu = {"cpu": "7600m", "nvidia.com/gpu": "1"}
        with pytest.raises(kubernetes.client.ApiException) as refused:
            api.create_namespaced_job("default", job("requests-only", kubernetes.client.V1ResourceRequirements(
                requests=gpu)))
        assert refused.value.status == 422
        assert "Limit must be set for non overcommitable resources" in refused.value.body
        created = api.create_namespaced_job("default", job("with-limits", kubernetes.client.V1ResourceRequirements(
            requests=gpu, limits={**gpu, "cpu": "8000m"})))
        assert created.metadata.name == "with-limits"


def test_a_failing_pod_fails_the_run_with_its_log_shown_after_the_retries(s3_server, tmp_path):
    """A pod that fails in place, on a one-rule workflow (no wm) through the real profile with the
    workflow's plugin fixes included: plugin 0.5.1 reads the log with previous=true, which the stand-in
    refuses as a kubelet does; workflow/rules/plugin_fixes.smk then reads the current log, so the profile's
    retries run (3 attempts), each attempt's error names the file holding its pod's log, the run fails, and the failed Jobs are removed."""
    s3_server.create_bucket(BUCKET)
    workdir = tmp_path / "workflow"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(f'include: "{REPO / "workflow" / "rules" / "plugin_fixes.smk"}"\n'
                                       'rule fail:\n    output: "out.txt"\n    log: "fail.log"\n'
                                       '    shell: "echo wm-k8s-test: the rule log > {log}; '
                                       'echo wm-k8s-test: the pod says $((40 + 2)); exit 3"\n')  # 42 only in its output
    prefix = f"fail-{uuid.uuid4().hex[:8]}"
    with FakeKubernetes(tmp_path / "cluster", {IMAGE: image_env(s3_server, tmp_path / "wheels")},
                        namespaces=[NAMESPACE]) as cluster:
        start = time.monotonic()
        result = subprocess.run([str(BIN / "snakemake"), "--profile", str(REPO / "profiles" / "k8s"),
                                 "--seconds-between-status-checks", "1"], cwd=workdir,
                                env=driver_env(s3_server, cluster, tmp_path, prefix), capture_output=True,
                                text=True, timeout=600)
        print(f"\none-rule failing workflow: exit {result.returncode} after {time.monotonic() - start:.0f} s")
    out = result.stdout + result.stderr
    (tmp_path / "snakemake.log").write_text(out)
    assert result.returncode != 0, out[-3000:]
    assert "Kubernetes request failed" not in out, out[-3000:]
    assert len(cluster.received_jobs) == 3, out[-3000:]  # the first attempt and the profile's 2 retries
    assert all(pod.exit_code == 1 for pod in cluster.history) and len(cluster.history) == 3
    # Each attempt's error names the file the plugin wrote the pod's log to (Snakemake's show-failed-logs
    # prints only the rule's own log, which stays in S3), and that file holds what the pod printed.
    pod_logs = re.findall(r"(\S+/\.snakemake/auxiliary/kubernetes-logs/\S+\.log) \(check log file", out)
    assert len(set(pod_logs)) == 3, out[-3000:]
    assert all("wm-k8s-test: the pod says 42" in Path(log).read_text() for log in pod_logs)
    assert not [key for key in cluster.jobs if key[0] == NAMESPACE], cluster.jobs  # failed Jobs deleted
    (secret,) = cluster.received_secrets
    assert ("secret", secret["metadata"]["name"]) in cluster.deleted
    rule_log = download(s3_server.python, s3_server.endpoint, prefix, tmp_path / "s3") / "fail.log"
    assert rule_log.read_text() == "wm-k8s-test: the rule log\n"
