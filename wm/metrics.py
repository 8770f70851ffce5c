"""Watching a run while it trains: TensorBoard event files, and progress lines in the logs.

Event files. V, M, C and `wm evaluate` write TensorBoard scalars (and the returns' histogram)
into `<out>/tensorboard/` of their command, beside the CSV and JSON files, which stay the source of
the plots and the report. In a workflow run that is one run directory per stage and variant under
run_dir (vae/tensorboard, mdn/tensorboard, controller/VARIANT/tensorboard, eval/VARIANT/tensorboard),
so `tensorboard --logdir RUN_DIR` shows a run whole. `tensorboard: false` in the config writes none and
never imports tensorboard. Only the process that owns a stage's results writes: train-controller
and evaluate run their body on rank 0 only.

Resume. A stage opens its writer with the first step it is about to write: the new event file
starts with a purge marker at that step (SummaryWriter's purge_step), and TensorBoard's readers drop
every event at or past it that an earlier, killed run wrote. So a resumed or extended run continues
its curves with each step once, and a run started over (its checkpoint deleted) replaces the old
curves. A stage writes a step's events before the checkpoint that holds the step and flushes them
just before saving it, so a kill loses no event that the resumed run will not write again.

Progress lines. `progress` is tqdm as before on a terminal. In a log file (snakemake's logs, a batch
job's output) it prints whole lines instead of carriage-return updates: at most one per LOG_SECONDS,
and at least one per LOG_SECONDS while the bar is open even when nothing advanced (a long chunk of
episodes), each with how far the stage is, its rate and the time left."""

from __future__ import annotations

import math
import numbers
import sys
import threading
from pathlib import Path

import numpy as np
from tqdm import tqdm

LOG_SECONDS = 30.0  # a log file gets one progress line per this many seconds
FLUSH_SECONDS = 10  # how long an event may wait in memory before it reaches the file (and TensorBoard)


class MetricsWriter:
    """TensorBoard scalars and histograms of one stage (and variant) in `folder`.

    `first_step`: the first step this run writes; events at or past it left by an earlier run of the
    same folder are dropped by TensorBoard's readers. Disabled (`enabled=False`), every method does
    nothing. Non-finite values (NaN, inf) are skipped, never written."""

    def __init__(self, folder: Path, first_step: int = 0, enabled: bool = True):
        self.folder = Path(folder)
        self._writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # an environment built before tensorboard was a dependency
            print(f"metrics: no TensorBoard event files in {self.folder} ({exc}); "
                  "pip install tensorboard, or set tensorboard: false", flush=True)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.folder), purge_step=first_step, flush_secs=FLUSH_SECONDS)

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def scalars(self, step: int, mapping: dict, prefix: str = "") -> None:
        """One scalar per numeric, finite value of `mapping`, tagged `prefix/key`."""
        if self._writer is None:
            return
        for key, value in mapping.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                continue
            self._writer.add_scalar(f"{prefix}/{key}" if prefix else key, float(value), int(step))

    def histogram(self, tag: str, values, step: int) -> None:
        if self._writer is None:
            return
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            self._writer.add_histogram(tag, values, int(step))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def metrics_writer(config: dict, out: Path, first_step: int) -> MetricsWriter:
    """The writer of the stage whose command writes to `out`: `<out>/tensorboard/`, unless the config
    turns TensorBoard off (top-level `tensorboard`, which changes no result and is fingerprinted nowhere)."""
    return MetricsWriter(Path(out) / "tensorboard", first_step, enabled=config.get("tensorboard", True))


class _LogLines:
    """A log file's view of a tqdm bar: every status tqdm prints becomes one whole line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class Progress(tqdm):
    """tqdm that, when its stream is not a terminal, prints whole lines, one per `log_seconds` at
    most and at least one per `log_seconds` while open (a timer thread refreshes a bar that did not
    advance: the elapsed time and the time left move on)."""

    def __init__(self, *args, log_seconds: float = LOG_SECONDS, **kwargs):
        stream = kwargs.pop("file", None) or sys.stderr
        self._ticker = None
        if _is_terminal(stream):
            kwargs.setdefault("mininterval", 2)
            super().__init__(*args, file=stream, **kwargs)
            return
        kwargs["mininterval"] = log_seconds
        super().__init__(*args, file=_LogLines(stream), **kwargs)
        if self.disable:
            return
        self._log_seconds = log_seconds
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="progress-ticker")
        self._ticker.start()

    def _tick(self) -> None:
        # Its own clock: tqdm's last_print_t/last_print_n are the iterator's bookkeeping, and moving the
        # time alone made an iterated bar count its items twice (183 of 100 episodes shown).
        last_tick = 0.0
        while not self._stopped.wait(self._log_seconds / 3):
            now = self._time()
            if now - max(self.last_print_t, last_tick) >= self._log_seconds:
                last_tick = now
                self.refresh()

    def close(self) -> None:
        if getattr(self, "_ticker", None) is not None:
            self._stopped.set()
            if self._ticker is not threading.current_thread():
                self._ticker.join()
            self._ticker = None
        super().close()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def progress(iterable=None, **kwargs) -> Progress:
    """A progress bar for a stage's log (tqdm's arguments: total, desc, unit, initial, disable...)."""
    return Progress(iterable, **kwargs)


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 20 min': a time left, as a log line shows it."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60} min"
