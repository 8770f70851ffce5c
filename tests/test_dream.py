"""Learning inside the dream (issue 15): M's reward and done heads, the dream environment, CMA-ES in
it (controller.environment: dream), and the resume rule for keys added later (wm/resume.py).

Small and fast: synthetic latents and untrained V and M written here, no tiny workflow run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, wm
from wm.config import load_config
from wm.stages.train_controller import read_checkpoint, train_controller
from wm.envs import get_env
from wm.episodes.dream import run_dream_batch
from wm.episodes.runner import Episode
from wm.files import save_torch
from wm.mdn.dream_env import DreamEnv, first_frames
from wm.mdn.model import MDNRNN, head_losses, load_mdn, mdn_loss
from wm.mdn.train import batch_loss, outcome_batches
from wm.rollouts.readers import open_stores, sequence_batches, sequence_windows
from wm.rollouts.storage import write_store
from wm.vae.model import ConvVAE

EPISODES, STEPS, Z = 4, 60, 32
CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as the MPI stages use: small models, and a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def latents(tmp_path_factory) -> list[Path]:
    """Two latents stores of synthetic episodes: reward 2.5 on every step, terminated on the last
    step of the odd episodes (which are shorter)."""
    folder = tmp_path_factory.mktemp("latents")
    rng = np.random.default_rng(0)
    paths = []
    for s in range(2):
        lengths = np.array([STEPS, STEPS - 13, STEPS, STEPS - 29], np.int32)
        arrays = {"mu": np.zeros((EPISODES, STEPS, Z), np.float32), "logvar": np.zeros((EPISODES, STEPS, Z), np.float32),
                  "actions": np.zeros((EPISODES, STEPS, 3), np.float32), "rewards": np.zeros((EPISODES, STEPS), np.float32),
                  "terminated": np.zeros((EPISODES, STEPS), bool)}
        for e, length in enumerate(lengths):
            arrays["mu"][e, :length] = rng.normal(size=(length, Z))
            arrays["logvar"][e, :length] = -2.0
            arrays["actions"][e, :length] = rng.uniform(-1, 1, size=(length, 3))
            arrays["rewards"][e, :length] = 2.5
            arrays["terminated"][e, length - 1] = e % 2 == 1
        path = folder / f"shard-{s:04d}.zarr"
        write_store(path, "latents", arrays, lengths, {"source": "synthetic", "vae": {"path": "none", "sha256": "0"},
                                                       "z_dim": Z, "seeds": list(range(EPISODES))})
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    """An untrained V and an untrained M with both heads, as checkpoints."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_torch(folder / "vae.pt", {"kind": "vae", "z_dim": Z, "state_dict": ConvVAE(Z).state_dict()})
    mdn = MDNRNN(Z, reward_head=True, done_head=True)
    with torch.no_grad():
        mdn.done_head.bias.fill_(-4.0)  # an untrained head would end every dream at once
    save_torch(folder / "mdn.pt", {"kind": "mdn", "z_dim": Z, "hidden": 256, "gaussians": 5, "reward_head": True,
                                   "done_head": True, "state_dict": mdn.state_dict()})
    return folder / "vae.pt", folder / "mdn.pt"


def test_zero_weights_leave_m_and_its_loss_as_they_were(latents):
    """Without heads M has the paper's parameters, and with them the mixture's loss is unchanged:
    the heads' batches hold the same windows and the loss only adds weight x each head's loss."""
    plain, heads = MDNRNN(Z), MDNRNN(Z, reward_head=True, done_head=True)
    assert set(plain.state_dict()) == {k for k in heads.state_dict() if not k.startswith(("reward_head", "done_head"))}
    heads.load_state_dict(plain.state_dict(), strict=False)
    stores = open_stores(latents, "latents")
    windows = sequence_windows(stores, 20)
    old = next(sequence_batches(stores, windows, 20, 4, np.random.default_rng(1)))
    new = next(outcome_batches(stores, windows, 20, 4, np.random.default_rng(1)))
    for key in ("mu", "logvar", "mask"):
        assert np.array_equal(old[key], new[key])
    reference, _, _ = batch_loss(plain, old, CPU, torch.Generator().manual_seed(3))
    with_heads, _, _ = batch_loss(heads, new, CPU, torch.Generator().manual_seed(3), (0.0, 0.0))
    assert torch.equal(reference, with_heads)
    stats = {}
    weighted, _, _ = batch_loss(heads, new, CPU, torch.Generator().manual_seed(3), (2.0, 3.0), stats)
    assert stats["nll"] == pytest.approx(reference.item(), rel=1e-6)
    assert weighted.item() > reference.item()
    # The heads' targets reach an episode's last step (its termination), one step past the next z.
    assert new["head_mask"].sum() >= new["mask"].sum()


def test_head_losses_and_a_head_that_learns_a_constant_reward():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    reward_loss, done_loss = head_losses(torch.tensor([[1.0, 2.0, -5.0, 99.0]]), torch.tensor([[0.0, 0.0, 0.0, 50.0]]),
                                         torch.tensor([[1.0, 4.0, -100.0, 0.0]]), torch.tensor([[0.0, 0.0, 1.0, 0.0]]),
                                         mask)
    # (0 + 4) / 2: neither the masked step nor the ending one (its -100 is the done head's) counts.
    assert reward_loss.item() == pytest.approx(2.0)
    assert done_loss.item() == pytest.approx(np.log(2))  # p = 0.5 on the 3 valid steps
    assert head_losses(None, None, *(torch.zeros(1, 4),) * 2, mask) == (0, 0)
    torch.manual_seed(0)
    mdn = MDNRNN(4, hidden=16, gaussians=2, reward_head=True)
    optimizer = torch.optim.Adam(mdn.parameters(), lr=0.05)
    z, actions = torch.randn(8, 10, 4), torch.rand(8, 10, 3)
    for _ in range(100):
        out, _ = mdn.lstm(torch.cat([z, actions], -1))
        loss, _ = head_losses(mdn.outcomes(out)[0], None, torch.full((8, 10), 2.5), None, torch.ones(8, 10))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01  # from 6.25 (2.5 squared) at the start


def test_train_mdn_with_heads_reports_them_against_baselines(latents, tmp_path):
    out = tmp_path / "mdn"
    wm("train-mdn", "--config", REPO / "config.yaml", "--override",
       json.dumps({"mdn": {"seq_len": 20, "batch_size": 4, "epochs": 1, "reward_weight": 1.0, "done_weight": 1.0},
                   "tensorboard": False, "torch_threads": 1}), "--latents", *latents, "--out", out)
    with open(out / "metrics.csv") as f:
        row = next(csv.DictReader(f))
    for column in ("reward_mse", "reward_baseline_mse", "done_bce", "done_baseline_bce", "done_recall",
                   "train_reward_mse", "train_done_bce"):
        assert column in row and row[column] != "", column
    assert float(row["reward_baseline_mse"]) == pytest.approx(0.0, abs=1e-9)  # the reward is constant
    mdn = load_mdn(out / "model.pt")
    assert mdn.reward_head is not None and mdn.done_head is not None
    # M from before the heads existed loads, without them.
    old = load_mdn(REPO / "docs" / "results" / "budget" / "mdn.pt")
    assert old.reward_head is None and old.done_head is None


def dream_returns(env, seeds, params, steps=40):
    episodes = [Episode(p, t, n) for p, (t, n) in zip(params, seeds)]
    return run_dream_batch(env, get_env("car_racing"), "z_h", episodes, steps)


def test_the_dream_is_deterministic_under_its_seeds(models, latents):
    mdn = load_mdn(models[1])
    env = DreamEnv(mdn, first_frames(latents), temperature=1.15)
    params = np.random.default_rng(0).normal(scale=0.3, size=(6, 867))
    seeds = [(1, 2), (1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]
    first = dream_returns(env, seeds, params)
    again = dream_returns(env, seeds, params)
    assert [r.total_return for r in first] == [r.total_return for r in again]
    assert [r.steps for r in first] == [r.steps for r in again]
    other = dream_returns(env, [(s + 100, n) for s, n in seeds], params)
    assert [r.total_return for r in other] != [r.total_return for r in first]
    # An episode's dream depends on its seeds, not on its batch (up to the batched products' rounding).
    alone = dream_returns(env, seeds[2:3], params[2:3])
    assert alone[0].total_return == pytest.approx(first[2].total_return, rel=1e-4)
    # Common random numbers: one controller on one seed pair, twice in a batch, drives the same dream.
    assert dream_returns(env, seeds[:2], params[[0, 0]])[0].total_return == pytest.approx(
        dream_returns(env, seeds[:2], params[[0, 0]])[1].total_return, rel=1e-5)
    with pytest.raises(ValueError, match="reward head"):
        DreamEnv(MDNRNN(Z), first_frames(latents), 1.0)


def log_rows(folder):
    with open(folder / "log.csv") as f:
        return list(csv.DictReader(f))


DREAM = {"controller": {"environment": "dream", "dream_batch": 8, "dream_max_steps": 25, "eval_every": 1,
                            "eval_episodes": 2, "max_steps": 20, "generations": 2}, "tensorboard": False}


def train_in_dream(models, latents, out, generations):
    override = json.loads(json.dumps(DREAM))
    override["controller"]["generations"] = generations
    return wm("train-controller", "--config", REPO / "config.yaml", "--config", REPO / "tests/configs/tiny.yaml",
              "--override", json.dumps(override), "--variant", "z_h", "--vae", models[0], "--mdn", models[1],
              "--latents", *latents, "--out", out)


@pytest.fixture(scope="module")
def dream_run(models, latents, tmp_path_factory):
    """Two generations of CMA-ES in the dream on the tiny config, held-out scores on real tracks."""
    out = tmp_path_factory.mktemp("dream_run")
    result = train_in_dream(models, latents, out, 2)
    assert "in M's dream" in result.stdout
    return out


def test_cma_es_in_the_dream_runs_resumes_and_scores_on_real_tracks(models, latents, dream_run, tmp_path):
    vae, mdn = models
    whole = dream_run
    rows = log_rows(whole)
    assert len(rows) == 2 and all(np.isfinite(float(r["heldout_mean"])) for r in rows)
    # The held-out score is real: 2 episodes of at most 20 steps (controller.max_steps) in env.id.
    checkpoint = read_checkpoint(whole / "checkpoint.pkl")
    assert checkpoint["fingerprint"]["controller.environment"] == "dream"
    assert "dream_starts" in checkpoint["fingerprint"]
    assert (whole / "controller.pt").exists()
    # Stopped after one generation and resumed by raising generations: the same run.
    part = tmp_path / "part"
    train_in_dream(models, latents, part, 1)
    resumed = train_in_dream(models, latents, part, 2)
    assert "resuming" in resumed.stdout
    fitness = ["generation", "best", "mean", "worst", "sigma", "heldout_mean", "frames"]
    assert [{k: r[k] for k in fitness} for r in log_rows(part)] == [{k: r[k] for k in fitness} for r in rows]
    # Without --latents a dream run says what it needs, before any work.
    config = load_config([REPO / "config.yaml", REPO / "tests/configs/tiny.yaml"], json.dumps(DREAM))
    with pytest.raises(ValueError, match="--latents"):
        train_controller(config, "z_h", vae, mdn, tmp_path / "none")


def test_wm_dream_shows_a_controller_driving_in_the_dream(models, dream_run, tmp_path):
    from wm.stages.dream import dream

    frames = np.random.default_rng(0).integers(0, 255, size=(1, 12, 64, 64, 3), dtype=np.uint8)
    shard = tmp_path / "shard.zarr"
    write_store(shard, "rollouts", {"frames": frames, "actions": np.zeros((1, 12, 3), np.float32),
                                    "rewards": np.zeros((1, 12), np.float32), "terminated": np.zeros((1, 12), bool)},
                np.array([12], np.int32), {"env_id": "wm/CarRacing-v3", "seeds": [0], "policy": {}, "versions": {},
                                           "max_steps": 12})
    config = load_config([REPO / "config.yaml"])
    summary = dream(config, models[0], models[1], shard, tmp_path / "dream.gif", steps=8,
                    controller=dream_run / "controller.pt")
    assert summary["temperature"] == config["controller"]["dream_temperature"] and 1 <= summary["steps"] <= 8
    assert np.isfinite(summary["dream_return"]) and (tmp_path / "dream.gif").stat().st_size > 0

