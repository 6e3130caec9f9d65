"""Per-stream analysis: detect -> track -> expression -> distress, one frame at a time.

`FrameAnalyzer` holds the per-stream state (tracker, distress scorer) and the shared,
stateless models. It is what `raksha analyze` drives over a file and what the multi-camera
runtime drives per camera.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from raksha.config import AnalysisConfig
from raksha.detect.base import FaceDetector, RegionDetector
from raksha.distress.quality import face_sharpness
from raksha.distress.scorer import DistressScorer
from raksha.domain import (
    DistressEvent,
    ExpressionScores,
    FaceDetections,
    FaceResult,
    Frame,
    FrameAnalysis,
)
from raksha.expression.base import ExpressionClassifier
from raksha.track.base import FaceTracker

if TYPE_CHECKING:
    from raksha.detect.motion import ChangeWatch, MotionGate
    from raksha.pipeline.regions import RegionPlanner, SearchPlan
    from raksha.pipeline.shadow import ShadowFrame, ShadowScorer
    from raksha.pipeline.watchlist import WatchlistMatcher

log = logging.getLogger(__name__)

STAGES = ("decode", "detect", "track", "expression", "distress")


@dataclass(frozen=True, slots=True)
class Located:
    """A frame whose faces are found and tracked, waiting for their expressions."""

    frame: Frame
    faces: FaceDetections
    track_ids: npt.NDArray[np.int64]
    #: Seconds per stage so far (decode, detect, track).
    timings: dict[str, float]


@dataclass(frozen=True, slots=True)
class FaceReadings:
    """What the per-face stage read from a located frame: one row per face."""

    scores: ExpressionScores
    #: Variance of the Laplacian of each face (raksha.distress.quality.face_sharpness).
    sharpness: npt.NDArray[np.float32]
    expression_s: float
    sharpness_s: float


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
        from raksha.ort_session import use_provider

        mdir = models_dir if models_dir is not None else cfg.models_dir
        use_provider(cfg.execution.provider)
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
        shadow: ShadowScorer | None = None,
        watchlist: WatchlistMatcher | None = None,
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
        #: With `detector.rescan_s` > 0: between whole-frame searches, only the regions about
        #: the faces of the frame before are searched (track-guided detection).
        self.regions: RegionPlanner | None = None
        self._change: ChangeWatch | None = None
        if cfg.detector.rescan_s > 0 and isinstance(models.detector, RegionDetector):
            from raksha.detect.motion import ChangeWatch
            from raksha.pipeline.regions import RegionPlanner

            self.regions = RegionPlanner(cfg.detector.rescan_s, cfg.detector.region_margin)
            if cfg.detector.region_change < 1.0:
                self._change = ChangeWatch()
        self._last_faces = FaceDetections.empty()
        #: Shadow mode (`raksha.pipeline.shadow`): scored after the live side on each frame;
        #: its events of the latest frame are in `shadow_frame`. None: off.
        self.shadow = shadow
        self.shadow_frame: ShadowFrame | None = None
        #: The face watchlist's matcher of this camera (`raksha.pipeline.watchlist`), run
        #: after the live side on each frame; None: no watchlist here (nothing loaded).
        self.watchlist = watchlist

    @property
    def labels(self) -> tuple[str, ...]:
        return self.models.classifier.labels

    def analyze(self, frame: Frame, decode_s: float = 0.0) -> FrameAnalysis:
        located = self.locate(frame, decode_s)
        return self.score(located, self.read_faces(located))

    def locate(self, frame: Frame, decode_s: float = 0.0) -> Located:
        """The first half of `analyze`: the frame's faces (detect) and their tracks."""
        t0 = time.perf_counter()
        plan: SearchPlan | None = None
        if self.motion is None or self.motion.needs_detection(frame.image, frame.t):
            faces, plan = self._detect(frame)
            self._last_faces = faces
        else:  # nothing moved since the last detection: the faces are where they were
            faces = self._last_faces
        t1 = time.perf_counter()
        ids = self.tracker.update(faces, frame.t)
        if plan is not None and self.regions is not None:
            self.regions.observe(frame.t, faces, ids, plan)
        t2 = time.perf_counter()
        return Located(frame, faces, ids, {"decode": decode_s, "detect": t1 - t0, "track": t2 - t1})

    def read_faces(self, located: Located) -> FaceReadings:
        """The per-face stage: expressions and sharpness. It keeps no state of the stream, so
        while one frame's faces are read (on another thread), the next may be located."""
        image, faces = located.frame.image, located.faces
        t0 = time.perf_counter()
        scores = self.models.classifier.classify(image, faces)
        t1 = time.perf_counter()
        sharp = face_sharpness(image, faces.boxes) if len(faces) else np.zeros((0,), np.float32)
        t2 = time.perf_counter()
        return FaceReadings(scores, sharp, expression_s=t1 - t0, sharpness_s=t2 - t1)

    def score(self, located: Located, readings: FaceReadings) -> FrameAnalysis:
        """The last half of `analyze`: quality and distress per face, events, the result.
        Frames must be scored in the order they were located."""
        frame, faces, ids = located.frame, located.faces, located.track_ids
        scores = readings.scores
        t0 = time.perf_counter()
        samples, opened, closed = self.scorer.update(
            frame.t, ids, scores.probs, scores.labels, faces, readings.sharpness
        )
        timings = dict(
            located.timings,
            expression=readings.expression_s,
            distress=readings.sharpness_s + time.perf_counter() - t0,
        )
        self._last_t = frame.t
        if self.shadow is not None:
            self.shadow_frame = self._shadow(located, readings)
        if self.watchlist is not None:
            self._watch(located, readings)

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

    def _shadow(self, located: Located, readings: FaceReadings) -> ShadowFrame | None:
        """The shadow's turn on this frame; its failure never costs the live result."""
        assert self.shadow is not None
        try:
            return self.shadow.update(located, readings)
        except Exception:
            log.exception(
                "%s: shadow scoring failed on frame %d", self.source_id, located.frame.index
            )
            return None

    def _watch(self, located: Located, readings: FaceReadings) -> None:
        """The watchlist's turn on this frame; its failure never costs the live result."""
        assert self.watchlist is not None
        try:
            self.watchlist.observe(located, readings.sharpness)
        except Exception:
            log.exception(
                "%s: watchlist matching failed on frame %d", self.source_id, located.frame.index
            )

    def _detect(self, frame: Frame) -> tuple[FaceDetections, SearchPlan | None]:
        """This frame's faces: a whole-frame search, or (track-guided) its regions."""
        detector = self.models.detector
        if self.regions is None or not isinstance(detector, RegionDetector):
            return detector.detect(frame.image), None
        h, w = frame.image.shape[:2]
        plan = self.regions.plan(frame.t, detector.regions_pay(h, w, self.regions.expected_count))
        watch = self._change
        limit = self.cfg.detector.region_change
        if (
            watch is not None
            and plan.regions is not None
            and watch.outside_share(frame.image, plan.regions) > limit
        ):
            plan = self.regions.whole("change")
        if plan.regions is None:
            if watch is not None:
                watch.remember(frame.image)
            return detector.detect(frame.image), plan
        return detector.detect_regions(frame.image, plan.regions), plan

    def finish(self) -> list[DistressEvent]:
        """Close every open event at the end of the stream."""
        if self.watchlist is not None:
            try:
                self.watchlist.finish()
            except Exception:
                log.exception("%s: watchlist matching failed at the end", self.source_id)
        return self.scorer.finish(self._last_t)

    def finish_shadow(self) -> list[DistressEvent]:
        """Close every open shadow event at the end of the stream (none without shadow)."""
        return [] if self.shadow is None else self.shadow.finish()
