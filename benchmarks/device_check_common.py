"""What every part of the device check shares (benchmarks/device_check.py is the entry point): the
paths, the markers a part's rows and info are printed with, the MPI environment, and the checks of
what this machine lacks (CUDA, a compiler for torch.compile).

The device check's modules import each other by their flat names: benchmarks/ is sys.path[0] of
`python benchmarks/device_check.py`, of the part processes it starts, and of bench_train.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "docs" / "results" / "budget"
ROW_MARK = "WMROW "
INFO_MARK = "WMINFO "
# Open MPI refuses to start as root without these; MPICH ignores them.
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160] if text else ''}"


def usable_cores() -> int:
    """CPUs this process may run on, lowered to a cgroup CPU quota if there is one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    return cores


class Context:
    def __init__(self, args):
        self.quick, self.work = args.quick, Path(args.work)

    def row(self, group: str, device: str, setting: str, value: float | None = None, unit: str = "",
            note: str = "", baseline: bool = False) -> None:
        row = {"group": group, "device": device, "setting": setting, "value": value, "unit": unit,
               "note": note, "baseline": baseline}
        print(ROW_MARK + json.dumps(row), flush=True)

    def info(self, **values) -> None:
        print(INFO_MARK + json.dumps(values, default=str), flush=True)


def cuda_blocker() -> str | None:
    """Why the CUDA rows cannot run here, or None."""
    import torch

    if torch.version.cuda is None:
        return f"skipped: no CUDA (torch {torch.__version__} is a CPU build)"
    if not torch.cuda.is_available():
        return f"skipped: no CUDA device (torch {torch.__version__} built for CUDA {torch.version.cuda})"
    return None


def compile_blocker(device_type: str) -> str | None:
    """Why torch.compile cannot work on this device type here, or None."""
    if device_type == "cpu":
        if not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
            return "skipped: no C++ compiler (g++, c++, clang++) for inductor's CPU backend"
        return None
    try:
        import triton  # noqa: F401
    except Exception as exc:
        return f"skipped: no triton for inductor's CUDA backend ({first_line(exc)})"
    if not (os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        return "skipped: no C compiler (triton builds its CUDA launcher with one)"
    return None


def python_headers_note() -> str:
    include = sysconfig.get_paths().get("include", "")
    return "" if Path(include, "Python.h").is_file() else f"; no Python.h in {include}"
