"""Track-guided detection: search the whole frame now and then, and in between only where the
faces of the frame before are expected to be.

A person seen on one analysed frame is, on the next, near where they were, moved on by about
as much as they moved between the two frames before. `RegionPlanner` keeps, for each face of
the latest analysed frame, its box and its velocity (from its track's previous sighting), and
plans one square search region per face about its expected box. The whole frame is searched
instead when:

- `rescan_s` seconds of video have passed since the last whole-frame search (a new face is
  found at most that late);
- a face planned for was not found again in its region (it turned away, left, or moved more
  than the margin);
- there is no frame before (the start, or time went backwards);
- the regions would cost more than the whole frame (`RegionDetector.regions_pay`);
- the caller saw the picture change away from the regions (`whole`, reason "change": a
  person walking in, a cut to another scene).

A frame with no faces before it plans no regions at all: until the next rescan, an empty
scene costs no detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from raksha.domain import FaceDetections

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: A track's velocity is estimated only from sightings at most this far apart (seconds).
MAX_VELOCITY_GAP_S = 1.0


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What to search on one frame: the whole frame (`regions` None) or these regions."""

    regions: F32 | None
    #: Why the whole frame is searched ("start", "rescan", "lost", "cost", "change"), or ""
    #: for regions.
    reason: str

    @property
    def whole_frame(self) -> bool:
        return self.regions is None


class RegionPlanner:
    """Plans each frame's search from the faces of the frames before (one stream, in order).

    Call `plan(t, count_ok)` before detecting on the frame at time `t`, then `observe(t,
    faces, track_ids, plan)` with what was found and the tracker's ids for those rows.
    """

    def __init__(self, rescan_s: float, margin: float) -> None:
        if rescan_s <= 0:
            raise ValueError("rescan_s must be positive")
        if margin <= 0:
            raise ValueError("margin must be positive")
        self.rescan_s = rescan_s
        self.margin = margin
        self._last_scan_t: float | None = None
        self._last_t: float | None = None
        self._lost = False
        #: Per face of the latest frame: box (xyxy), velocity of the centre (px/s) and id.
        self._boxes: F32 = np.zeros((0, 4), np.float32)
        self._velocity: F32 = np.zeros((0, 2), np.float32)
        #: track id -> (time, centre x, centre y) of its latest sighting.
        self._seen: dict[int, tuple[float, float, float]] = {}
        #: Frames planned, and those searched whole.
        self.frames = 0
        self.whole_frames = 0

    def expected_boxes(self, t: float) -> F32:
        """Where the faces of the latest frame are expected at time `t` (xyxy, (M,4))."""
        if self._last_t is None or len(self._boxes) == 0:
            return np.zeros((0, 4), np.float32)
        dt = np.float32(max(0.0, t - self._last_t))
        shift = self._velocity * dt
        out: F32 = self._boxes + np.concatenate([shift, shift], axis=1)
        return out

    def regions_for(self, boxes: F32) -> F32:
        """Square search regions (xyxy) about `boxes`: side = (1 + 2 margin) x the box's
        longer side, centred on the box."""
        if len(boxes) == 0:
            return np.zeros((0, 4), np.float32)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        half = (side * (1.0 + 2.0 * self.margin) / 2)[:, None]
        out: F32 = np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
        return out

    def plan(self, t: float, regions_pay: bool | None = None) -> SearchPlan:
        """The search for the frame at `t`. `regions_pay` is the detector's answer to
        whether this frame's regions cost less than the whole frame (None: they do)."""
        self.frames += 1
        reason = ""
        if self._last_t is None or self._last_scan_t is None or t < self._last_t:
            reason = "start"
        elif t - self._last_scan_t >= self.rescan_s:
            reason = "rescan"
        elif self._lost:
            reason = "lost"
        elif regions_pay is False:
            reason = "cost"
        if reason:
            self.whole_frames += 1
            return SearchPlan(None, reason)
        return SearchPlan(self.regions_for(self.expected_boxes(t)), "")

    def whole(self, reason: str) -> SearchPlan:
        """A whole-frame search the caller decided on (after `plan` gave regions)."""
        self.whole_frames += 1
        return SearchPlan(None, reason)

    @property
    def expected_count(self) -> int:
        """How many regions the next region plan would hold."""
        return len(self._boxes)

    def observe(self, t: float, faces: FaceDetections, track_ids: I64, plan: SearchPlan) -> None:
        """Record what the frame at `t`, searched as `plan` says, holds."""
        if plan.whole_frame:
            self._last_scan_t = t
            self._lost = False
        else:
            assert plan.regions is not None
            self._lost = not _each_region_has_a_face(plan.regions, faces.boxes)
        ids = np.asarray(track_ids, np.int64).reshape(-1)
        boxes = np.asarray(faces.boxes, np.float32).reshape(-1, 4)
        velocity = np.zeros((len(boxes), 2), np.float32)
        seen: dict[int, tuple[float, float, float]] = {}
        for i, tid in enumerate(ids.tolist()):
            cx = float(boxes[i, 0] + boxes[i, 2]) / 2
            cy = float(boxes[i, 1] + boxes[i, 3]) / 2
            if tid < 0:
                continue
            before = self._seen.get(tid)
            if before is not None and 0 < t - before[0] <= MAX_VELOCITY_GAP_S:
                dt = t - before[0]
                velocity[i] = ((cx - before[1]) / dt, (cy - before[2]) / dt)
            seen[tid] = (t, cx, cy)
        self._boxes, self._velocity, self._seen = boxes, velocity, seen
        self._last_t = t


def _each_region_has_a_face(regions: F32, boxes: F32) -> bool:
    """Whether the centre of at least one face lies inside each region."""
    if len(regions) == 0:
        return True
    if len(boxes) == 0:
        return False
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    inside = (
        (cx[None, :] >= regions[:, None, 0])
        & (cx[None, :] <= regions[:, None, 2])
        & (cy[None, :] >= regions[:, None, 1])
        & (cy[None, :] <= regions[:, None, 3])
    )
    return bool(inside.any(axis=1).all())
