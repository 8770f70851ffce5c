"""DoomTakeCover (wm/envs/doom/) with the real vizdoom: preprocessing against independent computations,
collection's determinism and its dropped short episodes, the paper's parameter counts, the done head's
loss, and the one-line refusals of one environment's store, V, M or C in the other's run. (The tiny Doom
workflow end to end runs through the real Slurm: tests/test_slurm.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import zarr
from torch.nn import functional as F

from conftest import REPO, TINY, wm
from wm.controller.model import parameter_count
from wm.envs.doom import PLUGIN, make_env, preprocess, turn_button
from wm.mdn.model import MDNRNN, head_losses
from wm.rollouts.storage import open_store
from wm.vae.model import ConvVAE

TINY_DOOM = REPO / "tests" / "configs" / "tiny-doom.yaml"


def doom_args(run_dir=None, override: dict | None = None) -> list[str]:
    args = ["--config", str(REPO / "config.yaml"), "--config", str(TINY), "--config", str(TINY_DOOM)]
    override = {**({"run_dir": str(run_dir)} if run_dir else {}), **(override or {})}
    return args + (["--override", json.dumps(override)] if override else [])


def screens(seed: int, steps: int, **kwargs) -> np.ndarray:
    """The screens of one episode under a fixed sequence of random turns."""
    env = make_env(**kwargs)
    observation, _ = env.reset(seed=seed)
    out, rng = [observation], np.random.default_rng(1)
    for _ in range(steps):
        observation, *_ = env.step(np.array([rng.uniform(-1, 1)]))
        out.append(observation)
    env.close()
    return np.stack(out)


def test_preprocessing_is_the_originals_crop_resize_and_inversion():
    """The top 400/480 of the rows (200 of VizdoomTakeCover-v1's 240), 64 x 64, colours inverted: against
    torch's antialiased bilinear resize of the same crop (a separate implementation of PIL's filter), and
    against the same scene rendered at the original's 640 x 480 and cropped at its 400 rows. Measured on
    2026-12-06: mean absolute difference 0.10 (max 1) against torch, 1.62 against 640 x 480, where
    skipping the crop costs 6.6."""
    small = screens(seed=7, steps=60)
    assert small.shape[1:] == (240, 320, 3)
    ours = np.stack([preprocess(s) for s in small]).astype(int)
    crop = torch.from_numpy(small[:, :200].astype(np.float32)).permute(0, 3, 1, 2)
    resized = F.interpolate(crop, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    independent = 255 - resized.round().clamp(0, 255).permute(0, 2, 3, 1).numpy().astype(int)
    assert np.abs(ours - independent).max() <= 1 and np.abs(ours - independent).mean() < 0.3

    import vizdoom

    large = screens(seed=7, steps=60, screen_resolution=vizdoom.ScreenResolution.RES_640X480)
    assert large.shape[1:] == (480, 640, 3)
    at_paper_resolution = np.stack([preprocess(s) for s in large]).astype(int)
    assert np.abs(ours - at_paper_resolution).mean() < 3.0
    uncropped = np.stack([255 - np.array(__import__("PIL.Image").Image.fromarray(s).resize((64, 64), 2))
                          for s in small]).astype(int)
    assert np.abs(ours - uncropped).mean() > 5.0  # the comparison above can tell a wrong crop


def test_turn_thresholds_are_the_originals():
    assert [turn_button(a) for a in (-1.0, -0.34, -0.33, 0.0, 0.33, 0.34, 1.0)] == [1, 1, 0, 0, 0, 2, 2]


def test_the_data_policy_holds_each_turn_for_1_to_10_steps_and_uniform_draws_every_step():
    def turns(name: str) -> np.ndarray:
        policy = PLUGIN.random_policies[name](np.random.default_rng(3), {})
        return np.array([policy(None)[0] for _ in range(2000)])

    held = turns("repeated_random")
    runs = np.diff(np.flatnonzero(np.diff(held) != 0))  # lengths of the holds between two changes
    assert runs.min() >= 1 and runs.max() <= 10 and 4.5 < runs.mean() < 6.5  # uniform 1-10: mean 5.5
    every = turns("uniform")
    assert np.all(np.diff(every) != 0) and -1 <= every.min() and every.max() <= 1
    # the game's three actions about equally often, as a uniform turn with thresholds at +-1/3 gives
    assert np.allclose(np.bincount([turn_button(a) for a in every], minlength=3) / len(every), 1 / 3, atol=0.04)


def test_the_same_shard_gives_the_same_bytes_and_short_episodes_are_dropped_and_listed(tmp_path):
    """Shard 17 of the budget run's seeds: its episode 1 dies at frame 95 and is redrawn (the original keeps
    episodes over 100 frames); the shard says so. Collected twice: the same arrays and metadata."""
    override = {"collect": {"shards": 100, "episodes_per_shard": 2, "max_steps": 2100}}
    for name in ("a", "b"):
        wm("collect", *doom_args(override=override), "--shard", "17", "--out", tmp_path / f"{name}.zarr")
    a, b = (zarr.open_group(str(tmp_path / f"{n}.zarr"), mode="r") for n in ("a", "b"))
    for array in a.array_keys():
        assert np.array_equal(a[array][...], b[array][...]), array
    attrs = {n: {k: v for k, v in g.attrs.items() if k != "versions"} for n, g in (("a", a), ("b", b))}
    assert attrs["a"] == attrs["b"]
    store = open_store(tmp_path / "a.zarr", "rollouts")
    assert store.env == "doom" and (store.lengths > PLUGIN.drop_episodes_up_to).all()
    assert [(d["episode"], d["frames"]) for d in store.attrs["dropped"]] == [(1, 95)]
    episode = store.episode(0)
    assert episode["actions"].shape[1] == 1 and (episode["rewards"] == 1).all() and episode["terminated"][-1]
    holds = np.diff(np.flatnonzero(np.diff(episode["actions"][:, 0]) != 0))
    assert holds.min() >= 1 and holds.max() <= 10  # each random turn held for 1-10 steps


def test_the_papers_parameter_counts():
    vae = ConvVAE(z_dim=64)
    assert sum(p.numel() for p in vae.parameters()) == 4_446_915  # the paper's Doom V
    assert parameter_count("z_c_h", 64, 512, 1, bias=False) == 1_088  # the paper's Doom C
    mdn = MDNRNN(64, 1, 512, 5, done_head=True)
    lstm = 4 * 512 * (64 + 1 + 512) + 2 * 4 * 512
    mixture = 512 * 64 * 5 * 3 + 64 * 5 * 3
    assert sum(p.numel() for p in mdn.parameters()) == lstm + mixture + 513


def test_the_done_heads_loss_is_binary_cross_entropy_over_valid_steps():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    ended = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the last step is padding
    _, done_loss = head_losses(None, logits, torch.zeros(1, 4), ended, mask)
    p = 1 / (1 + np.exp(-np.array([2.0, -1.0, 0.5])))
    expected = -(np.log(1 - p[0]) + np.log(1 - p[1]) + np.log(p[2])) / 3
    assert done_loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def doom_models(tmp_path_factory):
    """A tiny Doom run's store, V (z 64), latents, M (LSTM 512, done head), a dream-trained C, and a
    Doom V of z 32."""
    root = tmp_path_factory.mktemp("doom")
    shard = root / "data" / "shard-0000.zarr"
    wm("collect", *doom_args(root), "--shard", "0", "--out", shard)
    wm("train-vae", *doom_args(root), "--data", shard, "--out", root / "vae")
    wm("train-vae", *doom_args(root, {"vae": {"z_dim": 32}}), "--data", shard, "--out", root / "vae32")
    latents = root / "latents" / "shard-0000.zarr"
    wm("encode", *doom_args(root), "--vae", root / "vae" / "model.pt", "--shard", shard, "--out", latents)
    latents32 = root / "latents32" / "shard-0000.zarr"
    wm("encode", *doom_args(root, {"vae": {"z_dim": 32}}), "--vae", root / "vae32" / "model.pt", "--shard", shard,
       "--out", latents32)
    wm("train-mdn", *doom_args(root), "--latents", latents, "--out", root / "mdn")
    wm("train-controller", *doom_args(root), "--variant", "z_c_h", "--vae", root / "vae" / "model.pt",
       "--mdn", root / "mdn" / "model.pt", "--latents", latents, "--out", root / "controller")
    return root


def test_a_tiny_doom_m_learns_death_and_c_learns_in_the_dream(doom_models):
    rows = (doom_models / "mdn" / "metrics.csv").read_text().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    assert np.isfinite(float(last[header.index("train_done_bce")]))
    log = (doom_models / "controller" / "log.csv").read_text().splitlines()
    assert len(log) == 3  # 2 generations, scored in the dream: every dream step pays Doom's +1
    from wm.controller.model import load_controller

    controller = load_controller(doom_models / "controller" / "controller.pt", 64, 512, 1, "doom")
    assert controller.params.shape == (1_088,) and controller.training["environment"] == "dream"


def test_dream_starts_hold_the_first_frames_a_dream_needs(doom_models, tmp_path):
    """`wm dream-starts`: one-frame episodes whose first_frames() are the latents' own, so a dream-trained run
    started from the small store (committed) dreams exactly as one started from the full latents."""
    from wm.mdn.dream_env import first_frames

    latents = [doom_models / "latents" / "shard-0000.zarr"]
    wm("dream-starts", "--latents", *latents, "--out", tmp_path / "starts.zarr")
    starts = open_store(tmp_path / "starts.zarr", "latents")
    assert (starts.lengths == 1).all() and starts.env == "doom"
    for ours, theirs in zip(first_frames([tmp_path / "starts.zarr"]), first_frames(latents)):
        assert torch.equal(ours, theirs)


def test_the_dream_score_runs_the_evaluation_seeds_in_m(doom_models, tmp_path):
    """`wm evaluate --dream`: the controller's score inside M's dream (the paper's table has it beside the real
    one), on the evaluation seeds, to controller.dream_max_steps (60 in the tiny config) or M's done head."""
    args = ["--vae", doom_models / "vae" / "model.pt", "--mdn", doom_models / "mdn" / "model.pt",
            "--controller", doom_models / "controller" / "controller.pt",
            "--dream", doom_models / "latents" / "shard-0000.zarr"]
    for name in ("a", "b"):
        wm("evaluate", *doom_args(tmp_path), *args, "--out", tmp_path / name)
    a, b = (json.loads((tmp_path / n / "returns.json").read_text()) for n in ("a", "b"))
    assert a["returns"] == b["returns"] and len(a["returns"]) == 2  # the same seeds, the same dreams
    assert all(r == s <= 60 for r, s in zip(a["returns"], a["steps"])) and a["dream_temperature"] == 1.15


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def test_one_environments_store_is_refused_by_the_others_v(doom_models, tiny_run, tmp_path):
    doom_shard, car_shard = doom_models / "data" / "shard-0000.zarr", tiny_run / "data" / "shard-0000.zarr"
    car_args = ["--config", str(REPO / "config.yaml"), "--config", str(TINY)]
    line = one_line_error(wm("train-vae", *car_args, "--data", doom_shard, "--out", tmp_path / "v1", check=False))
    assert str(doom_shard) in line and "'doom'" in line and "'car_racing'" in line
    line = one_line_error(wm("train-vae", *doom_args(), "--data", car_shard, "--out", tmp_path / "v2", check=False))
    assert str(car_shard) in line and "'doom'" in line and "'car_racing'" in line
    line = one_line_error(wm("encode", *car_args, "--vae", tiny_run / "vae" / "model.pt", "--shard", doom_shard,
                             "--out", tmp_path / "l.zarr", check=False))
    assert str(doom_shard) in line and "'doom'" in line and "'car_racing'" in line
    assert not (tmp_path / "v1").exists() and not (tmp_path / "v2").exists() and not (tmp_path / "l.zarr").exists()


def test_a_v_of_z_32_is_refused_by_a_doom_m(doom_models, tmp_path):
    latents32 = doom_models / "latents32" / "shard-0000.zarr"
    line = one_line_error(wm("train-mdn", *doom_args(), "--latents", latents32, "--out", tmp_path / "m", check=False))
    assert str(latents32) in line and "32" in line and "64" in line
    line = one_line_error(wm("evaluate", *doom_args(tmp_path), "--vae", doom_models / "vae32" / "model.pt",
                             "--mdn", doom_models / "mdn" / "model.pt",
                             "--controller", doom_models / "controller" / "controller.pt",
                             "--out", tmp_path / "eval", check=False))
    assert "z_dim 32" in line and "z_dim 64" in line


def test_one_environments_controller_is_refused_in_the_others_evaluation(doom_models, tiny_run, tmp_path):
    car_args = ["--config", str(REPO / "config.yaml"), "--config", str(TINY)]
    doom_c, car_c = doom_models / "controller" / "controller.pt", tiny_run / "controller" / "z_h" / "controller.pt"
    line = one_line_error(wm("evaluate", *car_args, "--vae", tiny_run / "vae" / "model.pt", "--mdn",
                             tiny_run / "mdn" / "model.pt", "--controller", doom_c, "--out", tmp_path / "e1",
                             check=False))
    assert str(doom_c) in line and "'doom'" in line and "'car_racing'" in line
    line = one_line_error(wm("evaluate", *doom_args(tmp_path), "--vae", doom_models / "vae" / "model.pt", "--mdn",
                             doom_models / "mdn" / "model.pt", "--controller", car_c, "--out", tmp_path / "e2",
                             check=False))
    assert str(car_c) in line and "'doom'" in line and "'car_racing'" in line
    line = one_line_error(wm("evaluate", *doom_args(tmp_path), "--vae", tiny_run / "vae" / "model.pt", "--mdn",
                             tiny_run / "mdn" / "model.pt", "--controller", doom_c, "--out", tmp_path / "e3",
                             check=False))
    assert "'doom'" in line and "'car_racing'" in line


def test_the_random_policy_is_scored_on_the_evaluation_episodes(tmp_path):
    """`wm evaluate-random`: the baseline beside the agent, on the same held-out seeds (+1 a step alive)."""
    wm("evaluate-random", *doom_args(tmp_path), "--out", tmp_path / "random")
    result = json.loads((tmp_path / "random" / "returns.json").read_text())
    assert result["variant"] == "random:repeated_random" and result["env_id"] == "VizdoomTakeCover-v1"
    assert result["returns"] == [float(s) for s in result["steps"]] and len(result["returns"]) == 2
    from wm.stages.evaluate import evaluation_seeds
    from wm.config import load_config

    config = load_config([REPO / "config.yaml", TINY, TINY_DOOM])
    assert result["track_seeds"] == evaluation_seeds(config)[0]
    line = one_line_error(wm("evaluate-random", "--config", REPO / "config.yaml", "--config", TINY,
                             "--override", json.dumps({"collect": {"policy": "agent"}}), "--out", tmp_path / "x",
                             check=False))
    assert "collect.policy 'agent'" in line
