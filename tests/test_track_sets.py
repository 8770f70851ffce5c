"""The named sets of held-out tracks (`wm evaluate --tracks`): the final set is its own stream, apart from every
track and noise stream that training, the held-out curve, selection and the evaluation set draw from, and the
committed final-set scores were made on it."""

import json

import pytest

from conftest import REPO
from wm.config import load_config
from wm.stages.evaluate import evaluation_seeds
from wm.seeding import TRACK_SETS, seeds


def test_the_final_set_shares_no_seed_with_any_other_stream():
    config = load_config([REPO / "config.yaml", REPO / "presets" / "budget.yaml"])
    tracks, noises = evaluation_seeds(config, "final")
    assert len(tracks) == len(noises) == config["evaluate"]["final_episodes"] == 200
    assert len(set(tracks)) == 200
    others = set(seeds(0, "evaluate_track", 1000)) | set(seeds(0, "heldout_track", 1024))
    others |= {s for g in range(200) for s in seeds(0, "train_track", 64, g)}
    others |= set(seeds(0, "evaluate_noise", 1000)) | set(seeds(0, "heldout_noise", 1024))
    assert not (set(tracks) | set(noises)) & others
    assert evaluation_seeds(config, "evaluation")[0] == seeds(0, "evaluate_track", 100)


def test_an_unknown_set_is_refused_in_one_line():
    config = load_config([REPO / "config.yaml"])
    with pytest.raises(ValueError, match="--tracks 'test': the track sets are evaluation, final"):
        evaluation_seeds(config, "test")
    assert list(TRACK_SETS) == ["evaluation", "final"]


@pytest.mark.parametrize("variant", ["z_h", "z"])
def test_the_committed_final_scores_ran_on_the_final_set(variant):
    record = json.loads((REPO / "docs/results/solve/eval_final" / variant / "returns.json").read_text())
    config = load_config([REPO / "config.yaml", REPO / "presets" / "budget.yaml"])
    assert record["track_set"] == "final" and record["episodes"] == 200
    assert record["track_seeds"] == evaluation_seeds(config, "final")[0]
    assert record["controller_training"]["environment"] == "real"
