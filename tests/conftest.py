"""Shared fixtures: the tiny workflow run once per session through the real snakemake."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from filelock import FileLock

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


# `make test` runs the suite on 2 pytest-xdist workers (-n 2 --dist loadscope): the suite waits on Slurm,
# pods and subprocesses much of the time, so a second worker fills the second core. Each module runs whole
# on one worker (its module fixtures are built once); modules named here share a scope with another one:
# a Slurm on this machine owns fixed ports and /etc/slurm/slurm.conf, so the two Slurm modules take turns.
# (xdist_group marks would say the same, but --dist loadgroup groups nothing with pytest-xdist 3.8.0 and
# pytest 9.2.0: xdist renames items through Node._nodeid, which pytest 9 no longer reads.)
SHARED_SCOPES = {"tests/test_slurm_nodes.py": "tests/test_slurm.py"}
# The longest modules first, so that the other worker is not left idle at the end.
LONGEST_FIRST = ["tests/test_slurm.py", "tests/test_slurm_nodes.py", "tests/test_k8s.py", "tests/test_controller.py"]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep their order


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SHARED_SCOPES.get(module, module)

    return ModuleScheduling(config, log)


def session_root(tmp_path_factory, worker_id: str) -> Path:
    """A folder that every xdist worker of this pytest session sees (the session's own one without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id) -> Path:
    """The whole tiny workflow through snakemake (local profile), then its HTML report: built once per
    pytest session, by whichever xdist worker asks first (the others wait on the lock, then read it)."""
    root = session_root(tmp_path_factory, worker_id) / "tiny-shared"
    root.mkdir(exist_ok=True)
    run_dir, done = root / "results", root / "done"
    with FileLock(root / "lock"):
        if not done.exists():
            override = ["--config", f"run_dir={run_dir}"]
            run([str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", str(TINY), *override],
                timeout=900)
            run([str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", str(TINY), *override,
                 "--report", str(run_dir / "report.html")], timeout=300)
            done.touch()
    return run_dir


def tiny_args(run_dir: Path | None = None) -> list[str]:
    args = ["--config", str(REPO / "config.yaml"), "--config", str(TINY)]
    if run_dir is not None:
        args += ["--override", json.dumps({"run_dir": str(run_dir)})]
    return args


# --- A local S3 server (moto), for the Kubernetes profile's dry run and its run against tests/k8s_api.py ---
S3_PLUGIN = "snakemake-storage-plugin-s3==0.3.6"
MOTO = "moto[server]==5.2.5"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 (stopped by PID afterwards), and a Python that has this environment's
    packages plus the S3 storage plugin and moto: this venv's when it has both (make venv installs them),
    else a venv made here that sees this one's packages and pip-installs the two. Yields .python, .bin (its
    bin folder), .endpoint, .credentials (the SNAKEMAKE_STORAGE_S3_* variables) and .create_bucket(name)."""
    try:
        import moto  # noqa: F401
        import snakemake_storage_plugin_s3  # noqa: F401
        python = sys.executable
    except ImportError:
        venv = tmp_path_factory.mktemp("s3-venv")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        Path(site, "_wm_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        python = str(venv / "bin" / "python")
        install = subprocess.run([python, "-m", "pip", "install", "-q", S3_PLUGIN, MOTO], capture_output=True,
                                 text=True, timeout=300)
        if install.returncode != 0:
            pytest.skip(f"cannot install {S3_PLUGIN} and {MOTO}: {install.stderr[-500:]}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"

    def create_bucket(name: str) -> None:
        code = ("import boto3, sys; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', "
                "aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])")
        deadline = time.monotonic() + 30
        while subprocess.run([python, "-c", code, endpoint, name], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and server.poll() is None, "moto's S3 server did not start"
            time.sleep(0.3)

    try:
        yield SimpleNamespace(python=python, bin=str(Path(python).parent), endpoint=endpoint,
                              create_bucket=create_bucket,
                              credentials={"SNAKEMAKE_STORAGE_S3_ENDPOINT_URL": endpoint,
                                           "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": "test",
                                           "SNAKEMAKE_STORAGE_S3_SECRET_KEY": "test"})
    finally:
        server.terminate()
        server.wait(timeout=10)
