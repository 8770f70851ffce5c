"""The one resume rule of V, M and C.

A training stage saves its whole state (weights or the CMA-ES optimizer, random streams, metrics)
after every epoch or generation, with a fingerprint: every setting that changes the result, as
flat dotted keys (`controller.max_steps`, `vae.learning_rate`, ...), the content digests of its
inputs (data, V, M, a warm start), and the thread count and device where they change rounding.
The same command resumes from that state, and an uninterrupted run and a resumed one end equal.

- A state saved with another fingerprint is never reused: the stage stops with one line naming
  each differing key, before any work (delete the checkpoint to start over).
- Only the keys in MAY_DIFFER may change between runs. Raising the length of a run (`vae.epochs`,
  `mdn.epochs`, `controller.generations`) extends a finished run; asking for fewer than were done
  is refused. The others change neither the trained result nor its bits.
- The checkpoint stays after the stage finishes, so that a finished run can be extended, and a
  rerun of the finished command writes the same outputs again without training.
- Keys added to a stage after checkpoints of it existed (LATER_KEYS) are fingerprinted only when
  they differ from the value that reproduces the earlier behaviour: a checkpoint saved before the
  key existed has no entry for it, and the code did then what the key's default does now, so the
  two must match. A non-default value is fingerprinted as any key is, so a run with it neither
  resumes an older checkpoint nor is resumed by a run at the default. (Without this rule every
  new knob would refuse every existing checkpoint with "(unset) -> default".) A key may only be
  added to LATER_KEYS with the value that gives, bit for bit, what the code did before it existed;
  and that value must stay the key's default in the schema.
- The CPU code path that decided the rounding (wm.runtime.numerics_signature) is saved too; a
  resume on another kind of CPU is allowed and says that the rest of the run will round differently.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from wm.runtime import numerics_signature, signature_differences

# Settings that may differ on resume, per stage; every other key of the stage's section is
# fingerprinted. (ranks only changes how the work is spread: chunks and their results stay equal.)
MAY_DIFFER = {
    "vae": {"epochs", "guard_frames", "guard_max_ratio"},
    "mdn": {"epochs", "temperature", "dream_start", "dream_steps"},
    "controller": {"generations", "ranks", "worker_timeout", "variants"},
}
# Keys added after checkpoints existed, with the value that reproduces the code before them: left out
# of the fingerprint at that value (the rule above). Issue 15 (learning inside M's dream) added them.
LATER_KEYS = {
    "collect": {"param_noise": 0.1, "round": 1},  # param_noise: read by collect.policy agent only
    "vae": {},
    "mdn": {"reward_weight": 0.0, "done_weight": 0.0, "init": "random"},
    "controller": {"environment": "real", "dream_temperature": 1.15, "dream_max_steps": 1000,
                   "dream_batch": 1024, "dream_done_threshold": 0.5,
                   "bias": True},  # bias: environment plug-ins (Doom's C has none)
    "evaluate": {"final_episodes": 200},  # issue 30: the final set's size (wm evaluate --tracks final)
}
# Top-level keys (outside the stages' sections) added later, likewise: recorded only off these values.
LATER_TOP_KEYS = {
    "encoder_dtype": "float32",  # V's encoder as the agent drives (collect by agent, C, evaluation)
    "train_dtype": "auto",  # V's and M's training steps
}
# env.name came with environment plug-ins; every run before was CarRacing's.
EARLIER_ENV = "car_racing"


def env_record(config: dict) -> dict:
    """{"env": env.name} for a checkpoint, store, fingerprint or rule params, left out for CarRacing (as
    LATER_KEYS are at their earlier value), so that everything made before env.name existed still matches."""
    name = config["env"]["name"]
    return {} if name == EARLIER_ENV else {"env": name}


# The key that says how long a stage runs: raising it extends a finished run.
LENGTH = {"vae": "epochs", "mdn": "epochs", "controller": "generations"}


class ResumeError(ValueError):
    """A checkpoint that must not be resumed with these settings; the message names the keys."""


def fingerprint(config: dict, stage: str, **extra) -> dict:
    """Every result-changing setting of `stage` as flat dotted keys, the run seed, and `extra`
    (input digests, env id, threads, device: whatever else the stage's result depends on)."""
    keys = {f"{stage}.{key}": value for key, value in sorted(recorded_settings(config[stage], stage).items())
            if key not in MAY_DIFFER[stage]}
    return {**keys, "seed": config["seed"], **extra}


def recorded_settings(settings: dict, stage: str | None = None) -> dict:
    """`settings` (a stage's config section, or some top-level keys when `stage` is None) without the
    keys added later that hold the value reproducing the code before them (LATER_KEYS[stage],
    LATER_TOP_KEYS): what fingerprints, shard metadata and Snakemake rule params record, so that
    checkpoints, shards and outputs made before a key existed still match at its default."""
    earlier = LATER_KEYS.get(stage, {}) if stage else LATER_TOP_KEYS
    return {key: value for key, value in settings.items() if not (key in earlier and value == earlier[key])}


def stores_digest(stores) -> str:
    """A short content hash of Zarr stores, from their per-episode CRC32s and lengths (which the
    readers check against the data), without reading the data again."""
    digest = hashlib.sha256()
    for store in stores:
        digest.update(json.dumps([store.kind, store.lengths.tolist(), store.attrs["checksums"]]).encode())
    return digest.hexdigest()[:16]


def differences(saved: dict, expected: dict) -> list[str]:
    return [f"{key} {saved.get(key, '(unset)')!r} -> {expected.get(key, '(unset)')!r}"
            for key in sorted(set(saved) | set(expected)) if saved.get(key) != expected.get(key)]


def load_resumable(path: Path, expected: dict, read: Callable[[Path], dict]) -> dict | None:
    """The state saved at `path` if it was saved with `expected`'s fingerprint, None if there is
    none; anything else stops the stage with one line (ResumeError)."""
    if not path.exists():
        return None
    try:
        state = read(path)
        saved = state["fingerprint"]
    except Exception as exc:  # a damaged or foreign file: torch and pickle raise many types
        raise ResumeError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc}); "
                          "delete it to start over") from None
    if changed := differences(saved, expected):
        raise ResumeError(f"{path}: saved by a run with other settings ({'; '.join(changed)}); refusing to "
                          "reuse it: delete it to start over, or rerun with the settings it was saved with")
    if moved := signature_differences(state.get("numerics", {}), numerics_signature()):
        print(f"{path}: resuming on another CPU code path ({'; '.join(moved)}): from here on the run rounds "
              "differently from an uninterrupted one (docs/numerics.md)", flush=True)
    return state


def check_length(path: Path, done: int, config: dict, stage: str) -> None:
    """Refuse a checkpoint that is further along than the run asks for."""
    wanted = config[stage][LENGTH[stage]]
    if done > wanted:
        raise ResumeError(f"{path}: holds {done} {LENGTH[stage]}, more than {stage}.{LENGTH[stage]} = {wanted}; "
                          f"raise {stage}.{LENGTH[stage]} to at least {done}, or delete it to start over")
