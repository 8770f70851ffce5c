"""The one seed scheme: every random stream of a run is derived from (run seed, purpose, indices)
with numpy's SeedSequence, so shards, generations and rollouts are independent and reproducible."""

from __future__ import annotations

import numpy as np

# One number per purpose, so streams of different stages never coincide.
PURPOSES = {
    "collect": 1,        # (shard, episode): track seed and policy noise of a collected episode
    "vae": 2,            # (): initial weights, shuffling and sampling of V's training
    "mdn": 3,            # (): same for M
    "cma": 4,            # (variant,): pycma's own seed
    "train_track": 5,    # (generation, rollout): tracks that one generation's candidates share
    "heldout_track": 6,  # (episode,): the fixed tracks of the periodic held-out score
    "evaluate_track": 7,  # (episode,): the final evaluation's tracks
    "rollout_noise": 8,  # (generation, rollout) or (episode,): z sampling inside a rollout
    "dream": 9,
}


def derive_seed(run_seed: int, purpose: str, *indices: int) -> int:
    """A 63-bit seed for one purpose and index tuple."""
    words = np.random.SeedSequence([run_seed, PURPOSES[purpose], *indices]).generate_state(2, dtype=np.uint32)
    return int(words[0]) << 31 | int(words[1]) >> 1


def rng(run_seed: int, purpose: str, *indices: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(run_seed, purpose, *indices))
