"""How much another CPU's rounding can move the committed results: the first evaluation chunk of each
committed controller under forced CPU code paths.

    .venv/bin/python analysis/numerics_spread.py [--results docs/results/budget] [--variants z_h z] [--modes ...]
        [--redraws 32] [--add-redraws]

tests/test_results.py reruns the first evaluation chunk (episodes 0..15 of the evaluation seeds, one
lockstep batch of `evaluate.envs_per_rank` = 16, one torch thread, wm/CarRacing-v3, the config recorded in
returns.json) of each committed controller of a results set (docs/results/<set>/) and requires the returns
in <set>/eval/<variant>/returns.json bit for bit where the CPU code path is the record's (elsewhere: the
bound measured here).
That holds only on the kind of CPU that recorded them: torch's CPU kernels (MKL's sgemm and VML exp/tanh,
oneDNN's convolutions and LSTM, ATen's vectorised element-wise ops) dispatch per CPU, round differently,
and 1000 steps of closed-loop driving amplify one flipped bit into a different episode.

Here every mode reruns that chunk in a fresh subprocess with environment variables that force one of
those libraries onto another code path (set before torch is imported), plus once with 2 torch threads
and once with lockstep batches of 8. Each worker also reports, from MKL's and oneDNN's own verbose
output, which branch / ISA actually ran (so a setting the library ignored is visible) and the bits of
a few probe products. Then it drives the chunk --redraws times (32) on the record's own path with other
z-noise streams: a fresh draw of every episode, which shows a controller's rare failures that a few code
paths may not. The parent writes <set>/numerics.json (machine, per-mode returns, steps, seconds, identity
with the record, the redraws, the spread of both and the bound proposed from the wider) and prints one
table (--add-redraws: only the redraws, added to an existing numerics.json). docs/numerics.md discusses it.

Run one process at a time on an otherwise quiet core: the timings are the speed of each mode."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results" / "budget"
CHUNK = 16  # controller.envs_per_rank of the budget preset: the size of the evaluation's first chunk
CONTROLLED = ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
              "MKL_VERBOSE", "ONEDNN_VERBOSE", "DNNL_VERBOSE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def first_chunk_runner(results: Path, variant: str, batch: int):
    """Builds what tests/test_results.py builds for `variant` of the results set `results` and returns
    (run, agent, params, track_seeds): run() drives episodes 0..15 of the evaluation seeds in lockstep
    batches of `batch` (16 = the test's one chunk) and returns [(total_return, steps)]; agent and params
    feed the kernel probes. run(redraw=R) drives the same tracks with z-noise stream R instead of the
    evaluation's: a fresh draw of each episode. (wm is imported here, after the mode's variables are set.)"""
    from wm.config import validate_config
    from wm.envs import env_of
    from wm.episodes.agent import load_trained_agent
    from wm.episodes.runner import make_chunks
    from wm.stages.evaluate import evaluation_runner, evaluation_seeds
    from wm.seeding import seeds

    record = results / "eval" / variant / "returns.json"
    scored = json.loads(record.read_text())
    config = validate_config(scored["config"], str(record))  # as it was scored
    assert config["evaluate"]["envs_per_rank"] == scored["envs_per_rank"] == CHUNK, (record, scored["envs_per_rank"])
    agent, controller = load_trained_agent(results / "vae.pt", results / "mdn.pt", results / f"controller_{variant}.pt",
                                           env=env_of(config))
    assert controller.variant == variant, (controller.variant, variant)
    tracks, noises = evaluation_seeds(config)
    runner = evaluation_runner(config | {"evaluate": config["evaluate"] | {"envs_per_rank": batch}}, agent,
                               env_id="wm/CarRacing-v3")

    def run(redraw: int | None = None) -> list[tuple[float, int]]:
        chunk_noises = noises[:CHUNK] if redraw is None else seeds(config["seed"], "numerics_redraw", CHUNK, redraw)
        chunks = make_chunks(controller.params[None], tracks[:CHUNK], chunk_noises, batch)
        return [(r.total_return, r.steps) for chunk in chunks for r in runner.run(chunk, training=False)]

    return run, agent, controller.params, tracks[:CHUNK]


# --- the modes -----------------------------------------------------------------------------------------

# name -> (environment, torch threads, lockstep batch, what it stands for)
MODES: dict[str, tuple[dict[str, str], int, int, str]] = {
    "default": ({}, 1, CHUNK, "this machine's own dispatch (what recorded returns.json)"),
    "mkl_auto": ({"MKL_CBWR": "AUTO"}, 1, CHUNK, "MKL CNR on the CPU's own branch (fixed cache sizes)"),
    "mkl_compatible": ({"MKL_CBWR": "COMPATIBLE"}, 1, CHUNK, "MKL SSE2 branch without rcpps/rsqrtps"),
    "mkl_sse4_2": ({"MKL_CBWR": "SSE4_2"}, 1, CHUNK, "MKL SSE4.2 branch"),
    "mkl_avx2": ({"MKL_CBWR": "AVX2"}, 1, CHUNK, "MKL AVX2 branch"),
    "mkl_avx512": ({"MKL_CBWR": "AVX512"}, 1, CHUNK, "MKL AVX-512 branch"),
    "onednn_avx512_core": ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, 1, CHUNK, "oneDNN AVX-512 without AMX/VNNI/BF16"),
    "onednn_avx2": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, 1, CHUNK, "oneDNN at most AVX2"),
    "onednn_sse41": ({"ONEDNN_MAX_CPU_ISA": "SSE41"}, 1, CHUNK, "oneDNN at most SSE4.1"),
    "aten_avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, 1, CHUNK, "ATen kernels compiled for AVX2"),
    "aten_default": ({"ATEN_CPU_CAPABILITY": "default"}, 1, CHUNK, "ATen kernels without explicit SIMD"),
    "aten_onednn_avx2": ({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, 1, CHUNK,
                         "the issue's combination (on the AMD EPYC it left track 0 unchanged)"),
    "all_avx2": ({"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, 1, CHUNK,
                 "every library on its AVX2 path, as on an AVX2-only Intel CPU"),
    "mkl_compatible_strict": ({"MKL_CBWR": "COMPATIBLE,STRICT"}, 1, CHUNK, "MKL SSE2 branch, strict CNR"),
    "mkl_compatible_onednn_avx2": ({"MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2"}, 1, CHUNK,
                                   "MKL's vendor-neutral branch, oneDNN capped at AVX2 (Zen 2/3 and Zen 4 alike)"),
    "portable": ({"MKL_CBWR": "COMPATIBLE,STRICT", "ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
                 1, CHUNK, "the most portable combination"),
    "threads_2": ({}, 2, CHUNK, "default dispatch, 2 torch threads"),
    "batch_8": ({}, 1, 8, "default dispatch, the 16 episodes as two lockstep batches of 8"),
}


# --- the worker (one mode, one variant, in a fresh process) --------------------------------------------

@contextlib.contextmanager
def captured_stdout():
    """Collects what C libraries write to file descriptor 1 (MKL and oneDNN verbose output)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        text: list[str] = []
        try:
            yield text
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))


def digest(tensor) -> str:
    return hashlib.sha256(tensor.detach().contiguous().numpy().tobytes()).hexdigest()[:12]


def kernel_probes(agent, params, batch: int) -> dict:
    """Which branch each library ran, read from its own verbose output, the bits of a few products,
    and the models' time per lockstep step (V + C + M on `batch` frames), all after the measured run."""
    import numpy as np
    import torch

    out: dict = {"aten_cpu_capability": torch.backends.cpu.get_cpu_capability()}
    # probe inputs from numpy: torch.randn's own bits depend on ATen's vectorisation
    g = np.random.default_rng(2)
    a = torch.from_numpy(g.standard_normal((64, 1024), dtype=np.float32))
    b = torch.from_numpy(g.standard_normal((1024, 32), dtype=np.float32))
    frames = np.random.default_rng(0).integers(0, 256, (batch, 64, 64, 3), dtype=np.uint8)
    noise = np.random.default_rng(1).standard_normal((batch, agent.vae.z_dim), dtype=np.float32)
    p = torch.from_numpy(np.repeat(params[None], batch, 0).astype(np.float32))
    h = torch.zeros(batch, agent.mdn.hidden)
    x = torch.from_numpy(g.uniform(-6, 6, 4096).astype(np.float32))

    def step():
        z = agent.encode(frames, noise)
        actions = agent.act(p, z, h)
        state = agent.remember(z, actions, None) if agent.uses_memory else None
        return z, actions, state

    try:
        with captured_stdout() as text, torch.inference_mode():
            with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                product = a @ b
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON), \
                    torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                z, actions, state = step()
        log = text[0]
        header = re.search(r"MKL_VERBOSE oneMKL[^\n]*?architecture (?:applications )?(.*?), Lnx", log)
        out["mkl_isa"] = header.group(1) if header else None
        out["mkl_cnr"] = sorted(set(re.findall(r"CNR:(\S+)", log)))
        out["mkl_calls"] = sorted(set(re.findall(r"MKL_VERBOSE (\w+)\(", log)))
        isa = re.search(r"onednn_verbose,[^\n]*,cpu,isa:([^\n]*)", log)
        out["onednn_isa"] = isa.group(1).strip() if isa else None
        out["onednn_kernels"] = sorted({f"{m.group(1)}:{m.group(2)}" for m in re.finditer(
            r"onednn_verbose,[^\n]*?primitive,exec,cpu,(convolution|rnn|matmul|inner_product),([^,]+),", log)})
        with torch.inference_mode():
            out["bits"] = {"sgemm_64x1024x32": digest(a @ b), "tanh": digest(torch.tanh(x)),
                           "exp": digest(torch.exp(x)),
                           "encode_z": digest(z), "act": digest(actions)}
            if state is not None:
                out["bits"]["lstm_h"] = digest(state[0])
            step()
            best = math.inf  # the least of 7 repeats: the machine is shared, the least is the least disturbed
            for _ in range(7):
                start = time.perf_counter()
                for _ in range(20):
                    step()
                best = min(best, (time.perf_counter() - start) / 20)
            out["models_ms_per_frame"] = round(1e3 * best / batch, 4)
        del product
    except Exception as exc:  # a moved method must not cost the measured run
        out["probe_error"] = f"{type(exc).__name__}: {exc}"
    return out


def worker(results: Path, variant: str, threads: int, batch: int) -> None:
    import torch

    torch.set_num_threads(threads)
    run, agent, params, tracks = first_chunk_runner(results, variant, batch)
    start, cpu = time.perf_counter(), time.process_time()
    episodes = run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    frames = sum(s for _, s in episodes)
    result = {"returns": [r for r, _ in episodes], "steps": [s for _, s in episodes], "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
              "frames_per_second": round(frames / seconds, 1), "torch_threads": torch.get_num_threads(),
              "track_seeds": tracks,
              "probes": kernel_probes(agent, params, batch)}
    print("NUMERICS_RESULT " + json.dumps(result), flush=True)


def redraw_worker(results: Path, variant: str, count: int) -> None:
    """The record's own code path, with `count` other z-noise streams: what a fresh draw of each episode
    can move. A flipped bit redraws an episode from the step where the trajectories part; this redraws it
    from the start, so it is the wider of the two (measured on the solve set: docs/numerics.md)."""
    import torch

    torch.set_num_threads(1)
    run, _, _, tracks = first_chunk_runner(results, variant, CHUNK)  # the models loaded once
    returns = []
    for redraw in range(count):
        returns.append([r for r, _ in run(redraw)])
        print(f"{variant} redraw {redraw + 1}/{count}: chunk mean {sum(returns[-1]) / CHUNK:.2f}", file=sys.stderr, flush=True)
    print("NUMERICS_RESULT " + json.dumps({"returns": returns, "track_seeds": tracks}), flush=True)


def run_worker(results: Path, worker_args: list[str], env_vars: dict[str, str], show_progress: bool = False):
    """This script's worker in a fresh process with only `env_vars` choosing the code path: (its
    NUMERICS_RESULT or None, the completed process)."""
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env.update(env_vars)
    env.setdefault("SDL_VIDEODRIVER", "dummy")
    done = subprocess.run([sys.executable, __file__, "--results", str(results), *worker_args], env=env, cwd=REPO,
                          stdout=subprocess.PIPE, stderr=None if show_progress else subprocess.PIPE, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("NUMERICS_RESULT ")]
    if done.returncode or not lines:
        return None, done
    return json.loads(lines[-1].removeprefix("NUMERICS_RESULT ")), done


def run_redraws(results: Path, variant: str, count: int) -> dict:
    result, done = run_worker(results, ["--redraw-worker", variant, str(count)], {}, show_progress=True)
    if result is None:
        sys.exit(f"numerics_spread: the redraws of {variant} failed (exit {done.returncode})")
    return result


def run_mode(results: Path, variant: str, name: str) -> dict:
    env_vars, threads, batch, _ = MODES[name]
    result, done = run_worker(results, ["--worker", variant, str(threads), str(batch)], env_vars)
    return result if result is not None else {"error": (done.stderr or done.stdout).strip().splitlines()[-5:]}


# --- the machine ------------------------------------------------------------------------------------------

def machine() -> dict:
    import torch

    cpu: dict = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "model name", "cpu family", "model", "stepping", "flags", "cache size") \
                    and key not in cpu:
                cpu[key] = value.strip()
    flags = set(cpu.pop("flags", "").split())
    wanted = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "avx_vnni")
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    onednn = re.search(r"MKL-DNN v([\d.]+)", config)
    hypervisor = "hypervisor" in flags
    return {
        "vendor_id": cpu.get("vendor_id"), "model_name": cpu.get("model name"),
        "cpu_family": int(cpu["cpu family"]) if "cpu family" in cpu else None,
        "model": int(cpu["model"]) if "model" in cpu else None,
        "stepping": cpu.get("stepping"), "cache_size": cpu.get("cache size"), "hypervisor": hypervisor,
        "isa_flags": [f for f in wanted if f in flags], "logical_cpus": os.cpu_count(),
        "torch": torch.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl": mkl.group(1) if mkl else None, "onednn": onednn.group(1) if onednn else None,
        "python": platform.python_version(),
    }


# --- the spread and the bound ----------------------------------------------------------------------------

def spread(recorded: dict, runs: dict[str, dict], k: float, redraws: list[list[float]] | None = None,
           resamples: int = 1_000_000) -> dict:
    """From the modes whose returns differ from the record (each distinct outcome once: modes that drove
    bit-identically are one sample) and the z-noise redraws: what another CPU kind can move, and the bound
    proposed from it (k standard errors of the wider of the two)."""
    import numpy as np

    rec_r, rec_s = np.array(recorded["returns"][:CHUNK]), np.array(recorded["steps"][:CHUNK])
    outcomes: dict[tuple, list[str]] = {}
    for m, r in runs.items():
        if "returns" in r and not r["identical"]:
            outcomes.setdefault((tuple(r["returns"]), tuple(r["steps"])), []).append(m)
    if not outcomes:
        return {"modes": []}
    d_r = np.array([o[0] for o in outcomes]) - rec_r
    d_s = np.array([o[1] for o in outcomes]) - rec_s
    out: dict = {"modes": [ms for ms in outcomes.values()], "distinct_outcomes": len(outcomes),
                 "recorded_chunk_mean_return": float(rec_r.mean()), "recorded_chunk_mean_steps": float(rec_s.mean())}
    for key, d in (("return", d_r), ("steps", d_s)):
        sd = float(d.std(ddof=1))
        chunk = d.mean(axis=1)
        within = float(np.sqrt(d.var(axis=0, ddof=1).mean())) if len(d) > 1 else None
        out[key] = {
            "episodes_changed": f"{int((d != 0).sum())} of {d.size}",
            "per_episode_diff_std": round(sd, 3),
            "per_episode_diff_rms": round(float(np.sqrt((d**2).mean())), 3),
            "per_episode_diff_mean": round(float(d.mean()), 3),
            "per_episode_diff_max_abs": round(float(np.abs(d).max()), 3),
            "per_episode_diff_quantiles": {q: round(float(np.quantile(d, p)), 3) for q, p in
                                           (("min", 0), ("5%", .05), ("25%", .25), ("50%", .5), ("75%", .75),
                                            ("95%", .95), ("max", 1))},
            # the spread of one episode across modes, pooled: what a further CPU kind redraws
            "per_episode_std_across_modes": round(within, 3) if within is not None else None,
            "chunk_mean_diff_by_outcome": {"+".join(ms): round(float(c), 3) for ms, c in zip(outcomes.values(), chunk)},
            "chunk_mean_diff_max_abs": round(float(np.abs(chunk).max()), 3),
            "chunk_mean_diff_mean": round(float(chunk.mean()), 3),
            "chunk_mean_diff_std_across_modes": round(float(chunk.std(ddof=1)), 3) if len(chunk) > 1 else None,
            "standard_error": round(sd / math.sqrt(CHUNK), 3),
        }
    se = out["return"]["standard_error"]
    if redraws:
        # A few code paths may redraw too few episodes to show a controller's rare failure; the redraws do.
        d_redraw = np.array(redraws) - rec_r
        redraw_means = d_redraw.mean(axis=1)
        out["redraw"] = {"chunks": len(redraws), "per_episode_diff_std": round(float(d_redraw.std(ddof=1)), 3),
                         "per_episode_diff_max_abs": round(float(np.abs(d_redraw).max()), 3),
                         "chunk_mean_diffs": [round(float(m), 3) for m in redraw_means],
                         "standard_error": round(float(d_redraw.std(ddof=1)) / math.sqrt(CHUNK), 3)}
        se = max(se, out["redraw"]["standard_error"])
        d_r = np.concatenate([d_r, d_redraw])  # the resampling below draws from both
    limit = k * se
    # Another CPU kind as a fresh draw per episode from the measured outcomes of that episode
    # (conditional on the recorded draw, so the record's own luck is kept): how often would the bound fail?
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(d_r), size=(resamples, CHUNK))
    means = d_r[pick, np.arange(CHUNK)].mean(axis=1)
    ranges = np.array([o[0] for o in outcomes] + [rec_r.tolist()] + (redraws or []))
    out["bound"] = {
        "k": k,
        "standard_error": se,
        "chunk_mean_return_within": round(limit, 2),
        "chunk_mean_return_interval": [round(float(rec_r.mean()) - limit, 2), round(float(rec_r.mean()) + limit, 2)],
        "normal_two_sided_false_failure": float(math.erfc(k / math.sqrt(2))),
        "chebyshev_false_failure_at_most": round(1 / k**2, 4),
        "worst_measured_chunk_mean_diff_in_se": round(max([out["return"]["chunk_mean_diff_max_abs"]] + [
            abs(m) for m in out.get("redraw", {}).get("chunk_mean_diffs", [])]) / se, 2),
        "resampled_false_failure": float((np.abs(means) > limit).mean()),
        "resampled_false_failure_by_k": {f"{kk:g}": float((np.abs(means) > kk * se).mean())
                                         for kk in (3, 3.5, 4, 4.5, 5, 5.5, 6)},
        "resampled_max_abs_chunk_mean_diff_in_se": round(float(np.abs(means).max() / se), 2),
        "resamples": resamples,
        "chunk_mean_steps_within": round(k * out["steps"]["standard_error"], 2),  # the code paths' only
        "per_episode_return_range_measured": [[round(float(lo), 2), round(float(hi), 2)]
                                              for lo, hi in zip(ranges.min(axis=0), ranges.max(axis=0))],
        "per_episode_return_span_max": round(float((ranges.max(axis=0) - ranges.min(axis=0)).max()), 2),
    }
    return out


def table(report: dict) -> str:
    rows = []
    for variant, block in report["variants"].items():
        rec = block["recorded_first_chunk"]
        rec_mean = sum(rec["returns"]) / CHUNK
        rows.append(f"\n{variant}: recorded chunk mean {rec_mean:.2f}, track 0 {rec['returns'][0]:.2f}")
        rows.append(f"{'mode':<27}{'same':>5}{'track0':>8}{'mean':>8}{'d mean':>8}{'moved':>6}{'steps':>7}"
                    f"{'wall s':>7}{'cpu s':>7}{'fps':>5}{'speed':>6}{'ms/fr':>7}  MKL CNR | oneDNN conv | ATen")
        base = block["modes"].get("default", {}).get("cpu_seconds")
        for name, r in block["modes"].items():
            if "error" in r:
                rows.append(f"{name:<27} ERROR {r['error'][-1] if r['error'] else ''}")
                continue
            mean = sum(r["returns"]) / CHUNK
            moved = sum(a != b for a, b in zip(r["returns"], rec["returns"]))
            p = r.get("probes", {})
            conv = next((k.split(":", 1)[1] for k in p.get("onednn_kernels", []) if k.startswith("convolution")), "?")
            where = f"{','.join(p.get('mkl_cnr', ['?']))} | {conv} | {p.get('aten_cpu_capability')}"
            rows.append(f"{name:<27}{'yes' if r['identical'] else 'no':>5}{r['returns'][0]:>8.2f}{mean:>8.2f}"
                        f"{mean - rec_mean:>+8.2f}{moved:>6}{sum(r['steps']) / CHUNK:>7.1f}"
                        f"{r['seconds']:>7.1f}{r['cpu_seconds']:>7.1f}{r['frames_per_second']:>5.0f}"
                        f"{(base / r['cpu_seconds']) if base else float('nan'):>6.2f}"
                        f"{p.get('models_ms_per_frame', float('nan')):>7.3f}  {where}")
        s = block["spread"]
        if s.get("modes"):
            rr, st, b = s["return"], s["steps"], s["bound"]
            f = lambda x, spec=".2f": "n/a" if x is None else format(x, spec)  # noqa: E731
            rows.append(f"spread, {s['distinct_outcomes']} distinct outcomes differing from the record: returns changed "
                        f"{rr['episodes_changed']}; per-episode diff std {f(rr['per_episode_diff_std'])} "
                        f"(rms {f(rr['per_episode_diff_rms'])}, max |d| {f(rr['per_episode_diff_max_abs'])}, "
                        f"std across modes {f(rr['per_episode_std_across_modes'])}); chunk-mean diff max |d| "
                        f"{f(rr['chunk_mean_diff_max_abs'])}, mean {f(rr['chunk_mean_diff_mean'], '+.2f')}, std across "
                        f"modes {f(rr['chunk_mean_diff_std_across_modes'])}; SE = std/sqrt({CHUNK}) = {f(rr['standard_error'])}")
            rows.append(f"steps: per-episode diff std {f(st['per_episode_diff_std'])} (max |d| "
                        f"{f(st['per_episode_diff_max_abs'], '.0f')}), chunk-mean diff max |d| "
                        f"{f(st['chunk_mean_diff_max_abs'])}, SE {f(st['standard_error'])}")
            tails = ", ".join(f"{kk}: {p:.1e}" for kk, p in b["resampled_false_failure_by_k"].items())
            if "redraw" in s:
                rd = s["redraw"]
                rows.append(f"redraws ({rd['chunks']} z-noise streams): per-episode diff std {f(rd['per_episode_diff_std'])} "
                            f"(max |d| {f(rd['per_episode_diff_max_abs'])}), chunk-mean diffs "
                            f"{min(rd['chunk_mean_diffs']):+.2f} .. {max(rd['chunk_mean_diffs']):+.2f}; SE {f(rd['standard_error'])}")
            rows.append(f"bound: |chunk mean - {s['recorded_chunk_mean_return']:.2f}| <= {b['k']:g} x {f(b.get('standard_error', rr['standard_error']))}"
                        f" = {f(b['chunk_mean_return_within'])}, i.e. {b['chunk_mean_return_interval']}; worst measured "
                        f"{b['worst_measured_chunk_mean_diff_in_se']} SE; false failure: normal {b['normal_two_sided_false_failure']:.1e}, "
                        f"resampled {b['resampled_false_failure']:.1e} (max {b['resampled_max_abs_chunk_mean_diff_in_se']} SE in "
                        f"{b['resamples']}), Chebyshev <= {b['chebyshev_false_failure_at_most']}; widest per-episode span "
                        f"{f(b['per_episode_return_span_max'], '.1f')}")
            rows.append(f"resampled false failure by K: {tails}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "THREADS", "BATCH"), help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results set (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", default=["z_h", "z"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--redraw-worker", nargs=2, metavar=("VARIANT", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--redraws", type=int, default=32, help="z-noise redraws of the chunk on the record's path")
    parser.add_argument("--add-redraws", action="store_true",
                        help="only run the redraws and add them to the existing numerics.json (its modes kept)")
    parser.add_argument("--k", type=float, default=5.0, help="standard errors the proposed bound allows")
    parser.add_argument("--out", type=Path, help="default: RESULTS/numerics.json")
    args = parser.parse_args()
    results = args.results.resolve()
    if args.worker:
        variant, threads, batch = args.worker
        return worker(results, variant, int(threads), int(batch))
    if args.redraw_worker:
        return redraw_worker(results, args.redraw_worker[0], int(args.redraw_worker[1]))
    records = {v: results / "eval" / v / "returns.json" for v in args.variants}
    missing = [str(path) for path in records.values() if not path.is_file()]
    if missing:
        sys.exit(f"numerics_spread: no recorded evaluation to compare with: {', '.join(missing)}")
    out = args.out or results / "numerics.json"

    started = time.perf_counter()
    if args.add_redraws:
        return add_redraws(out, results, args)
    command = "analysis/numerics_spread.py" + ("" if results == RESULTS else f" --results {results.relative_to(REPO)}")
    report: dict = {"command": f".venv/bin/python {command}", "machine": machine(),
                    "chunk": {"episodes": f"0..{CHUNK - 1} of the evaluation seeds", "env": "wm/CarRacing-v3",
                              "lockstep_batch": CHUNK, "torch_threads": 1},
                    "modes": {m: {"env": MODES[m][0], "torch_threads": MODES[m][1], "batch": MODES[m][2],
                                  "what": MODES[m][3]} for m in args.modes},
                    "variants": {}}
    for variant in args.variants:
        recorded = json.loads(records[variant].read_text())
        runs: dict[str, dict] = {}
        for name in args.modes:
            t0 = time.perf_counter()
            r = run_mode(results, variant, name)
            if "returns" in r:
                assert r.pop("track_seeds") == recorded["track_seeds"][:CHUNK], "the first chunk's tracks moved"
                r["identical"] = (r["returns"] == recorded["returns"][:CHUNK] and r["steps"] == recorded["steps"][:CHUNK])
            runs[name] = r
            status = r.get("error") or (f"identical {r['identical']}, track 0 {r['returns'][0]:.2f}, "
                                        f"{r['seconds']:.1f} s")
            print(f"{variant} {name:<20} {status}  ({time.perf_counter() - t0:.0f} s in all)", flush=True)
        redraws = measured_redraws(results, variant, args.redraws, recorded)
        report["variants"][variant] = {
            "recorded_first_chunk": {"returns": recorded["returns"][:CHUNK], "steps": recorded["steps"][:CHUNK]},
            "modes": runs, "redraws": redraws, "spread": spread(recorded, runs, args.k, redraws)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    write(report, out)


def measured_redraws(results: Path, variant: str, count: int, recorded: dict) -> list[list[float]]:
    if count <= 0:
        return []
    t0 = time.perf_counter()
    measured = run_redraws(results, variant, count)
    assert measured["track_seeds"] == recorded["track_seeds"][:CHUNK], "the first chunk's tracks moved"
    print(f"{variant} {count} redraws ({time.perf_counter() - t0:.0f} s)", flush=True)
    return measured["returns"]


def add_redraws(out: Path, results: Path, args) -> None:
    """Redraws for a numerics.json measured before they existed: its modes stand, its spread is recomputed."""
    if not out.is_file():
        sys.exit(f"numerics_spread: --add-redraws needs an existing {out}")
    report = json.loads(out.read_text())
    started = time.perf_counter()
    for variant in args.variants:
        recorded = json.loads((results / "eval" / variant / "returns.json").read_text())
        block = report["variants"][variant]
        block["redraws"] = measured_redraws(results, variant, args.redraws, recorded)
        block["spread"] = spread(recorded, block["modes"], args.k, block["redraws"])
    report["redraw_seconds"] = round(time.perf_counter() - started, 1)
    write(report, out)


def write(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    print(f"\nwrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


if __name__ == "__main__":
    main()
