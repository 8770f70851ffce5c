"""The one resume rule of V, M and C (wm/resume.py): a killed run resumes to exactly where an
uninterrupted one ends; raising the length of a finished run extends it; a checkpoint saved with any
setting that changes the result is refused in one line naming the setting, never reused."""

import copy
import csv
import math
import os
import signal
import subprocess
import time

import pytest
import torch

from conftest import BIN, REPO, tiny_args
from wm.config import load_config, load_schema
from wm.stages.train_controller import run_fingerprint as controller_fingerprint
from wm.mdn.train import run_fingerprint as mdn_fingerprint
from wm.resume import LATER_KEYS, LATER_TOP_KEYS, MAY_DIFFER, differences, fingerprint, recorded_settings
from wm.rollouts.readers import open_stores
from wm.vae.train import run_fingerprint as vae_fingerprint


def losses(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def same_losses(rows: list[dict], expected: list[dict]) -> bool:
    """The same epochs and columns, each value equal to 1e-6 relative (see test_vae_and_mdn_resume_after_a_kill)."""
    return [list(r) for r in rows] == [list(r) for r in expected] and all(
        math.isclose(float(r[k]), float(e[k]), rel_tol=1e-6) for r, e in zip(rows, expected) for k in r)


def kill_after_first_epoch(cmd, checkpoint):
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"


def stage_commands(tiny_run, config_args):
    shards = sorted(str(p) for p in (tiny_run / "data").glob("*.zarr"))
    latents = sorted(str(p) for p in (tiny_run / "latents").glob("*.zarr"))
    return (("train-vae", [str(BIN / "wm"), "train-vae", *config_args, "--data", *shards]),
            ("train-mdn", [str(BIN / "wm"), "train-mdn", *config_args, "--latents", *latents]))


def test_vae_and_mdn_resume_after_a_kill(tiny_run, tmp_path):
    three = tmp_path / "three.yaml"
    three.write_text("vae: {epochs: 3}\nmdn: {epochs: 40}\n")  # M's tiny epochs take ~0.1 s
    for stage, cmd in stage_commands(tiny_run, [*tiny_args(), "--config", str(three)]):
        whole, resumed = tmp_path / f"{stage}-whole", tmp_path / f"{stage}-resumed"
        subprocess.run([*cmd, "--out", str(whole)], cwd=REPO, check=True, capture_output=True)
        kill_after_first_epoch([*cmd, "--out", str(resumed)], resumed / "checkpoint.pt")
        assert not (resumed / "model.pt").exists()
        result = subprocess.run([*cmd, "--out", str(resumed)], cwd=REPO, capture_output=True, text=True, check=True)
        assert "resuming after epoch" in result.stdout
        # The trained weights are bit-identical; the reported losses are forward-only sums, whose last bits can
        # follow how a parallel reduction was split under load (one CI run: M's epochs 37 and 39 differed in
        # the 8th digit while every epoch after them matched), so they are compared to 1e-6.
        weights = [torch.load(folder / "model.pt", weights_only=False)["state_dict"] for folder in (whole, resumed)]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), stage
        assert same_losses(losses(resumed / "metrics.csv"), losses(whole / "metrics.csv")), stage
        # The checkpoint stays, so that the finished run can be extended.
        assert (resumed / "checkpoint.pt").exists()


def test_raising_epochs_extends_a_finished_v_and_m_and_other_settings_are_refused(tiny_run, tmp_path):
    short, long = tmp_path / "short.yaml", tmp_path / "long.yaml"
    short.write_text("vae: {epochs: 1}\nmdn: {epochs: 2}\n")
    long.write_text("vae: {epochs: 2}\nmdn: {epochs: 4}\n")
    changes = {"train-vae": ("vae: {epochs: 2, learning_rate: 0.002}\n", "vae.learning_rate 0.001 -> 0.002"),
               "train-mdn": ("mdn: {epochs: 4, seq_len: 10}\n", "mdn.seq_len 20 -> 10")}
    for stage, cmd in stage_commands(tiny_run, tiny_args()):
        whole, extended = tmp_path / f"{stage}-whole", tmp_path / f"{stage}-extended"
        subprocess.run([*cmd, "--config", str(long), "--out", str(whole)], cwd=REPO, check=True, capture_output=True)
        subprocess.run([*cmd, "--config", str(short), "--out", str(extended)], cwd=REPO, check=True,
                       capture_output=True)
        result = subprocess.run([*cmd, "--config", str(long), "--out", str(extended)], cwd=REPO, capture_output=True,
                                text=True, check=True)
        assert "resuming after epoch" in result.stdout, stage
        assert same_losses(losses(extended / "metrics.csv"), losses(whole / "metrics.csv")), stage
        weights = [torch.load(folder / "model.pt", weights_only=False)["state_dict"] for folder in (whole, extended)]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), stage

        other = tmp_path / f"{stage}-other.yaml"
        other.write_text(changes[stage][0])
        before = (extended / "model.pt").read_bytes()
        refused = subprocess.run([*cmd, "--config", str(other), "--out", str(extended)], cwd=REPO,
                                 capture_output=True, text=True)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and changes[stage][1] in lines[0] and "checkpoint.pt" in lines[0], refused.stderr
        assert (extended / "model.pt").read_bytes() == before

        fewer = subprocess.run([*cmd, "--config", str(short), "--out", str(extended)], cwd=REPO,
                               capture_output=True, text=True)
        assert fewer.returncode == 2 and f"more than {stage[6:]}.epochs = " in fewer.stderr, fewer.stderr


# Fingerprint entries that follow from a knob and so change with it: C's bias changes its size.
DERIVED = {"controller.bias": ["parameters"]}


def changed(value, schema: dict):
    """Another valid value for a config key, from its schema."""
    if "enum" in schema:
        return next(option for option in schema["enum"] if option != value)
    kind = schema["type"]
    if kind == "boolean":
        return not value
    if kind == "integer":
        return value + 1 if value + 1 <= schema.get("maximum", value + 1) else value - 1
    if kind == "number":
        return value * 2 if value else 0.5
    raise AssertionError(f"no rule to change a {kind} value")


def knob_cases(stage: str):
    schema = load_schema()["properties"][stage]["properties"]
    return [(key, schema[key]) for key in schema if key not in MAY_DIFFER[stage]]


@pytest.mark.parametrize("stage", ["vae", "mdn", "controller"])
def test_every_result_changing_knob_is_in_the_fingerprint(tiny_run, tmp_path, stage):
    """Each key of the stage's config section, changed in turn, changes the checkpoint's fingerprint
    (so the checkpoint is refused) in exactly that key; the keys that may differ on resume do not.
    New knobs are covered by construction: the schema is the list."""
    config = load_config(tiny_args()[1::2])
    vae_path, mdn_path = tiny_run / "vae" / "model.pt", tiny_run / "mdn" / "model.pt"
    fingerprints = {
        "vae": lambda c: vae_fingerprint(c, open_stores(sorted((tiny_run / "data").glob("*.zarr")), "rollouts"),
                                         torch.device("cpu")),
        "mdn": lambda c: mdn_fingerprint(c, open_stores(sorted((tiny_run / "latents").glob("*.zarr")), "latents"),
                                         torch.device("cpu")),
        "controller": lambda c: controller_fingerprint(c, "z_h", vae_path, mdn_path),
    }[stage]
    base = fingerprints(config)
    cases = knob_cases(stage)
    assert len(cases) >= 5
    for key, schema in cases:
        other = copy.deepcopy(config)
        other[stage][key] = (str(tiny_run / "controller" / "z_h" / "controller.pt") if key == "init"
                             else changed(config[stage][key], schema))
        assert [d.split()[0] for d in differences(base, fingerprints(other))] == [f"{stage}.{key}",
                                                                                  *DERIVED.get(f"{stage}.{key}", [])], key
    for key in MAY_DIFFER[stage]:
        other = copy.deepcopy(config)
        other[stage][key] = ["z"] if key == "variants" else config[stage][key] + 1
        assert differences(base, fingerprints(other)) == [], key
    other = copy.deepcopy(config)
    other["seed"] += 1
    assert "seed" in [d.split()[0] for d in differences(base, fingerprints(other))]


def test_train_dtype_is_in_v_and_m_fingerprints_only_off_its_default(tiny_run):
    """train_dtype bfloat16 trains V and M otherwise, so a float32 checkpoint is refused for it;
    at its default it is absent, so checkpoints made before the knob existed still resume."""
    config = load_config(tiny_args()[1::2])
    cpu = torch.device("cpu")
    for fingerprint, kind, folder in ((vae_fingerprint, "rollouts", "data"), (mdn_fingerprint, "latents", "latents")):
        stores = open_stores(sorted((tiny_run / folder).glob("*.zarr")), kind)
        base = fingerprint(config, stores, cpu)
        assert "train_dtype" not in base
        other = copy.deepcopy(config)
        other["train_dtype"] = "bfloat16"
        assert differences(base, fingerprint(other, stores, cpu)) == ["train_dtype '(unset)' -> 'bfloat16'"]


def test_later_keys_hold_their_schema_defaults_and_are_recorded_only_off_them():
    """A key added after checkpoints existed is left out of fingerprints, shard metadata and rule params
    at the value that reproduces the code before it; that value must be the schema's default, or every
    default run would refuse the older checkpoints (or silently match ones made otherwise)."""
    defaults = load_config([REPO / "config.yaml"])
    for stage, keys in LATER_KEYS.items():
        for key, value in keys.items():
            assert defaults[stage][key] == value, f"{stage}.{key}: LATER_KEYS must hold the schema default"
    for key, value in LATER_TOP_KEYS.items():
        assert defaults[key] == value, f"{key}: LATER_TOP_KEYS must hold the schema default"
        assert recorded_settings({key: value}) == {}
    assert recorded_settings({"encoder_dtype": "bfloat16"}) == {"encoder_dtype": "bfloat16"}
    assert recorded_settings({"round": 1}, "collect") == {} and recorded_settings({"round": 2}, "collect") == {"round": 2}
    config = copy.deepcopy(defaults)
    base = fingerprint(config, "mdn")
    assert not any(k.endswith(("reward_weight", "done_weight")) for k in base)
    assert "mdn.seq_len" in base  # the keys that are not later ones stay, default or not
    config["mdn"]["reward_weight"] = 1.0
    assert differences(base, fingerprint(config, "mdn")) == ["mdn.reward_weight '(unset)' -> 1.0"]
