"""One evaluation's score and how its episodes ended, and its paired difference by track against others
(the figures docs/results.md quotes for each scored controller). Every evaluation compared must have run
on the same tracks (the same `track_seeds`), which is what makes the difference paired.

    .venv/bin/python analysis/compare_evals.py runs/solve/round-3/eval_gen40 runs/solve/round-2/eval_gen40 ...

Each argument is a folder with returns.json (`wm evaluate --out`) or the file itself.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np

LOW = 800  # "a failure": an episode that lost more than a few tiles' worth


def load(path: Path) -> dict:
    path = path / "returns.json" if path.is_dir() else path
    record = json.loads(path.read_text())
    record["path"] = str(path)
    return record


def mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def describe(record: dict) -> str:
    r, steps = np.array(record["returns"]), np.array(record["steps"])
    n = len(r)
    early = np.array(record["ended_by"]) == "terminated"  # lap finished or off the playfield; else truncated
    max_steps = record["config"]["evaluate"]["max_steps"]
    low = r < LOW
    lines = [
        f"{record['path']}: {n} episodes, mean {r.mean():.1f} ± {r.std():.1f} (std; standard error "
        f"{r.std(ddof=1) / math.sqrt(n):.1f}), median {np.median(r):.1f}, min {r.min():.1f}, max {r.max():.1f}, "
        f"{int((r >= 900).sum())} scored 900 or more",
        f"  ended before {max_steps} steps (lap finished or off the playfield): {int(early.sum())}, mean return "
        f"{mean(r[early]):.1f} in {mean(steps[early]):.0f} steps; "
        f"ran all {max_steps} steps: {int((~early).sum())}, mean return {mean(r[~early]):.1f}",
    ]
    if early.any() and (~early).any():
        cost = (~early).mean() * (mean(r[early]) - mean(r[~early]))
        lines.append(f"  what running out of time costs the mean: {(~early).mean():.2f} x "
                     f"({mean(r[early]):.1f} - {mean(r[~early]):.1f}) = {cost:.1f}")
    if low.any():
        lines.append(f"  below {LOW}: {int(low.sum())} episodes ({', '.join(f'{x:.1f}' for x in np.sort(r[low]))}); "
                     f"the mean without them is {mean(r[~low]) - r.mean():+.1f} higher")
    if "action_mean" in record:
        lines.append(f"  mean action: {record['action_mean']}")
    return "\n".join(lines)


def paired(record: dict, baseline: dict) -> str:
    if record["track_seeds"] != baseline["track_seeds"]:
        raise SystemExit(f"compare_evals: {record['path']} and {baseline['path']} ran on other tracks (track_seeds differ)")
    d = np.array(record["returns"]) - np.array(baseline["returns"])
    se = d.std(ddof=1) / math.sqrt(len(d))
    return (f"  paired by track against {baseline['path']} ({np.mean(baseline['returns']):.1f}): "
            f"{d.mean():+.1f} (standard error {se:.1f}; {int((d > 0).sum())} tracks better, {int((d < 0).sum())} worse)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluation", type=Path)
    parser.add_argument("baselines", type=Path, nargs="*")
    args = parser.parse_args()
    record = load(args.evaluation)
    print(describe(record))
    for baseline in args.baselines:
        print(paired(record, load(baseline)))


if __name__ == "__main__":
    main()
