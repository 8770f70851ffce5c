"""`wm export`: the trained V, M and C as small files to commit and share (as the original code
shipped its models): V's weights in float16 (8.7 MB instead of 17), M and C as they are.
`wm evaluate` loads them like any checkpoint (weights are cast back to float32 on load)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wm.files import atomic_path, load_checkpoint, save_torch


def export(vae: Path, mdn: Path, controllers: list[Path], out: Path) -> None:
    checkpoint = load_checkpoint(vae, "vae")
    checkpoint["state_dict"] = half_precision(checkpoint["state_dict"])
    checkpoint["exported_from"] = str(vae)
    save_torch(out / "vae.pt", checkpoint)
    load_checkpoint(mdn, "mdn")
    with atomic_path(out / "mdn.pt") as tmp:
        shutil.copyfile(mdn, tmp)
    for path in controllers:
        variant = load_checkpoint(path, "controller")["variant"]
        with atomic_path(out / f"controller_{variant}.pt") as tmp:
            shutil.copyfile(path, tmp)
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in sorted(out.glob("*.pt")))
    print(f"export: wrote {out} ({sizes})")


def half_precision(state_dict: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}
