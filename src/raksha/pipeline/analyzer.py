"""Per-stream analysis: detect -> track -> expression -> distress, one frame at a time.

`FrameAnalyzer` holds the per-stream state (tracker, distress scorer) and the shared,
stateless models. It is what `raksha analyze` drives over a file and what the multi-camera
runtime drives per camera.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from raksha.config import AnalysisConfig
from raksha.detect.base import FaceDetector
from raksha.distress.quality import face_sharpness
from raksha.distress.scorer import DistressScorer
from raksha.domain import DistressEvent, FaceDetections, FaceResult, Frame, FrameAnalysis
from raksha.expression.base import ExpressionClassifier
from raksha.track.base import FaceTracker

if TYPE_CHECKING:
    from raksha.detect.motion import MotionGate

STAGES = ("decode", "detect", "track", "expression", "distress")


@dataclass(frozen=True, slots=True)
class Models:
    """The stateless, shareable parts of the pipeline (loaded once per process)."""

    detector: FaceDetector
    classifier: ExpressionClassifier
    expression_model: str

    @staticmethod
    def load(cfg: AnalysisConfig, models_dir: Path | None = None) -> Models:
        from raksha.detect.factory import build_detector
        from raksha.expression.factory import build_expression_classifier

        mdir = models_dir if models_dir is not None else cfg.models_dir
        return Models(
            detector=build_detector(cfg.detector, mdir),
            classifier=build_expression_classifier(cfg.expression, mdir),
            expression_model=cfg.expression.model,
        )


class FrameAnalyzer:
    """Analyses the frames of one stream, in order."""

    def __init__(
        self,
        cfg: AnalysisConfig,
        models: Models,
        source_id: str = "video",
        tracker: FaceTracker | None = None,
    ) -> None:
        from raksha.track.factory import build_tracker

        self.cfg = cfg
        self.models = models
        self.source_id = source_id
        self.tracker = tracker if tracker is not None else build_tracker(cfg.tracker)
        self.scorer = DistressScorer(cfg.distress, source_id=source_id)
        self._last_t = 0.0
        #: With `detector.motion_gate` > 0: skips the detector on frames where nothing moved.
        self.motion: MotionGate | None = None
        if cfg.detector.motion_gate > 0:
            from raksha.detect.motion import MotionGate

            self.motion = MotionGate(cfg.detector.motion_gate, cfg.detector.motion_gate_max_age_s)
        self._last_faces = FaceDetections.empty()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.models.classifier.labels

    def analyze(self, frame: Frame, decode_s: float = 0.0) -> FrameAnalysis:
        timings = {"decode": decode_s}
        t0 = time.perf_counter()
        if self.motion is None or self.motion.needs_detection(frame.image, frame.t):
            faces = self._last_faces = self.models.detector.detect(frame.image)
        else:  # nothing moved since the last detection: the faces are where they were
            faces = self._last_faces
        t1 = time.perf_counter()
        ids = self.tracker.update(faces, frame.t)
        t2 = time.perf_counter()
        scores = self.models.classifier.classify(frame.image, faces)
        t3 = time.perf_counter()
        sharp = (
            face_sharpness(frame.image, faces.boxes) if len(faces) else np.zeros((0,), np.float32)
        )
        samples, opened, closed = self.scorer.update(
            frame.t, ids, scores.probs, scores.labels, faces, sharp
        )
        t4 = time.perf_counter()
        timings.update(detect=t1 - t0, track=t2 - t1, expression=t3 - t2, distress=t4 - t3)
        self._last_t = frame.t

        results = tuple(
            FaceResult(
                track_id=int(ids[i]),
                box=(
                    float(faces.boxes[i, 0]),
                    float(faces.boxes[i, 1]),
                    float(faces.boxes[i, 2]),
                    float(faces.boxes[i, 3]),
                ),
                score=float(faces.scores[i]),
                expression=expr,
                distress=samples[i],
            )
            for i, expr in enumerate(scores.as_dicts())
        )
        return FrameAnalysis(
            t=frame.t,
            index=frame.index,
            source_id=self.source_id,
            faces=results,
            opened=tuple(opened),
            closed=tuple(closed),
            timings=timings,
        )

    def finish(self) -> list[DistressEvent]:
        """Close every open event at the end of the stream."""
        return self.scorer.finish(self._last_t)
