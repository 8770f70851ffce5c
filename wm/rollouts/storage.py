"""Episode stores in Zarr: one store per shard, every array shaped (episodes, time, ...),
padded past each episode's length, with a CRC32 per episode and array so that a
missing or damaged chunk is caught instead of being read back as zeros.

A store is written into a temporary folder and renamed into place only when whole,
with `complete: true` as its last attribute: a killed job leaves nothing that looks done."""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from wm.files import atomic_path

FORMAT_VERSION = 1
# Snakemake marks directory outputs with a .snakemake_timestamp file, which zarr warns about.
warnings.filterwarnings("ignore", message=".*snakemake_timestamp.*")

# What each kind of store holds: array name -> (per-step shape, dtype).
LAYOUTS = {
    "rollouts": {
        "frames": ((64, 64, 3), "uint8"),
        "actions": ((3,), "float32"),
        "rewards": ((), "float32"),
        "terminated": ((), "bool"),
    },
    "latents": {
        "mu": (None, "float32"),  # (z_dim,)
        "logvar": (None, "float32"),
        "actions": ((3,), "float32"),
        "rewards": ((), "float32"),
        "terminated": ((), "bool"),
    },
}
REQUIRED_ATTRS = {
    "rollouts": ["kind", "format_version", "complete", "env_id", "seeds", "policy", "versions", "checksums", "max_steps"],
    "latents": ["kind", "format_version", "complete", "source", "vae", "checksums", "z_dim"],
}


class StoreError(ValueError):
    """A store that is missing, incomplete or damaged; the message names it."""


def episode_checksum(values: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(values).tobytes())


def write_store(path: str | Path, kind: str, arrays: dict[str, np.ndarray], lengths: np.ndarray, attrs: dict,
                time_chunk: int = 250) -> None:
    """Write a whole store atomically. arrays: name -> (episodes, time, ...) padded with zeros."""
    compressor = BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.bitshuffle)
    checksums = {}
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w")
        for name, values in arrays.items():
            chunks = (1, min(time_chunk, values.shape[1])) + values.shape[2:]
            array = group.create_array(name, shape=values.shape, dtype=values.dtype, chunks=chunks,
                                       compressors=compressor, fill_value=0)
            array[...] = values
            checksums[name] = [episode_checksum(values[e, : lengths[e]]) for e in range(len(values))]
        group.create_array("lengths", data=np.asarray(lengths, dtype=np.int32), chunks=(len(lengths),))
        group.attrs.update({**attrs, "kind": kind, "format_version": FORMAT_VERSION, "checksums": checksums})
        group.attrs["complete"] = True  # last: a store without it is partial


@dataclass
class EpisodeStore:
    """A validated, read-only store. episode(e) returns its arrays trimmed to its length,
    each checked against its recorded checksum."""

    path: Path
    kind: str
    group: zarr.Group
    lengths: np.ndarray
    attrs: dict

    @property
    def episodes(self) -> int:
        return len(self.lengths)

    @property
    def frames(self) -> int:
        return int(self.lengths.sum())

    def episode(self, e: int, names: list[str] | None = None) -> dict[str, np.ndarray]:
        length = int(self.lengths[e])
        out = {}
        for name in names or list(self.attrs["checksums"]):
            values = self.group[name][e, :length]
            if episode_checksum(values) != self.attrs["checksums"][name][e]:
                raise StoreError(f"{self.path}: array '{name}' of episode {e} does not match its checksum "
                                 "(a chunk is missing or damaged); re-run the job that wrote this store")
            out[name] = values
        return out


def open_store(path: str | Path, kind: str) -> EpisodeStore:
    """Open a store written by write_store, checking its kind, completeness and layout (not its data)."""
    path = Path(path)
    if not path.is_dir():
        raise StoreError(f"{path}: store not found")
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
    except Exception as exc:  # zarr raises several types for a damaged store
        raise StoreError(f"{path}: not a readable Zarr store ({type(exc).__name__}: {exc})") from None
    if attrs.get("kind") != kind:
        raise StoreError(f"{path}: expected a '{kind}' store, found kind {attrs.get('kind')!r}")
    if attrs.get("complete") is not True:
        raise StoreError(f"{path}: store is incomplete (its writer did not finish); re-run the job that writes it")
    missing = [key for key in REQUIRED_ATTRS[kind] if key not in attrs]
    if missing:
        raise StoreError(f"{path}: metadata lacks {', '.join(missing)}")
    names = set(group.array_keys())
    absent = sorted((set(LAYOUTS[kind]) | {"lengths"}) - names)
    if absent:
        raise StoreError(f"{path}: arrays missing: {', '.join(absent)}")
    lengths = np.asarray(group["lengths"][:])
    episodes, steps = group["actions"].shape[:2]
    for name, (step_shape, dtype) in LAYOUTS[kind].items():
        array = group[name]
        if array.shape[:2] != (episodes, steps) or str(array.dtype) != dtype or (
            step_shape is not None and tuple(array.shape[2:]) != step_shape
        ):
            raise StoreError(f"{path}: array '{name}' has shape {array.shape} {array.dtype}, "
                             f"expected ({episodes}, {steps}, ...) {dtype}")
    if lengths.shape != (episodes,) or lengths.min(initial=1) < 1 or lengths.max(initial=0) > steps:
        raise StoreError(f"{path}: episode lengths out of range 1..{steps}")
    return EpisodeStore(path, kind, group, lengths, attrs)


def check_store(path: str | Path, kind: str) -> list[str]:
    """Everything wrong with a store, read in full: layout, metadata, checksums, finite values."""
    try:
        store = open_store(path, kind)
        for e in range(store.episodes):
            for name, values in store.episode(e).items():
                if values.dtype.kind == "f" and not np.isfinite(values).all():
                    raise StoreError(f"{path}: array '{name}' of episode {e} holds NaN or infinity")
    except StoreError as exc:
        return [str(exc)]
    return []


def list_stores(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("*.zarr") if p.is_dir())
