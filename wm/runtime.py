"""Process set-up shared by every stage: torch's thread count, the device, seeds, and the
signature of the CPU code paths that decide how torch rounds (recorded beside results)."""

from __future__ import annotations

import os
import platform
import re

import torch

# Environment variables that force torch's CPU kernels onto another code path.
CODE_PATH_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR",
                       "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE")
# CPU features that MKL's and oneDNN's dispatchers choose kernels by.
DISPATCH_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                  "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


_TORCH_DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice: the cores it may use


TRAIN_DTYPES = ("auto", "float32", "bfloat16")


def torch_threads(config: dict, per_rank: bool) -> int:
    """The thread count a process uses: config's torch_threads, or for 0 ("auto") torch's default
    (its usable cores) in the one-process stages (V, encode, M) and one per rank in the MPI stages
    (C, evaluate), where the ranks give the parallelism and one thread each is fastest per core."""
    if config["torch_threads"] > 0:
        return config["torch_threads"]
    return 1 if per_rank else _TORCH_DEFAULT_THREADS


def setup_torch(config: dict, seed: int, per_rank: bool = False) -> torch.device:
    """Apply the thread count, seed torch, and pick the device (CUDA when present and allowed)."""
    torch.set_num_threads(torch_threads(config, per_rank))
    torch.manual_seed(seed % 2**63)
    wanted = config["device"]
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for but torch sees no CUDA device")
    device = torch.device("cuda" if wanted in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def dream_device(config: dict) -> torch.device:
    """Where M's dream runs (CMA-ES in the dream, a dream score): the GPU when there is one and config's
    device allows it."""
    wanted = config["device"]
    return torch.device("cuda" if wanted in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, train_dtype: str = "auto"):
    """V's and M's training steps in bf16 autocast (config train_dtype): `auto` on CUDA only (the VAE
    and LSTM train stably in it), `bfloat16` on the CPU too (AMX / AVX512-BF16 kernels: V's step
    ~1.5x with channels_last, M's LSTM unchanged, benchmarks/bench_train.py), `float32` nowhere."""
    if train_dtype not in TRAIN_DTYPES:
        raise ValueError(f"train_dtype is {train_dtype!r}; expected one of {list(TRAIN_DTYPES)}")
    enabled = train_dtype == "bfloat16" or (train_dtype == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def numerics_signature() -> dict:
    """What decides the bits of torch's CPU results in this process: the CPU kind and features that
    MKL and oneDNN dispatch on, torch's own kernel capability, the library versions, any variable
    forcing another code path, and the thread count. Two processes with equal signatures compute
    the same returns; with different ones, returns drift (docs/numerics.md measures by how much)."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    onednn = re.search(r"MKL-DNN v([\w.]+)", config)
    return {
        "machine": platform.machine(),
        "cpu_vendor": info.get("vendor_id", "unknown"),
        "cpu_family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}",
        "cpu_flags": [flag for flag in DISPATCH_FLAGS if flag in flags],
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl": mkl.group(1) if mkl else None,
        "onednn": onednn.group(1) if onednn else None,
        "code_path_variables": {name: os.environ[name] for name in CODE_PATH_VARIABLES if name in os.environ},
        "torch_threads": torch.get_num_threads(),
    }


def signature_differences(recorded: dict, current: dict) -> list[str]:
    """Keys on which two numerics signatures differ, as 'key: recorded -> current'."""
    return [f"{key}: {recorded.get(key)} -> {current.get(key)}"
            for key in sorted(set(recorded) | set(current)) if recorded.get(key) != current.get(key)]
