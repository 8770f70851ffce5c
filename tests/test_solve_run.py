"""The solve run (issue 13, docs/results.md) is made in pieces across sessions, and the next piece may
start on a fresh machine with only what is committed. Each stage's committed CMA-ES checkpoint must
still match the fingerprint that stage's own command computes from committed files (the config files,
V, M and the warm start, by content), so that the same command resumes it instead of refusing or
starting over. Computed without running a generation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import REPO
from wm.config import load_config
from wm.stages.train_controller import run_latents, saved_state
from wm.resume import differences

BASE = ["config.yaml", "presets/budget.yaml", "presets/solve.yaml"]
# stage: (its extra preset, V, M, its output folder, the variant), as in docs/results.md's commands
STAGES = {
    "stage 1": (None, "docs/results/budget/vae.pt", "docs/results/budget/mdn.pt", "runs/solve/controller/z_h",
                "z_h"),
    "z only": ("presets/solve-z.yaml", "docs/results/budget/vae.pt", "docs/results/budget/mdn.pt",
               "runs/solve/controller/z", "z"),
    "round 1": ("presets/solve-round1.yaml", "docs/results/budget/vae.pt", "runs/solve/round-1/mdn/model.pt",
                "runs/solve/round-1/controller/z_h", "z_h"),
    "round 2": ("presets/solve-round2.yaml", "docs/results/budget/vae.pt", "runs/solve/round-2/mdn/model.pt",
                "runs/solve/round-2/controller/z_h", "z_h"),
    "round 3": ("presets/solve-round3.yaml", "docs/results/budget/vae.pt", "runs/solve/round-3/mdn/model.pt",
                "runs/solve/round-3/controller/z_h", "z_h"),
    "round 4": ("presets/solve-round4.yaml", "docs/results/budget/vae.pt", "runs/solve/round-4/mdn/model.pt",
                "runs/solve/round-4/controller/z_h", "z_h"),
}


@pytest.fixture(autouse=True)
def restore_threads():
    """run_latents sets the run's thread count (one per rank), which the fingerprint records."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("stage", STAGES)
def test_each_committed_solve_checkpoint_resumes_with_its_own_command(stage, monkeypatch):
    preset, vae, mdn, out, variant = STAGES[stage]
    if not (REPO / out / "checkpoint.pkl").exists():
        pytest.skip(f"no {stage} checkpoint in this checkout")
    monkeypatch.chdir(REPO)  # controller.init and the model paths are relative to the repository
    config = load_config([REPO / f for f in BASE + ([preset] if preset else [])])
    # What train-controller and export-controller do before their first generation: the same resume check.
    _, expected, saved = saved_state(config, variant, Path(vae), Path(mdn), Path(out), run_latents(config, None))
    assert differences(saved["fingerprint"], expected) == []
    assert 0 < saved["generation"] <= config["controller"]["generations"]
