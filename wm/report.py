"""Figures for the report: each stage draws its own from the metrics it wrote."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from wm.files import atomic_path  # noqa: E402


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_reconstructions(frames: np.ndarray, recon: np.ndarray, path: Path) -> None:
    """Originals (top) and V's reconstructions (bottom), as in the paper's figure."""
    fig, axes = plt.subplots(2, len(frames), figsize=(1.6 * len(frames), 3.4), squeeze=False)
    for i in range(len(frames)):
        for row, image in enumerate((frames[i], recon[i])):
            axes[row, i].imshow(image)
            axes[row, i].axis("off")
    axes[0, 0].set_title("frame", fontsize=8, loc="left")
    axes[1, 0].set_title("V's reconstruction", fontsize=8, loc="left")
    _save(fig, path)


def _draw(ax, rows: list[dict], x: str, ys: list[str], ylabel: str) -> None:
    for y in ys:
        points = [(r[x], r[y]) for r in rows if r.get(y) == r.get(y)]  # skip NaN
        if points:
            ax.plot(*zip(*points), label=y, marker="o" if len(points) < 30 else None, markersize=3)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_curves(rows: list[dict], x: str, ys: list[str], path: Path, title: str, ylabel: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    _draw(ax, rows, x, ys, ylabel)
    ax.set_title(title)
    _save(fig, path)


def plot_panels(rows: list[dict], x: str, panels: list[tuple[list[str], str]], path: Path, title: str) -> None:
    """Side-by-side panels over the same x: each (columns, y label)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.5), squeeze=False)
    for ax, (ys, ylabel) in zip(axes[0], panels):
        _draw(ax, rows, x, ys, ylabel)
    fig.suptitle(title)
    _save(fig, path)


def plot_histogram(returns: list[float], path: Path, title: str) -> None:
    """Distribution of episode returns, like the paper's figure of 100 trials."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(returns, bins=20, range=(min(-100.0, min(returns)), max(1000.0, max(returns))), color="tab:blue")
    ax.axvline(float(np.mean(returns)), color="k", linestyle="--", label=f"mean {np.mean(returns):.0f}")
    ax.set_xlabel("return")
    ax.set_ylabel("episodes")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)
