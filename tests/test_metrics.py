"""TensorBoard event files (wm/metrics.py), read back with TensorBoard's own readers: every stage of
the tiny workflow writes the steps and values of its CSV/JSON files; a killed and resumed V has each
step once, equal to an uninterrupted run's; progress lines reach a log file at least every interval."""

import csv
import io
import json
import math
import os
import signal
import subprocess
import re
import sys
import time

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from conftest import BIN, REPO, tiny_args
from wm.stages.train_controller import LOG_FIELDS

ALL = {"scalars": 0, "histograms": 0}  # keep every event (the readers sample by default)
FLOAT32 = dict(rel=1e-6, abs=1e-6)  # TensorBoard stores scalars as float32


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def events(folder) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder), size_guidance=ALL)
    accumulator.Reload()
    return accumulator


def series(accumulator, tag) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def test_tensorboard_logdir_finds_one_run_per_stage_and_variant(tiny_run):
    """What `tensorboard --logdir RUN_DIR` loads (its Python loader): one run per stage and variant."""
    multiplexer = EventMultiplexer(size_guidance=ALL)
    multiplexer.AddRunsFromDirectory(str(tiny_run))
    multiplexer.Reload()
    runs = multiplexer.Runs()
    assert sorted(runs) == ["controller/z_h/tensorboard", "eval/z_h/tensorboard", "mdn/tensorboard",
                            "vae/tensorboard"], sorted(runs)
    assert "vae/loss" in runs["vae/tensorboard"]["scalars"]
    assert "evaluate/returns" in runs["eval/z_h/tensorboard"]["histograms"]


def test_v_events_are_metrics_csv(tiny_run):
    rows = read_csv(tiny_run / "vae" / "metrics.csv")
    steps = [int(r["step"]) for r in rows]
    tb = events(tiny_run / "vae" / "tensorboard")
    for column in ("loss", "reconstruction", "kl"):
        points = series(tb, f"vae/{column}")
        assert [s for s, _ in points] == steps, column
        assert [v for _, v in points] == [pytest.approx(float(r[column]), **FLOAT32) for r in rows], column
    # frames/s: the frames of the logging interval over its seconds (metrics.csv rounds seconds to 0.01)
    summary = json.loads((tiny_run / "vae" / "summary.json").read_text())
    batch_size = 32  # tests/configs/tiny.yaml
    batches = math.ceil(summary["frames"] / batch_size)

    def frames_after(step):
        return step // batches * summary["frames"] + min(step % batches * batch_size, summary["frames"])

    points = series(tb, "vae/frames_per_second")
    assert [s for s, _ in points] == steps
    previous_step, previous_seconds = 0, 0.0
    for row, (_, fps) in zip(rows, points):
        frames, seconds = frames_after(int(row["step"])) - frames_after(previous_step), float(row["seconds"])
        elapsed = seconds - previous_seconds
        assert frames / (elapsed + 0.0101) <= fps, row
        assert elapsed <= 0.0101 or fps <= frames / (elapsed - 0.0101), row
        previous_step, previous_seconds = int(row["step"]), seconds


def test_m_events_are_metrics_csv(tiny_run):
    rows = read_csv(tiny_run / "mdn" / "metrics.csv")
    tb = events(tiny_run / "mdn" / "tensorboard")
    for column in ("train_loss", "validation_loss", "mdn_mse", "copy_last_z_mse"):
        assert series(tb, f"mdn/{column}") == [(int(r["epoch"]), pytest.approx(float(r[column]), **FLOAT32))
                                               for r in rows], column


def test_c_events_are_log_csv(tiny_run):
    rows = read_csv(tiny_run / "controller" / "z_h" / "log.csv")
    tb = events(tiny_run / "controller" / "z_h" / "tensorboard")
    generations = [int(r["generation"]) for r in rows]
    assert generations == [1, 2]
    for column in LOG_FIELDS[1:]:
        # the held-out score only where it was measured (every generation in the tiny config), never NaN
        expected = [(int(r["generation"]), pytest.approx(float(r[column]), **FLOAT32)) for r in rows
                    if math.isfinite(float(r[column]))]
        assert expected and series(tb, f"controller/{column}") == expected, column
    seconds = [0.0] + [float(r["seconds"]) for r in rows]
    assert series(tb, "controller/frames_per_second") == [
        (g, pytest.approx(float(r["frames"]) / (seconds[i + 1] - seconds[i]), rel=1e-5))
        for i, (g, r) in enumerate(zip(generations, rows))]


def test_evaluation_events_are_returns_json(tiny_run):
    result = json.loads((tiny_run / "eval" / "z_h" / "returns.json").read_text())
    tb = events(tiny_run / "eval" / "z_h" / "tensorboard")
    step = 2  # the controller's generations (tests/configs/tiny.yaml)
    (histogram,) = tb.Histograms("evaluate/returns")
    assert histogram.step == step
    values = histogram.histogram_value
    assert values.num == len(result["returns"]) == 2
    assert values.sum == pytest.approx(sum(result["returns"]))
    assert (values.min, values.max) == (pytest.approx(min(result["returns"])), pytest.approx(max(result["returns"])))
    assert series(tb, "evaluate/mean") == [(step, pytest.approx(result["mean"], **FLOAT32))]
    assert series(tb, "evaluate/std") == [(step, pytest.approx(result["std"], **FLOAT32))]


def train_vae(tiny_run, out, extra):
    shards = sorted(str(p) for p in (tiny_run / "data").glob("*.zarr"))
    return [str(BIN / "wm"), "train-vae", *tiny_args(), "--config", str(extra), "--data", *shards, "--out", str(out)]


def test_a_killed_and_resumed_v_has_each_step_once(tiny_run, tmp_path):
    """V killed after its first epoch's checkpoint, with events past it on disk (as a kill mid-epoch
    leaves them: written here with TensorBoard's writer, to be there whatever the timing), then rerun:
    TensorBoard reads every step once, with the values of an uninterrupted run."""
    from torch.utils.tensorboard import SummaryWriter

    two = tmp_path / "two.yaml"
    two.write_text("vae: {epochs: 2, batch_size: 64}\n")  # 4 steps per epoch, one metrics.csv row each
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    subprocess.run(train_vae(tiny_run, whole, two), cwd=REPO, check=True, capture_output=True)

    proc = subprocess.Popen(train_vae(tiny_run, resumed, two), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (resumed / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert not (resumed / "model.pt").exists()
    leftover = SummaryWriter(str(resumed / "tensorboard"))
    for step in (5, 6, 7):  # epoch 2's first steps, never checkpointed
        leftover.add_scalar("vae/loss", -1.0e9, step)
    leftover.close()
    time.sleep(1.1)  # event files are ordered by the second in their name: the rerun's comes after

    result = subprocess.run(train_vae(tiny_run, resumed, two), cwd=REPO, capture_output=True, text=True, check=True)
    assert "resuming after epoch 1" in result.stdout
    assert len(list((resumed / "tensorboard").glob("events.out.tfevents.*"))) == 3  # killed, leftover, resumed

    rows = read_csv(whole / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    without_seconds = [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(resumed / "metrics.csv")] == without_seconds
    uninterrupted, after_kill = events(whole / "tensorboard"), events(resumed / "tensorboard")
    for column in ("loss", "reconstruction", "kl"):
        assert series(after_kill, f"vae/{column}") == series(uninterrupted, f"vae/{column}"), column
        assert series(after_kill, f"vae/{column}") == [
            (int(r["step"]), pytest.approx(float(r[column]), **FLOAT32)) for r in rows], column
    assert [s for s, _ in series(after_kill, "vae/frames_per_second")] == list(range(1, 9))


def test_metrics_off_writes_nothing_and_imports_no_tensorboard(tmp_path):
    code = f"""
import sys
from pathlib import Path
from wm.metrics import metrics_writer
with metrics_writer({{"tensorboard": False}}, Path({str(tmp_path)!r}), first_step=1) as metrics:
    metrics.scalars(1, {{"loss": 1.0}}, prefix="vae")
    metrics.histogram("evaluate/returns", [1.0, 2.0], 1)
assert not metrics.enabled
assert not any(name.startswith(("tensorboard", "torch.utils.tensorboard")) for name in sys.modules), sorted(sys.modules)
"""
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
    assert list(tmp_path.iterdir()) == []


def test_an_iterated_progress_bar_counts_each_item_once_while_the_ticker_prints():
    from wm.metrics import progress

    log = io.StringIO()
    items = list(_slowly(progress(list(range(150)), desc="episodes", file=log, log_seconds=0.3)))
    assert items == list(range(150))
    lines = log.getvalue().splitlines()
    counts = [int(re.search(r"(\d+)/150", line)[1]) for line in lines if re.search(r"(\d+)/150", line)]
    # every line shows its count out of 150 (a bar counted past its total drops the "/150"), never going back
    assert len(counts) == len(lines) and counts == sorted(counts) and counts[-1] == 150, lines


def _slowly(bar):
    """Items much shorter than the ticker's interval, as episodes are against a log's 30 s."""
    for item in bar:
        time.sleep(0.02)
        yield item


def test_progress_prints_whole_lines_at_least_every_interval_in_a_log():
    from wm.metrics import progress

    log = io.StringIO()  # not a terminal: a log file
    with progress(total=4, desc="gen 3/40", unit="episode", file=log, log_seconds=0.3) as bar:
        bar.update(1)
        time.sleep(1.3)  # a long chunk: no update, the lines still come
        bar.update(3)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert all(line.startswith("gen 3/40:") for line in lines)
    stalled = [line for line in lines if " 1/4 " in line]
    assert len(stalled) >= 3, lines  # the start of the stall and a line per 0.3 s of it
    assert "<" in stalled[-1] and "4/4" in lines[-1]  # elapsed<left in every line
    with progress(total=2, desc="quiet", file=log, log_seconds=5) as bar:  # at most one line per interval
        before = len(log.getvalue().splitlines())
        bar.update(1)
        bar.update(1)
    assert len(log.getvalue().splitlines()) - before == 1  # the final line only
