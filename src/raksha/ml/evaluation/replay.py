"""Record what the distress scorer is fed during one analysis pass, and feed it again.

`RecordingClassifier` wraps the pipeline's expression classifier: each time the pipeline
reads a frame's faces it keeps the faces, their expression probabilities and their
sharpness (`raksha.distress.quality.face_sharpness`, as the pipeline measures it), and
`Recorder.on_frame` adds the frame time and track ids from the frame's analysis. `replay`
then runs a fresh `DistressScorer` over those inputs with any `DistressConfig`, so an
operating curve over the scorer's settings costs no further model runs.

Replaying with the configuration of the live pass must give the live pass's samples and
events exactly; `same_as_live` checks that, so a change in what the pipeline feeds the
scorer cannot go unnoticed.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from raksha.distress.config import DistressConfig
from raksha.distress.quality import face_sharpness
from raksha.distress.scorer import DistressScorer
from raksha.domain import (
    DistressEvent,
    DistressSample,
    ExpressionScores,
    FaceDetections,
    FrameAnalysis,
)
from raksha.expression.base import ExpressionClassifier


@dataclass(frozen=True, slots=True)
class ScorerInputs:
    """One analysed frame as the distress scorer saw it."""

    t: float
    track_ids: npt.NDArray[np.int64]
    probs: npt.NDArray[np.float32]
    faces: FaceDetections
    sharpness: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Alert:
    """An event as it opened: the frame time it opened on, and where the face was."""

    t: float
    track_id: int
    box: tuple[float, float, float, float]
    event: DistressEvent


@dataclass
class Recording:
    """A stream's scorer inputs, frame by frame, and what the live pass made of them."""

    labels: tuple[str, ...]
    frames: list[ScorerInputs] = field(default_factory=list)
    #: The live pass's samples (one list per frame, one sample per face) and alerts.
    live_samples: list[list[DistressSample]] = field(default_factory=list)
    live_alerts: list[Alert] = field(default_factory=list)


class RecordingClassifier:
    """An ExpressionClassifier that passes every call through and keeps what it read."""

    def __init__(self, inner: ExpressionClassifier) -> None:
        self.inner = inner
        self._read: deque[tuple[FaceDetections, ExpressionScores, npt.NDArray[np.float32]]]
        self._read = deque()
        self._lock = threading.Lock()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.inner.labels

    def classify(self, image: npt.NDArray[np.uint8], faces: FaceDetections) -> ExpressionScores:
        scores = self.inner.classify(image, faces)
        sharp = face_sharpness(image, faces.boxes) if len(faces) else np.zeros((0,), np.float32)
        with self._lock:
            self._read.append((faces, scores, sharp))
        return scores

    def take(self) -> tuple[FaceDetections, ExpressionScores, npt.NDArray[np.float32]]:
        """The oldest reading not yet taken (readings come in frame order)."""
        with self._lock:
            if not self._read:
                raise RuntimeError("a frame was analysed without its faces being read")
            return self._read.popleft()

    def clear(self) -> None:
        with self._lock:
            self._read.clear()


class Recorder:
    """Collects one stream's `Recording`: pass `on_frame` to `analyze_video`."""

    def __init__(self, classifier: RecordingClassifier) -> None:
        self.classifier = classifier
        classifier.clear()
        self.recording = Recording(labels=classifier.labels)

    def on_frame(self, analysis: FrameAnalysis) -> None:
        faces, scores, sharp = self.classifier.take()
        if len(faces) != len(analysis.faces) or not all(
            np.allclose(faces.boxes[i], r.box) for i, r in enumerate(analysis.faces)
        ):
            raise RuntimeError(f"frame at {analysis.t} s: the faces read are not those scored")
        ids = np.array([r.track_id for r in analysis.faces], dtype=np.int64)
        self.recording.frames.append(ScorerInputs(analysis.t, ids, scores.probs, faces, sharp))
        self.recording.live_samples.append([r.distress for r in analysis.faces])
        self.recording.live_alerts.extend(_alerts(analysis.t, ids, faces, analysis.opened))


def _alerts(
    t: float, ids: npt.NDArray[np.int64], faces: FaceDetections, opened: tuple[DistressEvent, ...]
) -> list[Alert]:
    out = []
    for event in opened:
        rows = np.flatnonzero(ids == event.track_id)
        b = faces.boxes[int(rows[0])] if len(rows) else np.full(4, np.nan, np.float32)
        box = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
        out.append(Alert(t, event.track_id, box, event))
    return out


@dataclass(frozen=True, slots=True)
class Replayed:
    samples: list[list[DistressSample]]
    alerts: list[Alert]


def replay(recording: Recording, cfg: DistressConfig, source_id: str = "video") -> Replayed:
    """The samples and alerts a `DistressScorer` with ``cfg`` makes of the recorded frames."""
    scorer = DistressScorer(cfg, source_id=source_id)
    samples: list[list[DistressSample]] = []
    alerts: list[Alert] = []
    for f in recording.frames:
        frame_samples, opened, _ = scorer.update(
            f.t, f.track_ids, f.probs, recording.labels, f.faces, f.sharpness
        )
        samples.append(frame_samples)
        alerts.extend(_alerts(f.t, f.track_ids, f.faces, tuple(opened)))
    if recording.frames:
        scorer.finish(recording.frames[-1].t)
    return Replayed(samples, alerts)


def with_enter_threshold(cfg: DistressConfig, enter: float) -> DistressConfig:
    """``cfg`` with the entry threshold ``enter`` and the exit threshold at most 0.05 below
    it (validated, so any setting the scorer gains is kept and checked)."""
    exit_ = max(0.0, min(cfg.exit_threshold, enter - 0.05))
    changed = cfg.model_copy(update={"enter_threshold": enter, "exit_threshold": exit_})
    return type(cfg).model_validate(changed.model_dump())


def same_as_live(recording: Recording, replayed: Replayed) -> bool:
    """Whether a replay reproduced the live pass: every sample and every alert."""
    live = [(a.t, a.track_id, a.event) for a in recording.live_alerts]
    again = [(a.t, a.track_id, a.event) for a in replayed.alerts]
    return recording.live_samples == replayed.samples and live == again
