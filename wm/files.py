"""Atomic outputs and run metadata: an output path either holds a whole result or nothing."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import torch


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write a file or folder into; on success it is
    renamed onto `path` (replacing what was there), on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)


def save_torch(path: str | Path, obj) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | Path, kind: str, required: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint written by save_torch and check that it is a `kind` checkpoint holding the
    `required` keys (one line naming the first missing key, before any work)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {kind} checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: not a readable {kind} checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != kind:
        raise ValueError(f"{path}: not a {kind} checkpoint")
    missing = [key for key in required if key not in checkpoint]
    if missing:
        raise ValueError(f"{path}: a {kind} checkpoint without {missing[0]!r} (not written by wm, or damaged)")
    return checkpoint


def checkpoint_env(checkpoint: dict) -> str:
    """The env.name a V, M or C checkpoint was trained for; those saved before environments were
    plug-ins carry none, and are CarRacing's (the only environment there was then)."""
    from wm.resume import EARLIER_ENV

    return checkpoint.get("env", EARLIER_ENV)


def file_digest(path: str | Path) -> str:
    """A short content hash: ties a latent store or a CMA-ES checkpoint to the exact V and M files."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict:
    """Package versions that decide the data and the results (gym/Box2D drift broke the original code)."""
    names = ["wm", "torch", "gymnasium", "box2d", "pygame-ce", "numpy", "zarr", "cma", "mpi4py", "pillow", "vizdoom"]
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    found["wm_commit"] = git_commit()
    return found

