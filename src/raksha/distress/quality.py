"""Face quality: can this face's expression be trusted at all, and how much?

`face_sharpness` measures blur; `face_quality` turns size, detector confidence and sharpness
into one weight in [0,1]. A face with quality 0 gives no distress evidence at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from raksha.distress.config import DistressConfig

F32 = npt.NDArray[np.float32]

#: Side of the square gray crop that sharpness is measured on. Resizing every face to the
#: same size makes the figure comparable between near and far faces.
SHARPNESS_SIZE = 64


def face_sharpness(image_bgr: npt.NDArray[np.uint8], boxes: npt.NDArray[np.floating]) -> F32:
    """Variance of the Laplacian of each face crop (gray, resized to 64x64), shape (N,).

    Only the face box is cropped (clipped to the image); a box with less than 2x2 pixels
    inside the image scores 0. Higher is sharper; motion blur and defocus drive it down.
    """
    import cv2  # heavy import kept local

    img = np.asarray(image_bgr)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 BGR, got {img.shape}")
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = img.shape[:2]
    out = np.zeros(len(b), dtype=np.float32)
    for i, (x1, y1, x2, y2) in enumerate(b):
        if not np.all(np.isfinite((x1, y1, x2, y2))):
            continue
        c1, r1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        c2, r2 = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
        if c2 - c1 < 2 or r2 - r1 < 2:
            continue
        gray = cv2.cvtColor(img[r1:r2, c1:c2], cv2.COLOR_BGR2GRAY)
        interp = cv2.INTER_AREA if min(gray.shape) >= SHARPNESS_SIZE else cv2.INTER_LINEAR
        small = cv2.resize(gray, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=interp)
        lap = cv2.Laplacian(small.astype(np.float32), cv2.CV_32F)
        out[i] = float(lap.var())
    return out


def _ramp(x: F32, lo: float, hi: float) -> F32:
    """0 at or below `lo`, 1 at or above `hi`, linear between (a step at `lo` when lo == hi)."""
    if hi <= lo:
        return (x >= hi).astype(np.float32)
    out: F32 = np.minimum(np.maximum((x - lo) / (hi - lo), 0.0), 1.0).astype(np.float32)
    return out


def face_quality(
    short_side_px: npt.NDArray[np.floating],
    detector_score: npt.NDArray[np.floating],
    sharpness: npt.NDArray[np.floating],
    cfg: DistressConfig,
) -> F32:
    """Quality in [0,1] per face: the weaker of the size ramp and the sharpness ramp.

    0 when the face's short side is below `cfg.min_face_px`, its detector score below
    `cfg.min_detector_score` or its sharpness below `cfg.min_sharpness` (and for any
    non-finite input). Above the floors, each of size and sharpness ramps linearly from 0
    at its floor to 1 at `cfg.full_face_px` / `cfg.full_sharpness`; the result is the
    smaller of the two, so the worst property decides how far the face is trusted.
    """
    size = np.asarray(short_side_px, dtype=np.float32).reshape(-1)
    det = np.asarray(detector_score, dtype=np.float32).reshape(-1)
    sharp = np.asarray(sharpness, dtype=np.float32).reshape(-1)
    if not (size.shape == det.shape == sharp.shape):
        raise ValueError(
            f"face_quality inputs must have the same length, got {size.shape}, "
            f"{det.shape}, {sharp.shape}"
        )
    finite = np.isfinite(size) & np.isfinite(det) & np.isfinite(sharp)
    size = np.where(finite, size, 0.0).astype(np.float32)
    sharp = np.where(finite, sharp, 0.0).astype(np.float32)
    passes = (
        finite
        & (size >= cfg.min_face_px)
        & (det >= cfg.min_detector_score)
        & (sharp >= cfg.min_sharpness)
    )
    q = np.minimum(
        _ramp(size, cfg.min_face_px, cfg.full_face_px),
        _ramp(sharp, cfg.min_sharpness, cfg.full_sharpness),
    )
    return np.where(passes, q, 0.0).astype(np.float32)
