"""Readers that stream shards to training without loading the data set into memory
(10,000 episodes of frames are ~120 GB): V gets shuffled frame minibatches, M gets
fixed-length windows of (mu, logvar, action) sequences. Every frame of every episode
is seen once per epoch; nothing is silently dropped (short episodes are padded and masked)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from wm.rollouts.storage import EpisodeStore, StoreError, check_env, open_store


def open_stores(paths: list[str | Path], kind: str, env: str | None = None) -> list[EpisodeStore]:
    """Open and validate every store; with `env` (the run's env.name), refuse one of another
    environment, naming it, before any work."""
    if not paths:
        raise StoreError(f"no {kind} stores given")
    stores = [open_store(p, kind) for p in paths]
    if env is not None:
        check_env(stores, env)
    if kind == "latents":
        for store in stores[1:]:
            if store.attrs["z_dim"] != stores[0].attrs["z_dim"]:
                raise StoreError(f"{store.path}: latents of z_dim {store.attrs['z_dim']}, but {stores[0].path} "
                                 f"has z_dim {stores[0].attrs['z_dim']} (encoded by another V)")
    return stores


def episode_index(stores: list[EpisodeStore]) -> list[tuple[int, int]]:
    return [(s, e) for s, store in enumerate(stores) for e in range(store.episodes)]


def frame_batches(stores: list[EpisodeStore], batch_size: int, buffer_episodes: int,
                  rng: np.random.Generator, read_threads: int = 4) -> Iterator[np.ndarray]:
    """One epoch of uint8 frame batches (B, 64, 64, 3). Episodes are visited in random order,
    `buffer_episodes` at a time, and their frames shuffled together; the last batch may be short.
    The next buffer is read (decompressed and checksummed, several episodes at once: Blosc and
    zlib release the GIL) while the current one is consumed, so training does not wait on Zarr."""
    order = episode_index(stores)
    rng.shuffle(order)
    buffers = [order[i : i + buffer_episodes] for i in range(0, len(order), buffer_episodes)]
    leftover = np.empty((0, 64, 64, 3), np.uint8)
    stop = threading.Event()  # set when the consumer leaves (a bad episode, or it stopped early)

    def load(s: int, e: int) -> np.ndarray | None:
        return None if stop.is_set() else stores[s].episode(e, ["frames"])["frames"]

    with ThreadPoolExecutor(read_threads) as readers, ThreadPoolExecutor(1) as prefetcher:

        def read(buffer):
            futures = [readers.submit(load, s, e) for s, e in buffer]
            try:
                # .result() re-raises a reader's own exception: the one-line StoreError that names
                # the store, array and episode reaches the caller as it was raised, not wrapped.
                return [f.result() for f in futures]
            finally:
                for f in futures:
                    f.cancel()

        upcoming = prefetcher.submit(read, buffers[0]) if buffers else None
        try:
            for k in range(len(buffers)):
                episodes = upcoming.result()
                if k + 1 < len(buffers):
                    upcoming = prefetcher.submit(read, buffers[k + 1])
                frames = np.concatenate([leftover, *episodes])
                frames = frames[rng.permutation(len(frames))]
                full = len(frames) // batch_size * batch_size
                for b in range(0, full, batch_size):
                    yield frames[b : b + batch_size]
                leftover = frames[full:]
        finally:
            stop.set()  # the pools then wait only for reads already under way, not the whole next buffer
    if len(leftover):
        yield leftover


def sample_frames(stores: list[EpisodeStore], count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` frames drawn uniformly from all frames (for the collapse guard and the figures)."""
    lengths = np.concatenate([s.lengths for s in stores])
    owners = episode_index(stores)
    flat = np.sort(rng.choice(int(lengths.sum()), size=min(count, int(lengths.sum())), replace=False))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    episode_of = np.searchsorted(starts, flat, side="right") - 1
    frames = []
    for ep in np.unique(episode_of):
        s, e = owners[ep]
        steps = flat[episode_of == ep] - starts[ep]
        frames.append(stores[s].episode(e, ["frames"])["frames"][steps])
    return np.concatenate(frames)


def sequence_windows(stores: list[EpisodeStore], seq_len: int) -> list[tuple[int, int, int]]:
    """(store, episode, start) of every window of seq_len transitions; an episode of L frames has
    L - 1 transitions, cut into consecutive windows, the last one shorter (masked in the loss)."""
    windows = []
    for s, store in enumerate(stores):
        for e, length in enumerate(store.lengths):
            for start in range(0, max(int(length) - 1, 0), seq_len):
                windows.append((s, e, start))
    return windows


def sequence_batches(stores: list[EpisodeStore], windows: list[tuple[int, int, int]], seq_len: int,
                     batch_size: int, rng: np.random.Generator | None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of windows: mu, logvar (B, seq_len + 1, z), actions (B, seq_len, A), mask (B, seq_len).
    Shuffled when rng is given; episodes are read once per batch they appear in."""
    order = list(range(len(windows)))
    if rng is not None:
        rng.shuffle(order)
    z_dim, action_dim = stores[0].attrs["z_dim"], stores[0].arrays["actions"].shape[2]
    for b in range(0, len(order), batch_size):
        picked = [windows[i] for i in order[b : b + batch_size]]
        batch = {
            "mu": np.zeros((len(picked), seq_len + 1, z_dim), np.float32),
            "logvar": np.zeros((len(picked), seq_len + 1, z_dim), np.float32),
            "actions": np.zeros((len(picked), seq_len, action_dim), np.float32),
            "mask": np.zeros((len(picked), seq_len), np.float32),
        }
        cache: dict[tuple[int, int], dict] = {}
        for row, (s, e, start) in enumerate(picked):
            if (s, e) not in cache:
                cache[(s, e)] = stores[s].episode(e, ["mu", "logvar", "actions"])
            episode = cache[(s, e)]
            stop = min(start + seq_len + 1, len(episode["mu"]))
            n = stop - start
            batch["mu"][row, :n] = episode["mu"][start:stop]
            batch["logvar"][row, :n] = episode["logvar"][start:stop]
            batch["actions"][row, : n - 1] = episode["actions"][start : stop - 1]
            batch["mask"][row, : n - 1] = 1.0
        yield batch
