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

`render_state_frame` draws a whole CarRacing frame (world, car, indicator bar, score) with these.
Every float expression keeps gymnasium's operation order; numba does not fuse multiply-adds
unless fastmath is on, so the doubles match CPython's bit for bit.
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
