"""The incident sink with event clips: each camera's frames go through a ring buffer in
memory (`ClipRecorder`); when the store has taken an event's incident, the buffered seconds
before the decision and the seconds after it become the incident's clip. Clips are blurred,
encoded, encrypted and attached on a thread of their own, so a camera never waits for one.

A clip is attached only to an incident the store has accepted (an incident waiting in the
spool during a database outage gets its stills, not a clip), and a merged re-detection adds a
clip only while its incident has fewer than `max_clips`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from raksha.domain import DistressEvent, Frame, FrameAnalysis
from raksha.errors import RakshaError
from raksha.incidents.clip import ClipError, make_clip
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import EvidenceKind
from raksha.pipeline.clip_recorder import ClipRecorder, PendingClip
from raksha.pipeline.incident_sink import IncidentSink
from raksha.site.config import CameraConfig
from raksha.store import evidence_rows

log = logging.getLogger(__name__)

#: Clips waiting to be encoded beyond this are dropped (said in the log): memory is bounded.
QUEUE_MAX = 16


class ClipIncidentSink(IncidentSink):
    def __init__(
        self,
        *args: Any,
        clip_writer: EvidenceWriter,
        pre_s: float = 5.0,
        post_s: float = 5.0,
        max_width: int = 640,
        blur_expand: float = 0.2,
        max_clips: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.clip_writer = clip_writer
        self.pre_s, self.post_s, self.max_width = pre_s, post_s, max_width
        self.blur_expand = blur_expand
        self.max_clips = max_clips
        self._recorders: dict[str, ClipRecorder] = {}
        self._recorders_lock = threading.Lock()
        self._queue: queue.Queue[PendingClip | None] = queue.Queue(maxsize=QUEUE_MAX)
        #: Set by `close`: clips still waiting after it are dropped.
        self._deadline: float | None = None
        self._worker = threading.Thread(target=self._encode_loop, name="clips", daemon=True)
        self._worker.start()
        #: Clips attached, and clips lost (encoder error, full queue, incident gone).
        self.clips_stored = 0
        self.clips_lost = 0

    def recorder(self, camera_id: str) -> ClipRecorder:
        with self._recorders_lock:
            rec = self._recorders.get(camera_id)
            if rec is None:
                rec = ClipRecorder(
                    camera_id,
                    self._clip_done,
                    pre_s=self.pre_s,
                    post_s=self.post_s,
                    max_width=self.max_width,
                )
                self._recorders[camera_id] = rec
            return rec

    def handle(self, camera: CameraConfig, frame: Frame, analysis: FrameAnalysis) -> None:
        rec = self.recorder(camera.id)
        rec.push(frame, analysis.faces)  # the decision's frame is in the buffer first
        super().handle(camera, frame, analysis)
        for event in analysis.opened:
            incident_id = self.open_incident_of(camera.id, event.track_id)
            if incident_id is not None:
                rec.start(incident_id, event.track_id, frame.t)

    def finish(self, camera: CameraConfig, events: Sequence[DistressEvent]) -> None:
        super().finish(camera, events)
        self.recorder(camera.id).flush()

    def close(self, timeout_s: float = 30.0) -> None:
        """Finish the clips in progress and give the encoder `timeout_s` in all (at
        shutdown); clips still waiting then are dropped, said in the log."""
        with self._recorders_lock:
            recorders = list(self._recorders.values())
        for rec in recorders:
            rec.flush()
        self._deadline = time.monotonic() + timeout_s
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            log.error("clip encoder still busy at shutdown; the clips waiting are dropped")
        self._worker.join(timeout=max(0.0, self._deadline - time.monotonic()))

    # ---- internals ------------------------------------------------------------------------

    def _clip_done(self, clip: PendingClip) -> None:
        try:
            self._queue.put_nowait(clip)
        except queue.Full:
            self.clips_lost += 1
            log.error(
                "camera %s: clip of incident %s dropped (encoder busy)",
                clip.camera_id,
                clip.incident_id,
            )

    def _encode_loop(self) -> None:
        while True:
            clip = self._queue.get()
            if clip is None:
                return
            if self._deadline is not None and time.monotonic() > self._deadline:
                self.clips_lost += 1
                log.error("clip of incident %s dropped at shutdown", clip.incident_id)
                continue
            try:
                self._store_clip(clip)
            except Exception:  # a clip must never stop the cameras
                self.clips_lost += 1
                log.exception(
                    "camera %s: clip of incident %s failed", clip.camera_id, clip.incident_id
                )

    def _store_clip(self, clip: PendingClip) -> None:
        incident = self.store.get_incident(clip.incident_id)
        if incident is None:
            self.clips_lost += 1
            return
        if sum(1 for e in incident.evidence if e.kind is EvidenceKind.CLIP) >= self.max_clips:
            return
        try:
            mp4 = make_clip(clip.frames, clip.track_id, self.blur_expand, clip.decided_t)
            ev = self.clip_writer.store_clip(clip.incident_id, mp4)
        except (ClipError, OSError, ValueError) as exc:
            self.clips_lost += 1
            log.error(
                "camera %s: clip of incident %s not made: %s", clip.camera_id, clip.incident_id, exc
            )
            return
        try:
            attached = evidence_rows.append_files(self.store.engine, clip.incident_id, [ev])
        except RakshaError as exc:
            attached = False
            log.error(
                "camera %s: clip of incident %s not recorded: %s",
                clip.camera_id,
                clip.incident_id,
                exc,
            )
        if not attached:
            self.clips_lost += 1
            self.clip_writer.discard([ev])
            return
        self.clips_stored += 1
        log.info(
            "camera %s: clip of incident %s stored (%d frames, %.1f s)",
            clip.camera_id,
            clip.incident_id,
            len(clip.frames),
            (clip.frames[-1].t - clip.frames[0].t) if clip.frames else 0.0,
        )
