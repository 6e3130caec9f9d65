"""Motion gating: skip face detection on frames where nothing moved.

A camera watching an empty or still scene need not run the detector five times a second.
`MotionGate` keeps a small grey thumbnail of the last frame the detector saw; a new frame
is detected on only when enough of its thumbnail differs from that one, or when the last
detection is older than `max_age_s`. In between, the caller reuses the last boxes (the
faces have not moved) and still reads expressions on the new frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]

#: Long side of the thumbnail compared between frames, pixels.
THUMB_SIDE = 96
#: A thumbnail pixel counts as changed when its grey level moved by more than this.
PIXEL_DELTA = 16


def grey_thumbnail(image: U8) -> U8:
    """`image` (BGR or grey) as a grey thumbnail with a long side of `THUMB_SIDE` pixels
    (never enlarged), shrunk by exact halvings first (fast on large frames)."""
    from raksha.detect.resize import shrink

    h, w = int(image.shape[0]), int(image.shape[1])
    k = THUMB_SIDE / max(h, w, 1)
    tw, th = max(1, round(w * k)), max(1, round(h * k))
    small = shrink(image, tw, th) if tw < w and th < h else image
    if small.ndim == 3:
        return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), np.uint8)
    return np.asarray(small, np.uint8)


class MotionGate:
    """Says whether a frame needs the detector.

    `threshold` is the share (0-1) of thumbnail pixels that must have changed since the
    last detected frame; `max_age_s` forces a detection at least that often (stream time).
    """

    def __init__(self, threshold: float, max_age_s: float = 1.0) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("motion threshold must be in (0, 1]")
        if max_age_s <= 0:
            raise ValueError("max_age_s must be positive")
        self.threshold = threshold
        self.max_age_s = max_age_s
        self._ref: U8 | None = None
        self._ref_t = 0.0
        #: Frames seen and frames on which detection was skipped.
        self.frames = 0
        self.skipped = 0

    def changed_share(self, thumb: U8) -> float:
        """Share of `thumb` pixels that differ from the reference (1.0 without one)."""
        if self._ref is None or self._ref.shape != thumb.shape:
            return 1.0
        return float(np.count_nonzero(cv2.absdiff(thumb, self._ref) > PIXEL_DELTA)) / thumb.size

    def needs_detection(self, image: U8, t: float) -> bool:
        """True when `image` (at stream time `t`) should go through the detector; the
        gate then remembers it as the new reference."""
        self.frames += 1
        thumb = grey_thumbnail(image)
        stale = self._ref is None or t - self._ref_t >= self.max_age_s or t < self._ref_t
        if stale or self.changed_share(thumb) >= self.threshold:
            self._ref, self._ref_t = thumb, t
            return True
        self.skipped += 1
        return False


class ChangeWatch:
    """Did the picture change away from the known faces since it was last searched whole?

    Track-guided detection searches only about the faces it already knows. A person who
    walks in, or a cut to another scene, changes the picture away from those faces; this
    keeps the grey thumbnail of the last frame searched whole (`remember`) and tells the
    share of thumbnail pixels outside the given regions that changed since (`outside_share`),
    so the caller can search the whole frame again. Comparing with that frame, not with the
    frame just before, lets slow changes add up: on every frame of a 25 fps video, a person
    walking in changes each frame only a little.
    """

    def __init__(self) -> None:
        self._ref: U8 | None = None

    def remember(self, image: U8) -> None:
        """`image` was searched whole: later frames are compared with it."""
        self._ref = grey_thumbnail(image)

    def outside_share(self, image: U8, regions: npt.NDArray[np.float32]) -> float:
        """Share (0-1) of the thumbnail outside the (M,4) xyxy `regions` (image pixels)
        that differs from the remembered frame; 1.0 with none remembered or a new size."""
        grey = grey_thumbnail(image)
        ref = self._ref
        if ref is None or ref.shape != grey.shape:
            return 1.0
        th, tw = grey.shape
        k = tw / max(int(image.shape[1]), 1)
        outside = np.ones(grey.shape, bool)
        for x0, y0, x1, y1 in np.asarray(regions, np.float64).reshape(-1, 4) * k:
            c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
            c1, r1 = min(tw, int(np.ceil(x1))), min(th, int(np.ceil(y1)))
            if c1 > c0 and r1 > r0:
                outside[r0:r1, c0:c1] = False
        n = int(np.count_nonzero(outside))
        if n == 0:
            return 0.0
        moved = cv2.absdiff(grey, ref) > PIXEL_DELTA
        return float(np.count_nonzero(moved & outside)) / n
