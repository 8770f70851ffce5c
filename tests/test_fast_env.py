"""`wm/CarRacing-v3` (FastCarRacing) against gymnasium's `CarRacing-v3`, frame by frame, and its
ported pygame routines against pygame itself.

Every step of every episode compares observation (np.array_equal), reward, terminated,
truncated and info; the module reports how many frames were compared. The fuzz tests draw
random polygons with the numba ports and with pygame on the same random pixels.
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

import wm.envs  # noqa: E402,F401  (registers wm/CarRacing-v3)
from wm.envs import fast_car_racing  # noqa: E402

raster = pytest.importorskip("wm.envs._raster", reason="numba is not installed")

FRAMES = Counter()  # frames compared, by test


@pytest.fixture(scope="module", autouse=True)
def report_frames(request):
    """After the module: how many frames each test compared (past pytest's output capture)."""
    yield
    total = sum(FRAMES.values())
    lines = [f"fast env: {total} frames compared with CarRacing-v3, all identical"]
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


# ---------------------------------------------------------------- the ports against pygame

SURFACE_W, SURFACE_H = 220, 160


def surface_from(canvas: np.ndarray) -> pygame.Surface:
    surface = pygame.Surface((canvas.shape[1], canvas.shape[0]))
    pygame.surfarray.pixels2d(surface)[...] = canvas.T
    return surface


def canvas_of(surface: pygame.Surface) -> np.ndarray:
    return pygame.surfarray.array2d(surface).T.astype(np.uint32)


def random_background(rng) -> np.ndarray:
    canvas = rng.integers(0, 1 << 24, size=(SURFACE_H, SURFACE_W)).astype(np.uint32)
    if rng.random() < 0.5:
        canvas[:] = canvas[0, 0]
    return canvas


def random_polygon(rng, max_points=8):
    """Points around the surface at several scales: inside it, crossing its edges, far out
    (up to 16000, where gymnasium's own coordinates stay), and tiny."""
    count = int(rng.integers(3, max_points + 1)) if rng.random() < 0.6 else 4
    scale = rng.choice([SURFACE_W * 0.6, SURFACE_W * 3.0, 16000.0, 4.0])
    return [(float(rng.uniform(-scale, scale) + SURFACE_W / 2), float(rng.uniform(-scale, scale) + SURFACE_H / 2))
            for _ in range(count)]


def random_color(rng):
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def xrgb(color) -> np.uint32:
    return np.uint32((color[0] << 16) | (color[1] << 8) | color[2])


def sint16_points(points):
    xs = np.array([raster.wrap_int16(int(x)) for x, _ in points], dtype=np.int64)
    ys = np.array([raster.wrap_int16(int(y)) for _, y in points], dtype=np.int64)
    return xs, ys


def assert_same_pixels(expected, actual, what):
    if not np.array_equal(expected, actual):
        diff = np.argwhere(expected != actual)
        pytest.fail(f"{what}: {len(diff)} pixels differ, first (row, col) {diff[:5].tolist()}")


def test_gfxdraw_polygons_match_pygame():
    rng = np.random.default_rng(11)
    crossings = np.zeros(16, dtype=np.int64)
    for trial in range(1500):
        points, color, background = random_polygon(rng), random_color(rng), random_background(rng)
        xs, ys = sint16_points(points)
        for draw, port in (
            (gfxdraw.aapolygon, lambda c: raster.gfx_aapolygon(c, xs, ys, len(xs), xrgb(color), False, 0, SURFACE_H)),
            (gfxdraw.filled_polygon,
             lambda c: raster.gfx_filled_polygon(c, xs, ys, len(xs), xrgb(color), False, 0, SURFACE_H, crossings)),
        ):
            surface = surface_from(background)
            draw(surface, points, color)
            canvas = background.copy()
            port(canvas)
            assert_same_pixels(canvas_of(surface), canvas, f"{draw.__name__} trial {trial}: {points}")


def test_draw_polygon_matches_pygame():
    rng = np.random.default_rng(12)
    crossings = np.zeros(16, dtype=np.int64)
    for trial in range(1500):
        points = random_polygon(rng)
        if len(points) == 3:  # pygame draws triangles with another routine, which CarRacing never uses
            points.append(points[0])
        color, background = random_color(rng), random_background(rng)
        surface = surface_from(background)
        pygame.draw.polygon(surface, color, points)
        xs = np.array([int(x) for x, _ in points], dtype=np.int64)
        ys = np.array([int(y) for _, y in points], dtype=np.int64)
        canvas = background.copy()
        raster.draw_polygon(canvas, xs, ys, len(xs), xrgb(color), False, 0, SURFACE_H, crossings)
        assert_same_pixels(canvas_of(surface), canvas, f"draw.polygon trial {trial}: {points}")


def test_flipped_drawing_in_row_bands_matches_pygame_then_flip():
    """Drawing flipped, one band of rows at a time, equals drawing with pygame and flipping."""
    rng = np.random.default_rng(13)
    crossings = np.zeros(16, dtype=np.int64)
    for trial in range(300):
        background = random_background(rng)
        polygons = [(random_polygon(rng), random_color(rng)) for _ in range(4)]
        surface = surface_from(background[::-1].copy())
        for points, color in polygons:
            gfxdraw.aapolygon(surface, points, color)
            gfxdraw.filled_polygon(surface, points, color)
        expected = canvas_of(surface)[::-1]
        canvas = background.copy()
        bounds = sorted({0, SURFACE_H, *rng.integers(0, SURFACE_H, 3).tolist()})
        for row_lo, row_hi in zip(bounds[:-1], bounds[1:]):
            for points, color in polygons:
                xs, ys = sint16_points(points)
                raster.gfx_aapolygon(canvas, xs, ys, len(xs), xrgb(color), True, row_lo, row_hi)
                raster.gfx_filled_polygon(canvas, xs, ys, len(xs), xrgb(color), True, row_lo, row_hi, crossings)
        assert_same_pixels(expected, canvas, f"trial {trial}")


def test_clear_outside_polygon_gives_a_fresh_black_surface():
    rng = np.random.default_rng(14)
    crossings = np.zeros(16, dtype=np.int64)
    for trial in range(500):
        points, color = random_polygon(rng), random_color(rng)
        xs, ys = sint16_points(points)
        black = pygame.Surface((SURFACE_W, SURFACE_H))
        gfxdraw.aapolygon(black, points, color)
        gfxdraw.filled_polygon(black, points, color)
        canvas = random_background(rng)
        raster.gfx_clear_outside_polygon(canvas, xs, ys, len(xs), False, 0, SURFACE_H, crossings)
        raster.gfx_aapolygon(canvas, xs, ys, len(xs), xrgb(color), False, 0, SURFACE_H)
        raster.gfx_filled_polygon(canvas, xs, ys, len(xs), xrgb(color), False, 0, SURFACE_H, crossings)
        assert_same_pixels(canvas_of(black), canvas, f"trial {trial}: {points}")


@pytest.mark.parametrize("backend", ["SSE2", "GENERIC"])
def test_vertical_shrink_matches_smoothscale(backend):
    """pygame's smoothscale on 96-wide rows against `shrink_rows`, on each backend."""
    previous = pygame.transform.get_smoothscale_backend()
    try:
        pygame.transform.set_smoothscale_backend(backend)
    except ValueError:
        pytest.skip(f"smoothscale backend {backend} not available here")
    try:
        rng = np.random.default_rng(15)
        bits = raster.SMOOTHSCALE_FRACTION_BITS[backend]
        for src_h, dst_h in ((800, 96), (800, 96), (400, 96), (123, 45), (96, 95)):
            for flat in (False, True):
                rows = rng.integers(0, 1 << 24, size=(src_h, 96)).astype(np.uint32)
                if flat:
                    rows[:] = rows[0, 0]
                source = pygame.image.frombuffer(rows, (96, src_h), "BGRA")
                expected = np.array(pygame.surfarray.pixels3d(pygame.transform.smoothscale(source, (96, dst_h))))
                actual = np.zeros((96, dst_h, 3), dtype=np.uint8)
                raster.shrink_rows(rows, actual, bits)
                assert np.array_equal(expected, actual), (backend, src_h, dst_h, flat)
    finally:
        pygame.transform.set_smoothscale_backend(previous)


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
