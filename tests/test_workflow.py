"""The whole workflow through the real snakemake on the tiny config: every output exists and parses."""

import csv
import json

import numpy as np
from PIL import Image

from conftest import BIN, REPO, TINY, run, wm
from wm.mdn.model import load_mdn
from wm.rollouts.storage import open_store
from wm.vae.model import load_vae


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def is_png(path):
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 100


def test_every_stage_writes_whole_outputs(tiny_run):
    shards = sorted((tiny_run / "data").glob("shard-*.zarr"))
    assert [s.name for s in shards] == ["shard-0000.zarr", "shard-0001.zarr"]
    assert wm("data", "check", tiny_run / "data").returncode == 0
    assert wm("data", "check", "--kind", "latents", tiny_run / "latents").returncode == 0
    latents = open_store(tiny_run / "latents" / "shard-0000.zarr", "latents")
    assert latents.episode(0)["mu"].shape == (latents.lengths[0], 32)

    assert load_vae(tiny_run / "vae" / "model.pt").z_dim == 32
    summary = json.loads((tiny_run / "vae" / "summary.json").read_text())
    assert {"vae_error", "mean_frame_error", "ratio", "passed"} <= summary["collapse_guard"].keys()
    assert float(read_csv(tiny_run / "vae" / "metrics.csv")[-1]["loss"]) > 0
    assert is_png(tiny_run / "vae" / "reconstructions.png")

    assert load_mdn(tiny_run / "mdn" / "model.pt").hidden == 256
    mdn_rows = read_csv(tiny_run / "mdn" / "metrics.csv")
    assert len(mdn_rows) == 1 and np.isfinite(float(mdn_rows[0]["train_loss"]))
    assert is_png(tiny_run / "mdn" / "loss.png")
    with Image.open(tiny_run / "mdn" / "dream.gif") as dream:
        assert dream.n_frames == 21  # the real start frame and 20 dreamed steps, beside the real ones

    log = read_csv(tiny_run / "controller" / "z_h" / "log.csv")
    assert [int(r["generation"]) for r in log] == [1, 2]
    assert all(float(r["worst"]) <= float(r["mean"]) <= float(r["best"]) for r in log)
    assert all(np.isfinite(float(r["heldout_mean"])) for r in log)  # eval_every: 1 in the tiny config
    assert is_png(tiny_run / "controller" / "z_h" / "curve.png")

    result = json.loads((tiny_run / "eval" / "z_h" / "returns.json").read_text())
    assert result["episodes"] == len(result["returns"]) == len(result["track_seeds"]) == 2
    assert result["mean"] == np.mean(result["returns"]) and result["versions"]["gymnasium"] == "1.4.0"
    assert set(result["action_mean"]) == {"steer", "gas", "brake"} and 0 <= result["action_mean"]["gas"] <= 1
    assert is_png(tiny_run / "eval" / "z_h" / "histogram.png")
    with Image.open(tiny_run / "eval" / "z_h" / "episode.gif") as gif:
        assert gif.n_frames > 5


def test_report_holds_the_figures(tiny_run):
    html = (tiny_run / "report.html").read_text(errors="replace")
    for name in ("reconstructions.png", "loss.png", "dream.gif", "curve.png", "histogram.png"):
        assert name in html


def test_rerun_has_nothing_to_do(tiny_run):
    result = run([str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", str(TINY),
                  "--config", f"run_dir={tiny_run}", "--dry-run"])
    assert "Nothing to be done" in result.stdout + result.stderr


def test_lint_is_clean():
    result = run([str(BIN / "snakemake"), "--lint"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_inputs_get_one_clear_line(tiny_run, tmp_path):
    import torch

    from conftest import tiny_args
    from wm.files import save_torch

    wrong = tmp_path / "controller.pt"
    save_torch(wrong, {"kind": "controller", "variant": "z_h", "params": torch.zeros(99), "config": {"z_sample": True}})
    result = wm("evaluate", *tiny_args(), "--vae", tiny_run / "vae" / "model.pt", "--mdn", tiny_run / "mdn" / "model.pt",
                "--controller", wrong, "--out", tmp_path / "eval", check=False)
    assert result.returncode == 2
    assert f"{wrong}: controller has 99 parameters, but a 'z_h' controller on this V and M needs 867" in result.stderr
    foreign = tmp_path / "foreign.pt"
    save_torch(foreign, {"kind": "controller", "variant": "z_h", "params": torch.zeros(867)})
    result = wm("evaluate", *tiny_args(), "--vae", tiny_run / "vae" / "model.pt", "--mdn", tiny_run / "mdn" / "model.pt",
                "--controller", foreign, "--out", tmp_path / "eval", check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"wm evaluate: error: {foreign}: a controller checkpoint without 'config' (not written by wm, or damaged)"], result.stderr
    missing = wm("train-vae", *tiny_args(), "--data", tmp_path / "shard-0009.zarr", "--out", tmp_path / "vae",
                 check=False)
    assert missing.returncode == 2 and "shard-0009.zarr: store not found" in missing.stderr
    swapped = wm("train-mdn", *tiny_args(), "--latents", tiny_run / "data" / "shard-0000.zarr",
                 "--out", tmp_path / "mdn", check=False)
    assert swapped.returncode == 2 and "expected a 'latents' store, found kind 'rollouts'" in swapped.stderr


def test_export_writes_small_models_that_load(tiny_run, tmp_path):
    import torch

    from wm.vae.model import to_input

    wm("export", "--vae", tiny_run / "vae" / "model.pt", "--mdn", tiny_run / "mdn" / "model.pt",
       "--controller", tiny_run / "controller" / "z_h" / "controller.pt", "--out", tmp_path)
    assert (tmp_path / "vae.pt").stat().st_size < 10e6 < (tiny_run / "vae" / "model.pt").stat().st_size
    assert (tmp_path / "controller_z_h.pt").exists() and (tmp_path / "mdn.pt").exists()
    x = to_input(torch.randint(0, 255, (4, 64, 64, 3), dtype=torch.uint8))
    full, half = load_vae(tiny_run / "vae" / "model.pt"), load_vae(tmp_path / "vae.pt")
    assert torch.allclose(full.encode(x)[0], half.encode(x)[0], atol=0.05)
