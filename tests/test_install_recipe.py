"""containers/install.sh, the one install recipe of the OCI image and the Apptainer image, run for real
in a fresh virtual environment; and the conda environment of `--sdm conda` (envs/), which must carry
the same pins and end with a working `wm`.

The recipe test is a real install into an empty venv (about a minute): torch from the local CPU wheel
(never the multi-GB CUDA download), every other pin through pip as configured on this machine. The
opt-in container test (tests/test_container.py) runs the same recipe inside the image build."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO

import wm

TORCH_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")


def overlay_venv(path: Path) -> Path:
    """A new venv (the base interpreter of this one) that also sees this environment's packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # this environment's packages, pip included (--without-pip saves seconds)
    Path(site, "_wm_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


def base_python() -> str:
    """The interpreter this venv was made from (a fresh venv must not inherit this one's packages)."""
    return getattr(sys, "_base_executable", sys.executable)


def test_install_recipe_in_a_fresh_venv(tmp_path):
    wheel = Path(os.environ.get("WM_TORCH_WHEEL", TORCH_WHEEL))
    if not wheel.exists():
        pytest.skip(f"no local torch wheel at {wheel} (set WM_TORCH_WHEEL): the recipe would download "
                    "torch's multi-GB CUDA build")
    venv = tmp_path / "venv"
    env = clean_env(SDL_VIDEODRIVER="dummy", PYTHON=base_python(), TORCH_WHEEL=str(wheel))
    had_build = (REPO / "build").exists()
    start = time.monotonic()
    result = subprocess.run(["bash", str(REPO / "containers" / "install.sh"), str(venv), str(REPO)],
                            env=env, capture_output=True, text=True, timeout=900)
    print(f"containers/install.sh into a fresh venv: {time.monotonic() - start:.0f} s")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "No broken requirements found" in output
    assert re.search(r"torch 2\.13\.0\+cpu .*gymnasium 1\.4\.0, mpi4py 4\.1\.2", output), output[-3000:]
    assert re.search(r"rank 0 of 2: MPICH Version:\s+5\.0\.2", output), output[-3000:]
    assert f"wm {wm.__version__}" in output
    # its own wm (installed, not editable), run with nothing of this environment on PATH
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import wm; print(wm.__file__)"], cwd="/",
                           env=clean_env(), capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), where
    help_text = subprocess.run([str(venv / "bin" / "wm"), "--help"], env=clean_env(), capture_output=True,
                               text=True, check=True).stdout
    assert "train-controller" in help_text
    assert had_build or not (REPO / "build").exists(), "install.sh built in the project folder"


def pip_requirements(env_file: Path) -> list[str]:
    spec = yaml.safe_load(env_file.read_text())
    (pip,) = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    return pip


def test_conda_env_has_the_pins_of_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    spec = yaml.safe_load((REPO / "envs" / "wm.yaml").read_text())
    assert "python=3.11" in spec["dependencies"] and project["requires-python"] == ">=3.11,<3.12"
    assert sorted(pip_requirements(REPO / "envs" / "wm.yaml")) == sorted(project["dependencies"])


def test_conda_post_deploy_script_gives_a_working_wm(tmp_path):
    """Snakemake runs envs/wm.post-deploy.sh inside the new conda env, from the project folder. Here a
    fresh venv stands in for the conda env (conda is not installable here: no conda channel reachable)."""
    venv = overlay_venv(tmp_path / "env")
    project = tmp_path / "checkout"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "wm"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, project / name)
    env = clean_env(PATH=f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin")  # what `conda activate` does
    result = subprocess.run(["bash", str(REPO / "envs" / "wm.post-deploy.sh")], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"wm {wm.__version__}" in result.stdout
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import wm; print(wm.__file__)"], cwd="/",
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(project / "wm" / "__init__.py"), where  # editable: the checkout's code

    elsewhere = subprocess.run(["bash", str(REPO / "envs" / "wm.post-deploy.sh")], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=60)
    assert elsewhere.returncode != 0 and "not the wm checkout" in elsewhere.stderr
