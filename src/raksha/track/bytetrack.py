"""A ByteTrack-style face tracker: Kalman-predicted boxes, two-pass IoU association.

Each `update` first forgets tracks unseen for longer than `max_lost_s`, moves the others
forward to the frame time with their Kalman filters, then matches:

1. detections scoring at least `high_score` against all tracks;
2. detections scoring at least `low_score` (but below `high_score`) against the tracks
   left over, so a blurred or half-turned face keeps its track without starting new ones.

3. (optional, `centre_gate_sigma` > 0) high-score detections still unmatched against
   tracks seen on the previous update, by the Kalman-gated distance of the box centres,
   so a fast face whose boxes do not overlap between analysed frames keeps its track.

Each pass is an optimal assignment (Hungarian); the IoU passes compare with the box the
Kalman filter predicts for the frame time. Unmatched high-score detections start new
tracks numbered 1, 2, 3, ... per tracker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from raksha.domain import FaceDetections
from raksha.track.config import ByteTrackConfig
from raksha.track.kalman import BoxKalman

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: In the centre-distance pass, a detection may differ in size from the track by this factor.
_MAX_SIZE_RATIO = 1.5


@dataclass(frozen=True, slots=True)
class TrackState:
    """A live track as seen after the latest update."""

    track_id: int
    #: The filtered box (xyxy pixels) at the latest update time; predicted if unseen then.
    box: tuple[float, float, float, float]
    #: Score of the detection last matched to this track.
    score: float
    first_seen: float
    last_seen: float
    #: Number of updates on which a detection was matched to this track.
    hits: int


class _Track:
    __slots__ = ("filter", "first_seen", "hits", "last_seen", "score", "track_id")

    def __init__(self, track_id: int, box: F64, score: float, t: float) -> None:
        self.track_id = track_id
        self.filter = BoxKalman(box)
        self.score = score
        self.first_seen = t
        self.last_seen = t
        self.hits = 1

    def observe(self, box: F64, score: float, t: float) -> None:
        self.filter.update(box)
        self.score = score
        self.last_seen = t
        self.hits += 1


def iou_matrix(a: F64, b: F64) -> F64:
    """IoU of every xyxy box in `a` (M,4) with every box in `b` (N,4): (M,N)."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    # np.maximum, not np.clip: the same numbers, without np.clip's per-call overhead.
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area_a[:, None] + area_b[None, :] - inter
    out: F64 = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def match(iou: F64, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs of the assignment maximising total IoU, each with IoU >= threshold."""
    if iou.size == 0:
        return []
    gain = np.where(iou >= threshold, iou, 0.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= threshold]


class ByteTracker:
    """Gives each detection row the id of the face track it belongs to (see module doc)."""

    def __init__(self, cfg: ByteTrackConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else ByteTrackConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._t: float | None = None

    @property
    def tracks(self) -> tuple[TrackState, ...]:
        """The tracks kept after the latest update (seen or still within `max_lost_s`)."""
        out = []
        for tr in self._tracks:
            x1, y1, x2, y2 = (float(v) for v in tr.filter.box)
            out.append(
                TrackState(
                    track_id=tr.track_id,
                    box=(x1, y1, x2, y2),
                    score=tr.score,
                    first_seen=tr.first_seen,
                    last_seen=tr.last_seen,
                    hits=tr.hits,
                )
            )
        return tuple(out)

    def reset(self) -> None:
        """Forget all tracks (ids keep counting up, so they are never reused)."""
        self._tracks = []
        self._t = None

    def update(self, detections: FaceDetections, t: float) -> I64:
        """Track ids for the input rows in input order; -1 where a row is left untracked.

        `t` is the frame time in seconds. Time going backwards means a new stream: all
        tracks are dropped first.
        """
        if self._t is not None and t < self._t:
            self.reset()
        previous_t = self._t
        dt = 0.0 if previous_t is None else t - previous_t
        self._t = t

        self._tracks = [tr for tr in self._tracks if t - tr.last_seen <= self.cfg.max_lost_s]
        for tr in self._tracks:
            tr.filter.predict(dt)

        n = len(detections)
        ids = np.full(n, -1, np.int64)
        if n == 0:
            return ids
        boxes = detections.boxes.astype(np.float64)
        scores = detections.scores.astype(np.float64)
        high = np.flatnonzero(scores >= self.cfg.high_score)
        low = np.flatnonzero((scores >= self.cfg.low_score) & (scores < self.cfg.high_score))

        unmatched = list(range(len(self._tracks)))
        for rows in (high, low):
            if rows.size == 0 or not unmatched:
                continue
            iou = self._iou(unmatched, boxes[rows])
            taken = set()
            for ti, di in match(iou, self.cfg.match_iou):
                tr = self._tracks[unmatched[ti]]
                tr.observe(boxes[rows[di]], float(scores[rows[di]]), t)
                ids[rows[di]] = tr.track_id
                taken.add(ti)
            unmatched = [k for i, k in enumerate(unmatched) if i not in taken]

        if self.cfg.centre_gate_sigma > 0 and previous_t is not None:
            recent = [k for k in unmatched if self._tracks[k].last_seen == previous_t]
            rows = high[ids[high] == -1]
            if recent and rows.size:
                for k, row in self._match_centres(recent, boxes[rows]):
                    tr = self._tracks[k]
                    tr.observe(boxes[rows[row]], float(scores[rows[row]]), t)
                    ids[rows[row]] = tr.track_id

        for row in high[ids[high] == -1]:
            new = _Track(self._next_id, boxes[row], float(scores[row]), t)
            self._next_id += 1
            self._tracks.append(new)
            ids[row] = new.track_id
        return ids

    def _match_centres(self, track_indices: list[int], boxes: F64) -> list[tuple[int, int]]:
        """(track index, box row) pairs by gated Mahalanobis distance of the centres."""
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        sizes = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2
        gate = self.cfg.centre_gate_sigma**2
        cost = np.empty((len(track_indices), boxes.shape[0]))
        for i, k in enumerate(track_indices):
            kf = self._tracks[k].filter
            d2 = kf.centre_distance2(centres)
            size = (kf.state[2] + kf.state[3]) / 2
            ratio = np.maximum(sizes / size, size / np.maximum(sizes, 1e-6))
            cost[i] = np.where((d2 <= gate) & (ratio <= _MAX_SIZE_RATIO), d2, np.inf)
        feasible = np.isfinite(cost)
        if not feasible.any():
            return []
        rows, cols = linear_sum_assignment(np.where(feasible, cost, 2 * gate + 1))
        return [
            (track_indices[int(r)], int(c))
            for r, c in zip(rows, cols, strict=True)
            if feasible[r, c]
        ]

    def _iou(self, track_indices: list[int], boxes: F64) -> F64:
        predicted = np.array([self._tracks[k].filter.box for k in track_indices])
        return iou_matrix(predicted.reshape(-1, 4), boxes)
