"""A camera's last seconds of analysed frames, in memory only, and the clips cut from them.

Each analysed frame is scaled down (at most `max_width` pixels wide) and kept with its face
boxes in a ring buffer holding `pre_s` seconds. Nothing here is written anywhere: a frame
leaves memory when it falls out of the buffer, unless a clip claims it. `start` claims the
buffer's frames for an incident and keeps adding frames until `post_s` after the decision;
the finished clip goes to `on_done` (which blurs, encodes, encrypts and stores it elsewhere).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from raksha.domain import FaceResult, Frame
from raksha.incidents.clip import ClipFrame


@dataclass
class PendingClip:
    """A clip being collected: for `incident_id`, the person of `track_id`, until `until`."""

    incident_id: str
    camera_id: str
    track_id: int
    decided_t: float
    until: float
    frames: list[ClipFrame] = field(default_factory=list)


def _scaled(frame: Frame, faces: Sequence[FaceResult], max_width: int) -> ClipFrame:
    import cv2

    image = frame.image
    h, w = image.shape[:2]
    scale = min(1.0, max_width / w) if max_width > 0 else 1.0
    if scale < 1.0:
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    else:
        image = image.copy()  # the decoder may reuse its buffer
    boxes = tuple(
        (f.track_id, (f.box[0] * scale, f.box[1] * scale, f.box[2] * scale, f.box[3] * scale))
        for f in faces
    )
    return ClipFrame(image, frame.t, boxes)


class ClipRecorder:
    """One camera's ring buffer and its clips in progress (thread-safe)."""

    def __init__(
        self,
        camera_id: str,
        on_done: Callable[[PendingClip], None],
        *,
        pre_s: float = 5.0,
        post_s: float = 5.0,
        max_width: int = 640,
    ) -> None:
        self.camera_id = camera_id
        self.pre_s = pre_s
        self.post_s = post_s
        self.max_width = max_width
        self._on_done = on_done
        self._buffer: deque[ClipFrame] = deque()
        self._pending: list[PendingClip] = []
        self._lock = threading.Lock()

    @property
    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def push(self, frame: Frame, faces: Sequence[FaceResult]) -> None:
        """Keep this frame (and drop those older than `pre_s`); finish the clips whose
        `post_s` has passed."""
        item = _scaled(frame, faces, self.max_width)
        done: list[PendingClip] = []
        with self._lock:
            self._buffer.append(item)
            while self._buffer and self._buffer[0].t < item.t - self.pre_s:
                self._buffer.popleft()
            for clip in self._pending:
                clip.frames.append(item)
                if item.t >= clip.until:
                    done.append(clip)
            self._pending = [c for c in self._pending if c not in done]
        for clip in done:
            self._on_done(clip)

    def start(self, incident_id: str, track_id: int, decided_t: float) -> None:
        """Claim the buffered frames (the decision's frame is the newest) for a clip of
        `incident_id`; it ends `post_s` after `decided_t`."""
        with self._lock:
            if any(c.incident_id == incident_id for c in self._pending):
                return  # one clip per incident at a time (a merged re-detection)
            frames = [f for f in self._buffer if f.t >= decided_t - self.pre_s]
            self._pending.append(
                PendingClip(
                    incident_id,
                    self.camera_id,
                    track_id,
                    decided_t,
                    decided_t + self.post_s,
                    frames,
                )
            )

    def flush(self) -> None:
        """The camera stops: finish every clip in progress with the frames it has."""
        with self._lock:
            done, self._pending = self._pending, []
            self._buffer.clear()
        for clip in done:
            self._on_done(clip)
