"""Align a face to the 112x112 ArcFace crop from its five landmarks.

The five points are YuNet's (raksha.domain.FaceDetections.landmarks): subject's right eye,
left eye, nose tip, right and left mouth corners, that is image-left first for a frontal
face, which is also the order of `ARCFACE_TEMPLATE`. A similarity transform (rotation,
uniform scale, translation; no shear, no mirroring) is fitted by least squares (Umeyama)
and the image is warped with it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

#: Side of the aligned crop, px.
CROP_SIDE = 112
#: Where the five landmarks lie in the 112x112 crop (the template InsightFace/ArcFace use).
ARCFACE_TEMPLATE: F32 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
#: Below this scale (crop px per image px) the face is first shrunk by area averaging, so
#: that a large face is not aliased by the bilinear warp.
_PRESHRINK_BELOW = 0.5


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> F64:
    """The 2x3 matrix of the similarity transform that maps the (K,2) points `src` onto
    `dst` with the least squared error (Umeyama 1991, without reflection).

    Raises ValueError for fewer than two points, mismatched shapes or points that all
    coincide."""
    s = np.asarray(src, np.float64).reshape(-1, 2)
    d = np.asarray(dst, np.float64).reshape(-1, 2)
    if s.shape != d.shape or len(s) < 2:
        raise ValueError(f"need two matching sets of >= 2 points, got {s.shape} and {d.shape}")
    if not (np.isfinite(s).all() and np.isfinite(d).all()):
        raise ValueError("landmarks must be finite")
    mu_s, mu_d = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - mu_s, d - mu_d
    var_s = float((sc**2).sum() / len(s))
    if var_s <= 1e-12:
        raise ValueError("the source points all coincide")
    cov = dc.T @ sc / len(s)
    u, sing, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = float((sing * sign).sum() / var_s)
    m = np.empty((2, 3), np.float64)
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def transform_points(m: npt.ArrayLike, points: npt.ArrayLike) -> F64:
    """The (K,2) `points` mapped by the 2x3 affine matrix `m`."""
    mat = np.asarray(m, np.float64)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    out: F64 = p @ mat[:, :2].T + mat[:, 2]
    return out


def transform_scale(m: npt.ArrayLike) -> float:
    """The uniform scale of a similarity matrix."""
    mat = np.asarray(m, np.float64)
    return math.sqrt(abs(float(np.linalg.det(mat[:, :2]))))


def align_face(image: U8, landmarks: npt.ArrayLike, side: int = CROP_SIDE) -> U8:
    """The face with these five (x, y) landmarks (image pixels) cut from the BGR `image`
    and warped to a `side` x `side` crop with the landmarks on the ArcFace template (scaled
    to `side`). Pixels outside the image are black."""
    if image.ndim not in (2, 3) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.shape} {image.dtype}")
    pts = np.asarray(landmarks, np.float64).reshape(5, 2)
    template = ARCFACE_TEMPLATE.astype(np.float64) * (side / CROP_SIDE)
    m = similarity_transform(pts, template)
    scale = transform_scale(m)
    if scale < _PRESHRINK_BELOW:
        image, pts = _preshrink(image, pts, m, scale, side)
        m = similarity_transform(pts, template)
    out = cv2.warpAffine(
        image,
        m,
        (side, side),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return np.ascontiguousarray(out, dtype=np.uint8)


def _preshrink(image: U8, pts: F64, m: F64, scale: float, side: int) -> tuple[U8, F64]:
    """The part of `image` the crop will show (with a margin), shrunk by area averaging to
    about the crop's scale, and the landmarks in its pixels."""
    inv = cv2.invertAffineTransform(m)
    corners = transform_points(inv, [[0, 0], [side, 0], [0, side], [side, side]])
    h, w = image.shape[:2]
    margin = 2.0 / scale
    x0 = max(0, math.floor(corners[:, 0].min() - margin))
    y0 = max(0, math.floor(corners[:, 1].min() - margin))
    x1 = min(w, math.ceil(corners[:, 0].max() + margin))
    y1 = min(h, math.ceil(corners[:, 1].max() + margin))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, pts
    part = image[y0:y1, x0:x1]
    nw, nh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    small = np.asarray(cv2.resize(part, (nw, nh), interpolation=cv2.INTER_AREA), np.uint8)
    kx, ky = nw / (x1 - x0), nh / (y1 - y0)
    moved = (pts - [x0, y0]) * [kx, ky]
    return small, moved
