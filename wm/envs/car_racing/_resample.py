"""A numba port of Pillow's BILINEAR `Image.resize` for 8-bit RGB, byte for byte: `preprocess`
(wm/envs/car_racing/preprocess.py) without PIL's per-frame Python.

Pillow (libImaging/Resample.c) resizes in two separable passes, horizontal first (into a
temporary 8-bit image of the rows the vertical pass reads), then vertical. Each output pixel is
`clip8(2**21 + sum(k[i] * pixel[i]))`, `clip8(v)` = `v >> 22` clamped to 0..255, with integer
coefficients `k` that `precompute_coeffs` + `normalize_coeffs_8bpc` derive in double precision:
the triangle filter stretched by the scale (support 1.5 for 96 -> 64 columns, 1.3125 for
84 -> 64 rows), normalised to sum 1, then `(int)(0.5 + k * 2**22)`. The coefficients are
computed here in Python with the same double expressions in the same order (Python floats are
C doubles), once; the passes are integer arithmetic, so numba reproduces them exactly.
tests/test_fast_env.py checks the port against PIL on random and flat images and on frames.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

PRECISION_BITS = 32 - 8 - 2


def bilinear_filter(x: float) -> float:
    if x < 0.0:
        x = -x
    if x < 1.0:
        return 1.0 - x
    return 0.0


def pil_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`precompute_coeffs(in_size, 0.0f, (float)in_size, out_size, BILINEAR)` and
    `normalize_coeffs_8bpc`: per output pixel the first input pixel, how many it reads, and
    the int32 coefficients, as (starts, counts, kk[out, ksize])."""
    in0, in1 = 0.0, float(np.float32(in_size))  # the box, as C floats (exact for these sizes)
    filterscale = scale = (in1 - in0) / out_size
    if filterscale < 1.0:
        filterscale = 1.0
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    starts = np.zeros(out_size, np.int64)
    counts = np.zeros(out_size, np.int64)
    kk = np.zeros((out_size, ksize), np.int64)
    for xx in range(out_size):
        center = in0 + (xx + 0.5) * scale
        ww = 0.0
        ss = 1.0 / filterscale
        xmin = int(center - support + 0.5)  # C's (int) truncates, as int() does
        if xmin < 0:
            xmin = 0
        xmax = int(center + support + 0.5)
        if xmax > in_size:
            xmax = in_size
        xmax -= xmin
        k = [0.0] * ksize
        for x in range(xmax):
            w = bilinear_filter((x + xmin - center + 0.5) * ss)
            k[x] = w
            ww += w
        for x in range(xmax):
            if ww != 0.0:
                k[x] /= ww
        for x in range(ksize):
            value = k[x]
            scaled = value * (1 << PRECISION_BITS)
            kk[xx, x] = int(-0.5 + scaled) if value < 0 else int(0.5 + scaled)
        starts[xx], counts[xx] = xmin, xmax
    return starts, counts, kk


_COEFFICIENTS: dict[tuple[int, int, int, int], tuple] = {}


def resize_coefficients(in_w: int, in_h: int, out_w: int, out_h: int) -> tuple:
    """(horizontal, vertical) coefficients of `Image.resize((out_w, out_h), BILINEAR)` on an
    in_w x in_h image, cached."""
    key = (in_w, in_h, out_w, out_h)
    if key not in _COEFFICIENTS:
        _COEFFICIENTS[key] = (pil_coefficients(in_w, out_w), pil_coefficients(in_h, out_h))
    return _COEFFICIENTS[key]


@njit(cache=True, inline="always")
def clip8(value):
    value = value >> PRECISION_BITS
    return 0 if value < 0 else (255 if value > 255 else value)


@njit(cache=True)
def resize_rgb(image, rows, h_starts, h_counts, h_kk, v_starts, v_counts, v_kk, out, temp):
    """Pillow's BILINEAR resize of `image[:rows]` ((rows, in_w, 3) uint8) into `out`
    ((out_h, out_w, 3) uint8), both passes (as Pillow runs them when both sizes change, as for
    preprocess). `temp` is int32 scratch of (in_w, 3 * rows) + (out_w, 3 * rows) + (rows, 3 * out_w)
    values. The horizontal pass covers every row the vertical pass reads (Pillow's
    ybox_first..ybox_last, here all of them). Each pass runs on a transposed copy so that its
    sums run along contiguous memory (numba vectorises them); the arithmetic per output value
    is Pillow's: integer products summed in order from 2**21, then clip8. Sums stay below 2**31
    (255 * 2**22 plus rounding), as in C's int."""
    out_h, out_w = out.shape[0], out.shape[1]
    in_w = image.shape[1]
    width = 3 * rows
    half = np.int32(1 << (PRECISION_BITS - 1))
    shift = np.int32(PRECISION_BITS)
    zero = np.int32(0)
    top = np.int32(255)
    columns = temp[: in_w * width].reshape(in_w, width)  # the input, column-major
    shrunk = temp[in_w * width : (in_w + out_w) * width].reshape(out_w, width)  # after the horizontal pass
    rows_major = temp[(in_w + out_w) * width : (in_w + out_w) * width + rows * 3 * out_w].reshape(rows, 3 * out_w)
    for y in range(rows):
        for x in range(in_w):
            for c in range(3):
                columns[x, 3 * y + c] = image[y, x, c]
    n = np.uint64(width)
    for xx in range(out_w):
        start = h_starts[xx]
        for i in range(n):
            shrunk[xx, i] = half
        for t in range(h_counts[xx]):
            k = np.int32(h_kk[xx, t])
            for i in range(n):
                shrunk[xx, i] += columns[start + t, i] * k
        for i in range(n):
            value = shrunk[xx, i] >> shift
            shrunk[xx, i] = min(max(value, zero), top)
    for y in range(rows):
        for xx in range(out_w):
            for c in range(3):
                rows_major[y, 3 * xx + c] = shrunk[xx, 3 * y + c]
    m = np.uint64(3 * out_w)
    acc = np.empty(3 * out_w, np.int32)
    flat = out.reshape(out_h, 3 * out_w)
    for yy in range(out_h):
        start = v_starts[yy]
        for i in range(m):
            acc[i] = half
        for t in range(v_counts[yy]):
            k = np.int32(v_kk[yy, t])
            for i in range(m):
                acc[i] += rows_major[start + t, i] * k
        for i in range(m):
            value = acc[i] >> shift
            flat[yy, i] = np.uint8(min(max(value, zero), top))


def resize_scratch(in_w: int, rows: int, out_w: int) -> np.ndarray:
    return np.zeros(3 * rows * (in_w + 2 * out_w), np.int32)
