"""The solve run's held-out curve: the CMA mean's score on the run's 32 fixed tracks, for the budget run
it starts from and for each stage after it, with the CMA-ES training frames counted from the budget
run's start (held-out episodes not included). Prints one table (the one in docs/results.md); with
--plot PATH also draws it, with each generation's population mean, against the frames.

    .venv/bin/python analysis/heldout_curve.py [--plot docs/results/solve/heldout_curve.png]
"""

import argparse
import csv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELDOUT_TRACKS = 32  # controller.eval_episodes of every stage (the budget preset's and presets/solve.yaml's)
RUNS = {  # each stage continues the one before it (controller.init)
    "budget (from zero)": "docs/results/budget/controller_z_h/log.csv",
    "stage 1: continued, 16 rollouts": "runs/solve/controller/z_h/log.csv",
    "stage 2: round 1 (new M), continued": "runs/solve/round-1/controller/z_h/log.csv",
    "stage 3: round 2 (new M), continued": "runs/solve/round-2/controller/z_h/log.csv",
    "stage 4: round 3 (new M), continued": "runs/solve/round-3/controller/z_h/log.csv",
    "stage 5: round 4 (new M), continued": "runs/solve/round-4/controller/z_h/log.csv",
}


def stages() -> dict[str, list[dict]]:
    """Each started stage's generations, with `frames_so_far` counted from the budget run's start."""
    out: dict[str, list[dict]] = {}
    budget_frames = 0
    for name, path in RUNS.items():
        frames = budget_frames if name != "budget (from zero)" else 0
        if not (REPO / path).exists():
            continue  # a stage not started yet
        rows = []
        for row in csv.DictReader(open(REPO / path)):
            frames += int(row["frames"])
            rows.append({**row, "frames_so_far": frames})
        out[name] = rows
        if not name.startswith("stage 1"):
            budget_frames = frames  # stage 1 is a branch; each round continues the stage before it at its last checkpoint
    return out


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (name, rows) in enumerate(runs.items()):
        color = f"C{i}"
        x = [r["frames_so_far"] / 1e6 for r in rows]
        ax.plot(x, [float(r["mean"]) for r in rows], color=color, alpha=0.35, linewidth=1)
        held = [(r["frames_so_far"] / 1e6, float(r["heldout_mean"]), float(r["heldout_std"]))
                for r in rows if r["heldout_mean"] != "nan"]
        if held:
            hx, hy, hs = zip(*held)
            ax.errorbar(hx, hy, yerr=[s / HELDOUT_TRACKS ** 0.5 for s in hs], color=color, marker="o", markersize=4,
                        capsize=2, label=name)
    ax.axhline(906, color="k", linestyle="--", linewidth=1, label="paper: 906 (100 tracks)")
    ax.axhline(900, color="grey", linestyle=":", linewidth=1, label="CarRacing-v3 solved: 900")
    ax.set_xlabel("CMA-ES training frames since the budget run's start (millions)")
    ax.set_ylabel("return")
    ax.set_ylim(500, 950)
    ax.grid(alpha=0.3)
    ax.set_title(f"CMA mean on the {HELDOUT_TRACKS} held-out tracks (± standard error); thin: population mean fitness")
    ax.legend(fontsize=7, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plot", type=Path, help="also draw the curve into this PNG")
    args = parser.parse_args()
    runs = stages()
    print(f"{'run':<38} {'gen':>4} {'held-out':>16} {'frames so far':>14} {'pop mean':>9}")
    for name, rows in runs.items():
        for row in rows:
            if row["heldout_mean"] != "nan":
                print(f"{name:<38} {row['generation']:>4} {float(row['heldout_mean']):7.1f} +- "
                      f"{float(row['heldout_std']):5.1f} {row['frames_so_far'] / 1e6:12.1f} M {float(row['mean']):9.1f}")
    if args.plot:
        plot(runs, args.plot)


if __name__ == "__main__":
    main()
