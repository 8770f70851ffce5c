"""Device check: wm's GPU paths measured against the CPU of the same node, in one command and one table.

    bash benchmarks/device_check.sh [--quick | --full] [--budget SECONDS] [--json PATH] [--only PART,...]

(the .sh installs the carried wheels in device-wheels/ and finds an MPI launcher first; in an
environment that already has wm's dependencies, `python benchmarks/device_check.py --quick` runs it
directly; `bash benchmarks/device_check.sh --download-wheels` fetches the wheels, here, before a device
run; docs/benchmarks.md has the `run` tool call). What it measures, each through the package's own code:

  V step      wm/vae/train.py's inner step (to_input, autocast, vae_loss, Adam) on the CPU and on CUDA,
              bf16 autocast and channels_last on and off, torch.compile on and off (frames/s)
  M step      wm/mdn/train.py's batch_loss + clip + Adam, bf16 on and off, compiled or not (steps/s)
  V loop      the whole `train_vae` (Zarr reader + steps + checkpoint) on real frames from
              `collect_shard`, on the CPU and on CUDA, beside the reader's own frames/s
  encode, M loop   `encode_shard` and the whole `train_mdn` on those shards, CPU and CUDA
  CMA-ES gen  one generation of `wm train-controller` under mpiexec with 1, 4, 8 and 16 ranks
  evaluator   run_batch with the committed V, M and C (docs/results/budget), V on the CPU (wm's agent)
              and V on the GPU (the agent's encoder moved there), one thread as a rank has

Every part runs in its own process under its own time cap (and the whole run under --budget), so one
hang costs only its part; each row prints as soon as it is measured, the table at the end with each
row's ratio to the CPU baseline of its group. The table also goes, as JSON and text, to $OUT (if set)
or to --json. Without CUDA the GPU rows say "skipped: ..." and everything else runs; --quick (the
default below 8 cores) shrinks every size so that a 2-core machine gets through in a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The parts, the set-up and what they share live beside this file (benchmarks/device_check_*.py):
# device_check_common (paths, markers, blockers), device_check_setup (--download-wheels, --setup),
# device_check_steps (V and M steps), device_check_stages (evaluator, loops, CMA-ES) and
# device_check_parts (preflight, the PARTS table, --part).
from device_check_common import INFO_MARK, MPI_ENV, REPO, ROW_MARK, usable_cores
from device_check_parts import PARTS, run_part
from device_check_setup import download_wheels, setup


# --------------------------------------------------------------------------------------------
# The driver: each part in a child process under its cap, rows echoed as they come, the table.
# --------------------------------------------------------------------------------------------

def run_child(name: str, args, cap: float, log_path: Path, rows: list, info: dict) -> None:
    deadline = time.time() + cap
    command = [sys.executable, str(Path(__file__).resolve()), "--part", name, "--work", str(args.work),
               "--deadline", str(deadline)] + (["--quick"] if args.quick else ["--full"])
    env = {**os.environ, **MPI_ENV, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "SDL_VIDEODRIVER": "dummy"}
    # torch.compile's caches of this run only: a part killed at its cap can leave a half-written kernel
    # there, which would fail the next compile that finds it.
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(args.work / "inductor-cache"))
    env.setdefault("TRITON_CACHE_DIR", str(args.work / "triton-cache"))
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, ([] if str(REPO) in paths else [str(REPO)]) + paths))
    start = time.perf_counter()
    lines: list[str] = []
    before = len(rows)
    with open(log_path, "w") as logfile:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   cwd=REPO, env=env, start_new_session=True)

        def read():
            for line in process.stdout:
                logfile.write(line)
                logfile.flush()
                if line.startswith(ROW_MARK):
                    row = json.loads(line[len(ROW_MARK):])
                    rows.append(row)
                    print("  " + format_row(row, None), flush=True)
                elif line.startswith(INFO_MARK):
                    info.update(json.loads(line[len(INFO_MARK):]))
                else:
                    lines.append(line.rstrip())
                    del lines[:-30]

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=cap)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the part and whatever it started (mpiexec, pools)
            process.wait()
            code = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever the part left running (compile workers)
        reader.join(timeout=10)
    seconds = time.perf_counter() - start
    group = GROUP_OF.get(name, name)
    if code is None:
        rows.append({"group": group, "device": "-", "setting": f"(part {name})", "value": None, "unit": "",
                     "note": f"timed out: stopped at its cap of {cap:.0f} s ({len(rows) - before} row(s) measured before)",
                     "baseline": False})
    elif code != 0:
        tail = next((line for line in reversed(lines) if line.strip()), "?")
        rows.append({"group": group, "device": "-", "setting": f"(part {name})", "value": None, "unit": "",
                     "note": f"crashed: exit {code}: {tail[:200]}", "baseline": False})
    if code != 0:
        print(f"  part {name}: {'timed out' if code is None else f'exit {code}'}; last lines of {log_path}:", flush=True)
        for line in lines[-12:]:
            print(f"    | {line}", flush=True)
    print(f"-- {name}: {seconds:.1f} s", flush=True)


GROUP_OF = {"preflight": "setup", "v_step": "V step", "m_step": "M step", "evaluator": "evaluator",
            "loader": "V loop", "m_loop": "M loop", "cmaes": "CMA-ES gen", "v_compile_cuda": "V step",
            "m_compile_cuda": "M step", "v_compile_cpu": "V step", "m_compile_cpu": "M step"}
GROUP_ORDER = ["setup", "V step", "M step", "collect", "V loop", "encode", "M loop", "CMA-ES gen", "evaluator"]


def format_value(row) -> str:
    return f"{row['value']:,.0f} {row['unit']}" if row.get("value") is not None else "-"


def format_row(row, ratio) -> str:
    ratio_text = f"{ratio:.2f}x" if ratio is not None else ("base" if row.get("baseline") and row.get("value") else "")
    return (f"{row['group']:<11} {row['device']:<5} {row['setting']:<62.62} {format_value(row):>18} "
            f"{ratio_text:>7}  {row['note']}")


def ratios(rows) -> list:
    base = {}
    for row in rows:
        if row.get("baseline") and row.get("value") and row["group"] not in base:
            base[row["group"]] = row["value"]
    return [row["value"] / base[row["group"]] if row.get("value") and row["group"] in base and not row.get("baseline")
            else None for row in rows]


def table(rows) -> str:
    ordered = sorted(rows, key=lambda r: GROUP_ORDER.index(r["group"]) if r["group"] in GROUP_ORDER else 99)
    header = f"{'group':<11} {'dev':<5} {'setting':<62} {'rate':>18} {'ratio':>7}  note"
    lines, group = [header, "-" * len(header)], None
    for row, ratio in zip(ordered, ratios(ordered)):
        if group is not None and row["group"] != group:
            lines.append("")
        group = row["group"]
        lines.append(format_row(row, ratio))
    return "\n".join(lines)


def drive(args) -> int:
    started = time.time()
    deadline = started + args.budget
    args.work = Path(tempfile.mkdtemp(prefix="wm-device-check-"))
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
    json_path = Path(args.json) if args.json else (out_dir / "device_check.json" if out_dir else args.work / "device_check.json")
    logs = (out_dir or args.work) / "device_check_logs"
    logs.mkdir(parents=True, exist_ok=True)
    import importlib.util

    has_torch = importlib.util.find_spec("torch") is not None
    only = set(args.only.split(",")) if args.only else None
    skip = set(args.skip.split(",")) if args.skip else set()
    print(f"device_check: {'quick' if args.quick else 'full'} sizes, budget {args.budget:.0f} s, "
          f"{usable_cores()} cores, work in {args.work}, logs in {logs}", flush=True)
    rows: list = []
    info: dict = {}
    for name, (_, caps, needs_torch) in PARTS.items():
        if (only and name not in only) or name in skip:
            continue
        group = GROUP_OF[name]
        left = deadline - time.time()
        if needs_torch and not has_torch:
            rows.append({"group": group, "device": "-", "setting": f"(part {name})", "value": None, "unit": "",
                         "note": "skipped: torch not importable in this Python", "baseline": False})
            print("  " + format_row(rows[-1], None), flush=True)
            continue
        if left < 15:
            rows.append({"group": group, "device": "-", "setting": f"(part {name})", "value": None, "unit": "",
                         "note": f"skipped: out of the time budget ({args.budget:.0f} s)", "baseline": False})
            print("  " + format_row(rows[-1], None), flush=True)
            continue
        cap = min(caps[1] if args.quick else caps[0], left)
        print(f"-- {name} (cap {cap:.0f} s)", flush=True)
        run_child(name, args, cap, logs / f"{name}.log", rows, info)
    text = table(rows)
    total = time.time() - started
    print(f"\n== device check: {total:.0f} s, {'quick' if args.quick else 'full'} sizes ==", flush=True)
    if info:
        print("info: " + json.dumps(info, default=str), flush=True)
    print(text, flush=True)
    record = {"seconds": round(total, 1), "quick": args.quick, "info": info,
              "rows": [{**row, "ratio": ratio} for row, ratio in zip(rows, ratios(rows))]}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(record, indent=1, default=str))
    json_path.with_suffix(".txt").write_text(text + "\n")
    print(f"device_check: wrote {json_path} and {json_path.with_suffix('.txt')}", flush=True)
    for leftover in args.work.iterdir():  # shards, checkpoints, compile caches; not the table or logs
        if leftover not in (json_path, json_path.with_suffix(".txt"), logs):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    with contextlib.suppress(OSError):
        args.work.rmdir()  # empty when the table and logs went to $OUT or --json
    broken = [r for r in rows if r["note"].startswith(("failed", "crashed", "timed out")) or "NON-FINITE" in r["note"]]
    return 2 if broken else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", default=None, help="small sizes (the default below 8 cores)")
    size.add_argument("--full", dest="quick", action="store_false", help="the device sizes (the default from 8 cores)")
    parser.add_argument("--budget", type=float, help="seconds for all parts (default 420 full, 300 quick)")
    parser.add_argument("--json", help="where the table goes as JSON (default $OUT/device_check.json)")
    parser.add_argument("--only", help="comma-separated parts: " + ",".join(PARTS))
    parser.add_argument("--skip", help="comma-separated parts to leave out")
    parser.add_argument("--download-wheels", action="store_true",
                        help="fetch the carried cp312 wheels into --wheels (here, before a device run) and stop")
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--wheels", default=str(REPO / "device-wheels"), help="the carried wheels' folder")
    parser.add_argument("--site", default=str(Path(tempfile.gettempdir()) / "wm-device-site"), help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=float("inf"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.download_wheels:
        return download_wheels(args)
    if args.setup:
        return setup(args)
    if args.quick is None:
        args.quick = usable_cores() < 8
    if args.part:
        return run_part(args)
    if args.budget is None:
        args.budget = 300.0 if args.quick else 420.0
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
