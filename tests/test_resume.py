"""V's and M's training survive a kill: the same command resumes after the last whole epoch
and ends exactly where an uninterrupted run ends."""

import csv
import os
import signal
import subprocess
import time

from conftest import BIN, REPO, tiny_args


def losses(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def kill_after_first_epoch(cmd, checkpoint):
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"


def test_vae_and_mdn_resume_after_a_kill(tiny_run, tmp_path):
    three = tmp_path / "three.yaml"
    three.write_text("vae: {epochs: 3}\nmdn: {epochs: 40}\n")  # M's tiny epochs take ~0.1 s
    config = [*tiny_args(), "--config", str(three)]
    shards = sorted(str(p) for p in (tiny_run / "data").glob("*.zarr"))
    latents = sorted(str(p) for p in (tiny_run / "latents").glob("*.zarr"))
    for stage, data_flag, data in (("train-vae", "--data", shards), ("train-mdn", "--latents", latents)):
        whole, resumed = tmp_path / f"{stage}-whole", tmp_path / f"{stage}-resumed"
        subprocess.run([str(BIN / "wm"), stage, *config, data_flag, *data, "--out", str(whole)], cwd=REPO,
                       check=True, capture_output=True)
        cmd = [str(BIN / "wm"), stage, *config, data_flag, *data, "--out", str(resumed)]
        kill_after_first_epoch(cmd, resumed / "checkpoint.pt")
        assert not (resumed / "model.pt").exists()
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
        assert "resuming after epoch" in result.stdout
        assert losses(resumed / "metrics.csv") == losses(whole / "metrics.csv"), stage
        assert not (resumed / "checkpoint.pt").exists()
