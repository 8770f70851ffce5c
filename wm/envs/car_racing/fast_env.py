"""`FastCarRacing`: gymnasium's `CarRacing` with a faster `state_pixels` renderer, pixel-identical.

Physics, rewards, termination and track generation are gymnasium's own code (this class only
subclasses it); only the drawing of the 96x96 observation changes:

- With numba (the fast path), `wm.envs.car_racing._raster` ports the pygame-ce C routines that gymnasium
  calls, integer for integer: SDL_gfx's anti-aliased and filled polygons, draw.c's filled
  polygon, and both passes of smoothscale. `prepare_frame` turns the frame into a list of
  integer polygons once; `render_observation` draws it band by band, already flipped, shrinks
  each band while it is in cache and writes the observation.
- Without numba (the fallback), the same drawing calls go to pygame, minus gymnasium's
  per-frame Python: track vertices kept as arrays, one vectorised transform and visibility
  test per frame, the score text rendered once per distinct string, one surface reused.

Both paths keep gymnasium's float arithmetic and drawing order, so every pixel is the same;
docs/fast_env.md says why, with the traps. `render_mode="rgb_array"` and `"human"` frames
(600x400 video, with skid marks) go through gymnasium's renderer unchanged.

The agent's view (opt-in, `env.unwrapped.agent_view = True`, what wm.episodes.runner asks for):
every `state_pixels` frame also leaves `agent_frame`, the 64x64 frame V sees, byte for byte
`preprocess(frame)`; on the numba path only the canvas rows above the indicator bar are drawn
(the crop's 84 observation rows read no other), observation rows 84-95 stay zero, and the crop is
resized by a numba port of PIL's resampler (`wm.envs.car_racing._resample`).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pygame
from gymnasium.envs.box2d import car_dynamics
from gymnasium.envs.box2d.car_racing import (
    GRASS_DIM,
    MAX_SHAPE_DIM,
    PLAYFIELD,
    SCALE,
    STATE_H,
    STATE_W,
    WINDOW_H,
    WINDOW_W,
    ZOOM,
    CarRacing,
)
from pygame import gfxdraw

from wm.envs.car_racing.preprocess import CROP_ROWS, FRAME_SIZE, preprocess

try:  # numba is optional: without it the pygame path below is used (correct, slower)
    from wm.envs.car_racing import _raster, _resample
except ImportError:  # pragma: no cover - exercised only where numba is missing
    _raster = _resample = None

XRGB8888_MASKS = (0xFF0000, 0xFF00, 0xFF, 0)  # gymnasium's surface format, which the ports assume
BAND_ROWS = 128  # frame rows drawn, then shrunk in X, at a time (512 kB: they stay in cache)
CULL_BOUNDS = (-MAX_SHAPE_DIM, WINDOW_W + MAX_SHAPE_DIM, WINDOW_H + MAX_SHAPE_DIM)  # gymnasium's test

# The drawing buffers are scratch (each frame overwrites what it reads), so the environments of one
# thread share one set: the batched runner steps 16 envs in turn, and 16 private sets (~0.8 MB
# each) fall out of cache (docs/benchmarks.md, issue 12). Per thread, so that envs stepped in
# parallel threads never draw into each other's.
_scratch = threading.local()


def scratch_buffers() -> tuple[np.ndarray, np.ndarray, tuple]:
    """This thread's (band, shrunk, resize) buffers: the frame's rows being drawn (column-major),
    the frame after smoothscale's X pass, and the agent frame's PIL coefficients and scratch."""
    if not hasattr(_scratch, "band"):
        _scratch.band = np.zeros((WINDOW_W, BAND_ROWS), dtype=np.uint32)
        _scratch.shrunk = np.zeros((WINDOW_H, STATE_W), dtype=np.uint32)
        horizontal, vertical = _resample.resize_coefficients(STATE_W, CROP_ROWS, FRAME_SIZE, FRAME_SIZE)
        _scratch.resize = (horizontal, vertical, _resample.resize_scratch(STATE_W, CROP_ROWS, FRAME_SIZE))
    return _scratch.band, _scratch.shrunk, _scratch.resize


def grass_polygons() -> np.ndarray:
    """The 400 grass squares of `_render_road`, with its float expressions, as (400, 4, 2)."""
    grass = []
    for x in range(-20, 20, 2):
        for y in range(-20, 20, 2):
            grass.append(
                [
                    (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + 0),
                    (GRASS_DIM * x + 0, GRASS_DIM * y + 0),
                    (GRASS_DIM * x + 0, GRASS_DIM * y + GRASS_DIM),
                    (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + GRASS_DIM),
                ]
            )
    return np.array(grass, dtype=np.float64)


def field_polygon() -> np.ndarray:
    bounds = PLAYFIELD
    return np.array([(bounds, bounds), (bounds, -bounds), (-bounds, -bounds), (-bounds, bounds)])


def rgb_int(color) -> tuple[int, int, int]:
    """How pygame reads a colour sequence: each component through int()."""
    return int(color[0]), int(color[1]), int(color[2])


def xrgb(color) -> np.uint32:
    red, green, blue = rgb_int(color)
    return np.uint32((red << 16) | (green << 8) | blue)


def car_polygons(car) -> tuple[list[list[tuple[float, float]]], list[tuple[int, int, int]]]:
    """The world-space polygons and colours that `Car.draw(..., draw_particles=False)` fills,
    in its order. `trans * v` is Box2D's float32 transform, kept as is."""
    polygons, colors = [], []
    for obj in car.drawlist:
        for f in obj.fixtures:
            trans = f.body.transform
            path = [trans * v for v in f.shape.vertices]
            polygons.append([(coords[0], coords[1]) for coords in path])
            colors.append(tuple(int(c * 255) for c in obj.color))
            if "phase" not in obj.__dict__:
                continue
            a1 = obj.phase
            a2 = obj.phase + 1.2  # radians
            s1 = math.sin(a1)
            s2 = math.sin(a2)
            c1 = math.cos(a1)
            c2 = math.cos(a2)
            if s1 > 0 and s2 > 0:
                continue
            if s1 > 0:
                c1 = np.sign(c1)
            if s2 > 0:
                c2 = np.sign(c2)
            wheel_w, wheel_r, size = car_dynamics.WHEEL_W, car_dynamics.WHEEL_R, car_dynamics.SIZE
            white_poly = [
                (-wheel_w * size, +wheel_r * c1 * size),
                (+wheel_w * size, +wheel_r * c1 * size),
                (+wheel_w * size, +wheel_r * c2 * size),
                (-wheel_w * size, +wheel_r * c2 * size),
            ]
            white_poly = [trans * v for v in white_poly]
            polygons.append([(coords[0], coords[1]) for coords in white_poly])
            colors.append(car_dynamics.WHEEL_WHITE)
    return polygons, colors


class FastCarRacing(CarRacing):
    """CarRacing-v3 whose `state_pixels` observations are drawn faster, bit for bit the same."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_numba = _raster is not None
        self._grass = grass_polygons()
        self._field = field_polygon()
        self._road = np.zeros((0, 4, 2))
        self._grass_circles = self._road_circles = np.zeros((0, 3))  # for prepare_frame's quick test
        self._road_colors = np.zeros((0, 3))
        self._bg_xrgb = self._grass_xrgb = np.uint32(0)
        self._font = None
        self._score_cache: dict[str, tuple] = {}
        self._polygons = ()  # the frame's polygon list, filled by _raster.prepare_frame
        self._windows_x = None  # (fraction bits, smoothscale's X windows for them)
        self._car_template = None  # (car, *_car_polygon_template(car)), rebuilt for each new car
        self._world_surface: pygame.Surface | None = None  # the pygame path's drawing surface
        self._fast_path_ok: bool | None = None
        # The agent's view (opt-in, set by wm.episodes.runner): each state_pixels frame also
        # leaves `agent_frame` = preprocess(frame), and the numba path then draws only what the
        # preprocessing crop reads (observation rows 84-95, the indicator bar, stay zero).
        self.agent_view = False
        self.agent_frame: np.ndarray | None = None
        self._agent_rows_cache: dict[int, tuple[int, int]] = {}
        self._agent_frame_of = None  # the observation agent_frame was made from on the numba path

    # ------------------------------------------------------------------ track

    def _create_track(self):
        created = super()._create_track()
        if created:
            self._cache_track()
        return created

    def _cache_track(self):
        """Road and kerb vertices as one array, and their colours as rows of another array.
        Each tile's `color` becomes a view of its row, so the contact listener's in-place
        `tile.color[:] = road_color` lands in the array the renderer reads."""
        self._road = np.array([poly for poly, _ in self.road_poly], dtype=np.float64).reshape(-1, 4, 2)
        self._road_colors = np.array([np.asarray(color, dtype=np.float64) for _, color in self.road_poly])
        self._bg_xrgb, self._grass_xrgb = xrgb(self.bg_color), xrgb(self.grass_color)  # fixed until reset
        tiles = iter(self.road)
        for k, (poly, color) in enumerate(self.road_poly):
            if isinstance(color, np.ndarray):  # a tile (kerbs have constant tuple colours)
                tile = next(tiles)
                assert tile.color is color
                tile.color = self._road_colors[k]
                self.road_poly[k] = (poly, tile.color)
        if _raster is not None:
            self._grass_circles = _raster.polygon_circles(self._grass)
            self._road_circles = _raster.polygon_circles(self._road)
            capacity = 1 + len(self._grass) + len(self._road) + 16 + 8  # field, grass, road, car, bar
            self._polygons = (
                np.zeros((capacity, _raster.MAX_POINTS), dtype=np.int64),
                np.zeros((capacity, _raster.MAX_POINTS), dtype=np.int64),
                np.zeros((capacity, 4), dtype=np.int64),
                np.zeros(capacity, dtype=np.uint32),
            )

    # ------------------------------------------------------------------ rendering

    def _render(self, mode: str):
        if mode != "state_pixels":
            return super()._render(mode)
        observation = self._render_state_pixels()
        if self.agent_view and not (observation is not None and self._agent_frame_of is observation):
            self.agent_frame = preprocess(observation)  # every path but numba's (which leaves it itself)
        return observation

    def _render_state_pixels(self):
        if "t" not in self.__dict__ or not self._fast_path_usable():
            return super()._render("state_pixels")
        pygame.font.init()
        if self.clock is None:
            self.clock = pygame.time.Clock()
        camera = self._camera()
        hud = self._hud_values()
        if not (math.isfinite(camera[0]) and math.isfinite(camera[1]) and math.isfinite(camera[2][0])
                and math.isfinite(camera[2][1]) and all(math.isfinite(v) for v in hud)):
            # A NaN action makes a NaN car: gymnasium's renderer raises ValueError on it, and so must
            # we (the ported rasterisers would loop over NaN-cast coordinates instead).
            return super()._render("state_pixels")
        if self.use_numba and pygame.transform.get_smoothscale_backend() in _raster.SMOOTHSCALE_FRACTION_BITS:
            return self._render_numba(camera, hud)
        return self._render_pygame(camera)

    def _agent_rows(self, fraction_bits: int) -> tuple[int, int]:
        """(canvas rows drawn, observation rows written) for the agent's view: the rows above the
        indicator bar, if the Y pass of smoothscale reads none below them for the crop's 84 rows
        (it does not: row 699 is the last; checked, per backend), else the whole frame."""
        if fraction_bits not in self._agent_rows_cache:
            bar_top = _raster.bar_top_row(WINDOW_H)
            last = _raster.last_row_read(WINDOW_H, STATE_H, fraction_bits, CROP_ROWS)
            self._agent_rows_cache[fraction_bits] = (bar_top, CROP_ROWS) if last < bar_top else (WINDOW_H, STATE_H)
        return self._agent_rows_cache[fraction_bits]

    def _fast_path_usable(self) -> bool:
        """The ported routines assume gymnasium's surface is 32-bit XRGB, as it is without a
        display (or with a usual one); anything else takes gymnasium's path."""
        if self._fast_path_ok is None:
            probe = pygame.Surface((1, 1))
            self._fast_path_ok = probe.get_bitsize() == 32 and tuple(probe.get_masks()) == XRGB8888_MASKS
        return self._fast_path_ok

    def _camera(self):
        """`_render`'s transformation, with pygame's Vector2 as gymnasium uses it; (cos, sin)
        come from the same `rotate_rad`, special cases at multiples of pi/2 included."""
        hull = self.car.hull
        angle = -hull.angle
        zoom = 0.1 * SCALE * max(1 - self.t, 0) + ZOOM * SCALE * min(self.t, 1)
        position = hull.position
        scroll_x = -(position[0]) * zoom
        scroll_y = -(position[1]) * zoom
        trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (WINDOW_W / 2 + trans[0], WINDOW_H / 4 + trans[1])
        cos_a, sin_a = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
        return angle, zoom, trans, cos_a, sin_a

    def _hud_values(self) -> tuple[float, ...]:
        """`_render_indicators`'s inputs: true speed, the four wheel omegas, the front joint
        angle, the hull's angular velocity. Its `np.sqrt(np.square(vx) + np.square(vy))` on the
        float components is IEEE double arithmetic, which math.sqrt(vx * vx + vy * vy) repeats
        exactly (squaring is one rounded product, sqrt is correctly rounded in both)."""
        car = self.car
        hull = car.hull
        vx, vy = hull.linearVelocity
        wheels = car.wheels
        return (math.sqrt(vx * vx + vy * vy), wheels[0].omega, wheels[1].omega, wheels[2].omega, wheels[3].omega,
                wheels[0].joint.angle, hull.angularVelocity)

    def _score(self):
        """The score text as gymnasium draws it, rendered once per distinct string: the text
        surface, its rect, and the pixels its opaque blit leaves on an XRGB surface."""
        string = f"{self.reward:04.0f}"
        cached = self._score_cache.get(string)
        if cached is None:
            if self._font is None:
                self._font = pygame.font.Font(pygame.font.get_default_font(), 42)
            text = self._font.render(string, True, (255, 255, 255), (0, 0, 0))
            text_rect = text.get_rect()
            text_rect.center = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)
            blitted = pygame.Surface(text.get_size())
            blitted.blit(text, (0, 0))
            # XRGB with the unused top byte cleared: smoothscale's X pass (`shrink_band_x`) needs it zero
            pixels = np.ascontiguousarray(pygame.surfarray.array2d(blitted).T.astype(np.uint32) & np.uint32(0xFFFFFF))
            cached = (text, text_rect, pixels)
            if len(self._score_cache) > 4096:  # scores are few; bound the cache anyway
                self._score_cache.clear()
            self._score_cache[string] = cached
        return cached

    def _render_numba(self, camera, hud):
        """The frame as integer polygons (`prepare_frame`), then drawn and shrunk band by band
        with smoothscale's arithmetic for the backend pygame uses (`render_observation`); in the
        agent's view only the rows the crop reads, then the crop resized as PIL resizes it."""
        _, zoom, trans, cos_a, sin_a = camera
        _, text_rect, score_pixels = self._score()
        count = _raster.prepare_frame(
            WINDOW_H,
            WINDOW_W,
            self._field,
            self._bg_xrgb,
            self._grass,
            self._grass_circles,
            self._grass_xrgb,
            self._road,
            self._road_circles,
            self._road_colors,
            (cos_a, sin_a, zoom, trans[0], trans[1]),
            CULL_BOUNDS,
            self._car_pose(),
            hud,
            *self._polygons,
        )
        fraction_bits = _raster.SMOOTHSCALE_FRACTION_BITS[pygame.transform.get_smoothscale_backend()]
        if self._windows_x is None or self._windows_x[0] != fraction_bits:
            self._windows_x = (fraction_bits, _raster.smoothscale_windows(WINDOW_W, STATE_W, fraction_bits))
        observation = np.zeros((STATE_H, STATE_W, 3), dtype=np.uint8)  # C order, as `_create_image_array`'s
        rows_drawn, rows_out = self._agent_rows(fraction_bits) if self.agent_view else (WINDOW_H, STATE_H)
        band, shrunk, resize = scratch_buffers()
        _raster.render_observation(band, WINDOW_H, *self._polygons, count, score_pixels, text_rect.x,
                                   text_rect.y, self._windows_x[1], fraction_bits, shrunk, observation,
                                   rows_drawn, rows_out)
        if self.agent_view:
            frame = np.empty((FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8)
            _resample.resize_rgb(observation, CROP_ROWS, *resize[0], *resize[1], frame, resize[2])
            self.agent_frame = frame
            self._agent_frame_of = observation
        return observation

    def _car_pose(self):
        """The car for `_raster.add_car_polygons`: the polygons `Car.draw` fills, in its order,
        as float32 body-local points (what Box2D keeps), each body's stored transform, and per
        wheel whether its white stripe is drawn and where."""
        car = self.car
        if self._car_template is None or self._car_template[0] is not car:
            self._car_template = (car, *self._car_polygon_template(car))
        _, points, offsets, bodies, colors, stripes, stripe_polygons = self._car_template
        wheel_r, size = car_dynamics.WHEEL_R, car_dynamics.SIZE
        values = []
        for obj in car.drawlist:
            trans = obj.transform
            position, rotation = trans.position, trans.q
            values += (position.x, position.y, rotation.c, rotation.s)
        transforms = np.array(values, dtype=np.float32).reshape(-1, 4)  # float32 values, stored exactly
        rows = []
        for wheel in car.wheels:
            # Car.draw's arithmetic for the white stripe of a wheel
            a1 = wheel.phase
            a2 = wheel.phase + 1.2  # radians
            s1 = math.sin(a1)
            s2 = math.sin(a2)
            c1 = math.cos(a1)
            c2 = math.cos(a2)
            if s1 > 0 and s2 > 0:
                rows += (0.0, 0.0, 0.0)
                continue
            if s1 > 0:
                c1 = np.sign(c1)
            if s2 > 0:
                c2 = np.sign(c2)
            rows += (1.0, +wheel_r * c1 * size, +wheel_r * c2 * size)
        stripes = np.array(rows, dtype=np.float64).reshape(-1, 3)
        return points, offsets, bodies, colors, transforms, stripes, stripe_polygons

    @staticmethod
    def _car_polygon_template(car):
        """Every polygon `Car.draw` may fill, in its order: each fixture of each body (wheels,
        then hull), each wheel followed by its stripe, whose x are fixed (+-WHEEL_W * SIZE)."""
        points, offsets, bodies, colors, stripe_polygons = [], [0], [], [], []
        half_width = car_dynamics.WHEEL_W * car_dynamics.SIZE  # -WHEEL_W * SIZE is its exact negation
        for k, obj in enumerate(car.drawlist):
            for f in obj.fixtures:
                points.extend(f.shape.vertices)
                offsets.append(len(points))
                bodies.append(k)
                colors.append(xrgb([int(c * 255) for c in obj.color]))
                if "phase" in obj.__dict__:
                    stripe_polygons.append(len(bodies))
                    points.extend([(-half_width, 0.0), (+half_width, 0.0), (+half_width, 0.0), (-half_width, 0.0)])
                    offsets.append(len(points))
                    bodies.append(k)
                    colors.append(xrgb(car_dynamics.WHEEL_WHITE))
        assert [car.drawlist[bodies[p]] for p in stripe_polygons] == list(car.wheels)
        return (
            np.array(points, dtype=np.float32),
            np.array(offsets, dtype=np.int64),
            np.array(bodies, dtype=np.int64),
            np.array(colors, dtype=np.uint32),
            np.zeros((len(stripe_polygons), 3), dtype=np.float64),
            np.array(stripe_polygons, dtype=np.int64),
        )

    # ------------------------------------------------------------------ pygame fallback

    def _render_pygame(self, camera):
        _, zoom, trans, cos_a, sin_a = camera
        if self._world_surface is None:
            self._world_surface = pygame.Surface((WINDOW_W, WINDOW_H))
        surf = self._world_surface
        surf.fill((0, 0, 0))

        def to_screen(points):
            x, y = points[..., 0], points[..., 1]
            return np.stack(((cos_a * x - sin_a * y) * zoom + trans[0], (sin_a * x + cos_a * y) * zoom + trans[1]), -1)

        field = to_screen(self._field).astype(np.int64).tolist()
        gfxdraw.aapolygon(surf, field, rgb_int(self.bg_color))
        gfxdraw.filled_polygon(surf, field, rgb_int(self.bg_color))
        self._draw_visible(surf, to_screen(self._grass), None, rgb_int(self.grass_color))
        self._draw_visible(surf, to_screen(self._road), self._road_colors.astype(np.int64), None)

        polygons, colors = car_polygons(self.car)
        for poly, color in zip(polygons, colors):
            points = to_screen(np.array(poly, dtype=np.float64)).tolist()
            pygame.draw.polygon(surf, color=color, points=points)

        self.surf = pygame.transform.flip(surf, False, True)
        self._render_indicators(WINDOW_W, WINDOW_H)
        text, text_rect, _ = self._score()
        self.surf.blit(text, text_rect)
        return self._create_image_array(self.surf, (STATE_W, STATE_H))

    def _draw_visible(self, surf, screen, colors, one_color):
        """gymnasium's visibility test on the float vertices, then an exact cull of polygons
        whose integer bounding box misses the surface, then aapolygon + filled_polygon."""
        lo, hi_x, hi_y = CULL_BOUNDS
        x, y = screen[..., 0], screen[..., 1]
        near = ((lo <= x) & (x <= hi_x) & (lo <= y) & (y <= hi_y)).any(axis=1)
        ints = screen.astype(np.int64)
        ints = (ints + 32768) % 65536 - 32768  # gfxdraw's Sint16 cast
        lo_xy, hi_xy = ints.min(axis=1), ints.max(axis=1)
        on_surface = (hi_xy[:, 0] >= 0) & (lo_xy[:, 0] < WINDOW_W) & (hi_xy[:, 1] >= 0) & (lo_xy[:, 1] < WINDOW_H)
        for p in np.flatnonzero(near & on_surface):
            color = one_color if colors is None else tuple(colors[p].tolist())
            points = ints[p].tolist()
            gfxdraw.aapolygon(surf, points, color)
            gfxdraw.filled_polygon(surf, points, color)
