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
import copy
import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "docs" / "results" / "budget"
ROW_MARK = "WMROW "
INFO_MARK = "WMINFO "
# Open MPI refuses to start as root without these; MPICH ignores them.
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
CARRIED_CHECK = ["gymnasium", "Box2D", "pygame-ce", "zarr", "numcodecs", "cma", "numba", "mpi4py", "numpy",
                 "torch", "triton", "matplotlib", "pillow", "PyYAML", "jsonschema", "tqdm", "imageio", "mpich"]


# The cp312 wheels carried to the GPU node (device-wheels/, git-ignored: `device_check.sh --download-wheels`
# fetches them): what its Python lacks for wm (gymnasium[box2d], zarr, cma, their pure-Python deps), what
# it may lack (matplotlib, pillow, yaml, jsonschema, tqdm, imageio and theirs), and mpich for a launcher.
DEVICE_WHEELS = [
    "gymnasium==1.4.0", "Box2D==2.3.10", "pygame-ce==2.5.8", "cloudpickle==3.1.3", "farama-notifications==0.0.6",
    "zarr==3.1.6", "numcodecs==0.16.6", "donfig==0.8.1.post1", "google-crc32c==1.9.0", "typing-extensions==4.16.0",
    "packaging==25.0", "cma==4.5.0", "mpich==5.0.2",
    "PyYAML==6.0.4", "jsonschema==4.26.0", "jsonschema-specifications==2025.9.1", "referencing==0.37.0",
    "rpds-py==2026.9.1", "attrs==26.1.0", "tqdm==4.70.1", "imageio==2.38.2", "pillow==13.0.0",
    "matplotlib==3.11.2", "contourpy==1.3.3", "cycler==0.12.1", "kiwisolver==1.5.1", "pyparsing==3.3.3",
    "python-dateutil==2.9.0.post0", "six==1.17.0",
]
# matplotlib.pyplot imports fontTools: its pure-Python wheel is 1.2 MiB, the compiled one 5.2.
DEVICE_WHEELS_ANY = ["fonttools==4.68.0"]
CARRY_LIMIT = 64 * 2**20
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any"]


def download_wheels(args) -> int:
    """pip download the carried wheels for CPython 3.12 on x86-64 Linux into --wheels (run here, with PyPI)."""
    target = Path(args.wheels)
    target.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", "--python-version", "3.12", "--implementation", "cp",
            "--only-binary=:all:", "--no-deps", "--disable-pip-version-check", "-d", str(target)]
    for pins, platforms in ((DEVICE_WHEELS, PLATFORMS), (DEVICE_WHEELS_ANY, ["any"])):
        subprocess.run(base + [f"--platform={p}" for p in platforms] + pins, check=True)
    wheels = sorted(target.glob("*.whl"))
    total = sum(w.stat().st_size for w in wheels)
    for wheel in wheels:
        print(f"{wheel.stat().st_size / 2**20:7.2f} MiB  {wheel.name}")
    print(f"{total / 2**20:7.1f} MiB in {len(wheels)} wheels in {target} (the run tool carries 64 MiB)")
    return 0 if total < CARRY_LIMIT else 1


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


# --------------------------------------------------------------------------------------------
# --setup: install the carried wheels this Python lacks (no network, no deps) and find an MPI
# launcher that starts mpi4py ranks. Needs nothing but the standard library; prints `export`
# lines for the .sh to eval, and its log on stderr.
# --------------------------------------------------------------------------------------------

def wheel_project(wheel: Path) -> str:
    return wheel.name.split("-")[0]


def installed_version(project: str) -> str | None:
    import importlib.metadata as metadata

    try:
        return metadata.version(project)
    except metadata.PackageNotFoundError:
        return None


def unpack_wheel(wheel: Path, site: Path) -> None:
    """pip install --target's layout without pip: the packages into site, a wheel's .data/data
    (bin/, lib/, include/ of a prefix) and .data/scripts into site and site/bin."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = info.filename.split("/")
            if parts[0].endswith(".data") and len(parts) > 2:
                kind, rest = parts[1], parts[2:]
                base = {"scripts": site / "bin", "headers": site / "include"}.get(kind, site)
                dest = base.joinpath(*rest)
            else:
                dest = site / info.filename
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(dest, "wb") as target:
                shutil.copyfileobj(source, target)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                dest.chmod(mode)


def install_wheels(wheels: list[Path], site: Path) -> str:
    if not wheels:
        return "nothing to install"
    has_pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0
    if has_pip:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
                   "--disable-pip-version-check", "--quiet", "--target", str(site), *map(str, wheels)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode == 0:
            return "pip install --no-deps --no-index --target"
        log(f"setup: pip failed ({result.stderr.strip().splitlines()[-1:]}); unpacking the wheels instead")
    for wheel in wheels:
        unpack_wheel(wheel, site)
    return "unpacked (no pip)"


# Rank 0 alone prints (the launcher interleaves the ranks' output), after a gather over the world.
MPI_HELLO = ("from mpi4py import MPI; c = MPI.COMM_WORLD; r = c.gather(c.Get_rank()); "
             "c.Get_rank() or print('wm-mpi', c.Get_size(), r, ' '.join(MPI.Get_library_version().split()[:3]), flush=True)")


def launcher_flavour(launcher: str) -> tuple[str, list[str]]:
    """('Open MPI' | 'MPICH' | ..., extra arguments): Open MPI needs --oversubscribe on nodes whose
    hardware threads it does not count as slots."""
    try:
        text = subprocess.run([launcher, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    if "Open MPI" in text or "OpenRTE" in text or "PRRTE" in text:
        return "Open MPI", ["--oversubscribe"]
    if "HYDRA" in text or "MPICH" in text:
        return "MPICH (Hydra)", []
    return (text.strip().splitlines() or ["unknown launcher"])[0][:60], []


def mpi_works(launcher: str, extra: list[str], env: dict) -> tuple[bool, str]:
    try:
        result = subprocess.run([launcher, *extra, "-n", "2", sys.executable, "-c", MPI_HELLO],
                                capture_output=True, text=True, timeout=90, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, first_line(exc)
    hello = [line.split(" ", 4) for line in result.stdout.splitlines() if line.startswith("wm-mpi ")]
    if len(hello) == 1 and hello[0][1:4] == ["2", "[0,", "1]"]:
        return True, hello[0][4] if len(hello[0]) > 4 else "?"
    why = (result.stderr.strip().splitlines() or [f"worlds of {[h[1] for h in hello]} (2 ranks of one world wanted)"])[-1]
    return False, f"exit {result.returncode}: {why[:160]}"


def find_mpi(site: Path, wheels: list[Path], env: dict) -> dict:
    """The first launcher that starts 2 mpi4py ranks of one world: $WM_MPIEXEC, mpiexec or mpirun
    on PATH, this Python's bin/; failing those, the carried mpich wheel's (installed for it here)."""
    tried = []
    candidates = [os.environ.get("WM_MPIEXEC"), shutil.which("mpiexec"), shutil.which("mpirun"),
                  str(Path(sys.executable).parent / "mpiexec"), str(Path(sys.prefix) / "bin" / "mpiexec")]
    seen = set()
    for launcher in candidates:
        if not launcher or launcher in seen or not os.access(launcher, os.X_OK):
            continue
        seen.add(launcher)
        flavour, extra = launcher_flavour(launcher)
        ok, detail = mpi_works(launcher, extra, env)
        tried.append(f"{launcher} ({flavour}): {'works' if ok else detail}")
        if ok:
            return {"WM_MPIEXEC": launcher, "WM_MPIEXEC_ARGS": " ".join(extra),
                    "WM_MPI_NOTE": f"{launcher} ({flavour}, found here); {detail}"}
    mpich = [w for w in wheels if wheel_project(w).lower() == "mpich"]
    if mpich and installed_version("mpich") is None:
        unpack_wheel(mpich[0], site)  # pip --target drops a wheel's .data/data (mpich's bin/ and lib/)
        launcher, libmpi = site / "bin" / "mpiexec", site / "lib" / "libmpi.so.12"
        env = {**env, "MPI4PY_LIBMPI": str(libmpi)}
        ok, detail = mpi_works(str(launcher), [], env)
        tried.append(f"{launcher} (carried {mpich[0].name}): {'works' if ok else detail}")
        if ok:
            return {"WM_MPIEXEC": str(launcher), "WM_MPIEXEC_ARGS": "", "MPI4PY_LIBMPI": str(libmpi),
                    "WM_MPI_NOTE": f"{launcher} (MPICH from the carried wheel); {detail}"}
    return {"WM_MPIEXEC": "", "WM_MPIEXEC_ARGS": "", "WM_MPI_NOTE": "no working MPI launcher: " + "; ".join(tried or ["none found"])}


def setup(args) -> int:
    wheels_dir, site = Path(args.wheels), Path(args.site)
    exports: dict[str, str] = {}
    try:
        marker = site / ".wm-device-site"  # only a folder this set-up made is emptied
        if site.exists() and any(site.iterdir()):
            if not marker.exists():
                raise RuntimeError(f"{site} is not empty and was not made by this set-up: name another (WM_DEVICE_SITE)")
            shutil.rmtree(site)
        site.mkdir(parents=True, exist_ok=True)
        marker.touch()
        wheels = sorted(wheels_dir.glob("*.whl")) if wheels_dir.is_dir() else []
        log(f"setup: {len(wheels)} carried wheels in {wheels_dir} "
            f"({sum(w.stat().st_size for w in wheels) / 2**20:.1f} MiB), Python {sys.version.split()[0]} at {sys.executable}")
        missing, present = [], []
        for wheel in wheels:
            project = wheel_project(wheel)
            if project.lower() == "mpich":
                continue  # only if no MPI launcher works (find_mpi)
            version = installed_version(project)
            (present if version else missing).append(f"{project} {version}" if version else wheel)
        how = install_wheels(missing, site)
        log(f"setup: installed into {site} ({how}): {', '.join(wheel_project(w) for w in missing) or 'none'}")
        log(f"setup: already here, kept: {', '.join(present) or 'none'}")
        env = {**os.environ, **MPI_ENV}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(site), os.environ.get("PYTHONPATH")]))
        exports.update(find_mpi(site, wheels, env))
        log(f"setup: MPI: {exports['WM_MPI_NOTE']}")
    except Exception as exc:  # the run goes on; its parts say what is missing
        exports.setdefault("WM_MPI_NOTE", f"set-up failed: {first_line(exc)}")
        log(f"setup: failed: {first_line(exc)}")
    for key, value in {**MPI_ENV, **exports}.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


# --------------------------------------------------------------------------------------------
# The parts. Each runs in a child process (`--part NAME`) and reports rows on stdout.
# --------------------------------------------------------------------------------------------

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


def measure(step, sync, warmup: int, min_steps: int, min_seconds: float, max_steps: int = 10**6) -> tuple[int, float, float]:
    """(timed steps, their seconds, seconds of the warm-up steps: cudnn autotuning, compilation)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warm = time.perf_counter() - t0
    steps, start = 0, time.perf_counter()
    while steps < min_steps or (time.perf_counter() - start < min_seconds and steps < max_steps):
        step()
        steps += 1
    sync()
    return steps, time.perf_counter() - start, warm


def presets(quick: bool) -> dict:
    """The config the V and M steps take their sizes from: the paper preset, or config.yaml when quick."""
    from wm.config import load_config

    files = [REPO / "config.yaml"] + ([] if quick else [REPO / "presets" / "paper.yaml"])
    return load_config(files)


def torch_setup(device: str = "auto"):
    """wm.runtime.setup_torch, as the training stages call it (threads, seed, cudnn/TF32 on CUDA)."""
    from wm.runtime import setup_torch

    return setup_torch({"torch_threads": 0, "device": device}, 0)


def syncer(device):
    import torch

    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def precision(device, bf16: bool):
    """wm.runtime.autocast in bf16 (config train_dtype bfloat16, on CUDA or the CPU) when bf16, else off."""
    from wm.runtime import autocast

    return autocast(device, "bfloat16" if bf16 else "float32")


def vae_stepper(device, bf16: bool, channels_last: bool, compiled: bool, settings: dict):
    """A step of wm/vae/train.py's loop, line for line (frames from numpy each step, as the reader gives them)."""
    import numpy as np
    import torch

    from wm.vae.model import ConvVAE, to_input, vae_loss

    torch.manual_seed(0)
    model = ConvVAE(settings["z_dim"]).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    frames = np.random.default_rng(0).integers(0, 256, (settings["batch_size"], 64, 64, 3), dtype=np.uint8)
    losses = []

    def step():
        x = to_input(torch.from_numpy(frames).to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with precision(device, bf16):
            recon, mu, logvar = forward(x)
        loss, recon_term, kl = vae_loss(recon.float(), x, mu.float(), logvar.float(), settings["kl_tolerance"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append([loss.item(), recon_term.item(), kl.item()][0])

    return step, losses


def mdn_stepper(device, bf16: bool, compiled: bool, settings: dict):
    """A step of wm/mdn/train.py's loop: its batch_loss (autocast inside), backward, clip, Adam."""
    import numpy as np
    import torch

    import wm.mdn.train as mdn_train
    from wm.mdn.model import MDNRNN

    torch.manual_seed(0)
    model = MDNRNN(32, hidden=settings["hidden"], gaussians=settings["gaussians"]).to(device)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    generator = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(0)
    b, t = settings["batch_size"], settings["seq_len"]
    batch = {"mu": rng.normal(0, 1, (b, t + 1, 32)).astype(np.float32),
             "logvar": rng.normal(-2, 0.3, (b, t + 1, 32)).astype(np.float32),
             "actions": rng.uniform(-1, 1, (b, t, 3)).astype(np.float32),
             "mask": np.ones((b, t), np.float32)}
    losses = []

    def step():
        loss, _, _ = mdn_train.batch_loss(forward, batch, device, generator,
                                          train_dtype="bfloat16" if bf16 else "float32")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), settings["grad_clip"])
        optimizer.step()
        losses.append(loss.item())

    return step, losses


def finite_note(losses) -> str:
    import math

    return "" if all(math.isfinite(v) for v in losses) else f"NON-FINITE LOSS ({losses[-1]})"


def run_v_variant(ctx, device, bf16, channels_last, compiled, settings, label, baseline=False):
    step, losses = vae_stepper(device, bf16, channels_last, compiled, settings)
    gpu = device.type == "cuda"
    warmup = 3 if (gpu or compiled or not ctx.quick) else 1
    seconds = (2.5 if gpu else 4.0) if not ctx.quick else 1.5
    steps, spent, warm = measure(step, syncer(device), warmup, 3 if not ctx.quick else 2, seconds)
    fps = settings["batch_size"] * steps / spent
    notes = [f"{steps} steps", f"warm-up {warm:.1f} s" if compiled else "", finite_note(losses)]
    ctx.row("V step", device.type, label, fps, "frames/s", "; ".join(n for n in notes if n), baseline)


def v_group(quick: bool) -> tuple[dict, str]:
    settings = presets(quick)["vae"]
    return settings, f"batch {settings['batch_size']}"


def part_v_step(ctx) -> None:
    import torch

    settings, size = v_group(ctx.quick)
    device = torch_setup()
    threads = torch.get_num_threads()
    cpu = torch.device("cpu")
    run_v_variant(ctx, cpu, False, False, False, settings,
                  f"fp32 NCHW eager, {threads} threads, {size} (wm's CPU path)", baseline=True)
    run_v_variant(ctx, cpu, False, True, False, settings, f"fp32 channels_last eager, {threads} threads")
    if blocker := cuda_blocker():
        ctx.row("V step", "cuda", "fp32/bf16 x NCHW/channels_last, eager", note=blocker)
        return
    for bf16, cl in [(False, False), (True, False), (False, True), (True, True)]:
        label = f"{'bf16' if bf16 else 'fp32 (TF32)'} {'channels_last' if cl else 'NCHW'} eager"
        label += " (wm's CUDA path)" if bf16 and cl else ""
        try:
            run_v_variant(ctx, device, bf16, cl, False, settings, label)
        except Exception as exc:
            ctx.row("V step", "cuda", label, note=f"failed: {first_line(exc)}")


def compile_skipped(ctx, group: str, device_type: str) -> bool:
    """Whether torch.compile cannot run on `device_type` here; if so, one row says why."""
    blocker = (device_type == "cuda" and cuda_blocker()) or compile_blocker(device_type)
    if blocker:
        ctx.row(group, device_type, "torch.compile", note=blocker)
    return bool(blocker)


def part_v_compile(ctx, device_type: str) -> None:
    import torch

    settings, size = v_group(ctx.quick)
    device = torch_setup("cpu" if device_type == "cpu" else "auto")
    if compile_skipped(ctx, "V step", device_type):
        return
    variants = [(False, False)] if device_type == "cpu" else [(True, True), (False, False)]
    for bf16, cl in variants:
        label = f"{'bf16' if bf16 else 'fp32'} {'channels_last' if cl else 'NCHW'} torch.compile"
        if device_type == "cpu":
            label += f", {torch.get_num_threads()} threads"
        try:
            run_v_variant(ctx, device, bf16, cl, True, settings, label)
        except Exception as exc:
            ctx.row("V step", device_type, label, note=f"failed: {first_line(exc)}{python_headers_note()}")


def run_m_variant(ctx, device, bf16, compiled, settings, label, baseline=False):
    step, losses = mdn_stepper(device, bf16, compiled, settings)
    gpu = device.type == "cuda"
    warmup = 2 if (gpu or compiled) else 1
    seconds = (2.5 if gpu else 3.0) if not ctx.quick else 1.0
    steps, spent, warm = measure(step, syncer(device), warmup, 2, seconds)
    rate = settings["batch_size"] * settings["seq_len"] * steps / spent
    notes = [f"{steps} steps", f"warm-up {warm:.1f} s" if compiled else "", finite_note(losses)]
    ctx.row("M step", device.type, label, rate, "steps/s", "; ".join(n for n in notes if n), baseline)


def m_group(quick: bool) -> tuple[dict, str]:
    settings = presets(quick)["mdn"]
    return settings, f"batch {settings['batch_size']} x {settings['seq_len']}"


def part_m_step(ctx) -> None:
    import torch

    settings, size = m_group(ctx.quick)
    device = torch_setup()
    cpu = torch.device("cpu")
    run_m_variant(ctx, cpu, False, False, settings,
                  f"fp32 eager, {torch.get_num_threads()} threads, {size} (wm's CPU path)", baseline=True)
    if blocker := cuda_blocker():
        ctx.row("M step", "cuda", "fp32/bf16, eager", note=blocker)
        return
    for bf16 in (False, True):
        label = "bf16 eager (wm's CUDA path)" if bf16 else "fp32 (TF32) eager"
        try:
            run_m_variant(ctx, device, bf16, False, settings, label)
        except Exception as exc:
            ctx.row("M step", "cuda", label, note=f"failed: {first_line(exc)}")


def part_m_compile(ctx, device_type: str) -> None:
    import torch

    settings, _ = m_group(ctx.quick)
    device = torch_setup("cpu" if device_type == "cpu" else "auto")
    if compile_skipped(ctx, "M step", device_type):
        return
    bf16 = device_type == "cuda"
    label = f"{'bf16' if bf16 else 'fp32'} torch.compile"
    if device_type == "cpu":
        label += f", {torch.get_num_threads()} threads"
    try:
        run_m_variant(ctx, device, bf16, True, settings, label)
    except Exception as exc:
        ctx.row("M step", device_type, label, note=f"failed: {first_line(exc)}{python_headers_note()}")


def device_v_agent(vae, mdn, variant, z_sample, device, bf16):
    """wm's agent with V's encoder on `device`: the package's agent keeps V on the CPU, so this
    moves the frames there and z back; M, C and the environments stay on the CPU."""
    import torch

    from wm.envs import get_env
    from wm.episodes.agent import WorldModelAgent
    from wm.vae.model import to_input

    class DeviceVAgent(WorldModelAgent):
        def __init__(self):
            super().__init__(vae, mdn, variant, z_sample, env=get_env("car_racing"))
            self.vae = self.vae.to(device)

        @torch.inference_mode()
        def encode(self, frames, noise):
            x = to_input(torch.from_numpy(frames).to(device)).contiguous(memory_format=torch.channels_last)
            with precision(device, bf16):
                mu, logvar = self.vae.encode(x)
            mu, logvar = mu.float().cpu(), logvar.float().cpu()
            if not self.z_sample:
                return mu
            return mu + torch.exp(0.5 * logvar) * torch.from_numpy(noise)

    return DeviceVAgent()


def part_evaluator(ctx) -> None:
    import numpy as np
    import torch

    from wm.controller.model import load_controller
    from wm.episodes.agent import WorldModelAgent
    from wm.episodes.runner import Episode, run_batch
    from wm.envs.car_racing import FAST_ENV_ID, PLUGIN as CAR_RACING, make_env
    from wm.mdn.model import load_mdn
    from wm.runtime import torch_threads
    from wm.vae.model import load_vae

    torch.set_num_threads(torch_threads({"torch_threads": 0}, per_rank=True))  # as a CMA-ES or evaluate rank
    episodes, steps, envs = (4, 100, 4) if ctx.quick else (16, 300, 16)
    vae, mdn = load_vae(MODELS / "vae.pt"), load_mdn(MODELS / "mdn.pt")
    controller = load_controller(MODELS / "controller_z_h.pt", vae.z_dim, mdn.hidden, CAR_RACING.action_dim)
    pool = [make_env(FAST_ENV_ID) for _ in range(envs)]
    seeds = list(range(2000, 2000 + episodes))
    size = f"{episodes} episodes x {steps} steps, lockstep x{envs}, {FAST_ENV_ID}, committed V/M/C z_h, 1 thread; "

    def run(agent, label, device, baseline=False):
        run_batch(FAST_ENV_ID, agent, [Episode(controller.params, 1, 1)] * 2, 10, envs=pool[:2])  # warm-up
        spent, frames, returns = {}, 0, []
        start = time.perf_counter()
        for b in range(0, episodes, envs):
            chunk = [Episode(controller.params, s, s) for s in seeds[b : b + envs]]
            results = run_batch(FAST_ENV_ID, agent, chunk, steps, envs=pool[: len(chunk)], timings=spent)
            frames += sum(r.steps for r in results)
            returns += [r.total_return for r in results]
        seconds = time.perf_counter() - start
        split = ", ".join(f"{k} {1e3 * v / frames:.3f}" for k, v in spent.items())
        ctx.row("evaluator", device, label, frames / seconds, "frames/s",
                (size if baseline else "") + f"ms/frame: {split}; mean return {np.mean(returns):.1f}", baseline)

    run(WorldModelAgent(copy.deepcopy(vae), mdn, controller.variant, controller.z_sample, env=CAR_RACING),
        "V on the CPU (wm's agent, channels_last)", "cpu", baseline=True)
    if blocker := cuda_blocker():
        ctx.row("evaluator", "cuda", "V on the GPU", note=blocker)
        return
    gpu = torch_setup()  # cudnn and TF32 as the training stages set them; it also sets the threads:
    torch.set_num_threads(1)
    for bf16 in (False, True):
        label = f"V on the GPU, {'bf16' if bf16 else 'fp32 (TF32)'}; M, C, env on the CPU"
        try:
            run(device_v_agent(copy.deepcopy(vae), mdn, controller.variant, controller.z_sample, gpu, bf16),
                label, "cuda")
        except Exception as exc:
            ctx.row("evaluator", "cuda", label, note=f"failed: {first_line(exc)}")


def loader_config(ctx, device: str) -> dict:
    from wm.config import load_config

    shards, episodes, steps = (2, 1, 200) if ctx.quick else (8, 2, 1000)
    override = {
        "device": device, "seed": 0,
        "env": {"id": "wm/CarRacing-v3"},
        "collect": {"shards": shards, "episodes_per_shard": episodes, "max_steps": steps, "policy": "random_controller"},
        # Speed, not quality: a short run, and a collapse guard that always passes.
        "vae": {"epochs": 1 if ctx.quick else 2, "batch_size": 100, "guard_frames": 100 if ctx.quick else 500,
                "guard_max_ratio": 1.0e9},
        "mdn": {"epochs": 1, "seq_len": 50 if ctx.quick else 100, "batch_size": 4 if ctx.quick else 16},
    }
    return load_config([REPO / "config.yaml"], json.dumps(override))


def _collect(job):
    config, shard, out = job
    from wm.stages.collect import collect_shard

    collect_shard(config, shard, Path(out))
    return out


def part_loader(ctx) -> None:
    import multiprocessing

    import numpy as np

    from benchmarks.bench_loader import rate
    from wm.rollouts.readers import frame_batches, open_stores
    from wm.vae.train import train_vae

    config = loader_config(ctx, "cpu")
    shards = ctx.work / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    jobs = [(config, s, str(shards / f"shard-{s:03d}.zarr")) for s in range(config["collect"]["shards"])]
    processes = min(len(jobs), usable_cores())
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        paths = [Path(p) for p in pool.map(_collect, jobs)]
    stores = open_stores(paths, "rollouts")
    frames = sum(s.frames for s in stores)
    ctx.row("collect", "cpu", f"collect_shard x{len(jobs)} shards in {processes} processes", frames / (time.perf_counter() - start),
            "frames/s", f"{frames} frames in all (incl. start-up)")
    buffer = config["vae"]["shuffle_episodes"]
    read = rate(frame_batches(stores, 100, buffer, np.random.default_rng(0)), 10**9, len)
    epochs = config["vae"]["epochs"]
    ctx.row("V loop", "cpu", f"reader alone: frame_batches, buffer {buffer} episodes, one epoch", read, "frames/s")
    loops = {}
    for device in ("cpu", "cuda"):
        if device == "cuda" and (blocker := cuda_blocker()):
            ctx.row("V loop", "cuda", "train_vae", note=blocker)
            continue
        out = ctx.work / f"vae-{device}"
        try:
            train_vae(loader_config(ctx, device), paths, out)
            summary = json.loads((out / "summary.json").read_text())
            loops[device] = summary["frames_per_second"]
            note = f"{frames} frames x {epochs} epochs, {summary['seconds']} s; reader / loop {read / loops[device]:.1f}x"
            ctx.row("V loop", device, "train_vae (reader + step + checkpoint), batch 100", loops[device],
                    "frames/s", note, baseline=device == "cpu")
        except Exception as exc:
            ctx.row("V loop", device, "train_vae", note=f"failed: {first_line(exc)}")


def part_m_loop(ctx) -> None:
    from wm.mdn.train import train_mdn
    from wm.rollouts.readers import open_stores
    from wm.vae.encode import encode_shard

    shards = sorted((ctx.work / "shards").glob("shard-*.zarr"))
    if not shards:
        ctx.row("encode", "cpu", "encode_shard", note="skipped: no shards (the loader part did not write them)")
        return
    frames = sum(s.frames for s in open_stores(shards, "rollouts"))
    for device in ("cpu", "cuda"):
        if device == "cuda" and (blocker := cuda_blocker()):
            ctx.row("encode", "cuda", "encode_shard + train_mdn", note=blocker)
            continue
        config = loader_config(ctx, device)
        latents = [ctx.work / f"latents-{device}" / s.name for s in shards]
        try:
            start = time.perf_counter()
            for shard, out in zip(shards, latents):
                out.parent.mkdir(parents=True, exist_ok=True)
                encode_shard(config, MODELS / "vae.pt", shard, out)
            ctx.row("encode", device, f"encode_shard x{len(shards)} (committed V, batch 500)",
                    frames / (time.perf_counter() - start), "frames/s", baseline=device == "cpu")
        except Exception as exc:
            ctx.row("encode", device, "encode_shard", note=f"failed: {first_line(exc)}")
            continue
        out = ctx.work / f"mdn-{device}"
        try:
            train_mdn(config, latents, out)
            summary = json.loads((out / "summary.json").read_text())
            with open(out / "metrics.csv") as f:
                seconds = float(list(csv.DictReader(f))[-1]["seconds"])  # the epoch, with its validation
            transitions = sum(int(s.lengths.sum()) - len(s.lengths) for s in open_stores(latents, "latents"))
            m = config["mdn"]
            ctx.row("M loop", device, f"train_mdn, 1 epoch + validation, batch {m['batch_size']} x {m['seq_len']}",
                    transitions / seconds, "steps/s", f"{summary['windows']} windows, {seconds:.1f} s",
                    baseline=device == "cpu")
        except Exception as exc:
            ctx.row("M loop", device, "train_mdn", note=f"failed: {first_line(exc)}")


def generation_seconds(log_csv: Path) -> tuple[float, float, float]:
    """The second generation's (seconds, frames, utilization) from train-controller's log.csv
    (the first includes start-up), as benchmarks/bench_scaling.py reads it."""
    with open(log_csv) as f:
        rows = list(csv.DictReader(f))
    return (float(rows[1]["seconds"]) - float(rows[0]["seconds"]), float(rows[1]["frames"]),
            float(rows[1]["utilization"]))


def part_cmaes(ctx, deadline: float) -> None:
    import yaml

    launcher = os.environ.get("WM_MPIEXEC", "")
    extra = shlex.split(os.environ.get("WM_MPIEXEC_ARGS", ""))
    if not launcher:
        local = Path(sys.executable).parent / "mpiexec"
        launcher = str(local) if local.exists() else (shutil.which("mpiexec") or "")
    cores = usable_cores()
    popsize, rollouts, steps, envs, counts = (4, 2, 50, 2, [1, 2]) if ctx.quick else (32, 4, 150, 4, [1, 4, 8, 16])
    ctx.info(mpi=os.environ.get("WM_MPI_NOTE") or f"{launcher or 'none'} (found by device_check.py)")
    size = f"population {popsize} x {rollouts} rollouts x {steps} steps, chunks of {envs}, wm/CarRacing-v3"
    if not launcher:
        ctx.row("CMA-ES gen", "cpu", size, note=f"skipped: {os.environ.get('WM_MPI_NOTE', 'no mpiexec found')}")
        return
    times = {}
    for ranks in counts:
        label = f"{ranks} rank{'s' if ranks > 1 else ''}, one generation of wm train-controller"
        if ranks > cores:
            ctx.row("CMA-ES gen", "cpu", label, note=f"skipped: {cores} cores here")
            continue
        config = ctx.work / f"cmaes-{ranks}.yaml"
        config.write_text(yaml.safe_dump({"env": {"id": "wm/CarRacing-v3"}, "controller": {
            "popsize": popsize, "rollouts": rollouts, "generations": 2, "max_steps": steps, "eval_every": 0,
            "ranks": ranks, "envs_per_rank": envs}}))
        out = ctx.work / f"cmaes-{ranks}"
        command = [launcher, *extra, "-n", str(ranks), sys.executable, "-m", "wm.cli", "train-controller",
                   "--config", str(REPO / "config.yaml"), "--config", str(config), "--variant", "z_h",
                   "--vae", str(MODELS / "vae.pt"), "--mdn", str(MODELS / "mdn.pt"), "--out", str(out)]
        try:
            subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True,
                           timeout=max(5.0, deadline - time.time() - 2))
            seconds, frames, busy = generation_seconds(out / "log.csv")
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["?"]
            ctx.row("CMA-ES gen", "cpu", label, note=f"failed: exit {exc.returncode}: {tail[0][:160]}")
            continue
        except Exception as exc:
            ctx.row("CMA-ES gen", "cpu", label, note=f"failed: {first_line(exc)}")
            break
        times[ranks] = seconds
        first = min(times)
        efficiency = times[first] * first / (ranks * seconds)
        ctx.row("CMA-ES gen", "cpu", label, frames / seconds, "frames/s",
                (f"{size}; " if ranks == counts[0] else "")
                + f"generation {seconds:.2f} s, efficiency {efficiency:.1%}, ranks busy {busy:.1%}",
                baseline=ranks == counts[0])


def part_preflight(ctx) -> None:
    """Versions, the device, the compilers, and a first touch of every dependency (env steps warm
    numba's cache for the ranks, a Zarr round trip, a CMA-ES ask/tell), torch or not."""
    import importlib
    import importlib.metadata as metadata

    info = {"python": sys.version.split()[0], "executable": sys.executable, "cores": usable_cores(),
            "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?"),
            "versions": {}, "site": os.environ.get("PYTHONPATH", "")}
    for project in CARRIED_CHECK:
        try:
            info["versions"][project] = metadata.version(project)
        except metadata.PackageNotFoundError:
            info["versions"][project] = None
    missing = []
    for module in ("numpy", "gymnasium", "Box2D", "pygame", "zarr", "numcodecs", "cma", "numba", "mpi4py",
                   "matplotlib.pyplot", "PIL", "yaml", "jsonschema", "tqdm", "imageio.v3", "torch"):
        try:
            importlib.import_module(module)
        except Exception as exc:
            missing.append(f"{module} ({first_line(exc)})")
    ctx.row("setup", "cpu", f"Python {info['python']}, {info['cores']} cores ({info['cpu']})",
            note="imports: all fine" if not missing else "cannot import: " + "; ".join(missing))
    try:
        import numpy as np

        from wm.envs.car_racing import FAST_ENV_ID, make_env

        for env_id in (FAST_ENV_ID, "CarRacing-v3"):
            env = make_env(env_id)
            env.reset(seed=1)
            start = time.perf_counter()
            for _ in range(50):
                env.step(np.array([0.0, 0.5, 0.0]))
            ctx.row("setup", "cpu", f"{env_id}: 50 steps", 50 / (time.perf_counter() - start), "frames/s",
                    "numba's cache warmed for the ranks" if env_id == FAST_ENV_ID else "")
    except Exception as exc:
        ctx.row("setup", "cpu", "environments", note=f"failed: {first_line(exc)}")
    try:
        import numpy as np
        import zarr
        from zarr.codecs import BloscCodec, BloscShuffle

        values = np.random.default_rng(0).integers(0, 255, (2, 10, 64, 64, 3), dtype=np.uint8)
        group = zarr.open_group(str(ctx.work / "preflight.zarr"), mode="w")
        group.create_array("frames", shape=values.shape, dtype=values.dtype, chunks=(1, 10, 64, 64, 3),
                           compressors=BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.bitshuffle))[...] = values
        assert (zarr.open_group(str(ctx.work / "preflight.zarr"), mode="r")["frames"][...] == values).all()
        import cma

        es = cma.CMAEvolutionStrategy(np.zeros(8), 0.1, {"popsize": 4, "verbose": -9, "seed": 1})
        es.tell(candidates := es.ask(), [float((c**2).sum()) for c in candidates])
        ctx.row("setup", "cpu", "Zarr write/read (Blosc zstd) and a CMA-ES ask/tell", note="fine")
    except Exception as exc:
        ctx.row("setup", "cpu", "Zarr and CMA-ES", note=f"failed: {first_line(exc)}")
    ctx.row("setup", "cpu", "MPI launcher", note=os.environ.get("WM_MPI_NOTE") or "not set up by device_check.sh")
    try:
        import torch
    except Exception as exc:
        ctx.row("setup", "cuda", "torch", note=f"skipped: torch not importable ({first_line(exc)})")
        ctx.info(**info)
        return
    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda, torch_threads=torch.get_num_threads(),
                cxx=shutil.which("g++") or shutil.which("c++"), cc=shutil.which("cc") or shutil.which("gcc"))
    if blocker := cuda_blocker():
        ctx.row("setup", "cuda", "CUDA", note=blocker)
    else:
        props = torch.cuda.get_device_properties(0)
        x = torch.randn(256, 256, device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = (x @ x).float().sum().item()
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", memory_gib=round(props.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version(), bf16=torch.cuda.is_bf16_supported())
        ctx.row("setup", "cuda", f"{props.name}, sm_{props.major}{props.minor}, {info['memory_gib']} GiB",
                note=f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {info['cudnn']}, "
                     f"bf16 {info['bf16']}; bf16 matmul finite: {y == y}")
    for device_type in ("cpu", "cuda"):
        blocker = compile_blocker(device_type)
        ctx.row("setup", device_type, "torch.compile prerequisites",
                note=(blocker or "compiler found") + python_headers_note())
    ctx.info(**info)


# name -> (function, cap in seconds (full, quick), needs torch), in the order they run: what matters most
# first, the compilations (slow, and likeliest to hang) last, so that the budget cuts only those.
PARTS = {
    "preflight": (part_preflight, (60, 60), False),
    "v_step": (part_v_step, (75, 60), True),
    "m_step": (part_m_step, (75, 45), True),
    "evaluator": (part_evaluator, (75, 60), True),
    "loader": (part_loader, (100, 90), True),
    "m_loop": (part_m_loop, (60, 60), True),
    "cmaes": (None, (150, 90), True),
    "v_compile_cuda": (lambda ctx: part_v_compile(ctx, "cuda"), (90, 30), True),
    "m_compile_cuda": (lambda ctx: part_m_compile(ctx, "cuda"), (60, 30), True),
    "m_compile_cpu": (lambda ctx: part_m_compile(ctx, "cpu"), (60, 60), True),
    "v_compile_cpu": (lambda ctx: part_v_compile(ctx, "cpu"), (75, 110), True),  # the slowest to compile: last
}


def run_part(args) -> int:
    import traceback

    ctx = Context(args)
    code = 0
    try:
        if args.part == "cmaes":
            part_cmaes(ctx, args.deadline)
        else:
            PARTS[args.part][0](ctx)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: torch.compile's worker pool can take many seconds to stop


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
