"""The device check's parts, in the order they run, and the child process that runs one
(benchmarks/device_check.py --part NAME), with the preflight part: versions, the device, the
compilers, and a first touch of every dependency.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from device_check_common import (Context, compile_blocker, cuda_blocker, first_line, python_headers_note,
                                 usable_cores)
from device_check_stages import part_cmaes, part_evaluator, part_loader, part_m_loop
from device_check_steps import part_m_compile, part_m_step, part_v_compile, part_v_step

# --------------------------------------------------------------------------------------------
# The parts. Each runs in a child process (`--part NAME`) and reports rows on stdout.
# --------------------------------------------------------------------------------------------

# The projects whose versions the preflight reports: the carried wheels' (device_check_setup.py), torch's.
CARRIED_CHECK = ["gymnasium", "Box2D", "pygame-ce", "zarr", "numcodecs", "cma", "numba", "mpi4py", "numpy",
                 "torch", "triton", "matplotlib", "pillow", "PyYAML", "jsonschema", "tqdm", "imageio", "mpich"]


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
