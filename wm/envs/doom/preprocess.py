"""Take Cover's one frame preprocessing (the plug-in's `preprocess`), as the original code's
`doomreal.py`: the top 400 of the 640 x 480 frame's rows (the rest is the status bar and floor),
resized to 64 x 64, colours inverted (255 - value).

`VizdoomTakeCover-v1` renders at its scenario's 320 x 240, so the crop is scaled with it: the top
400/480 = 5/6 of the rows, 200 of 240 (tests/test_doom.py checks it against the same scene rendered
at 640 x 480 and cropped at 400). The resize is PIL's bilinear filter with antialiasing (its
fixed-point integer arithmetic: the same bytes on any machine), as CarRacing's."""

from __future__ import annotations

import numpy as np
from PIL import Image

FRAME_SIZE = 64
CROP_FRACTION = 400 / 480  # the original's crop of its 480-row frame


def crop_rows(height: int) -> int:
    """Rows of a frame `height` rows high that the crop keeps: 200 of 240, 400 of 480."""
    rows = height * CROP_FRACTION
    if rows != int(rows):
        raise ValueError(f"a {height}-row frame cannot be cropped at 400/480 of its rows exactly")
    return int(rows)


def preprocess(frame: np.ndarray) -> np.ndarray:
    """One H x W x 3 uint8 Take Cover screen (240 x 320 as VizdoomTakeCover-v1 renders) -> 64x64x3 uint8."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 Take Cover screen, got {frame.shape} {frame.dtype}")
    crop = Image.fromarray(frame[: crop_rows(frame.shape[0])])
    return 255 - np.array(crop.resize((FRAME_SIZE, FRAME_SIZE), Image.Resampling.BILINEAR))
