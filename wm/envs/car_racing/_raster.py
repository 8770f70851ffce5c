"""Bit-exact numba ports of the pygame-ce routines that draw CarRacing's `state_pixels` frame.

gymnasium draws a 1000x800 frame with SDL_gfx (pygame.gfxdraw: an anti-aliased polygon outline,
then a filled polygon, for the field, grass and road), draw.c (pygame.draw.polygon: the car and
the indicators), flips it, blits the score and shrinks it to 96x96 with pygame's smoothscale.
Every one of those is deterministic integer or float32 code, ported here step for step:

- `gfx_polygon_spans`  <- SDL_gfx `filledPolygonColorMT`: scanline crossings in 16.16 fixed
                          point, rounded, Sint16 hline ends, clipped by `hlineColor`.
- `draw_polygon_spans` <- draw.c `draw_fillpoly` (width 0, more than 3 points): float32
                          crossings floored or ceiled by their parity, then a pass for
                          horizontal edges.
- `gfx_aaline_band`    <- SDL_gfx `_aalineColor(..., draw_endpoint=0)` as `aapolygonColor`
                          calls it: Cohen-Sutherland clipping in float32 (`gfx_clip_line`),
                          then Wu's lines with 8-bit weights blended by `_putPixelAlpha`.
- `shrink_band_x`, `shrink_rows` <- smoothscale's `filter_shrink_X` / `filter_shrink_Y`, in the
                          variant pygame picked: SSE2 (also NEON) with 14 fraction bits, or
                          the C one ("GENERIC") with 16; they round differently.

The frame is drawn in bands of rows, each band column-major (`band[x, i]`) so that the X pass of
smoothscale adds contiguous rows: numba vectorises it across rows, which is what makes it
faster than pygame's. A band holds canvas rows band_lo + i of gymnasium's final (flipped)
frame; a drawing call addresses the logical row y of the surface it draws on, i = (y - y_base)
* y_step. Drawing band by band gives the same pixels as drawing whole polygons, because every
call writes each pixel from that pixel's previous value alone; clipping still uses the whole
surface, as SDL does, since the clipped end points of an anti-aliased edge decide where its
pixels fall.

Two exact shortcuts: a gfxdraw polygon is filled before its outline is drawn (gymnasium draws
the outline first; but the fill overwrites the outline pixels it covers, and blending the
polygon's own colour over those pixels afterwards changes nothing, while the other outline
pixels never depended on the fill); and the field's fill and the clearing of the fresh black
surface are one pass. Every float expression keeps gymnasium's (or Box2D's float32) order of
operations; numba does not fuse multiply-adds unless fastmath is on.
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

MAX_POINTS = 8  # the car's largest polygon (HULL_POLY3)
MAX_SPANS = MAX_POINTS + MAX_POINTS // 2  # spans of one polygon on one row: crossing pairs + horizontal edges

WORLD = 0  # gfxdraw.aapolygon then gfxdraw.filled_polygon, before the flip
CAR = 1  # pygame.draw.polygon, before the flip
HUD = 2  # pygame.draw.polygon, after the flip


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
def ceil_div(numerator, denominator):
    return -((-numerator) // denominator)


@njit(cache=True, inline="always")
def float32_to_int16(value):
    """C's (Sint16) cast of a float on x86-64: cvttss2si to int32 (INT32_MIN when out of
    range or NaN), then the low 16 bits."""
    if value >= -2147483648.0 and value < 2147483648.0:
        return wrap_int16(int(value))
    return wrap_int16(INT32_MIN)


# ---------------------------------------------------------------- scanline spans
#
# A polygon's fill, for the rows of one band: per band row i, up to MAX_SPANS runs
# [lows[i, k], highs[i, k]], already clipped to the surface as the C code clips them.


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
def band_rows(y_min, y_max, y_base, y_step, n_rows):
    """The band rows (first, last) that hold logical rows y_min..y_max; first > last if none."""
    first = (y_min - y_base) * y_step
    last = (y_max - y_base) * y_step
    if first > last:
        first, last = last, first
    return max(first, 0), min(last, n_rows - 1)


@njit(cache=True, inline="always")
def clip_span(x1, x2, width):
    """A run x1..x2 (either order) clipped as SDL_gfx `hlineColor` and draw.c
    `drawhorzlineclipbounding` clip it (they agree once the row is on the surface); returns
    (visible, first, last). Helpers take scalars only: an array argument costs reference
    counting on every call."""
    if x1 > x2:
        x1, x2 = x2, x1
    return x2 >= 0 and x1 < width, max(x1, 0), min(x2, width - 1)


@njit(cache=True)
def gfx_polygon_spans(xs, ys, count, width, y_base, y_step, n_rows, counts, lows, highs, crossings, row_crossings,
                      row_found):
    """SDL_gfx `filledPolygonColorMT` (opaque) on the band's rows; xs, ys are Sint16 values.
    Returns the band rows (first, last) it covers and sets `counts` for those rows only.

    C walks the rows and, per row, every edge that the row crosses (y1 <= y < y2, and on the
    last row y_max the edges ending there), computing `(65536 * (y - y1)) / (y2 - y1)`. Here
    each edge walks its own rows instead (into `row_crossings`, in edge order): while
    65536 * (y2 - y1) fits in an int, the numerator never wraps and is never negative, so the
    quotient can be stepped from row to row with its remainder, exactly, without a division;
    taller edges divide per row as C does. The crossings of a row are then sorted, as C
    sorts them, so the order they were found in does not matter. (C's sort uses a
    subtracting comparator, which would overflow for crossings 2^31 apart in 16.16, i.e.
    32768 pixels: CarRacing's polygons, the field included, are never that wide.)"""
    y_min = ys[0]
    y_max = ys[0]
    for i in range(1, count):
        if ys[i] < y_min:
            y_min = ys[i]
        elif ys[i] > y_max:
            y_max = ys[i]
    first, last = band_rows(y_min, y_max, y_base, y_step, n_rows)
    if first > last:
        return first, last
    counts[first : last + 1] = 0
    row_found[first : last + 1] = 0
    y_a = y_base + y_step * first
    y_b = y_base + y_step * last
    band_y_lo = min(y_a, y_b)
    band_y_hi = max(y_a, y_b)
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
        top = y2 if y2 == y_max else y2 - 1  # the rows C's test admits for this edge
        y_from = max(y1, band_y_lo)
        y_to = min(top, band_y_hi)
        if y_from > y_to:
            continue
        dy = y2 - y1
        dx = x2 - x1
        base = wrap_int32(65536 * x1)
        if dy < 32768:
            numerator = 65536 * (y_from - y1)
            quotient = numerator // dy
            remainder = numerator - quotient * dy
            step_q = 65536 // dy
            step_r = 65536 - step_q * dy
            for y in range(y_from, y_to + 1):
                row = (y - y_base) * y_step
                row_crossings[row, row_found[row]] = wrap_int32(wrap_int32(quotient * dx) + base)
                row_found[row] += 1
                quotient += step_q
                remainder += step_r
                if remainder >= dy:
                    quotient += 1
                    remainder -= dy
        else:
            for y in range(y_from, y_to + 1):
                row = (y - y_base) * y_step
                step = c_div(wrap_int32(65536 * (y - y1)), dy)
                row_crossings[row, row_found[row]] = wrap_int32(wrap_int32(step * dx) + base)
                row_found[row] += 1
    for row in range(first, last + 1):
        found = row_found[row]
        for k in range(found):
            crossings[k] = row_crossings[row, k]
        insertion_sort(crossings, found)
        for k in range(0, found - 1, 2):
            xa = wrap_int32(crossings[k] + 1)
            xa = (xa >> 16) + ((xa & 32768) >> 15)
            xb = wrap_int32(crossings[k + 1] - 1)
            xb = (xb >> 16) + ((xb & 32768) >> 15)
            visible, first_x, last_x = clip_span(wrap_int16(xa), wrap_int16(xb), width)
            if visible:
                lows[row, counts[row]] = first_x
                highs[row, counts[row]] = last_x
                counts[row] += 1
    return first, last


@njit(cache=True)
def draw_polygon_spans(xs, ys, count, width, y_base, y_step, n_rows, counts, lows, highs, crossings):
    """draw.c `draw_fillpoly` on the band's rows; xs, ys are the points truncated to int as
    pygame truncates them. Returns the band rows (first, last) it covers and sets `counts` for
    those rows only."""
    y_min = ys[0]
    y_max = ys[0]
    for i in range(1, count):
        y_min = min(y_min, ys[i])
        y_max = max(y_max, ys[i])
    first, last = band_rows(y_min, y_max, y_base, y_step, n_rows)
    if first <= last:
        counts[first : last + 1] = 0
    if y_min == y_max:  # a polygon one pixel high: one run across all its points
        if first <= last:
            x_min = xs[0]
            x_max = xs[0]
            for i in range(1, count):
                x_min = min(x_min, xs[i])
                x_max = max(x_max, xs[i])
            visible, first_x, last_x = clip_span(x_min, x_max, width)
            if visible:
                lows[first, 0] = first_x
                highs[first, 0] = last_x
                counts[first] = 1
        return first, last
    for row in range(first, last + 1):
        y = y_base + y_step * row
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
            visible, first_x, last_x = clip_span(crossings[i], crossings[i + 1], width)
            if visible:
                lows[row, counts[row]] = first_x
                highs[row, counts[row]] = last_x
                counts[row] += 1
    # draw.c's last pass: horizontal edges strictly between the top and bottom rows
    for i in range(count):
        previous = count - 1 if i == 0 else i - 1
        y = ys[i]
        if y_min < y and ys[previous] == y and y < y_max:
            row = (y - y_base) * y_step
            if row >= 0 and row < n_rows:
                visible, first_x, last_x = clip_span(xs[i], xs[previous], width)
                if visible:
                    lows[row, counts[row]] = first_x
                    highs[row, counts[row]] = last_x
                    counts[row] += 1
    return first, last


# ---------------------------------------------------------------- anti-aliased edges


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


@njit(cache=True, inline="always")
def put_pixel(band, x, y, alpha, color, width, height, y_base, y_step, n_rows):
    """SDL_gfx `_putPixelAlpha` on a 32-bit surface without alpha channel, into the band (if
    the pixel is on the surface and in the band): stored at alpha 255, else blended per
    channel as d + ((c - d) * alpha >> 8) (its unsigned mask arithmetic amounts to an
    arithmetic shift of the signed difference)."""
    if x < 0 or x >= width or y < 0 or y >= height:
        return
    i = (y - y_base) * y_step
    if i < 0 or i >= n_rows:
        return
    if alpha == 255:
        band[x, i] = color
        return
    c = np.int64(color)
    dst = np.int64(band[x, i])
    dst_r = (dst >> 16) & 255
    dst_g = (dst >> 8) & 255
    dst_b = dst & 255
    red = dst_r + ((((c >> 16) & 255) - dst_r) * alpha >> 8)
    green = dst_g + ((((c >> 8) & 255) - dst_g) * alpha >> 8)
    blue = dst_b + (((c & 255) - dst_b) * alpha >> 8)
    band[x, i] = np.uint32((red << 16) | (green << 8) | blue)


@njit(cache=True)
def gfx_aaline_band(x1, y1, x2, y2, width, height, y_lo, y_hi, band, color, y_base, y_step, n_rows):
    """SDL_gfx `_aalineColor(..., draw_endpoint=0)` for an opaque colour, each pixel it writes
    on logical rows y_lo..y_hi put into the band in its order (`put_pixel`: alpha 255 stores,
    lower alphas blend). The walk starts at the first step that reaches those rows: after k
    steps the error accumulator holds k * adj mod 2^32 and has wrapped floor(k * adj / 2^32)
    times (every time when adj is 0, on a diagonal, where C's `erracc <= erracctmp` always
    holds)."""
    visible, x1, y1, x2, y2 = gfx_clip_line(x1, y1, x2, y2, width, height)
    if not visible or max(y1, y2) < y_lo or min(y1, y2) > y_hi:
        return  # every pixel of the line lies between its clipped end points' rows
    xx0, yy0, xx1, yy1 = x1, y1, x2, y2
    if yy0 > yy1:
        xx0, xx1 = xx1, xx0
        yy0, yy1 = yy1, yy0
    dx = xx1 - xx0
    dy = yy1 - yy0
    if dx == 0:
        if dy > 0:  # vlineColor(x1, yy0, yy0 + dy)
            x = wrap_int16(x1)
            top = wrap_int16(yy0)
            bottom = wrap_int16(yy0 + dy)
            if top > bottom:
                top, bottom = bottom, top
            if x >= 0 and x < width:
                for y in range(max(top, 0, y_lo), min(bottom, height - 1, y_hi) + 1):
                    put_pixel(band, x, y, 255, color, width, height, y_base, y_step, n_rows)
        else:  # pixelColor(x1, y1)
            put_pixel(band, x1, y1, 255, color, width, height, y_base, y_step, n_rows)
        return
    if dy == 0:  # hlineColor(xx0, xx0 + dx, y1)
        visible, left, right = clip_span(wrap_int16(xx0), wrap_int16(xx0 + dx), width)
        if visible:
            for x in range(left, right + 1):
                put_pixel(band, x, y1, 255, color, width, height, y_base, y_step, n_rows)
        return
    xdir = 1
    if dx < 0:
        xdir = -1
        dx = -dx
    put_pixel(band, x1, y1, 255, color, width, height, y_base, y_step, n_rows)  # the first end point, unweighted
    if dy > dx:  # y-major: step k is on row yy0 + k, at the pixel pair x, x + xdir
        adj = ((((dx << 16) // dy) & 0xFFFFFFFF) << 16) & 0xFFFFFFFF
        for k in range(max(1, y_lo - yy0), min(dy - 1, y_hi - yy0) + 1):
            error = k * adj
            x = xx0 + xdir * (error >> 32)
            weight = ((error & 0xFFFFFFFF) >> 24) & 255
            put_pixel(band, x, yy0 + k, (255 * (255 - weight)) >> 8, color, width, height, y_base, y_step, n_rows)
            put_pixel(band, x + xdir, yy0 + k, (255 * weight) >> 8, color, width, height, y_base, y_step, n_rows)
    else:  # x-major: step k is on column xx0 + k * xdir, at rows yy0 + wraps and the one below
        adj = ((((dy << 16) // dx) & 0xFFFFFFFF) << 16) & 0xFFFFFFFF
        need_lo = y_lo - yy0 - 1  # wraps that bring the lower pixel of the pair onto the rows
        need_hi = y_hi - yy0  # wraps past which the upper pixel has left them
        if adj == 0:
            k_lo, k_hi = need_lo, need_hi
        else:
            k_lo = ceil_div(need_lo << 32, adj) if need_lo > 0 else 1
            k_hi = ceil_div((need_hi + 1) << 32, adj) - 1
        for k in range(max(1, k_lo), min(dx - 1, k_hi) + 1):
            if adj == 0:
                wraps = k
                weight = 0
            else:
                error = k * adj
                wraps = error >> 32
                weight = ((error & 0xFFFFFFFF) >> 24) & 255
            x = xx0 + xdir * k
            put_pixel(band, x, yy0 + wraps, (255 * (255 - weight)) >> 8, color, width, height, y_base, y_step, n_rows)
            put_pixel(band, x, yy0 + wraps + 1, (255 * weight) >> 8, color, width, height, y_base, y_step, n_rows)
    return




# ---------------------------------------------------------------- writing into a band


@njit(cache=True)
def fill_spans(band, first, last, counts, lows, highs, color, clear_outside, layer_lo, layer_hi):
    """Overwrite the spans of band rows first..last with `color`, one layer at a time (the
    k-th span of every row), sweeping columns with the rows innermost so that numba
    vectorises the select. With `clear_outside`, every other pixel of those rows becomes 0,
    as on a fresh black surface. A layer whose rows all hold the same span (the field once
    the camera is inside it, the indicator bar, the indicators) is a plain rectangle."""
    width = band.shape[0]
    if first > last:
        return
    layers = 0
    for i in range(first, last + 1):
        layers = max(layers, counts[i])
    rows_lo = np.uint64(first)
    rows_hi = np.uint64(last + 1)
    black = np.uint32(0)
    for k in range(max(layers, 1 if clear_outside else 0)):
        clearing = clear_outside and k == 0
        x_lo = width
        x_hi = -1
        rectangle = True
        for i in range(first, last + 1):
            if k < counts[i]:
                layer_lo[i] = lows[i, k]
                layer_hi[i] = highs[i, k]
                x_lo = min(x_lo, lows[i, k])
                x_hi = max(x_hi, highs[i, k])
            else:
                layer_lo[i] = 1  # an empty span
                layer_hi[i] = 0
            rectangle &= (layer_lo[i] == layer_lo[first]) & (layer_hi[i] == layer_hi[first])
        if rectangle and layer_lo[first] > layer_hi[first]:
            x_lo, x_hi = 0, -1  # every row empty
        if clearing and not (rectangle and x_lo == 0 and x_hi == width - 1):
            for x in range(width):
                column = np.int32(x)
                for i in range(rows_lo, rows_hi):
                    band[x, i] = color if (layer_lo[i] <= column) & (column <= layer_hi[i]) else black
        elif rectangle:
            for x in range(x_lo, x_hi + 1):
                for i in range(rows_lo, rows_hi):
                    band[x, i] = color
        else:
            for x in range(x_lo, x_hi + 1):
                column = np.int32(x)
                for i in range(rows_lo, rows_hi):
                    band[x, i] = color if (layer_lo[i] <= column) & (column <= layer_hi[i]) else band[x, i]


@njit(cache=True)
def gfx_aapolygon_band(band, xs, ys, count, color, height, y_base, y_step, n_rows):
    """SDL_gfx `aapolygonColor` (every edge, the closing one last) on the band's rows, each
    pixel through `_putPixelAlpha` on a 32-bit surface without alpha channel: stored at
    alpha 255, else blended per channel as d + ((c - d) * alpha >> 8) (its unsigned mask
    arithmetic amounts to an arithmetic shift of the signed difference)."""
    width = band.shape[0]
    y_lo = min(y_base, y_base + y_step * (n_rows - 1))
    y_hi = max(y_base, y_base + y_step * (n_rows - 1))
    for start in range(count):  # edges 0 -> 1, 1 -> 2, ..., then the closing one
        end = start + 1 if start + 1 < count else 0
        gfx_aaline_band(xs[start], ys[start], xs[end], ys[end], width, height, y_lo, y_hi, band, color, y_base,
                        y_step, n_rows)


# ---------------------------------------------------------------- one CarRacing frame
#
# `prepare_frame` transforms and culls everything a frame draws, once, into a list of integer
# polygons (kind, points, colour, canvas rows); `render_observation` draws the list band by
# band, shrinks each band in X while it is in cache, and finishes with the Y pass.


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


def polygon_circles(polygons: np.ndarray) -> np.ndarray:
    """Per polygon (N, k, 2) a circle around it, (center x, center y, radius), for the quick
    test in `add_world_polygons`."""
    centers = polygons.mean(axis=1)
    radii = np.sqrt(((polygons - centers[:, None, :]) ** 2).sum(axis=2)).max(axis=1)
    return np.ascontiguousarray(np.concatenate([centers, radii[:, None]], axis=1), dtype=np.float64)


@njit(cache=True)
def add_world_polygons(polygons, circles, colors, one_color, use_one_color, camera, cull, height, width,
                       poly_xs, poly_ys, poly_meta, poly_colors, n, xs, ys):
    """gymnasium's `_draw_colored_polygon(..., clip=True)` for each polygon, in order: the
    transform, its visibility test on the float points, the Sint16 points gfxdraw takes.
    Polygons that pass its test but whose integer bounding box misses the surface, or lies
    under the indicator bar, are dropped: their edges all clip away, their spans all miss.

    A quick test goes first: the polygon's circle (`polygon_circles`) is transformed, and if
    the whole circle (its screen radius with a margin far above float rounding) lies left of
    x = -1, right of x = width, above logical row y_first or below the surface, every vertex
    does, so the integer bounding box misses (int() truncates toward zero, and the points stay
    far inside Sint16 range: the test requires it) and the exact tests would drop it too."""
    cos_a, sin_a, zoom, trans_x, trans_y = camera
    cull_lo, cull_hi_x, cull_hi_y = cull
    y_first = height - bar_top_row(height)  # lowest logical row that lands above the bar
    count = polygons.shape[1]
    scale = abs(zoom) * (1.0 + 1e-6)  # |(cos, sin)| is 1 to within rounding
    for p in range(polygons.shape[0]):
        cx, cy = rotate_zoom_translate(circles[p, 0], circles[p, 1], cos_a, sin_a, zoom, trans_x, trans_y)
        reach = circles[p, 2] * scale + 2.0
        if abs(cx) + reach < 30000.0 and abs(cy) + reach < 30000.0 and (
                cx + reach < -1.0 or cx - reach > width or cy + reach < y_first or cy - reach > height):
            continue
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
    """`Car.draw(..., draw_particles=False)`: each polygon's float32 body-local points through
    its body's Box2D transform, then the camera; pygame.draw.polygon truncates to int.
    `car` is (points, offsets, bodies, colors, transforms, stripes, stripe_polygons): a wheel's
    white stripe (polygon stripe_polygons[k]) is drawn if stripes[k, 0], its two edges at the
    local y stripes[k, 1:] that `Car.draw` derives from the wheel's phase."""
    points, offsets, bodies, colors, transforms, stripes, stripe_polygons = car
    cos_a, sin_a, zoom, trans_x, trans_y = camera
    stripe = 0
    for p in range(offsets.shape[0] - 1):
        start = offsets[p]
        count = offsets[p + 1] - start
        if stripe < stripe_polygons.shape[0] and stripe_polygons[stripe] == p:
            drawn, y1, y2 = stripes[stripe, 0], stripes[stripe, 1], stripes[stripe, 2]
            stripe += 1
            if not drawn:
                continue
            # float64 to float32, as pybox2d rounds a tuple into a b2Vec2
            points[start, 1] = points[start + 1, 1] = np.float32(y1)
            points[start + 2, 1] = points[start + 3, 1] = np.float32(y2)
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
def prepare_frame(height, width, field, bg_color, grass, grass_circles, grass_color, road, road_circles,
                  road_colors, camera, cull, car, hud, poly_xs, poly_ys, poly_meta, poly_colors):
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
    n = add_world_polygons(grass, grass_circles, road_colors, grass_color, True, camera, cull, height, width,
                           poly_xs, poly_ys, poly_meta, poly_colors, n, xs, ys)
    n = add_world_polygons(road, road_circles, road_colors, grass_color, False, camera, cull, height, width,
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
def draw_band(band, band_lo, n_rows, height, bar_top, poly_xs, poly_ys, poly_meta, poly_colors, n, score,
              score_x, score_y, scratch):
    """Canvas rows band_lo..band_lo+n_rows-1 of gymnasium's final frame into `band`: the world
    (polygon 0 is the field, drawn on a fresh black surface) above `bar_top`, flipped; then the
    indicator bar and indicators; then the score's pixels."""
    counts, lows, highs, crossings, layer_lo, layer_hi, row_crossings, row_found = scratch
    world_rows = min(n_rows, bar_top - band_lo)  # the bar overdraws every row below it
    flipped_base = height - 1 - band_lo  # logical row of band row 0 before the flip
    if world_rows > 0:
        xs = poly_xs[0]
        ys = poly_ys[0]
        counts[:world_rows] = 0  # the field's fill also clears the rows it does not reach
        gfx_polygon_spans(xs, ys, 4, band.shape[0], flipped_base, -1, world_rows, counts, lows, highs, crossings,
                          row_crossings, row_found)
        fill_spans(band, 0, world_rows - 1, counts, lows, highs, poly_colors[0], True, layer_lo, layer_hi)
        gfx_aapolygon_band(band, xs, ys, 4, poly_colors[0], height, flipped_base, -1, world_rows)
    for p in range(1, n):
        kind = poly_meta[p, 0]
        count = poly_meta[p, 1]
        rows = n_rows if kind == HUD else world_rows
        if rows <= 0 or poly_meta[p, 3] < band_lo or poly_meta[p, 2] >= band_lo + rows:
            continue
        xs = poly_xs[p]
        ys = poly_ys[p]
        if kind == WORLD:
            first, last = gfx_polygon_spans(xs, ys, count, band.shape[0], flipped_base, -1, rows, counts, lows,
                                            highs, crossings, row_crossings, row_found)
            fill_spans(band, first, last, counts, lows, highs, poly_colors[p], False, layer_lo, layer_hi)
            gfx_aapolygon_band(band, xs, ys, count, poly_colors[p], height, flipped_base, -1, rows)
        else:
            base, step = (flipped_base, -1) if kind == CAR else (band_lo, 1)
            first, last = draw_polygon_spans(xs, ys, count, band.shape[0], base, step, rows, counts, lows, highs,
                                             crossings)
            fill_spans(band, first, last, counts, lows, highs, poly_colors[p], False, layer_lo, layer_hi)
    # the score: an opaque blit of the rendered text, after the flip
    text_h, text_w = score.shape
    for c in range(max(-score_x, 0), min(band.shape[0] - score_x, text_w)):
        for r in range(max(band_lo - score_y, 0), min(band_lo + n_rows - score_y, text_h)):
            band[score_x + c, score_y + r - band_lo] = score[r, c]


@njit(cache=True)
def band_scratch(band_rows, width):
    """Per-band work arrays: span counts, span ends, crossings, one layer of spans, and the
    crossings of a gfxdraw polygon per row (with their counts)."""
    return (np.zeros(band_rows, np.int64), np.zeros((band_rows, MAX_SPANS), np.int64),
            np.zeros((band_rows, MAX_SPANS), np.int64), np.zeros(2 * MAX_POINTS, np.int64),
            np.zeros(band_rows, np.int32), np.zeros(band_rows, np.int32),
            np.zeros((band_rows, MAX_POINTS), np.int64), np.zeros(band_rows, np.int64))


@njit(cache=True)
def render_observation(band, height, poly_xs, poly_ys, poly_meta, poly_colors, n, score, score_x, score_y,
                       windows_x, fraction_bits, shrunk, observation, rows_drawn, rows_out):
    """The prepared frame, band by band, each band shrunk in X while in cache; then the Y
    pass into `observation` (96, 96, 3). Only canvas rows 0..rows_drawn-1 are drawn and
    shrunk, and only observation rows 0..rows_out-1 written: the full frame is (height, 96);
    the agent's view (`FastCarRacing.agent_view`) stops above the indicator bar, the rows the
    preprocessing crop reads (the caller checks that the Y pass reads no row it skipped)."""
    band_rows = band.shape[1]
    bar_top = bar_top_row(height)
    scratch = band_scratch(band_rows, band.shape[0])
    sums = np.zeros((2, band_rows), np.uint32)
    carries = np.zeros((2, band_rows), np.uint32)
    out = np.zeros((shrunk.shape[1], band_rows), np.uint32)
    for band_lo in range(0, rows_drawn, band_rows):
        n_rows = min(band_rows, rows_drawn - band_lo)
        draw_band(band, band_lo, n_rows, height, bar_top, poly_xs, poly_ys, poly_meta, poly_colors, n, score,
                  score_x, score_y, scratch)
        shrink_band_x(band, n_rows, windows_x, fraction_bits, shrunk, band_lo, sums, carries, out)
    shrink_rows(shrunk, observation, fraction_bits, rows_out)


def last_row_read(src_height, dst_height, fraction_bits, rows_out):
    """The last source row `shrink_rows` reads to write output rows 0..rows_out-1 (the row of
    its last partial window), replaying its counter."""
    one = 1 << fraction_bits
    y_space = one * src_height // dst_height
    y_counter = y_space
    out_y = 0
    for y in range(src_height):
        if y_counter > one:
            y_counter -= one
            continue
        out_y += 1
        if out_y == rows_out:
            return y
        y_counter = y_space - (one - y_counter)
    return src_height - 1


@njit(cache=True)
def render_canvas(canvas, band, bar_top, poly_xs, poly_ys, poly_meta, poly_colors, n, score, score_x, score_y):
    """The prepared frame drawn band by band like `render_observation`, but copied into a
    full row-major (height, width) canvas: gymnasium's `self.surf` before smoothscale. For
    tests and debugging."""
    height = canvas.shape[0]
    band_rows = band.shape[1]
    scratch = band_scratch(band_rows, band.shape[0])
    for band_lo in range(0, height, band_rows):
        n_rows = min(band_rows, height - band_lo)
        for i in range(n_rows):
            for x in range(canvas.shape[1]):
                band[x, i] = canvas[band_lo + i, x]
        draw_band(band, band_lo, n_rows, height, bar_top, poly_xs, poly_ys, poly_meta, poly_colors, n, score,
                  score_x, score_y, scratch)
        for i in range(n_rows):
            for x in range(canvas.shape[1]):
                canvas[band_lo + i, x] = band[x, i]


# ---------------------------------------------------------------- smoothscale
#
# pygame's smoothscale shrinks X, then Y, through 8-bit pixels. An output pixel j adds up the
# source pixels of its window [starts[j], bounds[j]): the last one, bounds[j], only in part
# (`counters[j]`), the rest of it (`fractions[j]`) going to the next window.

SMOOTHSCALE_FRACTION_BITS = {"SSE2": 14, "NEON": 14, "GENERIC": 16}


@njit(cache=True)
def smoothscale_windows(src_size, dst_size, fraction_bits):
    """The windows of `filter_shrink_X` (or `_Y`) and the reciprocal it multiplies by."""
    one = 1 << fraction_bits
    space = one * src_size // dst_size
    if fraction_bits == 14:
        recip = (0x40000000 // space) & 0xFFFF  # _mm_set1_epi16
    else:
        recip = 0x100000000 // space
    starts = np.zeros(dst_size, np.int64)
    bounds = np.zeros(dst_size, np.int64)
    counters = np.zeros(dst_size, np.int64)
    fractions = np.zeros(dst_size, np.int64)
    counter = space
    start = 0
    j = 0
    for x in range(src_size):
        if counter > one:
            counter -= one
        else:
            fraction = one - counter
            if j < dst_size:
                starts[j] = start
                bounds[j] = x
                counters[j] = counter
                fractions[j] = fraction
            j += 1
            start = x + 1
            counter = space - fraction
    assert j == dst_size  # every output pixel written (else C would leave uninitialised memory)
    assert src_size < 256 * dst_size  # 16-bit sums never overflow into a neighbour
    return starts, bounds, counters, fractions, recip


@njit(cache=True, inline="always")
def shrink_x_pixel(pixel, sum_br, sum_g, counter, fraction, reciprocal, fraction_bits):
    """One output pixel of `filter_shrink_X`: sum_br (blue and red in 16-bit halves) and sum_g
    hold the carry plus the window's full pixels, `pixel` is its last, partial one. Returns
    (output XRGB, carry blue-red, carry green) for the next window."""
    byte = np.uint32(255)
    half = np.uint32(0xFFFF)
    eight = np.uint32(8)
    sixteen = np.uint32(16)
    if fraction_bits == 14:
        # SSE2: mulhi_epu16 of (value << 2) by the counter, add, mulhi by the reciprocal,
        # packus to a byte
        b4 = (pixel & byte) << np.uint32(2)
        g4 = ((pixel >> eight) & byte) << np.uint32(2)
        r4 = ((pixel >> sixteen) & byte) << np.uint32(2)
        blue = ((((b4 * counter) >> sixteen) + (sum_br & half)) & half) * reciprocal >> sixteen
        green = ((((g4 * counter) >> sixteen) + sum_g) & half) * reciprocal >> sixteen
        red = ((((r4 * counter) >> sixteen) + (sum_br >> sixteen)) & half) * reciprocal >> sixteen
        carry_br = ((b4 * fraction) >> sixteen) | (((r4 * fraction) >> sixteen) << sixteen)
        carry_g = (g4 * fraction) >> sixteen
        return min(blue, byte) | (min(green, byte) << eight) | (min(red, byte) << sixteen), carry_br, carry_g
    # the C filter: 16 fraction bits, then a (Uint8) cast
    b = pixel & byte
    g = (pixel >> eight) & byte
    r = (pixel >> sixteen) & byte
    blue = (((sum_br & half) + ((b * counter) >> sixteen)) * reciprocal >> sixteen) & byte
    green = (((sum_g & half) + ((g * counter) >> sixteen)) * reciprocal >> sixteen) & byte
    red = (((sum_br >> sixteen) + ((r * counter) >> sixteen)) * reciprocal >> sixteen) & byte
    carry_br = ((b * fraction) >> sixteen) | (((r * fraction) >> sixteen) << sixteen)
    carry_g = (g * fraction) >> sixteen
    return blue | (green << eight) | (red << sixteen), carry_br, carry_g


@njit(cache=True)
def shrink_band_x(band, n_rows, windows, fraction_bits, shrunk, row0, sums, carries, out):
    """`filter_shrink_X` of the band's rows into rows row0.. of `shrunk` (XRGB, 96 wide).
    Per band row, blue and red share one uint32 (two 16-bit halves) and green has another,
    as SSE2 keeps them in 16-bit lanes; the rows are the vector lanes. Results go to `out`
    (column-major, like the band, so that the loops stay vectorised), then to `shrunk`.

    The band's pixels must have a zero top byte (every colour drawn has, and the score's
    pixels are masked): then a plain sum of the window's full pixels is sum(blue) +
    256 sum(green) + 65536 sum(red) exactly (at most 11 pixels, no uint32 overflow), and
    minus the blue-red sum it leaves 256 sum(green), one operation a pixel fewer than
    extracting green. Windows of 9 and 10 full pixels (all of them for 1000 -> 96) are
    summed and finished in one pass over the rows, in registers."""
    starts, bounds, counters, fractions, recip = windows
    rows = np.uint64(n_rows)
    lb = np.uint32(0x00FF00FF)
    eight = np.uint32(8)
    reciprocal = np.uint32(recip)
    sum_br, sum_g = sums[0], sums[1]
    carry_br, carry_g = carries[0], carries[1]
    for i in range(rows):
        carry_br[i] = 0
        carry_g[i] = 0
    for j in range(starts.shape[0]):
        start = starts[j]
        full = bounds[j] - start
        if full == 10:
            for i in range(rows):
                p0, p1, p2 = band[start, i], band[start + 1, i], band[start + 2, i]
                p3, p4, p5 = band[start + 3, i], band[start + 4, i], band[start + 5, i]
                p6, p7, p8, p9 = band[start + 6, i], band[start + 7, i], band[start + 8, i], band[start + 9, i]
                br = ((p0 & lb) + (p1 & lb) + (p2 & lb) + (p3 & lb) + (p4 & lb) + (p5 & lb) + (p6 & lb)
                      + (p7 & lb) + (p8 & lb) + (p9 & lb))
                raw = p0 + p1 + p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
                sum_br[i] = carry_br[i] + br
                sum_g[i] = carry_g[i] + (np.uint32(np.uint32(raw) - np.uint32(br)) >> eight)
        elif full == 9:
            for i in range(rows):
                p0, p1, p2 = band[start, i], band[start + 1, i], band[start + 2, i]
                p3, p4, p5 = band[start + 3, i], band[start + 4, i], band[start + 5, i]
                p6, p7, p8 = band[start + 6, i], band[start + 7, i], band[start + 8, i]
                br = ((p0 & lb) + (p1 & lb) + (p2 & lb) + (p3 & lb) + (p4 & lb) + (p5 & lb) + (p6 & lb)
                      + (p7 & lb) + (p8 & lb))
                raw = p0 + p1 + p2 + p3 + p4 + p5 + p6 + p7 + p8
                sum_br[i] = carry_br[i] + br
                sum_g[i] = carry_g[i] + (np.uint32(np.uint32(raw) - np.uint32(br)) >> eight)
        else:
            for i in range(rows):
                sum_br[i] = 0
                sum_g[i] = 0  # the plain sum, first
            for x in range(start, bounds[j]):
                for i in range(rows):
                    sum_br[i] += band[x, i] & lb
                    sum_g[i] += band[x, i]
            for i in range(rows):
                sum_g[i] = carry_g[i] + ((sum_g[i] - sum_br[i]) >> eight)
                sum_br[i] += carry_br[i]
        boundary = bounds[j]
        counter = np.uint32(counters[j])
        fraction = np.uint32(fractions[j])
        for i in range(rows):
            out[j, i], carry_br[i], carry_g[i] = shrink_x_pixel(band[boundary, i], sum_br[i], sum_g[i], counter,
                                                                fraction, reciprocal, fraction_bits)
    for i in range(n_rows):
        for j in range(starts.shape[0]):
            shrunk[row0 + i, j] = out[j, i]


@njit(cache=True)
def shrink_rows(shrunk_x, observation, fraction_bits, rows_out=-1):
    """`filter_shrink_Y` of rows of XRGB pixels (height, width) into `observation` (new_height,
    width, 3) RGB, the array gymnasium returns. Rows the filter never writes stay as they are
    (pygame's new surfaces start zeroed). With `rows_out` >= 0 it stops after that many output
    rows (and reads no source row below the last of them, `last_row_read`).

    Per column the accumulator holds blue and red in the two 16-bit halves of one uint32 and
    green in another, so each row is one vectorised pass; an output row sums fewer than 257
    input rows, so no 16-bit half carries into its neighbour."""
    src_height, width = shrunk_x.shape
    dst_height = observation.shape[0]
    assert src_height < 256 * dst_height and observation.shape[1] == width
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
    eight = np.uint32(8)
    sixteen = np.uint32(16)
    columns = np.uint64(width)  # unsigned loop bounds let numba vectorise the loops
    y_counter = y_space
    out_y = 0
    for y in range(src_height):
        if y_counter > one:
            for x in range(columns):
                blue_red[x] += shrunk_x[y, x] & lows
                green[x] += (shrunk_x[y, x] >> eight) & byte
            y_counter -= one
            continue
        y_frac = one - y_counter
        counter = np.uint32(y_counter)
        frac = np.uint32(y_frac)
        if out_y < dst_height:
            if fraction_bits == 14:
                # SSE2: mulhi_epu16 of (value << 2) by the counter, add, mulhi by the
                # reciprocal, packus to a byte
                for x in range(columns):
                    pixel = shrunk_x[y, x]
                    b4 = (pixel & byte) << np.uint32(2)
                    g4 = ((pixel >> eight) & byte) << np.uint32(2)
                    r4 = ((pixel >> sixteen) & byte) << np.uint32(2)
                    blue = ((((b4 * counter) >> sixteen) + (blue_red[x] & half)) & half) * y_recip >> sixteen
                    grn = ((((g4 * counter) >> sixteen) + green[x]) & half) * y_recip >> sixteen
                    red = ((((r4 * counter) >> sixteen) + (blue_red[x] >> sixteen)) & half) * y_recip >> sixteen
                    blue_red[x] = ((b4 * frac) >> sixteen) | (((r4 * frac) >> sixteen) << sixteen)
                    green[x] = (g4 * frac) >> sixteen
                    out_rows[out_y, x] = min(blue, byte) | (min(grn, byte) << eight) | (min(red, byte) << sixteen)
            else:
                # the C filter: 16 fraction bits, then a (Uint8) cast
                for x in range(columns):
                    pixel = shrunk_x[y, x]
                    b = pixel & byte
                    g = (pixel >> eight) & byte
                    r = (pixel >> sixteen) & byte
                    blue = (((blue_red[x] & half) + ((b * counter) >> sixteen)) * y_recip >> sixteen) & byte
                    grn = ((green[x] + ((g * counter) >> sixteen)) * y_recip >> sixteen) & byte
                    red = (((blue_red[x] >> sixteen) + ((r * counter) >> sixteen)) * y_recip >> sixteen) & byte
                    blue_red[x] = ((b * frac) >> sixteen) | (((r * frac) >> sixteen) << sixteen)
                    green[x] = (g * frac) >> sixteen
                    out_rows[out_y, x] = blue | (grn << eight) | (red << sixteen)
        out_y += 1
        if out_y == rows_out:
            break
        y_counter = y_space - y_frac
    for y in range(min(out_y, dst_height)):
        for x in range(width):
            pixel = out_rows[y, x]
            observation[y, x, 0] = (pixel >> sixteen) & byte
            observation[y, x, 1] = (pixel >> eight) & byte
            observation[y, x, 2] = pixel & byte
