"""`wm/CarRacing-v3` (FastCarRacing) against gymnasium's `CarRacing-v3`, frame by frame, and its
ported pygame routines against pygame itself.

Every step of every episode compares observation (np.array_equal, and its memory layout),
reward, terminated, truncated and info; the module reports how many frames matched. The fuzz
tests draw random scenes with pygame and with the numba ports, and shrink random images with
both. Without numba, the env tests still run (on the pygame fallback path) and the port tests
are skipped.
"""

from __future__ import annotations

import math
import os
from collections import Counter

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402
from pygame import gfxdraw  # noqa: E402

from wm.envs.car_racing import PLUGIN as CAR_RACING  # noqa: E402  (registers wm/CarRacing-v3)
from wm.envs.car_racing import fast_env as fast_car_racing  # noqa: E402
from wm.envs.car_racing.preprocess import CROP_ROWS, preprocess  # noqa: E402

try:
    from wm.envs.car_racing import _raster as raster
except ImportError:  # numba missing: FastCarRacing uses its pygame path
    raster = None
needs_numba = pytest.mark.skipif(raster is None, reason="numba is not installed")

FRAMES = Counter()  # frames compared, by test


@pytest.fixture(scope="module", autouse=True)
def report_frames(request):
    """After the module: how many frames each test compared (past pytest's output capture)."""
    yield
    total = sum(FRAMES.values())
    lines = [f"fast env: {total} frames compared with CarRacing-v3 and found identical"]
    lines += [f"  {name}: {count}" for name, count in sorted(FRAMES.items())]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(lines))


# ---------------------------------------------------------------- env against env


class Pair:
    """gymnasium's env and ours, made alike, stepped alike, compared at every step."""

    def __init__(self, name: str, **kwargs):
        self.name = name
        self.ref = gym.make("CarRacing-v3", **kwargs)
        self.fast = gym.make("wm/CarRacing-v3", **kwargs)
        assert isinstance(self.fast.unwrapped, fast_car_racing.FastCarRacing)

    def reset(self, **kwargs):
        ref_obs, ref_info = self.ref.reset(**kwargs)
        fast_obs, fast_info = self.fast.reset(**kwargs)
        self._check(ref_obs, fast_obs, "reset")
        assert ref_info == fast_info
        return ref_obs

    def step(self, action):
        ref = self.ref.step(action)
        fast = self.fast.step(action)
        self._check(ref[0], fast[0], f"step {self.fast.unwrapped.t:.2f}s")
        assert ref[1:] == fast[1:], f"{self.name}: reward/terminated/truncated/info differ: {ref[1:]} {fast[1:]}"
        return ref

    def _check(self, ref_obs, fast_obs, where):
        assert fast_obs.shape == ref_obs.shape == (96, 96, 3) and fast_obs.dtype == ref_obs.dtype
        assert fast_obs.strides == ref_obs.strides  # the same (transposed) layout, too
        if not np.array_equal(ref_obs, fast_obs):
            diff = np.argwhere(np.any(ref_obs != fast_obs, axis=-1))
            pytest.fail(f"{self.name}: {where}: {len(diff)} pixels differ, first (row, col) {diff[:5].tolist()}")
        FRAMES[self.name] += 1

    def run(self, policy, steps: int, reset_kwargs=None) -> list[tuple]:
        """Step `policy(ref_env, t)` for `steps` steps, resetting after each episode end."""
        ends = []
        for t in range(steps):
            _, reward, terminated, truncated, info = self.step(policy(self.ref.unwrapped, t))
            if terminated or truncated:
                ends.append((t, reward, terminated, truncated, info))
                self.reset(**(reset_kwargs or {}))
        return ends


def random_policy(seed):
    rng = np.random.default_rng(seed)

    def policy(env, t):
        steer = rng.uniform(-1, 1)
        gas = rng.uniform(0, 1) if rng.random() < 0.8 else 1.0
        brake = rng.uniform(0, 0.3) if rng.random() < 0.3 else 0.0
        return np.array([steer, gas, brake], dtype=np.float32)

    return policy


def heading_error(car, target_x, target_y):
    x, y = car.hull.position
    angle = car.hull.angle
    heading = math.atan2(math.cos(angle), -math.sin(angle))  # the hull's forward axis is +y
    desired = math.atan2(target_y - y, target_x - x)
    return (desired - heading + math.pi) % (2 * math.pi) - math.pi


def lap_driver(env, t):
    """Follows the track six tiles ahead at moderate speed: finishes a lap on some seeds."""
    car = env.car
    x, y = car.hull.position
    points = np.array([(tile[2], tile[3]) for tile in env.track])
    nearest = int(np.argmin(np.hypot(points[:, 0] - x, points[:, 1] - y)))
    target_x, target_y = points[(nearest + 6) % len(points)]
    speed = math.hypot(*car.hull.linearVelocity)
    steer = float(np.clip(-2.0 * heading_error(car, target_x, target_y), -1, 1))
    return np.array([steer, 0.3 if speed < 60 else 0.0, 0.2 if speed > 72 else 0.0], dtype=np.float32)


def spin_then_leave(env, t):
    """Full gas and full lock (the car spins off the road), a hard brake, then straight out
    of the playfield."""
    if t < 60:
        return np.array([1.0 if (t // 30) % 2 == 0 else -1.0, 1.0, 0.0], dtype=np.float32)
    if t < 100:
        return np.array([0.0, 0.0, 1.0], dtype=np.float32)
    x, y = env.car.hull.position
    steer = float(np.clip(-2.0 * heading_error(env.car, 10 * x, 10 * y), -1, 1))
    return np.array([steer, 0.3, 0.0], dtype=np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_actions_match(seed):
    pair = Pair(f"random actions seed {seed}")
    pair.reset(seed=seed)
    pair.run(random_policy(seed), 550)


def test_off_track_spin_and_leaving_the_playfield():
    pair = Pair("off track, out of the playfield")
    pair.reset(seed=5)
    ends = pair.run(spin_then_leave, 400)
    assert ends, "the car never left the playfield"
    _, reward, terminated, _, info = ends[0]
    assert terminated and reward == -100 and info == {"lap_finished": False}


def test_completed_lap():
    pair = Pair("completed lap")
    pair.reset(seed=1)
    ends = pair.run(lap_driver, 900)
    assert ends, "the driver did not finish the lap"
    _, _, terminated, _, info = ends[0]
    assert terminated and info == {"lap_finished": True}


def test_extreme_indicators():
    """Indicator bars far beyond the black bar (up over the road, off the window, both ways),
    by giving both cars the same absurd wheel spins, speed and yaw rate before each step."""
    pair = Pair("extreme indicators")
    pair.reset(seed=13)
    spins = [2500.0, -2500.0, 90.0, 40000.0]
    for t in range(40):
        for env in (pair.ref.unwrapped, pair.fast.unwrapped):
            for k, wheel in enumerate(env.car.wheels):
                wheel.omega = spins[(k + t) % 4] * (1 if t % 3 else -1)
            env.car.hull.angularVelocity = 60.0 * (-1) ** t
            env.car.hull.linearVelocity = (300.0 * (t % 5), -200.0)
        pair.step(np.array([0.0, 0.2, 0.0], dtype=np.float32))


def test_domain_randomize_and_reset_options():
    pair = Pair("domain_randomize", domain_randomize=True)
    policy = random_policy(5)
    for seed, options in ((5, None), (None, {"randomize": True}), (None, {"randomize": False}), (6, None)):
        pair.reset(seed=seed, options=options)
        pair.run(policy, 120, reset_kwargs={"options": options})


def test_discrete_actions():
    pair = Pair("discrete actions", continuous=False)
    pair.reset(seed=7)
    rng = np.random.default_rng(7)
    pair.run(lambda env, t: int(rng.integers(5)), 200)


def test_generic_smoothscale_backend_matches():
    """With pygame's C smoothscale filter (16 fraction bits) in both envs instead of SSE2."""
    previous = pygame.transform.get_smoothscale_backend()
    pygame.transform.set_smoothscale_backend("GENERIC")
    try:
        pair = Pair("GENERIC smoothscale backend")
        pair.reset(seed=12)
        pair.run(random_policy(12), 120)
    finally:
        pygame.transform.set_smoothscale_backend(previous)


def test_pygame_fallback_matches():
    """The path used without numba: the same drawing calls, made by pygame."""
    pair = Pair("pygame fallback path")
    pair.fast.unwrapped.use_numba = False
    pair.reset(seed=8)
    pair.run(random_policy(8), 150)


def test_rgb_array_render_mode():
    """`render()` stays gymnasium's 600x400 video frame; observations still match."""
    pair = Pair("rgb_array render mode", render_mode="rgb_array")
    pair.reset(seed=9)
    policy = random_policy(9)
    for t in range(60):
        pair.step(policy(None, t))
        if t % 10 == 0:
            assert np.array_equal(pair.ref.render(), pair.fast.render())


def test_state_pixels_render_mode_returns_the_observation():
    pair = Pair("state_pixels render mode", render_mode="state_pixels")
    pair.reset(seed=10)
    obs = pair.step(np.array([0.0, 0.5, 0.0], dtype=np.float32))[0]
    assert np.array_equal(pair.fast.render(), obs)


# ---------------------------------------------------------------- the agent's view
#
# `agent_view`: the env also leaves `agent_frame`, which must equal preprocess(gymnasium's frame)
# byte for byte, and it draws only the rows the crop reads (observation rows 84-95 stay zero).


class AgentPair(Pair):
    """gymnasium's env against ours in the agent's view: the crop and V's 64x64 frame."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self.fast.unwrapped.agent_view = True

    def _check(self, ref_obs, fast_obs, where):
        assert fast_obs.shape == ref_obs.shape == (96, 96, 3) and fast_obs.dtype == ref_obs.dtype
        frame = self.fast.unwrapped.agent_frame
        assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
        expected = preprocess(ref_obs)
        if not np.array_equal(expected, frame):
            diff = np.argwhere(np.any(expected != frame, axis=-1))
            pytest.fail(f"{self.name}: {where}: agent frame: {len(diff)} pixels differ, first {diff[:5].tolist()}")
        if self.fast.unwrapped.use_numba:
            assert np.array_equal(ref_obs[:CROP_ROWS], fast_obs[:CROP_ROWS]), f"{self.name}: {where}: the crop differs"
            assert not fast_obs[CROP_ROWS:].any(), f"{self.name}: {where}: rows below the crop were drawn"
        else:  # the pygame path draws whole frames
            assert np.array_equal(ref_obs, fast_obs)
        FRAMES[f"agent view: {self.name}"] += 1


@pytest.mark.parametrize("seed", [20, 21])
def test_agent_view_random_actions(seed):
    pair = AgentPair(f"random actions seed {seed}")
    pair.reset(seed=seed)
    pair.run(random_policy(seed), 200)


def test_agent_view_driving_and_indicators_over_the_crop():
    """On the road (the lap driver), then indicator bars driven up into the rows the crop
    reads (drawn there, they must be drawn in the agent's view too)."""
    pair = AgentPair("driving, indicators over the crop")
    pair.reset(seed=22)
    pair.run(lap_driver, 150)
    for t in range(30):
        for env in (pair.ref.unwrapped, pair.fast.unwrapped):
            for k, wheel in enumerate(env.car.wheels):
                wheel.omega = (3000.0, -40000.0, 700.0, 9000.0)[(k + t) % 4] * (1 if t % 2 else -1)
            env.car.hull.angularVelocity = 80.0 * (-1) ** t
            env.car.hull.linearVelocity = (400.0 * (t % 4), 300.0)
        pair.step(np.array([0.3, 0.2, 0.0], dtype=np.float32))


def test_agent_view_other_paths():
    """domain_randomize colours, the GENERIC smoothscale backend, and the pygame path (which
    computes agent_frame with preprocess itself)."""
    pair = AgentPair("domain_randomize", domain_randomize=True)
    pair.reset(seed=23)
    pair.run(random_policy(23), 80)
    previous = pygame.transform.get_smoothscale_backend()
    pygame.transform.set_smoothscale_backend("GENERIC")
    try:
        pair = AgentPair("GENERIC smoothscale backend")
        pair.reset(seed=24)
        pair.run(random_policy(24), 80)
    finally:
        pygame.transform.set_smoothscale_backend(previous)
    pair = AgentPair("pygame fallback path")
    pair.fast.unwrapped.use_numba = False
    pair.reset(seed=25)
    pair.run(random_policy(25), 40)


def test_runner_agent_view_gives_the_same_episodes():
    """run_batch takes V's frames from the agent's view unless it records frames; both ways
    give the same returns, steps and actions (random V, M and C; short episodes)."""
    import torch

    from wm.episodes.agent import WorldModelAgent
    from wm.episodes.runner import Episode, run_batch
    from wm.mdn.model import MDNRNN
    from wm.vae.model import ConvVAE

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch 2: threads would only contend with each other
    try:
        torch.manual_seed(0)
        agent = WorldModelAgent(ConvVAE().eval(), MDNRNN().eval(), "z_h", True, env=CAR_RACING)
        params = np.random.default_rng(0).normal(0, 0.1, 867)
        params[-2] = 0.5
        episodes = [Episode(params, 30 + k, 40 + k) for k in range(2)]
        envs = [gym.make("wm/CarRacing-v3", continuous=True) for _ in episodes]
        viewed = run_batch("wm/CarRacing-v3", agent, episodes, 100, envs=envs)
        assert not any(env.unwrapped.agent_view for env in envs)  # restored
        recorded = run_batch("wm/CarRacing-v3", agent, episodes, 100, record=True, envs=envs)
    finally:
        torch.set_num_threads(threads)
    assert all(len(r.frames) == r.steps + 1 for r in recorded)
    for a, b in zip(viewed, recorded):
        assert (a.total_return, a.steps, a.tiles, a.ended_by, a.action_mean, a.action_std) == \
            (b.total_return, b.steps, b.tiles, b.ended_by, b.action_mean, b.action_std)


@needs_numba
def test_pil_resize_port_matches_pil():
    """`_resample.resize_rgb` against PIL's BILINEAR resize, as preprocess calls it and at
    other sizes: random, flat and two-level images."""
    from PIL import Image

    from wm.envs.car_racing import _resample

    rng = np.random.default_rng(26)
    for (in_w, in_h, rows), (out_w, out_h) in (((96, 96, 84), (64, 64)), ((96, 96, 96), (64, 64)),
                                               ((80, 70, 70), (33, 21)), ((50, 40, 37), (45, 30))):
        horizontal, vertical = _resample.resize_coefficients(in_w, rows, out_w, out_h)
        scratch = _resample.resize_scratch(in_w, rows, out_w)
        out = np.zeros((out_h, out_w, 3), np.uint8)
        for trial in range(90):
            image = rng.integers(0, 256, (in_h, in_w, 3), dtype=np.uint8)
            if trial % 3 == 1:
                image[:] = rng.integers(0, 256, 3, dtype=np.uint8)
            elif trial % 3 == 2:
                image = np.where(rng.random((in_h, in_w, 1)) < 0.5, 255, 0).astype(np.uint8).repeat(3, axis=2)
            expected = np.array(Image.fromarray(image[:rows]).resize((out_w, out_h), Image.Resampling.BILINEAR))
            _resample.resize_rgb(image, rows, *horizontal, *vertical, out, scratch)
            assert np.array_equal(expected, out), ((in_w, in_h, rows), (out_w, out_h), trial)


@needs_numba
def test_prepare_frame_quick_cull_drops_only_what_the_exact_tests_drop():
    """`add_world_polygons`' circle test, against the same frame prepared with circles that
    never reject: the same polygon list, for random cameras from the zoom-in to full zoom."""
    env = gym.make("wm/CarRacing-v3")
    env.reset(seed=27)
    fast = env.unwrapped
    rng = np.random.default_rng(27)
    never = lambda circles: np.concatenate([circles[:, :2], np.full((len(circles), 1), np.inf)], axis=1)
    for trial in range(200):
        angle = float(rng.uniform(-7, 7)) if trial % 10 else float(rng.choice([0.0, math.pi / 2, math.pi]))
        cos_a, sin_a = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
        zoom = float(rng.choice([0.6, 16.2, rng.uniform(0.6, 16.2)]))
        tile = fast.track[int(rng.integers(len(fast.track)))]
        center = rng.uniform(-350, 350, 2) if trial % 2 else np.array(tile[2:4])
        trans = pygame.math.Vector2((-center[0] * zoom, -center[1] * zoom)).rotate_rad(angle)
        camera = (cos_a, sin_a, zoom, 500 + trans[0], 200 + trans[1])
        lists = []
        quick = (fast._grass_circles, fast._road_circles)
        for circles in (quick, (never(quick[0]), never(quick[1]))):
            polygons = tuple(np.zeros_like(a) for a in fast._polygons)
            count = raster.prepare_frame(800, 1000, fast._field, fast._bg_xrgb, fast._grass, circles[0],
                                         fast._grass_xrgb, fast._road, circles[1], fast._road_colors, camera,
                                         fast_car_racing.CULL_BOUNDS, fast._car_pose(), fast._hud_values(), *polygons)
            lists.append((count, [a[:count].copy() for a in polygons]))
        assert lists[0][0] == lists[1][0], trial
        for a, b in zip(lists[0][1], lists[1][1]):
            assert np.array_equal(a, b), trial


# ---------------------------------------------------------------- the ports against pygame
#
# Random scenes drawn twice: by pygame as gymnasium draws (a fresh black surface, the field
# with gfxdraw, more gfxdraw polygons, draw.polygon ones, the flip, draw.polygon ones after
# it), and by the numba ports through the same band renderer the env uses, with random band
# heights. Points range from inside the surface to far outside it.

SURFACE_W, SURFACE_H = 230, 170


def random_points(rng, count=None):
    """Around the surface at several scales: inside it, across its edges, far out (up to
    16000, as far as gymnasium's own coordinates go), and tiny."""
    if count is None:
        count = int(rng.integers(3, raster.MAX_POINTS + 1)) if rng.random() < 0.6 else 4
    scale = rng.choice([SURFACE_W * 0.6, SURFACE_W * 3.0, 16000.0, 4.0])
    return [(float(rng.uniform(-scale, scale) + SURFACE_W / 2), float(rng.uniform(-scale, scale) + SURFACE_H / 2))
            for _ in range(count)]


def random_color(rng):
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def xrgb(color) -> np.uint32:
    return np.uint32((color[0] << 16) | (color[1] << 8) | color[2])


def pygame_scene(scene):
    """gymnasium's drawing calls for a scene of (kind, points, colour), the first the field."""
    surface = pygame.Surface((SURFACE_W, SURFACE_H))
    flipped = False
    for kind, points, color in scene:
        if kind == raster.HUD and not flipped:
            surface = pygame.transform.flip(surface, False, True)
            flipped = True
        if kind == raster.WORLD:
            gfxdraw.aapolygon(surface, points, color)
            gfxdraw.filled_polygon(surface, points, color)
        else:
            pygame.draw.polygon(surface, color, points)
    if not flipped:
        surface = pygame.transform.flip(surface, False, True)
    return pygame.surfarray.array2d(surface).T.astype(np.uint32)


def banded_scene(scene, band_rows, rng):
    """The same scene through `prepare`-style integer polygons and `render_canvas`."""
    capacity = len(scene)
    polygons = (np.zeros((capacity, raster.MAX_POINTS), np.int64), np.zeros((capacity, raster.MAX_POINTS), np.int64),
                np.zeros((capacity, 4), np.int64), np.zeros(capacity, np.uint32))
    n = 0
    for kind, points, color in scene:
        if kind == raster.WORLD:  # gfxdraw's Sint16 points
            xs = np.array([raster.wrap_int16(int(x)) for x, _ in points], np.int64)
            ys = np.array([raster.wrap_int16(int(y)) for _, y in points], np.int64)
        else:  # draw.polygon's int points
            xs = np.array([int(x) for x, _ in points], np.int64)
            ys = np.array([int(y) for _, y in points], np.int64)
        n = raster.add_polygon(*polygons, n, kind, xs, ys, len(points), xrgb(color), SURFACE_H)
    canvas = rng.integers(0, 1 << 24, size=(SURFACE_H, SURFACE_W)).astype(np.uint32)  # all overdrawn
    band = np.zeros((SURFACE_W, band_rows), np.uint32)
    no_score = np.zeros((0, 0), np.uint32)
    raster.render_canvas(canvas, band, SURFACE_H, *polygons, n, no_score, 0, 0)
    return canvas


def assert_same_pixels(expected, actual, what):
    if not np.array_equal(expected, actual):
        diff = np.argwhere(expected != actual)
        pytest.fail(f"{what}: {len(diff)} pixels differ, first (row, col) {diff[:5].tolist()}")


@needs_numba
@pytest.mark.parametrize("kinds", ["world", "car and indicators", "mixed"])
def test_band_renderer_matches_pygame(kinds):
    rng = np.random.default_rng({"world": 11, "car and indicators": 12, "mixed": 13}[kinds])
    choices = {"world": [raster.WORLD], "car and indicators": [raster.CAR, raster.HUD],
               "mixed": [raster.WORLD, raster.CAR, raster.HUD]}[kinds]
    for trial in range(400):
        scene = [(raster.WORLD, random_points(rng, 4), random_color(rng))]  # the field
        for _ in range(int(rng.integers(1, 6))):
            kind = int(rng.choice(choices))
            points = random_points(rng)
            if kind != raster.WORLD and len(points) == 3:
                points.append(points[0])  # pygame draws triangles with another routine, which CarRacing never uses
            scene.append((kind, points, random_color(rng)))
        scene.sort(key=lambda item: item[0] == raster.HUD)  # what is drawn after the flip comes last
        band_rows = int(rng.choice([1, 7, 16, 64, SURFACE_H]))
        assert_same_pixels(pygame_scene(scene), banded_scene(scene, band_rows, rng),
                           f"trial {trial}, bands of {band_rows} rows: {scene}")


@needs_numba
@pytest.mark.parametrize("backend", ["SSE2", "GENERIC"])
def test_smoothscale_passes_match_pygame(backend):
    """pygame's smoothscale against `shrink_band_x` on column-major bands, then `shrink_rows`."""
    previous = pygame.transform.get_smoothscale_backend()
    try:
        pygame.transform.set_smoothscale_backend(backend)
    except ValueError:
        pytest.skip(f"smoothscale backend {backend} not available here")
    try:
        rng = np.random.default_rng(15)
        bits = raster.SMOOTHSCALE_FRACTION_BITS[backend]
        for (src_w, src_h), (dst_w, dst_h), band_rows in (((1000, 800), (96, 96), 128), ((1000, 800), (96, 96), 37),
                                                          ((400, 300), (96, 96), 64), ((200, 123), (45, 40), 16)):
            for flat in (False, True):
                image = rng.integers(0, 1 << 24, size=(src_h, src_w)).astype(np.uint32)
                if flat:
                    image[:] = image[0, 0]
                source = pygame.image.frombuffer(image, (src_w, src_h), "BGRA")
                scaled = pygame.transform.smoothscale(source, (dst_w, dst_h))
                expected = np.transpose(np.array(pygame.surfarray.pixels3d(scaled)), axes=(1, 0, 2))
                windows = raster.smoothscale_windows(src_w, dst_w, bits)
                shrunk = np.zeros((src_h, dst_w), np.uint32)
                sums = np.zeros((2, band_rows), np.uint32)
                carries = np.zeros((2, band_rows), np.uint32)
                out = np.zeros((dst_w, band_rows), np.uint32)
                for row_lo in range(0, src_h, band_rows):
                    band = np.ascontiguousarray(image[row_lo:row_lo + band_rows].T)
                    raster.shrink_band_x(band, band.shape[1], windows, bits, shrunk, row_lo, sums, carries, out)
                actual = np.zeros((dst_h, dst_w, 3), np.uint8)
                raster.shrink_rows(shrunk, actual, bits)
                assert np.array_equal(expected, actual), (backend, src_w, src_h, dst_w, dst_h, flat)
    finally:
        pygame.transform.set_smoothscale_backend(previous)


@needs_numba
def test_camera_transform_matches_vector2():
    """`rotate_zoom_translate` with (cos, sin) from `Vector2(1, 0).rotate_rad` equals
    gymnasium's `Vector2(p).rotate_rad(angle)` then `* zoom + translation`, float for float,
    at multiples of pi/2 (pygame special-cases them) as everywhere else."""
    rng = np.random.default_rng(16)
    special = [0.0, -0.0, math.pi / 2, math.pi, -math.pi / 2, 3 * math.pi / 2, 2 * math.pi, -2 * math.pi, 1e-12]
    angles = special + rng.uniform(-20, 20, 400).tolist()
    for angle in angles:
        cos_a, sin_a = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
        zoom = float(rng.choice([0.6, 16.2, rng.uniform(0.6, 16.2)]))
        trans = (rng.uniform(-3000, 3000), rng.uniform(-3000, 3000))
        for x, y in rng.uniform(-400, 400, size=(20, 2)).tolist():
            rotated = pygame.math.Vector2((x, y)).rotate_rad(angle)
            expected = (rotated[0] * zoom + trans[0], rotated[1] * zoom + trans[1])
            assert raster.rotate_zoom_translate(x, y, cos_a, sin_a, zoom, trans[0], trans[1]) == expected


@needs_numba
def test_box2d_transform_matches_pybox2d():
    """`box2d_transform` in float32 equals pybox2d's `body.transform * vertex`."""
    import Box2D

    rng = np.random.default_rng(17)
    world = Box2D.b2World((0, 0))
    for _ in range(200):
        body = world.CreateDynamicBody(position=tuple(rng.uniform(-400, 400, 2)), angle=float(rng.uniform(-50, 50)))
        trans = body.transform
        transform = np.array([trans.position[0], trans.position[1], trans.q.c, trans.q.s], dtype=np.float32)
        for vertex in rng.uniform(-3, 3, size=(10, 2)).tolist():
            expected = trans * vertex
            local = np.float32(vertex[0]), np.float32(vertex[1])
            x, y = raster.box2d_transform(transform, *local)
            assert (float(x), float(y)) == (expected[0], expected[1])


def test_nan_action_raises_like_gymnasium():
    """A NaN action makes a NaN car; gymnasium's renderer raises ValueError, and so does ours
    (instead of looping over NaN-cast coordinates)."""
    errors = []
    for env_id in ("CarRacing-v3", "wm/CarRacing-v3"):
        env = gym.make(env_id, continuous=True)
        env.reset(seed=3)
        with pytest.raises(ValueError) as error:
            env.step(np.array([np.nan, np.nan, np.nan]))
        errors.append(str(error.value))
        env.close()
    assert errors[0] == errors[1]
