"""The one seed scheme: every random stream of a run is derived from (run seed, purpose, indices)
with numpy's SeedSequence, so shards, generations and rollouts are independent and reproducible."""

from __future__ import annotations

import numpy as np

# Each purpose is a fixed prefix of the SeedSequence's entropy words, so streams of different
# purposes never coincide. The three rollout-noise streams share purpose word 8 and differ by a
# second word (10**9, 2 * 10**9): that is how the committed results were seeded, so it stays.
PURPOSES: dict[str, tuple[int, ...]] = {
    "collect": (1,),            # (shard, episode[, 1]): track seed and policy noise of a collected episode
    "vae": (2,),                # ([1]): initial weights and shuffling of V's training; [1]: the guard's sample
    "mdn": (3,),                # ([1]): same for M; [1]: its z resampling
    "cma": (4,),                # (variant index,): pycma's own seed
    "train_track": (5,),        # (generation, rollout): tracks that one generation's candidates share
    "heldout_track": (6,),      # (episode,): the fixed tracks of the periodic held-out score
    "evaluate_track": (7,),     # (episode,): the final evaluation's tracks
    "train_noise": (8,),        # (generation, rollout): z sampling inside a training rollout
    "heldout_noise": (8, 10**9),      # (episode,): z sampling in the periodic held-out score
    "evaluate_noise": (8, 2 * 10**9),  # (episode,): z sampling in the final evaluation
    "dream": (9,),              # (): M's sampling in `wm dream`
    "collect_agent": (10,),     # (shard, episode[, 1]): as collect, for collect.policy agent (iterative training)
    "numerics_redraw": (11,),   # (redraw, episode): z sampling in analysis/numerics_spread.py's redraws
    # The final set (wm evaluate --tracks final): fixed on 2026-12-05 before any further training, scored once
    # per shipped controller; no training, held-out curve, selection or earlier evaluation drew from it.
    "final_track": (12,),       # (episode,): the final set's tracks
    "final_noise": (13,),       # (episode,): z sampling in the final set's episodes
}

# The named sets of held-out tracks `wm evaluate --tracks` scores on: (track purpose, noise purpose, and
# the evaluate key that counts them). "evaluation" has scored every controller since the budget run and
# informed choices between rounds; "final" is scored once per shipped controller, fixed before it is scored.
TRACK_SETS: dict[str, tuple[str, str, str]] = {
    "evaluation": ("evaluate_track", "evaluate_noise", "episodes"),
    "final": ("final_track", "final_noise", "final_episodes"),
}


def derive_seed(run_seed: int, purpose: str, *indices: int) -> int:
    """A 63-bit seed for one purpose and index tuple."""
    words = np.random.SeedSequence([run_seed, *PURPOSES[purpose], *indices]).generate_state(2, dtype=np.uint32)
    return int(words[0]) << 31 | int(words[1]) >> 1


def rng(run_seed: int, purpose: str, *indices: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(run_seed, purpose, *indices))


def seeds(run_seed: int, purpose: str, count: int, *prefix: int) -> list[int]:
    """derive_seed(run_seed, purpose, *prefix, k) for k in range(count)."""
    return [derive_seed(run_seed, purpose, *prefix, k) for k in range(count)]
