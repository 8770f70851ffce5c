"""Shared fixtures: the tiny workflow run once per session through the real snakemake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
BIN = Path(sys.executable).parent


def run(cmd: list[str], timeout: float = 600, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command from the repository root with the venv first on PATH."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **kwargs.pop("env", {})}
    result = subprocess.run(cmd, cwd=kwargs.pop("cwd", REPO), env=env, capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
                             f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


def wm(*args, **kwargs) -> subprocess.CompletedProcess:
    return run([str(BIN / "wm"), *map(str, args)], **kwargs)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole tiny workflow through snakemake (local profile), then its HTML report."""
    run_dir = tmp_path_factory.mktemp("tiny") / "results"
    override = ["--config", f"run_dir={run_dir}"]
    run([str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", str(TINY), *override], timeout=900)
    run([str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", str(TINY), *override,
         "--report", str(run_dir / "report.html")], timeout=300)
    return run_dir


def tiny_args(run_dir: Path | None = None) -> list[str]:
    args = ["--config", str(REPO / "config.yaml"), "--config", str(TINY)]
    if run_dir is not None:
        args += ["--override", json.dumps({"run_dir": str(run_dir)})]
    return args
