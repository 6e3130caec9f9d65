"""Small-face simulation: shrink a face crop to a few pixels and scale it back up."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

#: Face sizes (px) at which `raksha eval` reports accuracy.
FACE_SIZES: tuple[int, ...] = (32, 24, 16)


def down_up(images: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    """Each (H, W[, C]) image shrunk to ``side`` x ``side`` (area averaging, as a camera sensor
    would) and enlarged back to its size (bilinear, as the runtime's resize would)."""
    if side < 1:
        raise ValueError("side must be >= 1")
    out = np.empty_like(images)
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out
