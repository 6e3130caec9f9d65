"""Face crops and model input tensors for expression models (OpenCV + numpy only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from raksha.domain import FaceDetections
from raksha.expression.spec import CropSpec, InputSpec

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

#: A crop is warped at the face's own resolution, but never larger than this many times the
#: model input side, then shrunk with area averaging (no aliasing from big faces).
MAX_WARP_FACTOR = 4


def crop_matrix(
    box: npt.ArrayLike,
    landmarks: npt.ArrayLike | None,
    crop: CropSpec,
    out_side: int,
) -> F32:
    """2x3 affine matrix taking image pixels to an `out_side` square face crop.

    The square has side `crop.scale * max(w, h)` and is centred on the box (xyxy). With the
    "aligned" method it is also rotated about that centre so that the eye line (landmarks 0
    and 1) becomes horizontal.
    """
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    side = crop.scale * max(x1 - x0, y1 - y0, 1.0)
    k = out_side / side
    angle = 0.0
    if crop.method == "aligned":
        if landmarks is None:
            raise ValueError("aligned crops need the 5 face landmarks")
        lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
        dx, dy = lm[1] - lm[0]
        if dx != 0.0 or dy != 0.0:
            angle = math.atan2(dy, dx)
    c, s = math.cos(angle), math.sin(angle)
    # crop = k * R(-angle) @ (p - centre) + out_side / 2
    a = np.array([[c, s], [-s, c]], dtype=np.float64) * k
    t = np.array([out_side / 2.0, out_side / 2.0]) - a @ np.array([cx, cy])
    return np.hstack([a, t[:, None]]).astype(np.float32)


def crop_faces(
    image: npt.NDArray[np.uint8], faces: FaceDetections, crop: CropSpec, size: int
) -> list[U8]:
    """One `size` x `size` crop per face (same channels as `image`), borders replicated."""
    out: list[U8] = []
    for i in range(len(faces)):
        box = faces.boxes[i]
        side = crop.scale * float(max(box[2] - box[0], box[3] - box[1], 1.0))
        warp_side = int(min(max(round(side), size), MAX_WARP_FACTOR * size))
        m = crop_matrix(box, faces.landmarks[i], crop, warp_side)
        patch = cv2.warpAffine(
            image,
            m,
            (warp_side, warp_side),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if warp_side != size:
            patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(patch, dtype=np.uint8))
    return out


def _convert(crop: U8, spec: InputSpec) -> U8:
    """Channel conversion of one crop (grey HxW or BGR HxWx3) to what the model takes."""
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[:, :, 0]
    if crop.ndim == 2:
        if spec.channels == 1:
            return crop
        return np.repeat(crop[:, :, None], 3, axis=2)  # grey: BGR and RGB are the same
    if crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"a face crop must be HxW grey or HxWx3 BGR, got shape {crop.shape}")
    if spec.channels == 1:
        return np.asarray(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    if spec.color == "rgb":
        return np.asarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    return crop


def _resize(img: U8, size: int) -> U8:
    h, w = img.shape[:2]
    if h == size and w == size:
        return img
    interp = cv2.INTER_AREA if h > size and w > size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(img, (size, size), interpolation=interp), dtype=np.uint8)


def to_input(crops: Sequence[npt.NDArray[np.uint8]], spec: InputSpec) -> F32:
    """Stack face crops into the model's float32 input tensor (resize, channels, scale)."""
    size = spec.size
    if len(crops) == 0:
        if spec.layout == "NCHW":
            return np.zeros((0, spec.channels, size, size), np.float32)
        return np.zeros((0, size, size, spec.channels), np.float32)
    imgs = []
    for crop in crops:
        arr = np.asarray(crop)
        if arr.dtype != np.uint8:
            raise ValueError(f"face crops must be uint8, got {arr.dtype}")
        imgs.append(_resize(_convert(arr, spec), size))
    batch = np.stack(imgs).astype(np.float32)
    if spec.channels == 1:
        batch = batch[..., None]  # N,H,W,1
    batch *= np.float32(spec.scale)
    batch += np.float32(spec.offset)
    if spec.layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32)
