"""The device check's wheels and set-up (run by benchmarks/device_check.py --download-wheels and
--setup): the cp312 wheels carried to the GPU node, and their install there next to an MPI launcher
that starts mpi4py ranks. Needs nothing but the standard library.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from device_check_common import MPI_ENV, REPO, first_line, log

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
