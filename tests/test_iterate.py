"""Iterative training's parts: episodes collected by a trained agent (collect.policy agent) and M
fine-tuned from a trained M (mdn.init), on the tiny workflow's V, M and C."""

import json
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
import yaml
import zarr

from conftest import BIN, TINY, run, tiny_args, wm
from wm.files import file_digest
from wm.mdn.model import load_mdn


def agent_override(**collect):
    return ["--override", json.dumps({"collect": {"policy": "agent", "param_noise": 0.1, **collect}})]


def models(run_dir):
    return ["--vae", run_dir / "vae" / "model.pt", "--mdn", run_dir / "mdn" / "model.pt",
            "--controller", run_dir / "controller" / "z_h" / "controller.pt"]


def collect_agent(run_dir, out, shard=0, **collect):
    wm("collect", *tiny_args()[:4], *agent_override(**collect), "--shard", shard, "--out", out, *models(run_dir))
    return out


def arrays(path):
    group = zarr.open_group(str(path), mode="r")
    return {name: group[name][:] for name in ("frames", "actions", "rewards", "terminated")}, dict(group.attrs)


@pytest.fixture(scope="module")
def agent_shard(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("agent") / "shard-0000.zarr"
    return collect_agent(tiny_run, out)


def test_agent_episodes_are_reproducible_and_recorded_with_their_models(tiny_run, agent_shard, tmp_path):
    first, attrs = arrays(agent_shard)
    again, _ = arrays(collect_agent(tiny_run, tmp_path / "again.zarr"))
    for name in first:
        np.testing.assert_array_equal(first[name], again[name], err_msg=name)
    policy = attrs["policy"]
    assert policy["name"] == "agent" and policy["param_noise"] == 0.1
    assert set(policy) >= {"vae", "mdn", "controller"}  # the files that drove, by digest
    wm("data", "check", agent_shard)


def test_agent_tracks_are_not_the_random_rounds(tiny_run, agent_shard):
    _, agent = arrays(agent_shard)
    _, random_round = arrays(tiny_run / "data" / "shard-0000.zarr")
    assert not set(agent["seeds"]) & set(random_round["seeds"])


def test_each_later_round_drives_on_tracks_of_its_own(tiny_run, agent_shard, tmp_path):
    """collect.round: round 1 keeps the tracks every run before the key had (derived from (shard,
    episode)); round 2 draws new ones, and records its round."""
    from wm.seeding import derive_seed

    _, first = arrays(agent_shard)
    assert first["seeds"] == [derive_seed(0, "collect_agent", 0, e) for e in range(len(first["seeds"]))]
    assert "round" not in first
    _, second = arrays(collect_agent(tiny_run, tmp_path / "round-2.zarr", round=2))
    assert second["round"] == 2 and len(second["seeds"]) == len(first["seeds"])
    assert not set(second["seeds"]) & set(first["seeds"])


def test_parameter_noise_changes_how_each_episode_drives(tiny_run, agent_shard, tmp_path):
    noisy, _ = arrays(agent_shard)
    quiet, _ = arrays(collect_agent(tiny_run, tmp_path / "quiet.zarr", param_noise=0.0))
    assert not np.array_equal(noisy["actions"], quiet["actions"])
    # Same tracks, and the first frame comes from the track alone.
    np.testing.assert_array_equal(noisy["frames"][:, 0], quiet["frames"][:, 0])


def test_agent_policy_without_its_models_fails_in_one_line(tmp_path):
    result = wm("collect", *tiny_args()[:4], *agent_override(), "--shard", 0, "--out", tmp_path / "s.zarr", check=False)
    assert result.returncode == 2
    assert "collect.policy is agent: wm collect needs --vae, --mdn and --controller" in result.stderr
    assert not (tmp_path / "s.zarr").exists()


def train_mdn(run_dir, out, **mdn):
    latents = sorted((run_dir / "latents").glob("shard-*.zarr"))
    return wm("train-mdn", *tiny_args()[:4], "--override", json.dumps({"mdn": mdn}), "--latents", *latents,
              "--out", out, check=False)


def test_mdn_fine_tune_starts_from_the_given_m(tiny_run, tmp_path):
    start = tiny_run / "mdn" / "model.pt"
    result = train_mdn(tiny_run, tmp_path / "tuned", init=str(start), learning_rate=1e-12)
    assert result.returncode == 0, result.stderr
    assert f"starting from {start}" in result.stdout
    before, after = load_mdn(start).state_dict(), load_mdn(tmp_path / "tuned" / "model.pt").state_dict()
    for name in before:  # a vanishing learning rate: the fine-tuned M is the M it started from
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=1e-6, msg=name)
    # At the run's own learning rate it moves away from there (and stays away: validation reads the
    # trained M, not the start again).
    moved = train_mdn(tiny_run, tmp_path / "moved", init=str(start))
    assert moved.returncode == 0, moved.stderr
    trained = load_mdn(tmp_path / "moved" / "model.pt").state_dict()
    assert all(not torch.equal(trained[name], before[name]) for name in before)
    fresh = train_mdn(tiny_run, tmp_path / "fresh", learning_rate=1e-12)
    assert fresh.returncode == 0, fresh.stderr
    weight = "lstm.weight_hh_l0"
    assert not torch.allclose(load_mdn(tmp_path / "fresh" / "model.pt").state_dict()[weight], before[weight])


def test_mdn_init_of_another_shape_is_refused(tiny_run, tmp_path):
    result = train_mdn(tiny_run, tmp_path / "tuned", init=str(tiny_run / "mdn" / "model.pt"), hidden=32)
    assert result.returncode == 2
    assert "mdn.init:" in result.stderr and "(z_dim, hidden, gaussians)" in result.stderr


ROUND_1 = {"iterate": {"rounds": 1, "collect": {"shards": 1, "param_noise": 0.05}, "mdn": {"epochs": 1},
                       "controller": {"generations": 1, "sigma0": 0.05}}}


@pytest.fixture(scope="module")
def second_round(tiny_run, tmp_path_factory):
    """The tiny workflow's first round copied (timestamps kept), then `snakemake` for everything: only
    round 1's jobs run, each a second run of the first round's rules."""
    root = tmp_path_factory.mktemp("rounds")
    run_dir = root / "results"
    shutil.copytree(tiny_run, run_dir)
    (root / "iterate.yaml").write_text(yaml.safe_dump(ROUND_1))
    result = run([str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", str(TINY),
                  str(root / "iterate.yaml"), "--config", f"run_dir={run_dir}"], timeout=900)
    return run_dir, result.stdout + result.stderr


def test_a_second_round_runs_the_same_rules_on_the_first_rounds_agent(tiny_run, second_round):
    run_dir, log = second_round
    ran = sorted(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", log))
    assert ran == ["all", "collect", "encode", "evaluate", "train_controller", "train_mdn"], log[-3000:]
    round_1 = run_dir / "round-1"
    for path in ("data/shard-0000.zarr", "latents/shard-0000.zarr", "mdn/model.pt", "controller/z_h/controller.pt",
                 "eval/z_h/returns.json"):
        assert (round_1 / path).exists(), path
    assert not (round_1 / "data" / "shard-0001.zarr").exists()  # iterate.collect.shards: 1
    _, attrs = arrays(round_1 / "data" / "shard-0000.zarr")
    first = {name: file_digest(run_dir / path) for name, path in
             (("vae", "vae/model.pt"), ("mdn", "mdn/model.pt"), ("controller", "controller/z_h/controller.pt"))}
    assert attrs["policy"] == {"name": "agent", "param_noise": 0.05, **first}
    # M fine-tuned from the first round's M on both rounds' latents; CMA-ES started from the first round's C.
    mdn_log = (run_dir / "logs" / "round-1" / "train_mdn.log").read_text()
    assert f"starting from {run_dir / 'mdn' / 'model.pt'}" in mdn_log
    with open(round_1 / "controller" / "z_h" / "checkpoint.pkl", "rb") as f:
        fingerprint = pickle.load(f)["fingerprint"]
    assert fingerprint["controller.init"] == first["controller"]
    assert fingerprint["mdn"] == file_digest(round_1 / "mdn" / "model.pt")
