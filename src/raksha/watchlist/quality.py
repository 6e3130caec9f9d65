"""Enrolment quality: is this photo good enough to put a person on a watchlist?

A template made from a poor photo matches badly (misses) or matches anyone (false matches),
so a photo is refused, with a one-line reason, unless it shows exactly one clearly sized
face that is large, confidently detected, roughly frontal and sharp. The checks run in
that order and the first that fails is the reason.

Only enrolment is gated: camera frames are matched as they come (the matcher's threshold
and the track vote handle those).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from raksha.detect.base import FaceDetector
from raksha.domain import FaceDetections
from raksha.watchlist.align import align_face

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class QualityConfig:
    #: Smallest face box width, px of the photo.
    min_face_px: float = 80.0
    #: A second face at least this share of the largest one's width makes the photo
    #: ambiguous (whom to enrol?); smaller faces (bystanders far behind) are ignored.
    other_face_ratio: float = 0.5
    #: Smallest detector score.
    min_score: float = 0.85
    #: Largest tilt of the eye line from horizontal, degrees.
    max_roll_deg: float = 25.0
    #: Where the nose may lie between the eyes, along the eye line (0 = over the image-left
    #: eye, 1 = over the other, 0.5 = frontal): outside this the head is turned too far.
    nose_range: tuple[float, float] = (0.25, 0.75)
    #: Smallest variance of the Laplacian of the grey aligned 112x112 crop. On the 61
    #: development photos (docs/watchlist.md) the sharp originals measured 208 and more.
    min_sharpness: float = 100.0

    def __post_init__(self) -> None:
        lo, hi = self.nose_range
        if not 0.0 <= lo < 0.5 < hi <= 1.0:
            raise ValueError("nose_range must be (lo, hi) with 0 <= lo < 0.5 < hi <= 1")
        if not 0.0 < self.other_face_ratio <= 1.0:
            raise ValueError("other_face_ratio must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class QualityVerdict:
    """The outcome of the check. `reason` is None when the photo is accepted; the measures
    are those of the largest face (None where not reached)."""

    reason: str | None
    #: Which check refused it: no_face, several_faces, too_small, low_score, tilted,
    #: turned or blurred; None when accepted.
    check: str | None = None
    #: Index of the face checked (the largest) in the detections; None without a face.
    face: int | None = None
    width_px: float | None = None
    score: float | None = None
    roll_deg: float | None = None
    nose_position: float | None = None
    sharpness: float | None = None
    #: The aligned 112x112 crop, when the photo is accepted.
    aligned: U8 | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def roll_degrees(landmarks: npt.ArrayLike) -> float:
    """Angle of the line from the image-left eye to the other eye, degrees (positive when
    the second eye is lower in the image)."""
    p = np.asarray(landmarks, np.float64).reshape(5, 2)
    dx, dy = p[1] - p[0]
    return math.degrees(math.atan2(float(dy), float(dx)))


def nose_position(landmarks: npt.ArrayLike) -> float:
    """Where the nose tip projects on the line between the eyes: 0 at the image-left eye,
    1 at the other, about 0.5 for a frontal face."""
    p = np.asarray(landmarks, np.float64).reshape(5, 2)
    axis = p[1] - p[0]
    length2 = float(axis @ axis)
    if length2 <= 1e-9:
        return float("nan")
    return float((p[2] - p[0]) @ axis / length2)


def refine_roll(
    image: U8, landmarks: npt.ArrayLike, detector: FaceDetector, rounds: int = 3
) -> float:
    """The head's roll, degrees, measured again on the face turned upright.

    YuNet's landmarks understate a large roll: on three frontal photos turned by 40°, the
    eye line read 23-28°; by 60°, 10-31°. So the face is cut out turned by the roll read so
    far, searched again, and the residual roll added, until it is under 2° (the landmarks
    are close to right within about 20° of upright). On that check it read 31-42° for the
    three photos turned by 30-40°, within about 4° near upright; it cannot help where the
    landmarks show no tilt at all (a 90 px face turned by 30° read 1°)."""
    p = np.asarray(landmarks, np.float64).reshape(5, 2)
    total = roll_degrees(p)
    centre = (p[0] + p[1]) / 2
    eyes = max(float(np.linalg.norm(p[1] - p[0])), 4.0)
    side = 6.0 * eyes
    scale = min(1.0, 320.0 / side)
    out = max(32, round(side * scale))
    for _ in range(rounds):
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), total, scale)
        m[:, 2] += out / 2 - centre
        patch = np.ascontiguousarray(
            cv2.warpAffine(image, m, (out, out), borderMode=cv2.BORDER_REPLICATE), np.uint8
        )
        found = detector.detect(patch)
        if len(found) == 0:
            break
        near = np.linalg.norm(found.landmarks[:, :2].mean(axis=1) - out / 2, axis=1)
        residual = roll_degrees(found.landmarks[int(np.argmin(near))])
        total += residual
        if abs(residual) < 2.0:
            break
    return (total + 180.0) % 360.0 - 180.0


def sharpness(crop: U8) -> float:
    """Variance of the Laplacian of the grey `crop` (higher is sharper)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def check_enrolment(
    image: U8,
    faces: FaceDetections,
    cfg: QualityConfig | None = None,
    detector: FaceDetector | None = None,
) -> QualityVerdict:
    """Whether the BGR photo `image`, with `faces` found in it, may be enrolled.

    With the `detector` that found the faces, the roll is measured again on the face turned
    upright (`refine_roll`); without it, from the landmarks as found, which understate a
    roll beyond about 20°."""
    cfg = cfg if cfg is not None else QualityConfig()
    if len(faces) == 0:
        return QualityVerdict("no face found in the photo", "no_face")
    widths = faces.widths.astype(np.float64)
    i = int(np.argmax(widths))
    seen: dict[str, float] = {"width_px": float(widths[i]), "score": float(faces.scores[i])}
    w, score = seen["width_px"], seen["score"]

    def refuse(check: str, reason: str) -> QualityVerdict:
        return QualityVerdict(reason, check, i, **seen)  # type: ignore[arg-type]

    rivals = np.flatnonzero(widths >= cfg.other_face_ratio * w)
    if len(rivals) > 1:
        sizes = ", ".join(f"{widths[j]:.0f}" for j in rivals)
        return refuse(
            "several_faces",
            f"{len(rivals)} faces of similar size ({sizes} px wide): crop the photo to the "
            "one person to enrol",
        )
    if w < cfg.min_face_px:
        return refuse(
            "too_small", f"face too small: {w:.0f} px wide, at least {cfg.min_face_px:.0f} needed"
        )
    if score < cfg.min_score:
        return refuse(
            "low_score",
            f"face not clearly detected: score {score:.2f}, at least {cfg.min_score:.2f} needed",
        )
    lm = faces.landmarks[i]
    roll = roll_degrees(lm) if detector is None else refine_roll(image, lm, detector)
    seen["roll_deg"] = roll
    if abs(roll) > cfg.max_roll_deg:
        return refuse(
            "tilted",
            f"head tilted {roll:+.0f}° (eye line), at most ±{cfg.max_roll_deg:.0f}° allowed",
        )
    nose = seen["nose_position"] = nose_position(lm)
    lo, hi = cfg.nose_range
    if not lo <= nose <= hi:
        return refuse(
            "turned",
            f"head turned aside: nose at {nose:.2f} of the way between the eyes, "
            f"{lo:.2f}-{hi:.2f} needed",
        )
    crop = align_face(image, lm)
    sharp = seen["sharpness"] = sharpness(crop)
    if sharp < cfg.min_sharpness:
        return refuse(
            "blurred",
            f"face too blurred: sharpness {sharp:.0f}, at least {cfg.min_sharpness:.0f} needed",
        )
    return QualityVerdict(None, None, i, aligned=crop, **seen)
