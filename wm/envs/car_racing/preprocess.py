"""CarRacing's one frame preprocessing, which collection, training and evaluation all call (the plug-in's `preprocess`).

As in the original World Models code (hardmaru `carracing/extract.py`): drop the
bottom 12 rows of CarRacing's 96x96 frame (the indicator bar), then resize the
84x96 crop to 64x64 with bilinear filtering. PIL's resampler is fixed-point
integer arithmetic, so a frame gives the same bytes whether it is processed alone
or in a batch, on any machine.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FRAME_SIZE = 64
CROP_ROWS = 84  # CarRacing's 96x96 frame minus its 12-row indicator bar


def preprocess(frame: np.ndarray) -> np.ndarray:
    """One 96x96x3 uint8 CarRacing frame -> 64x64x3 uint8."""
    if frame.shape != (96, 96, 3) or frame.dtype != np.uint8:
        raise ValueError(f"expected a 96x96x3 uint8 CarRacing frame, got {frame.shape} {frame.dtype}")
    crop = Image.fromarray(frame[:CROP_ROWS])
    return np.array(crop.resize((FRAME_SIZE, FRAME_SIZE), Image.Resampling.BILINEAR))  # a writable copy
