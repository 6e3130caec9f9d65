"""DistressScorer: per-frame evidence and quality, then one state machine per track id."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from raksha.distress.config import DistressConfig
from raksha.distress.evidence import distress_evidence
from raksha.distress.quality import face_quality
from raksha.distress.state import TrackState
from raksha.domain import DistressEvent, DistressSample, FaceDetections


class DistressScorer:
    """Turns each frame's tracked faces and expressions into distress samples and events.

    Call `update` once per analysed frame with non-decreasing `t`, then `finish` at the end
    of the stream. One scorer serves one stream (`source_id` is copied into its events).
    """

    def __init__(self, cfg: DistressConfig, source_id: str = "") -> None:
        self.cfg = cfg
        self.source_id = source_id
        self._tracks: dict[int, TrackState] = {}
        self._last_t = -math.inf

    def update(
        self,
        t: float,
        track_ids: npt.NDArray[np.int64],
        probs: npt.NDArray[np.float32],
        labels: Sequence[str],
        faces: FaceDetections,
        sharpness: npt.NDArray[np.float32],
    ) -> tuple[list[DistressSample], list[DistressEvent], list[DistressEvent]]:
        """Score one frame. Returns (one sample per input row, events opened, events closed).

        Rows with track id -1 get a sample (evidence and quality) but no state: their score
        is 0 and they never open an event. Tracks unseen for longer than `max_gap_s` are
        dropped first, closing any open event at the time they were last seen.
        """
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"frame time must be finite, got {t}")
        if t < self._last_t:
            raise ValueError(f"frame time went backwards ({t} after {self._last_t})")
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        p = np.asarray(probs, dtype=np.float32)
        sharp = np.asarray(sharpness, dtype=np.float32).reshape(-1)
        n = len(faces)
        if ids.shape[0] != n or p.shape[0] != n or sharp.shape[0] != n:
            raise ValueError(
                f"update needs one row per face: {n} faces, {ids.shape[0]} track ids, "
                f"{p.shape[0]} probability rows, {sharp.shape[0]} sharpness values"
            )
        tracked = ids[ids >= 0]
        if len(set(tracked.tolist())) != len(tracked):
            raise ValueError(f"duplicate track ids in one frame: {ids.tolist()}")
        self._last_t = t

        closed = self._drop_stale(t)
        short_side = np.minimum(faces.widths, faces.heights)
        quality = face_quality(short_side, faces.scores, sharp, self.cfg)
        evidence = distress_evidence(p, labels, self.cfg.weights) * quality

        samples: list[DistressSample] = []
        opened: list[DistressEvent] = []
        for i in range(n):
            q = float(quality[i])
            e_raw = float(evidence[i])
            e = e_raw if q > 0.0 and math.isfinite(e_raw) else None
            tid = int(ids[i])
            if tid < 0:
                samples.append(DistressSample(evidence=e, score=0.0, active=False, quality=q))
                continue
            state = self._tracks.get(tid)
            if state is None:
                state = self._tracks[tid] = TrackState(tid, self.cfg, self.source_id)
            step = state.step(t, e, p[i], labels, quality=q)
            samples.append(
                DistressSample(
                    evidence=e,
                    score=step.score,
                    active=step.active,
                    quality=q,
                    relative=step.relative,
                    baseline=step.baseline,
                )
            )
            if step.opened is not None:
                opened.append(step.opened)
            if step.closed is not None:
                closed.append(step.closed)
        return samples, opened, closed

    def finish(self, t: float) -> list[DistressEvent]:
        """End of stream: close every open event (at the track's last sighting), forget all."""
        if t < self._last_t:
            raise ValueError(f"finish time {t} is before the last frame ({self._last_t})")
        closed = []
        for state in self._tracks.values():
            last = state.last_seen if state.last_seen is not None else t
            event = state.close(end_s=min(last, t))
            if event is not None:
                closed.append(event)
        self._tracks.clear()
        self._last_t = -math.inf
        return closed

    def open_events(self) -> list[DistressEvent]:
        """Snapshots of the events open now (end_s None, peak so far), by track id."""
        events = []
        for tid in sorted(self._tracks):
            event = self._tracks[tid].open_event()
            if event is not None:
                events.append(event)
        return events

    @property
    def track_count(self) -> int:
        """Tracks with state held now."""
        return len(self._tracks)

    def _drop_stale(self, t: float) -> list[DistressEvent]:
        closed = []
        for tid in list(self._tracks):
            state = self._tracks[tid]
            if state.last_seen is not None and t - state.last_seen > self.cfg.max_gap_s:
                event = state.close(end_s=state.last_seen)
                if event is not None:
                    closed.append(event)
                del self._tracks[tid]
        return closed
