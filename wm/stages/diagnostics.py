"""`wm diagnose`: what a CMA-ES run's generations say beyond the fitness curve.

From generations.jsonl (every candidate's return on every track of every generation) it
derives, per generation: how far returns spread across tracks (a noisy fitness needs more
rollouts per candidate), how training episodes ended (a car that leaves the road ends by
`no_progress`; one that drives the whole 1,000 steps by `truncated`; a finished lap by
`terminated`), and how long episodes ran. Writes diagnostics.csv and diagnostics.png
beside the log, and prints the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wm.files import write_csv
from wm.report import plot_panels

ENDINGS = ("no_progress", "truncated", "terminated", "max_steps")


def generation_rows(generations: Path) -> list[dict]:
    if not generations.exists():
        raise FileNotFoundError(f"{generations}: no such file (run `wm train-controller` first)")
    rows = []
    for number, line in enumerate(generations.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
            returns = np.asarray(record["returns"], dtype=float)
        except (json.JSONDecodeError, KeyError) as exc:
            raise ValueError(f"{generations}: line {number} is not a generation record ({exc})") from exc
        per_candidate = returns.mean(axis=1)
        best = int(per_candidate.argmax())
        episodes = sum(record["ended_by"].values())
        rows.append({
            "generation": record["generation"],
            "population_mean": round(float(per_candidate.mean()), 2),
            "best_mean": round(float(per_candidate[best]), 2),
            # The spread of one candidate's returns over the generation's tracks.
            "track_std_median": round(float(np.median(returns.std(axis=1))), 2),
            "track_std_best": round(float(returns[best].std()), 2),
            **{f"ended_{e}": round(record["ended_by"].get(e, 0) / episodes, 4) for e in ENDINGS},
            "mean_steps": round(record["mean_steps"], 1),
        })
    return rows


def diagnose(folder: Path) -> list[dict]:
    rows = generation_rows(folder / "generations.jsonl")
    write_csv(folder / "diagnostics.csv", rows)
    plot_panels(rows, "generation", [
        (["track_std_median", "track_std_best"], "return std across tracks"),
        ([f"ended_{e}" for e in ENDINGS[:3]], "share of training episodes"),
    ], folder / "diagnostics.png", f"CMA-ES diagnostics: {folder.name}")
    print(f"{'gen':>4} {'pop mean':>9} {'best':>7} {'std(track)':>10} {'best std':>8} "
          f"{'no_progress':>11} {'truncated':>9} {'lap done':>8} {'steps':>6}")
    for r in rows:
        print(f"{r['generation']:>4} {r['population_mean']:>9.1f} {r['best_mean']:>7.1f} {r['track_std_median']:>10.1f} "
              f"{r['track_std_best']:>8.1f} {r['ended_no_progress']:>11.0%} {r['ended_truncated']:>9.0%} "
              f"{r['ended_terminated']:>8.0%} {r['mean_steps']:>6.0f}")
    print(f"diagnose: wrote {folder / 'diagnostics.csv'} and {folder / 'diagnostics.png'}")
    return rows
