"""The OCI image, for real (opt-in: WM_CONTAINER_TEST=1, `make test-container`; a few minutes).

Builds containers/Dockerfile with podman through containers/build.sh, from a Debian 12 base made
offline with debootstrap (no registry is reachable here) and torch from the local CPU wheel; then
checks the version label, the non-root user, that the proxy's CA bundle (a build secret) is in no
file of the image, `wm --help`, and runs one rule of the tiny workflow inside the container with a
copy of the project folder bind-mounted, and `wm data check` on what it wrote.

Needs root (podman as root; apt-get for podman, runc and debootstrap if missing). podman runs with
runc and fixed ulimits (a private containers.conf): docs/cluster.md, "Podman on the test machine",
says why."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO

import wm

pytestmark = pytest.mark.skipif(not os.environ.get("WM_CONTAINER_TEST"),
                                reason="opt-in: WM_CONTAINER_TEST=1 (make test-container) builds the image, minutes")

BASE = "localhost/debian-base:bookworm"
TAG = "localhost/wm:test"
TORCH_WHEEL = Path(os.environ.get("WM_TORCH_WHEEL", "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"))
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
[engine]
runtime = "runc"
"""
TIMINGS: dict[str, float] = {}


def sh(cmd: list[str], env: dict, timeout: float = 900, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def debian_mirror() -> str:
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if path.exists():
            match = re.search(r"(?:URIs:\s*|^deb\s+)(https?://\S+/debian)\b", path.read_text(), re.M)
            if match:
                return match.group(1)
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """podman (+ runc, debootstrap) ready, a private containers.conf, and the offline Debian 12 base."""
    if os.geteuid() != 0:
        pytest.skip("the container test runs podman as root")
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")]
    apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if missing:
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "podman", "runc", "debootstrap"]
        if subprocess.run(install, env=apt_env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=apt_env, check=True, capture_output=True)
            subprocess.run(install, env=apt_env, check=True, capture_output=True)
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = dict(os.environ, CONTAINERS_CONF=str(conf), PATH=f"/usr/sbin:/sbin:{os.environ['PATH']}")
    if sh(["podman", "image", "exists", BASE], env, check=False).returncode != 0:
        start = time.monotonic()
        rootfs = tmp_path_factory.mktemp("rootfs")
        sh(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), debian_mirror()], env)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        sh(["podman", "import", "-", BASE], env, stdin=tar.stdout)
        tar.wait()
        shutil.rmtree(rootfs, ignore_errors=True)
        TIMINGS["debootstrap + import of the base image"] = time.monotonic() - start
    return env


@pytest.fixture(scope="module")
def image(podman):
    if not TORCH_WHEEL.exists():
        pytest.skip(f"no local torch wheel at {TORCH_WHEEL} (WM_TORCH_WHEEL): the build would download GBs")
    args = [str(REPO / "containers" / "build.sh"), "--engine", "podman", "--tag", TAG, "--base", BASE,
            "--torch-wheel", str(TORCH_WHEEL)]
    ca = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(ca).exists():
        args += ["--ca-bundle", ca]  # this machine's TLS-inspecting proxy; a build secret, not a layer
    start = time.monotonic()
    build = sh(args, podman, timeout=1800)
    TIMINGS["containers/build.sh (podman build)"] = time.monotonic() - start
    check = (build.stdout + build.stderr).split("== install.sh: check")[-1].split("== install.sh: done")[0]
    print("\ninstall.sh's check inside the build:" + check.rstrip())
    yield TAG
    print()
    for what, seconds in TIMINGS.items():
        print(f"{what}: {seconds:.0f} s")
    if not os.environ.get("WM_CONTAINER_KEEP"):
        sh(["podman", "rmi", "-f", TAG], podman, check=False)


def run(podman_env: dict, image: str, *cmd: str, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return sh(["podman", "run", "--rm", "--network", "none", *args, image, *cmd], podman_env)


def test_version_label_and_non_root_user(podman, image):
    (info,) = json.loads(sh(["podman", "image", "inspect", image], podman).stdout)
    config = info["Config"]
    assert config["Labels"]["org.opencontainers.image.version"] == wm.__version__
    assert config["User"] == "wm"
    assert run(podman, image, "id", "-u").stdout.strip() == "1000"
    assert run(podman, image, "wm", "--version").stdout.strip() == f"wm {wm.__version__}"
    assert not any(e.startswith(("PIP_CERT=", "SSL_CERT_FILE=", "REQUESTS_CA_BUNDLE=")) for e in config.get("Env", []))


def test_wm_help(podman, image):
    out = run(podman, image).stdout  # the image's default command is `wm --help`
    assert "train-controller" in out and "collect" in out
    assert "usage: wm" in run(podman, image, "wm", "--help").stdout


def test_no_proxy_certificate_in_the_image(podman, image):
    """The CA bundle went in as a build secret: no file of the image holds the proxy's certificates."""
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if not extra:
        pytest.skip("this machine has no extra CA certificates to look for")
    for cert in extra:
        lines = [l for l in cert.read_text().splitlines() if l and not l.startswith("-----")]
        needle = max(lines, key=len)
        bundle = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
        assert needle in bundle.read_text(), f"{cert.name} is not in {bundle}, the bundle the build got"
        found = run(podman, image, "sh", "-c",
                    'grep -rlF -- "$1" /etc /opt /root /home /usr/local /usr/share/ca-certificates /tmp /var 2>/dev/null; true',
                    "_", needle).stdout.strip()
        assert not found, f"{cert.name} is in the image: {found}"


def test_one_rule_of_the_tiny_workflow_runs_in_the_container(podman, image, tmp_path):
    """snakemake inside the image runs `collect` for one shard on the bind-mounted project folder."""
    project = tmp_path / "project"
    for name in ["Snakefile", "config.yaml", "workflow", "envs", "tests/configs"]:
        src, dest = REPO / name, project / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)
    shutil.chown(project, 1000, 1000)
    for path in project.rglob("*"):
        os.chown(path, 1000, 1000, follow_symlinks=False)  # the image's user must write there
    mount = ("-v", f"{project}:/work", "-w", "/work")
    start = time.monotonic()
    result = run(podman, image, "snakemake", "results-tiny/data/shard-0000.zarr", "--cores", "2",
                 "--configfile", "tests/configs/tiny.yaml", args=mount)
    TIMINGS["one rule (collect) in the container"] = time.monotonic() - start
    assert "1 of 1 steps (100%) done" in result.stderr, result.stderr[-3000:]
    # the Doom plug-in's game runs in the image too (vizdoom's wheel bundles the scenario; headless)
    result = run(podman, image, "snakemake", "results-tiny-doom/data/shard-0000.zarr", "--cores", "2",
                 "--configfile", "tests/configs/tiny.yaml", "tests/configs/tiny-doom.yaml", args=mount)
    assert "1 of 1 steps (100%) done" in result.stderr, result.stderr[-3000:]
    check = run(podman, image, "wm", "data", "check", "results-tiny/data/shard-0000.zarr", args=mount)
    assert "1 of 1 stores ok" in check.stdout, check.stdout
    shard = project / "results-tiny" / "data" / "shard-0000.zarr"
    assert shard.stat().st_uid == 1000  # written by the image's non-root user
