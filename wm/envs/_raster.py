"""Bit-exact numba ports of the pygame-ce drawing calls that CarRacing's `state_pixels` frame uses.

Each function reproduces one C routine of pygame-ce 2.5.x (SDL_gfx and draw.c) integer for
integer, so that drawing into a numpy array gives the same pixels as drawing into an SDL surface:

- `gfx_aapolygon`       <- SDL_gfx `aapolygonColor` (pygame.gfxdraw.aapolygon): Cohen-Sutherland
                           clipping in float32, then Wu anti-aliased lines with 8-bit weights.
- `gfx_filled_polygon`  <- SDL_gfx `filledPolygonColorMT` (pygame.gfxdraw.filled_polygon):
                           scanline fill with 16.16 fixed-point crossings.
- `draw_polygon`        <- draw.c `draw_fillpoly` (pygame.draw.polygon, width 0, >3 points):
                           scanline fill with float32 crossings, floor/ceil by crossing parity.

The canvas is a (height, width) uint32 array laid out like an XRGB8888 SDL surface (0x00RRGGBB,
the format of `pygame.Surface((w, h))` without a display). Two extensions let the caller skip
work without changing any pixel: `flip` writes logical row y to canvas row height-1-y (CarRacing
flips its frame vertically after drawing the world), and only canvas rows in [row_lo, row_hi) are
written (rows outside are overdrawn later anyway). Clipping always uses the full surface, as SDL
does, because the clipped end points of an anti-aliased edge decide where its pixels fall.

Then `prepare_frame` and `draw_rows` draw a whole CarRacing frame (world, car, indicator bar,
score) with them, and `shrink_rows` ports the vertical half of pygame's `smoothscale`. Every
float expression keeps gymnasium's (or Box2D's float32) operation order; numba does not fuse
multiply-adds unless fastmath is on, so the floats match CPython's and Box2D's bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

CLIP_LEFT_EDGE = 1
CLIP_RIGHT_EDGE = 2
CLIP_BOTTOM_EDGE = 4
CLIP_TOP_EDGE = 8
MAX_CLIP_ROUNDS = 64  # Cohen-Sutherland ends in at most 4 rounds; this only guards against a hang

INT32_MIN = -2147483648


# ---------------------------------------------------------------- C integer semantics


@njit(cache=True, inline="always")
def wrap_int16(value):
    """C's (Sint16) cast of an int: keep the low 16 bits, signed."""
    return ((value + 32768) & 0xFFFF) - 32768


@njit(cache=True, inline="always")
def wrap_int32(value):
    """Wrap-around int32 arithmetic, what gcc emits for the overflowing `int` expressions."""
    return ((value + 2147483648) & 0xFFFFFFFF) - 2147483648


@njit(cache=True, inline="always")
def c_div(numerator, denominator):
    """C integer division (truncates toward zero), for a positive denominator."""
    if numerator >= 0:
        return numerator // denominator
    return -((-numerator) // denominator)


@njit(cache=True, inline="always")
def float32_to_int16(value):
    """C's (Sint16) cast of a float on x86-64: cvttss2si to int32 (INT32_MIN when out of
    range or NaN), then the low 16 bits."""
    if value >= -2147483648.0 and value < 2147483648.0:
        return wrap_int16(int(value))
    return wrap_int16(INT32_MIN)


@njit(cache=True, inline="always")
def canvas_row(y, height, flip):
    return height - 1 - y if flip else y


# ---------------------------------------------------------------- pixel and line writers


@njit(cache=True, inline="always")
def put_pixel(canvas, x, y, color, alpha, flip, row_lo, row_hi):
    """SDL_gfx `_putPixelAlpha` on a 32-bit surface without alpha channel: store at alpha 255,
    otherwise blend each channel as d + ((c - d) * alpha >> 8) (its unsigned mask arithmetic
    works out to an arithmetic shift of the signed difference)."""
    height, width = canvas.shape
    if x < 0 or x >= width or y < 0 or y >= height:
        return
    row = canvas_row(y, height, flip)
    if row < row_lo or row >= row_hi:
        return
    if alpha == 255:
        canvas[row, x] = color
        return
    dst = np.int64(canvas[row, x])
    dst_r = (dst >> 16) & 255
    dst_g = (dst >> 8) & 255
    dst_b = dst & 255
    red = dst_r + (((((color >> 16) & 255) - dst_r) * alpha) >> 8)
    green = dst_g + (((((color >> 8) & 255) - dst_g) * alpha) >> 8)
    blue = dst_b + ((((color & 255) - dst_b) * alpha) >> 8)
    canvas[row, x] = np.uint32((red << 16) | (green << 8) | blue)


@njit(cache=True, inline="always")
def put_pixel_weighted(canvas, x, y, color, weight, flip, row_lo, row_hi):
    """SDL_gfx `pixelColorWeightNolock` for an opaque colour: alpha = (255 * weight) >> 8."""
    put_pixel(canvas, x, y, color, (255 * weight) >> 8, flip, row_lo, row_hi)


@njit(cache=True, inline="always")
def fill_span(canvas, x1, x2, y, color, flip, row_lo, row_hi):
    """A clipped horizontal run x1..x2 (either order) on row y: SDL_gfx `hlineColor` at
    alpha 255 and draw.c `drawhorzlineclipbounding` clip and fill the same pixels."""
    height, width = canvas.shape
    if y < 0 or y >= height:
        return
    row = canvas_row(y, height, flip)
    if row < row_lo or row >= row_hi:
        return
    if x1 > x2:
        x1, x2 = x2, x1
    if x2 < 0 or x1 >= width:
        return
    x1 = max(x1, 0)
    x2 = min(x2, width - 1)
    canvas[row, x1 : x2 + 1] = color


@njit(cache=True, inline="always")
def gfx_vline(canvas, x, y1, y2, color, flip, row_lo, row_hi):
    """SDL_gfx `vlineColor` at alpha 255 (Sint16 arguments)."""
    height, width = canvas.shape
    x = wrap_int16(x)
    y1 = wrap_int16(y1)
    y2 = wrap_int16(y2)
    if y1 > y2:
        y1, y2 = y2, y1
    if x < 0 or x >= width or y2 < 0 or y1 >= height:
        return
    for y in range(max(y1, 0), min(y2, height - 1) + 1):
        row = canvas_row(y, height, flip)
        if row >= row_lo and row < row_hi:
            canvas[row, x] = color


@njit(cache=True, inline="always")
def clip_code(x, y, right, bottom):
    code = 0
    if x < 0:
        code |= CLIP_LEFT_EDGE
    elif x > right:
        code |= CLIP_RIGHT_EDGE
    if y < 0:
        code |= CLIP_TOP_EDGE
    elif y > bottom:
        code |= CLIP_BOTTOM_EDGE
    return code


@njit(cache=True)
def gfx_clip_line(x1, y1, x2, y2, width, height):
    """SDL_gfx `_clipLine` against the whole surface: float32 slope, Sint16 end points.
    Returns (visible, x1, y1, x2, y2); the end points may come back swapped, as in C."""
    right = width - 1
    bottom = height - 1
    for _ in range(MAX_CLIP_ROUNDS):
        code1 = clip_code(x1, y1, right, bottom)
        code2 = clip_code(x2, y2, right, bottom)
        if (code1 | code2) == 0:
            return True, x1, y1, x2, y2
        if code1 & code2:
            return False, x1, y1, x2, y2
        if code1 == 0:
            x1, x2 = x2, x1
            y1, y2 = y2, y1
            code1, code2 = code2, code1
        if x2 != x1:
            slope = np.float32(y2 - y1) / np.float32(x2 - x1)
        else:
            slope = np.float32(1.0)
        if code1 & CLIP_LEFT_EDGE:
            y1 = wrap_int16(y1 + float32_to_int16(np.float32(0 - x1) * slope))
            x1 = 0
        elif code1 & CLIP_RIGHT_EDGE:
            y1 = wrap_int16(y1 + float32_to_int16(np.float32(right - x1) * slope))
            x1 = right
        elif code1 & CLIP_BOTTOM_EDGE:
            if x2 != x1:
                x1 = wrap_int16(x1 + float32_to_int16(np.float32(bottom - y1) / slope))
            y1 = bottom
        elif code1 & CLIP_TOP_EDGE:
            if x2 != x1:
                x1 = wrap_int16(x1 + float32_to_int16(np.float32(0 - y1) / slope))
            y1 = 0
    return False, x1, y1, x2, y2


@njit(cache=True)
def gfx_aaline(canvas, x1, y1, x2, y2, color, flip, row_lo, row_hi):
    """SDL_gfx `_aalineColor(..., draw_endpoint=0)` for an opaque colour."""
    height, width = canvas.shape
    visible, x1, y1, x2, y2 = gfx_clip_line(x1, y1, x2, y2, width, height)
    if not visible:
        return
    # every pixel of the line lies on the rows between its clipped end points
    row_a = canvas_row(y1, height, flip)
    row_b = canvas_row(y2, height, flip)
    if max(row_a, row_b) < row_lo or min(row_a, row_b) >= row_hi:
        return
    xx0, yy0, xx1, yy1 = x1, y1, x2, y2
    if yy0 > yy1:
        xx0, xx1 = xx1, xx0
        yy0, yy1 = yy1, yy0
    dx = xx1 - xx0
    dy = yy1 - yy0
    if dx == 0:
        if dy > 0:
            gfx_vline(canvas, x1, yy0, yy0 + dy, color, flip, row_lo, row_hi)
        else:
            put_pixel(canvas, x1, y1, color, 255, flip, row_lo, row_hi)
        return
    if dy == 0:
        fill_span(canvas, wrap_int16(xx0), wrap_int16(xx0 + dx), y1, color, flip, row_lo, row_hi)
        return
    xdir = 1
    if dx < 0:
        xdir = -1
        dx = -dx
    put_pixel(canvas, x1, y1, color, 255, flip, row_lo, row_hi)
    error_acc = 0
    if dy > dx:
        error_adj = ((((dx << 16) // dy) & 0xFFFFFFFF) << 16) & 0xFFFFFFFF
        x0_next = xx0 + xdir
        for _ in range(dy - 1):
            previous = error_acc
            error_acc = (error_acc + error_adj) & 0xFFFFFFFF
            if error_acc <= previous:
                xx0 = x0_next
                x0_next += xdir
            yy0 += 1
            weight = (error_acc >> 24) & 255
            put_pixel_weighted(canvas, xx0, yy0, color, 255 - weight, flip, row_lo, row_hi)
            put_pixel_weighted(canvas, x0_next, yy0, color, weight, flip, row_lo, row_hi)
    else:
        error_adj = ((((dy << 16) // dx) & 0xFFFFFFFF) << 16) & 0xFFFFFFFF
        y0_next = yy0 + 1
        for _ in range(dx - 1):
            previous = error_acc
            error_acc = (error_acc + error_adj) & 0xFFFFFFFF
            if error_acc <= previous:
                yy0 = y0_next
                y0_next += 1
            xx0 += xdir
            weight = (error_acc >> 24) & 255
            put_pixel_weighted(canvas, xx0, yy0, color, 255 - weight, flip, row_lo, row_hi)
            put_pixel_weighted(canvas, xx0, y0_next, color, weight, flip, row_lo, row_hi)


# ---------------------------------------------------------------- polygons


@njit(cache=True, inline="always")
def insertion_sort(values, count):
    for i in range(1, count):
        value = values[i]
        j = i - 1
        while j >= 0 and values[j] > value:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = value


@njit(cache=True, inline="always")
def scan_rows(y_min, y_max, height, flip, row_lo, row_hi):
    """The logical rows whose canvas row lies in [row_lo, row_hi): the rest would be clipped
    or skipped anyway, and every scanline is drawn independently of the others."""
    if flip:
        first, last = height - row_hi, height - 1 - row_lo
    else:
        first, last = row_lo, row_hi - 1
    return max(y_min, first, 0), min(y_max, last, height - 1)


@njit(cache=True)
def gfx_aapolygon(canvas, xs, ys, count, color, flip, row_lo, row_hi):
    """SDL_gfx `aapolygonColor`: every edge, the closing one last, without end points."""
    for i in range(1, count):
        gfx_aaline(canvas, xs[i - 1], ys[i - 1], xs[i], ys[i], color, flip, row_lo, row_hi)
    gfx_aaline(canvas, xs[count - 1], ys[count - 1], xs[0], ys[0], color, flip, row_lo, row_hi)


@njit(cache=True)
def gfx_filled_polygon(canvas, xs, ys, count, color, flip, row_lo, row_hi, crossings):
    """SDL_gfx `filledPolygonColorMT` for an opaque colour; xs, ys are Sint16 values.
    (C sorts with a subtracting comparator that could overflow for crossings 2^31 apart;
    Sint16 screen coordinates this close to the window never get there.)"""
    height = canvas.shape[0]
    y_min = ys[0]
    y_max = ys[0]
    for i in range(1, count):
        if ys[i] < y_min:
            y_min = ys[i]
        elif ys[i] > y_max:
            y_max = ys[i]
    first, last = scan_rows(y_min, y_max, height, flip, row_lo, row_hi)
    for y in range(first, last + 1):
        found = 0
        for i in range(count):
            previous = count - 1 if i == 0 else i - 1
            y1 = ys[previous]
            y2 = ys[i]
            if y1 < y2:
                x1 = xs[previous]
                x2 = xs[i]
            elif y1 > y2:
                y2 = ys[previous]
                y1 = ys[i]
                x2 = xs[previous]
                x1 = xs[i]
            else:
                continue
            if (y >= y1 and y < y2) or (y == y_max and y > y1 and y <= y2):
                step = c_div(wrap_int32(65536 * (y - y1)), y2 - y1)
                crossings[found] = wrap_int32(wrap_int32(step * (x2 - x1)) + wrap_int32(65536 * x1))
                found += 1
        insertion_sort(crossings, found)
        for i in range(0, found - 1, 2):
            xa = wrap_int32(crossings[i] + 1)
            xa = (xa >> 16) + ((xa & 32768) >> 15)
            xb = wrap_int32(crossings[i + 1] - 1)
            xb = (xb >> 16) + ((xb & 32768) >> 15)
            fill_span(canvas, wrap_int16(xa), wrap_int16(xb), y, color, flip, row_lo, row_hi)


@njit(cache=True)
def draw_polygon(canvas, xs, ys, count, color, flip, row_lo, row_hi, crossings):
    """draw.c `draw_fillpoly` (pygame.draw.polygon with width 0 and more than 3 points);
    xs, ys are the points truncated to int as pygame does."""
    height = canvas.shape[0]
    y_min = ys[0]
    y_max = ys[0]
    for i in range(1, count):
        y_min = min(y_min, ys[i])
        y_max = max(y_max, ys[i])
    if y_min == y_max:
        x_min = xs[0]
        x_max = xs[0]
        for i in range(1, count):
            x_min = min(x_min, xs[i])
            x_max = max(x_max, xs[i])
        fill_span(canvas, x_min, x_max, y_min, color, flip, row_lo, row_hi)
        return
    first, last = scan_rows(y_min, y_max, height, flip, row_lo, row_hi)
    for y in range(first, last + 1):
        found = 0
        for i in range(count):
            previous = count - 1 if i == 0 else i - 1
            y1 = ys[previous]
            y2 = ys[i]
            if y1 < y2:
                x1 = xs[previous]
                x2 = xs[i]
            elif y1 > y2:
                y2 = ys[previous]
                y1 = ys[i]
                x2 = xs[previous]
                x1 = xs[i]
            else:
                continue
            if (y >= y1 and y < y2) or (y == y_max and y2 == y_max):
                crossing = np.float32(wrap_int32((y - y1) * (x2 - x1))) / np.float32(y2 - y1)
                if found % 2 == 0:
                    crossing = np.float32(math.floor(crossing))
                else:
                    crossing = np.float32(math.ceil(crossing))
                crossings[found] = int(crossing) + x1
                found += 1
        insertion_sort(crossings, found)
        for i in range(0, found - 1, 2):
            fill_span(canvas, crossings[i], crossings[i + 1], y, color, flip, row_lo, row_hi)
    # draw.c's last pass: horizontal edges strictly between the top and bottom rows
    for i in range(count):
        previous = count - 1 if i == 0 else i - 1
        y = ys[i]
        if y_min < y and ys[previous] == y and y < y_max:
            fill_span(canvas, xs[i], xs[previous], y, color, flip, row_lo, row_hi)


@njit(cache=True)
def gfx_clear_outside_polygon(canvas, xs, ys, count, flip, row_lo, row_hi, crossings):
    """Zero every pixel of the rows [row_lo, row_hi) that `gfx_filled_polygon` with the same
    points would not fill. Drawing that polygon next then leaves the rows exactly as on a
    fresh black surface, without clearing the pixels it overwrites anyway."""
    height, width = canvas.shape
    y_min = ys[0]
    y_max = ys[0]
    for i in range(1, count):
        if ys[i] < y_min:
            y_min = ys[i]
        elif ys[i] > y_max:
            y_max = ys[i]
    for row in range(row_lo, row_hi):
        y = height - 1 - row if flip else row
        if y < y_min or y > y_max:
            canvas[row, :] = 0
            continue
        found = 0
        for i in range(count):
            previous = count - 1 if i == 0 else i - 1
            y1 = ys[previous]
            y2 = ys[i]
            if y1 < y2:
                x1 = xs[previous]
                x2 = xs[i]
            elif y1 > y2:
                y2 = ys[previous]
                y1 = ys[i]
                x2 = xs[previous]
                x1 = xs[i]
            else:
                continue
            if (y >= y1 and y < y2) or (y == y_max and y > y1 and y <= y2):
                step = c_div(wrap_int32(65536 * (y - y1)), y2 - y1)
                crossings[found] = wrap_int32(wrap_int32(step * (x2 - x1)) + wrap_int32(65536 * x1))
                found += 1
        insertion_sort(crossings, found)
        covered_to = 0  # first column not yet known to be filled or cleared
        for i in range(0, found - 1, 2):
            xa = wrap_int32(crossings[i] + 1)
            xa = wrap_int16((xa >> 16) + ((xa & 32768) >> 15))
            xb = wrap_int32(crossings[i + 1] - 1)
            xb = wrap_int16((xb >> 16) + ((xb & 32768) >> 15))
            if xa > xb:
                xa, xb = xb, xa
            if xb < 0 or xa >= width:
                continue
            xa = max(xa, 0)
            xb = min(xb, width - 1)
            if xa > covered_to:
                canvas[row, covered_to:xa] = 0
            covered_to = max(covered_to, xb + 1)
        if covered_to < width:
            canvas[row, covered_to:] = 0


# ---------------------------------------------------------------- one CarRacing frame
#
# `prepare_frame` transforms and culls everything drawn in a frame, once, into a list of
# integer polygons; `draw_rows` draws that list into a band of canvas rows. The caller shrinks
# each band while it is still in cache. Drawing band by band gives the same pixels as drawing
# whole polygons, since every call writes each pixel from that pixel's previous value alone.

WORLD = 0  # gfxdraw.aapolygon then gfxdraw.filled_polygon, before the flip
CAR = 1  # pygame.draw.polygon, before the flip
HUD = 2  # pygame.draw.polygon, after the flip
MAX_POINTS = 8  # the car's largest polygon (HULL_POLY3)


@njit(cache=True, inline="always")
def rotate_zoom_translate(x, y, cos_a, sin_a, zoom, trans_x, trans_y):
    """`Vector2(x, y).rotate_rad(angle)` then `* zoom + translation`, in gymnasium's order."""
    return (cos_a * x - sin_a * y) * zoom + trans_x, (sin_a * x + cos_a * y) * zoom + trans_y


@njit(cache=True, inline="always")
def color_of(rgb):
    """pygame's colour argument: each component truncated to an int, as `int()` does."""
    return np.uint32((int(rgb[0]) << 16) | (int(rgb[1]) << 8) | int(rgb[2]))


@njit(cache=True)
def bar_top_row(height):
    """First row of the black indicator bar, which then covers every row below it."""
    return int(height - 5 * (height / 40.0))


@njit(cache=True)
def add_polygon(poly_xs, poly_ys, poly_meta, poly_colors, n, kind, xs, ys, count, color, height):
    """Append one polygon: its points, colour and (kind, count, first row, last row) on the
    canvas, so that `draw_rows` can skip bands it does not touch."""
    y_min = ys[0]
    y_max = ys[0]
    for i in range(count):
        poly_xs[n, i] = xs[i]
        poly_ys[n, i] = ys[i]
        y_min = min(y_min, ys[i])
        y_max = max(y_max, ys[i])
    poly_meta[n, 0] = kind
    poly_meta[n, 1] = count
    if kind == HUD:
        poly_meta[n, 2] = y_min
        poly_meta[n, 3] = y_max
    else:
        poly_meta[n, 2] = height - 1 - y_max
        poly_meta[n, 3] = height - 1 - y_min
    poly_colors[n] = color
    return n + 1


@njit(cache=True)
def add_world_polygons(polygons, colors, one_color, use_one_color, camera, cull, height, width,
                       poly_xs, poly_ys, poly_meta, poly_colors, n, xs, ys):
    """gymnasium's `_draw_colored_polygon(..., clip=True)` for each polygon, in order: the
    transform, its visibility test on the float points, the Sint16 points gfxdraw takes.
    Polygons that pass its test but whose integer bounding box misses the surface, or lies
    under the indicator bar, are dropped: their edges all clip away, their spans all miss."""
    cos_a, sin_a, zoom, trans_x, trans_y = camera
    cull_lo, cull_hi_x, cull_hi_y = cull
    y_first = height - bar_top_row(height)  # lowest logical row that lands above the bar
    count = polygons.shape[1]
    for p in range(polygons.shape[0]):
        near_screen = False
        for i in range(count):
            px, py = rotate_zoom_translate(polygons[p, i, 0], polygons[p, i, 1], cos_a, sin_a, zoom,
                                           trans_x, trans_y)
            if cull_lo <= px <= cull_hi_x and cull_lo <= py <= cull_hi_y:
                near_screen = True
            xs[i] = wrap_int16(int(px))
            ys[i] = wrap_int16(int(py))
        if not near_screen:
            continue
        x_min = xs[0]
        x_max = xs[0]
        y_min = ys[0]
        y_max = ys[0]
        for i in range(1, count):
            x_min = min(x_min, xs[i])
            x_max = max(x_max, xs[i])
            y_min = min(y_min, ys[i])
            y_max = max(y_max, ys[i])
        if x_max < 0 or x_min >= width or y_max < y_first or y_min >= height:
            continue
        color = one_color if use_one_color else color_of(colors[p])
        n = add_polygon(poly_xs, poly_ys, poly_meta, poly_colors, n, WORLD, xs, ys, count, color, height)
    return n


@njit(cache=True)
def add_indicator(poly_xs, poly_ys, poly_meta, poly_colors, n, value, points, color, height):
    """gymnasium's `render_if_min`: the polygon is drawn only if |value| > 1e-4."""
    if abs(value) <= 1e-4:
        return n
    xs = np.empty(4, np.int64)
    ys = np.empty(4, np.int64)
    for i in range(4):
        xs[i] = int(points[i, 0])
        ys[i] = int(points[i, 1])
    return add_polygon(poly_xs, poly_ys, poly_meta, poly_colors, n, HUD, xs, ys, 4, color, height)


@njit(cache=True, inline="always")
def box2d_transform(transform, x, y):
    """Box2D's `b2Mul(b2Transform, b2Vec2)` (pybox2d's `transform * vertex`), in float32:
    (q.c * x - q.s * y) + p.x, (q.s * x + q.c * y) + p.y; `transform` is (p.x, p.y, q.c, q.s)."""
    px, py, c, s = transform[0], transform[1], transform[2], transform[3]
    return (c * x - s * y) + px, (s * x + c * y) + py


@njit(cache=True)
def add_car_polygons(car, camera, height, poly_xs, poly_ys, poly_meta, poly_colors, n, xs, ys):
    """`Car.draw(..., draw_particles=False)`: each enabled polygon's float32 body-local points
    through its body's Box2D transform, then the camera; pygame.draw.polygon truncates to int.
    `car` is (points, offsets, bodies, colors, enabled, transforms), see FastCarRacing."""
    points, offsets, bodies, colors, enabled, transforms = car
    cos_a, sin_a, zoom, trans_x, trans_y = camera
    for p in range(offsets.shape[0] - 1):
        if not enabled[p]:
            continue
        start = offsets[p]
        count = offsets[p + 1] - start
        transform = transforms[bodies[p]]
        for i in range(count):
            world_x, world_y = box2d_transform(transform, points[start + i, 0], points[start + i, 1])
            px, py = rotate_zoom_translate(np.float64(world_x), np.float64(world_y), cos_a, sin_a, zoom,
                                           trans_x, trans_y)
            xs[i] = int(px)
            ys[i] = int(py)
        n = add_polygon(poly_xs, poly_ys, poly_meta, poly_colors, n, CAR, xs, ys, count, colors[p], height)
    return n


@njit(cache=True)
def prepare_frame(height, width, field, bg_color, grass, grass_color, road, road_colors, camera,
                  cull, car, hud, poly_xs, poly_ys, poly_meta, poly_colors):
    """Everything `_render("state_pixels")` draws, in its order, as integer polygons; returns
    their number. `camera` is (cos, sin, zoom, trans_x, trans_y), `cull` gymnasium's bounds,
    `car` the tuple `add_car_polygons` takes, `hud` true speed, four wheel omegas, front joint
    angle and hull angular velocity."""
    xs = np.empty(MAX_POINTS, np.int64)
    ys = np.empty(MAX_POINTS, np.int64)
    cos_a, sin_a, zoom, trans_x, trans_y = camera

    # the background field, drawn with clip=False: always polygon 0
    for i in range(4):
        px, py = rotate_zoom_translate(field[i, 0], field[i, 1], cos_a, sin_a, zoom, trans_x, trans_y)
        xs[i] = wrap_int16(int(px))
        ys[i] = wrap_int16(int(py))
    n = add_polygon(poly_xs, poly_ys, poly_meta, poly_colors, 0, WORLD, xs, ys, 4, bg_color, height)
    n = add_world_polygons(grass, road_colors, grass_color, True, camera, cull, height, width,
                           poly_xs, poly_ys, poly_meta, poly_colors, n, xs, ys)
    n = add_world_polygons(road, road_colors, grass_color, False, camera, cull, height, width,
                           poly_xs, poly_ys, poly_meta, poly_colors, n, xs, ys)

    n = add_car_polygons(car, camera, height, poly_xs, poly_ys, poly_meta, poly_colors, n, xs, ys)

    # `_render_indicators(W, H)`, with its float expressions
    W = width
    H = height
    s = W / 40.0
    h = H / 40.0
    points = np.empty((4, 2), np.float64)
    points[0, 0] = W
    points[0, 1] = H
    points[1, 0] = W
    points[1, 1] = H - 5 * h
    points[2, 0] = 0
    points[2, 1] = H - 5 * h
    points[3, 0] = 0
    points[3, 1] = H
    n = add_indicator(poly_xs, poly_ys, poly_meta, poly_colors, n, 1.0, points, np.uint32(0), height)
    vertical = ((5, 0.02 * hud[0], 0xFFFFFF), (7, 0.01 * hud[1], 0x0000FF), (8, 0.01 * hud[2], 0x0000FF),
                (9, 0.01 * hud[3], 0x3300FF), (10, 0.01 * hud[4], 0x3300FF))
    for k in range(5):
        place, val, rgb = vertical[k]
        points[0, 0] = place * s
        points[0, 1] = H - (h + h * val)
        points[1, 0] = (place + 1) * s
        points[1, 1] = H - (h + h * val)
        points[2, 0] = (place + 1) * s
        points[2, 1] = H - h
        points[3, 0] = (place + 0) * s
        points[3, 1] = H - h
        n = add_indicator(poly_xs, poly_ys, poly_meta, poly_colors, n, hud[k], points, np.uint32(rgb), height)
    horizontal = ((20, -10.0 * hud[5], 0x00FF00, hud[5]), (30, -0.8 * hud[6], 0xFF0000, hud[6]))
    for k in range(2):
        place, val, rgb, value = horizontal[k]
        points[0, 0] = (place + 0) * s
        points[0, 1] = H - 4 * h
        points[1, 0] = (place + val) * s
        points[1, 1] = H - 4 * h
        points[2, 0] = (place + val) * s
        points[2, 1] = H - 2 * h
        points[3, 0] = (place + 0) * s
        points[3, 1] = H - 2 * h
        n = add_indicator(poly_xs, poly_ys, poly_meta, poly_colors, n, value, points, np.uint32(rgb), height)
    return n


@njit(cache=True)
def draw_rows(canvas, row_lo, row_hi, poly_xs, poly_ys, poly_meta, poly_colors, n, score, score_x,
              score_y):
    """Draw the prepared frame into canvas rows [row_lo, row_hi): the canvas ends up as
    gymnasium's `self.surf` (after its flip, indicators and score) on those rows."""
    height, width = canvas.shape
    world_hi = min(row_hi, bar_top_row(height))  # the bar overdraws the world below it
    crossings = np.empty(MAX_POINTS, np.int64)
    if row_lo < world_hi:
        # a fresh black surface, then the background field
        bg_xs = poly_xs[0]
        bg_ys = poly_ys[0]
        gfx_clear_outside_polygon(canvas, bg_xs, bg_ys, 4, True, row_lo, world_hi, crossings)
        gfx_aapolygon(canvas, bg_xs, bg_ys, 4, poly_colors[0], True, row_lo, world_hi)
        gfx_filled_polygon(canvas, bg_xs, bg_ys, 4, poly_colors[0], True, row_lo, world_hi, crossings)
    for p in range(1, n):
        kind = poly_meta[p, 0]
        count = poly_meta[p, 1]
        hi = row_hi if kind == HUD else world_hi
        if hi <= row_lo or poly_meta[p, 3] < row_lo or poly_meta[p, 2] >= hi:
            continue
        xs = poly_xs[p]
        ys = poly_ys[p]
        if kind == WORLD:
            gfx_aapolygon(canvas, xs, ys, count, poly_colors[p], True, row_lo, hi)
            gfx_filled_polygon(canvas, xs, ys, count, poly_colors[p], True, row_lo, hi, crossings)
        else:
            draw_polygon(canvas, xs, ys, count, poly_colors[p], kind == CAR, row_lo, hi, crossings)
    # the score: an opaque blit of the rendered text
    text_h, text_w = score.shape
    for r in range(max(row_lo - score_y, 0), min(row_hi - score_y, text_h)):
        for c in range(max(-score_x, 0), min(width - score_x, text_w)):
            canvas[score_y + r, score_x + c] = score[r, c]


# ---------------------------------------------------------------- smoothscale's second pass
#
# pygame's smoothscale shrinks X, then Y, through 8-bit pixels. The caller has pygame do the X
# pass band by band; this is the Y pass, written straight into an observation. pygame-ce's SSE2
# filter (also used on NEON) works with 14 fraction bits, its C fallback ("GENERIC") with 16,
# and they round differently, so each is ported.

SMOOTHSCALE_FRACTION_BITS = {"SSE2": 14, "NEON": 14, "GENERIC": 16}


@njit(cache=True)
def shrink_rows(shrunk_x, pixels_xyc, fraction_bits):
    """`filter_shrink_Y` of rows of XRGB pixels (height, width) into `pixels_xyc` (width,
    new_height, 3) RGB, the order of `pygame.surfarray.pixels3d`. Rows the filter never
    writes stay as they are (pygame's new surfaces start zeroed).

    Per column the accumulator holds blue and red in the two 16-bit halves of one uint32 and
    green in another, so each row is one vectorised pass; an output row sums fewer than 257
    input rows, so no 16-bit half carries into its neighbour."""
    src_height, width = shrunk_x.shape
    dst_height = pixels_xyc.shape[1]
    assert src_height < 256 * dst_height and pixels_xyc.shape[0] == width
    one = 1 << fraction_bits
    y_space = one * src_height // dst_height
    if fraction_bits == 14:
        y_recip = np.uint32((0x40000000 // y_space) & 0xFFFF)  # _mm_set1_epi16
    else:
        y_recip = np.uint32(0x100000000 // y_space)
    blue_red = np.zeros(width, np.uint32)
    green = np.zeros(width, np.uint32)
    out_rows = np.zeros((dst_height, width), np.uint32)
    lows = np.uint32(0x00FF00FF)
    byte = np.uint32(255)
    half = np.uint32(0xFFFF)
    columns = np.uint64(width)  # unsigned loop bounds let numba vectorise the loops
    y_counter = y_space
    out_y = 0
    for y in range(src_height):
        row = shrunk_x[y]
        if y_counter > one:
            for x in range(columns):
                blue_red[x] += row[x] & lows
                green[x] += (row[x] >> np.uint32(8)) & byte
            y_counter -= one
            continue
        y_frac = one - y_counter
        counter = np.uint32(y_counter)
        frac = np.uint32(y_frac)
        if out_y < dst_height:
            out_row = out_rows[out_y]
            if fraction_bits == 14:
                # SSE2: mulhi_epu16 of (value << 2) by the counter, add, mulhi by the
                # reciprocal, packus to a byte
                for x in range(columns):
                    pixel = row[x]
                    b4 = (pixel & byte) << np.uint32(2)
                    g4 = ((pixel >> np.uint32(8)) & byte) << np.uint32(2)
                    r4 = ((pixel >> np.uint32(16)) & byte) << np.uint32(2)
                    blue = ((((b4 * counter) >> np.uint32(16)) + (blue_red[x] & half)) & half) * y_recip >> np.uint32(16)
                    grn = ((((g4 * counter) >> np.uint32(16)) + green[x]) & half) * y_recip >> np.uint32(16)
                    red = ((((r4 * counter) >> np.uint32(16)) + (blue_red[x] >> np.uint32(16))) & half) * y_recip >> np.uint32(16)
                    blue_red[x] = ((b4 * frac) >> np.uint32(16)) | (((r4 * frac) >> np.uint32(16)) << np.uint32(16))
                    green[x] = (g4 * frac) >> np.uint32(16)
                    out_row[x] = min(blue, byte) | (min(grn, byte) << np.uint32(8)) | (min(red, byte) << np.uint32(16))
            else:
                # the C filter: 16 fraction bits, then a (Uint8) cast
                for x in range(columns):
                    pixel = row[x]
                    b = pixel & byte
                    g = (pixel >> np.uint32(8)) & byte
                    r = (pixel >> np.uint32(16)) & byte
                    blue = (((blue_red[x] & half) + ((b * counter) >> np.uint32(16))) * y_recip >> np.uint32(16)) & byte
                    grn = ((green[x] + ((g * counter) >> np.uint32(16))) * y_recip >> np.uint32(16)) & byte
                    red = (((blue_red[x] >> np.uint32(16)) + ((r * counter) >> np.uint32(16))) * y_recip >> np.uint32(16)) & byte
                    blue_red[x] = ((b * frac) >> np.uint32(16)) | (((r * frac) >> np.uint32(16)) << np.uint32(16))
                    green[x] = (g * frac) >> np.uint32(16)
                    out_row[x] = blue | (grn << np.uint32(8)) | (red << np.uint32(16))
        out_y += 1
        y_counter = y_space - y_frac
    for y in range(min(out_y, dst_height)):
        for x in range(width):
            pixel = out_rows[y, x]
            pixels_xyc[x, y, 0] = (pixel >> np.uint32(16)) & byte
            pixels_xyc[x, y, 1] = (pixel >> np.uint32(8)) & byte
            pixels_xyc[x, y, 2] = pixel & byte
