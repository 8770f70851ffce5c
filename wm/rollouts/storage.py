"""Episode stores in Zarr: one store per shard, every array shaped (episodes, time, ...),
padded past each episode's length, with a CRC32 per episode and array so that a
missing or damaged chunk is caught instead of being read back as zeros.

A store is written into a temporary folder and renamed into place only when whole,
with `complete: true` as its last attribute: a killed job leaves nothing that looks done."""

from __future__ import annotations

import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
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
        "actions": (None, "float32"),  # (action_dim,): the environment's
        "rewards": ((), "float32"),
        "terminated": ((), "bool"),
    },
    "latents": {
        "mu": (None, "float32"),  # (z_dim,)
        "logvar": (None, "float32"),
        "actions": (None, "float32"),
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
    """Write a whole store atomically. arrays: name -> (episodes, time, ...) padded with zeros.
    Refuses (StoreError, nothing written) arrays that disagree on the episodes, lengths outside 1..time
    and NaN or infinity within an episode: every reader would refuse them later, after the work is spent."""
    refuse_to_write(path, arrays, lengths)
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


def refuse_to_write(path: str | Path, arrays: dict[str, np.ndarray], lengths: np.ndarray) -> None:
    lengths = np.asarray(lengths)
    for name, values in arrays.items():
        if len(values) != len(lengths):
            raise store_problem(path, f"holds {len(values)} episodes where lengths lists {len(lengths)}; not written",
                                name, rerun=False)
        bad = np.flatnonzero((lengths < 1) | (lengths > values.shape[1]))
        if len(bad):
            raise store_problem(path, f"episode {bad[0]} has length {lengths[bad[0]]}, outside 1..{values.shape[1]}"
                                      "; not written", "lengths", rerun=False)
    for name, values in arrays.items():
        for e, length in enumerate(lengths):
            step = first_non_finite(values[e, :length])
            if step is not None:
                raise store_problem(path, f"holds NaN or infinity (first at step {step}); not written: its writer "
                                          "computed them", name, e, rerun=False)


RERUN = "re-run the job that wrote this store"


def _cause(exc: BaseException) -> str:
    """`Type: first line of its message`, short enough for a one-line report."""
    lines = str(exc).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) > 200:
        first = first[:197] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def store_problem(path: str | Path, what: str, name: str | None = None, episode: int | None = None,
                  exc: BaseException | None = None, rerun: bool = True) -> StoreError:
    """One line: `<store>: array '<name>' of episode <e>: <what> (<Type>: <message>); re-run ...`."""
    where = str(path)
    if name is not None:
        where += f": array '{name}'"
    if episode is not None:
        where += f" of episode {episode}"
    line = f"{where}: {what}"
    if exc is not None:
        line += f" ({_cause(exc)})"
    if rerun:
        line += f"; {RERUN}"
    return StoreError(" ".join(line.split()))  # never more than one line, whatever zarr said


def first_non_finite(values: np.ndarray) -> int | None:
    """The first step (row) holding NaN or infinity, or None; free for integer and bool arrays."""
    if values.dtype.kind not in "fc" or np.isfinite(values).all():
        return None
    return int(np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))[0])


@dataclass
class EpisodeStore:
    """A validated, read-only store. episode(e) returns its arrays trimmed to its length,
    each checked against its recorded checksum and, for float arrays, for NaN and infinity;
    anything wrong is a one-line StoreError naming the store, the array and the episode."""

    path: Path
    kind: str
    group: zarr.Group
    lengths: np.ndarray
    attrs: dict
    arrays: dict[str, zarr.Array] = field(default_factory=dict, repr=False)  # opened once, not per read

    @property
    def episodes(self) -> int:
        return len(self.lengths)

    @property
    def env(self) -> str:
        """The env.name whose episodes these are."""
        return store_env(self.attrs)

    @property
    def frames(self) -> int:
        return int(self.lengths.sum())

    def episode(self, e: int, names: list[str] | None = None) -> dict[str, np.ndarray]:
        length = int(self.lengths[e])
        out = {}
        for name in names or list(self.attrs["checksums"]):
            array = self.arrays[name] if name in self.arrays else self.group[name]
            try:
                values = array[e, :length]
            except Exception as exc:  # numcodecs/blosc/zstd raise RuntimeError, a wrong chunk size ValueError, ...
                raise store_problem(self.path, "a chunk cannot be decoded", name, e, exc) from exc
            if episode_checksum(values) != self.attrs["checksums"][name][e]:
                raise store_problem(self.path, "does not match its checksum (a chunk is missing or damaged)", name, e)
            step = first_non_finite(values)  # a NaN in actions or mu would poison M's training
            if step is not None:
                raise store_problem(self.path, f"holds NaN or infinity (first at step {step})", name, e)
            out[name] = values
        return out


def _consensus(values: dict[str, int]) -> int:
    """The value most arrays agree on: one damaged array is then named, not the healthy others."""
    return Counter(values.values()).most_common(1)[0][0]


def store_env(attrs: dict) -> str:
    """A store's env.name: recorded since environments are plug-ins; a rollouts store made before names
    its env id only, and a latents store made before is CarRacing's (the only environment there was)."""
    from wm.envs import env_of_id
    from wm.resume import EARLIER_ENV

    if "env" in attrs:
        return attrs["env"]
    return env_of_id(attrs["env_id"]).name if "env_id" in attrs else EARLIER_ENV


def check_env(stores: list[EpisodeStore], env_name: str, knob: str = "env.name") -> None:
    """One line naming the first store whose environment is not the run's, before any work."""
    for store in stores:
        if store.env != env_name:
            raise StoreError(f"{store.path}: a store of env.name {store.env!r}, but this run's {knob} is "
                             f"{env_name!r}: its frames and actions are another environment's")


def open_store(path: str | Path, kind: str) -> EpisodeStore:
    """Open a store written by write_store, checking its kind, completeness, attributes and every
    array's metadata (dtype, shape, chunks) and lengths; the data itself is checked as it is read."""
    path = Path(path)
    if not path.is_dir():
        raise StoreError(f"{path}: store not found")
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
    except Exception as exc:  # zarr raises several types for a damaged store
        raise store_problem(path, "not a readable Zarr store: its zarr.json is missing or damaged", exc=exc) from exc
    if attrs.get("kind") != kind:
        raise StoreError(f"{path}: expected a '{kind}' store, found kind {attrs.get('kind')!r}")
    if attrs.get("complete") is not True:
        raise StoreError(f"{path}: store is incomplete (its writer did not finish); re-run the job that writes it")
    missing = [key for key in REQUIRED_ATTRS[kind] if key not in attrs]
    if missing:
        raise store_problem(path, f"metadata lacks {', '.join(missing)}")
    if attrs["format_version"] != FORMAT_VERSION:
        raise StoreError(f"{path}: format version {attrs['format_version']!r}; this wm reads version {FORMAT_VERSION}")

    step_shapes = {name: step_shape for name, (step_shape, _) in LAYOUTS[kind].items()}
    from wm.envs import get_env

    try:
        step_shapes["actions"] = (get_env(store_env(attrs)).action_dim,)
    except ValueError as exc:
        raise store_problem(path, f"metadata names no environment of wm ({exc})") from None
    if kind == "latents":
        z_dim = attrs["z_dim"]
        if not isinstance(z_dim, int) or isinstance(z_dim, bool) or z_dim < 1:
            raise store_problem(path, f"metadata z_dim is {z_dim!r}, expected a positive integer")
        step_shapes.update(mu=(z_dim,), logvar=(z_dim,))
    dtypes = {name: dtype for name, (_, dtype) in LAYOUTS[kind].items()} | {"lengths": "int32"}
    arrays: dict[str, zarr.Array] = {}
    for name in [*LAYOUTS[kind], "lengths"]:
        if not (path / name / "zarr.json").is_file():
            raise store_problem(path, "is missing (no zarr.json)", name)
        try:
            array = group[name]
            if not isinstance(array, zarr.Array):
                raise store_problem(path, "is not an array (its zarr.json says node_type group)", name)
            dtype, shape, chunks = str(array.dtype), tuple(array.shape), tuple(array.chunks)
        except StoreError:
            raise
        except Exception as exc:
            raise store_problem(path, "metadata (zarr.json) is unreadable", name, exc=exc) from exc
        if dtype != dtypes[name]:
            raise store_problem(path, f"has dtype {dtype}, expected {dtypes[name]}", name)
        ndim = 1 if name == "lengths" else 2 + len(step_shapes[name])
        if len(shape) != ndim or len(chunks) != ndim:
            raise store_problem(path, f"has shape {shape} in chunks {chunks}, expected {ndim} dimensions", name)
        if name != "lengths" and (shape[2:] != step_shapes[name] or chunks[2:] != step_shapes[name] or chunks[0] != 1):
            expected = ", ".join(map(str, step_shapes[name]))
            raise store_problem(path, f"has shape {shape} in chunks {chunks}, expected (episodes, steps, {expected}) "
                                      f"in chunks (1, time, {expected})", name)
        arrays[name] = array

    data = [name for name in arrays if name != "lengths"]
    episodes = _consensus({name: array.shape[0] for name, array in arrays.items()})
    steps = _consensus({name: arrays[name].shape[1] for name in data}
                       | ({"max_steps": attrs["max_steps"]} if isinstance(attrs.get("max_steps"), int) else {}))
    time_chunk = _consensus({name: arrays[name].chunks[1] for name in data})
    for name, array in arrays.items():
        if array.shape[0] != episodes:
            raise store_problem(path, f"has shape {array.shape}: {array.shape[0]} episodes where the other arrays "
                                      f"have {episodes}", name)
        if name == "lengths":
            if array.chunks != (episodes,):
                raise store_problem(path, f"has chunks {array.chunks}, expected ({episodes},)", name)
        elif array.shape[1] != steps:
            raise store_problem(path, f"has shape {array.shape}: {array.shape[1]} steps where the other arrays "
                                      f"have {steps}", name)
        elif array.chunks[1] != time_chunk:
            raise store_problem(path, f"has chunks {array.chunks}: {array.chunks[1]} steps per chunk where the other "
                                      f"arrays have {time_chunk}", name)

    checksums = attrs["checksums"]
    if not isinstance(checksums, dict) or set(checksums) != set(LAYOUTS[kind]):
        listed = sorted(checksums) if isinstance(checksums, dict) else type(checksums).__name__
        raise store_problem(path, f"metadata 'checksums' lists {listed}, expected {sorted(LAYOUTS[kind])}")
    for name, values in checksums.items():
        if not isinstance(values, list) or len(values) != episodes or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in values
        ):
            count = len(values) if isinstance(values, list) else type(values).__name__
            raise store_problem(path, f"metadata 'checksums' of array '{name}' holds {count} entries, expected "
                                      f"{episodes} CRC32 values")
    seeds = attrs.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or len(seeds) != episodes):
        count = len(seeds) if isinstance(seeds, list) else type(seeds).__name__
        raise store_problem(path, f"metadata 'seeds' holds {count} entries, expected {episodes}")

    try:
        lengths = np.asarray(arrays["lengths"][:])
    except Exception as exc:
        raise store_problem(path, "its chunk cannot be decoded", "lengths", exc=exc) from exc
    bad = np.flatnonzero((lengths < 1) | (lengths > steps))
    if len(bad):
        raise store_problem(path, f"episode {bad[0]} has length {lengths[bad[0]]}, outside 1..{steps} "
                                  "(its chunk is missing or damaged)", "lengths")
    return EpisodeStore(path, kind, group, lengths, attrs, arrays)


def check_store(path: str | Path, kind: str) -> list[str]:
    """Everything wrong with a store, read in full: layout, metadata, checksums, finite values.
    Stops at the first problem; never raises (an unforeseen error is reported with the store's name)."""
    try:
        store = open_store(path, kind)
        for e in range(store.episodes):
            store.episode(e)
    except StoreError as exc:
        return [str(exc)]
    except Exception as exc:
        return [str(store_problem(path, "unexpected error while checking", exc=exc, rerun=False))]
    return []


def check_paths(paths: list[str | Path], kind: str) -> int:
    """`wm data check`: `ok  STORE` or `BAD PROBLEM` for every store (a folder stands for its *.zarr
    stores), then a summary; 1 if anything is bad, else 0. Every store is checked whatever came before."""
    total = bad = 0

    def report(problems: list[str], store: Path) -> None:
        nonlocal total, bad
        total += 1
        bad += bool(problems)
        for problem in problems:
            print(f"BAD {problem}", flush=True)
        if not problems:
            print(f"ok  {store}", flush=True)

    for path in map(Path, paths):
        if path.suffix == ".zarr" or (path / "zarr.json").exists():
            report(check_store(path, kind), path)
        elif path.is_dir():
            found = list_stores(path)
            if not found:
                report([f"{path}: no *.zarr stores in this folder"], path)
            for store in found:
                report(check_store(store, kind), store)
        else:
            report([f"{path}: not found" if not path.exists() else f"{path}: not a store or a folder"], path)
    print(f"{total - bad} of {total} stores ok")
    return 1 if bad else 0


def list_stores(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("*.zarr") if p.is_dir())
