"""Frozen, slotted value types with numpy columns; shapes are checked once, at construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

#: Raksha's canonical expression class names (the FER+ eight, in FER+ vote-column order).
#: Every model's own labels are mapped onto these names by its model spec.
EXPRESSION_CLASSES: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What is known about a stream once it is open."""

    source_id: str
    #: The URL or path with any password masked; safe to log.
    display_url: str
    width: int
    height: int
    native_fps: float | None
    #: Frames in the stream if the container says so (files), else None (live streams).
    frame_count: int | None
    is_live: bool


@dataclass(frozen=True, slots=True)
class Frame:
    """One analysed frame: a BGR image and where it sits in its stream."""

    image: U8
    #: Presentation time in seconds from the start of the stream.
    t: float
    #: Index of the frame in the decoded stream (counting skipped frames too).
    index: int
    source_id: str
    #: `time.monotonic()` when the frame was decoded, for latency measurement.
    captured_at: float

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"Frame.image must be HxWx3 uint8 BGR, got {self.image.shape}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True, slots=True)
class FaceDetections:
    """N faces: boxes (N,4) xyxy pixels, scores (N,), landmarks (N,5,2).

    Landmark order: subject's right eye, left eye, nose tip, right mouth corner, left
    mouth corner (that is, image-left first for a frontal face), as YuNet emits them.
    """

    boxes: F32
    scores: F32
    landmarks: F32

    def __post_init__(self) -> None:
        n = self.boxes.shape[0]
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must be (N,4), got {self.boxes.shape}")
        if self.scores.shape != (n,):
            raise ValueError(f"scores must be (N,), got {self.scores.shape}")
        if self.landmarks.shape != (n, 5, 2):
            raise ValueError(f"landmarks must be (N,5,2), got {self.landmarks.shape}")

    @staticmethod
    def empty() -> FaceDetections:
        return FaceDetections(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
        )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: npt.NDArray[np.bool_] | I64 | slice) -> FaceDetections:
        return FaceDetections(
            boxes=self.boxes[index], scores=self.scores[index], landmarks=self.landmarks[index]
        )

    @property
    def widths(self) -> F32:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> F32:
        return self.boxes[:, 3] - self.boxes[:, 1]


@dataclass(frozen=True, slots=True)
class ExpressionScores:
    """Full probability distributions: probs (N,K) over `labels` (K canonical names)."""

    probs: F32
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.probs.ndim != 2 or self.probs.shape[1] != len(self.labels):
            raise ValueError(
                f"probs must be (N,{len(self.labels)}) for labels {self.labels}, "
                f"got {self.probs.shape}"
            )

    def __len__(self) -> int:
        return int(self.probs.shape[0])

    def as_dicts(self) -> list[dict[str, float]]:
        return [
            {name: float(p) for name, p in zip(self.labels, row, strict=True)} for row in self.probs
        ]

    def top(self) -> list[str]:
        return [self.labels[int(i)] for i in np.argmax(self.probs, axis=1)]


@dataclass(frozen=True, slots=True)
class DistressSample:
    """The distress scorer's view of one face at one time."""

    #: Per-frame (absolute) evidence in [0,1] after quality gating, or None when the face was
    #: gated out.
    evidence: float | None
    #: Smoothed score in [0,1].
    score: float
    #: True while the track's distress event is open.
    active: bool
    #: Face quality in [0,1] (1 = fully usable).
    quality: float
    #: Per-frame relative evidence in [0,1]: quality x clip(gain x (reading - baseline)), the
    #: reading being the evidence before quality. None when gated, untracked, before the
    #: track has a baseline, or with the relative part off.
    relative: float | None = None
    #: The person's own usual reading (evidence before quality) this frame was judged
    #: against; None as for `relative`.
    baseline: float | None = None


@dataclass(frozen=True, slots=True)
class DistressEvent:
    """A period during which one tracked person showed sustained distress."""

    track_id: int
    start_s: float
    #: None while the event is still open.
    end_s: float | None
    peak_distress: float
    peak_t: float
    expression_at_peak: dict[str, float]
    source_id: str = ""
    #: The highest smoothed absolute evidence during the event (smoothed as the score is).
    peak_absolute: float | None = None
    #: The highest smoothed relative evidence during the event; None with relative off.
    peak_relative: float | None = None
    #: The person's baseline (usual reading before quality) at `peak_t`; None when it was not
    #: established yet, or with the relative part off.
    baseline_at_peak: float | None = None

    @property
    def top_expression_at_peak(self) -> str:
        return max(self.expression_at_peak, key=lambda k: self.expression_at_peak[k])


@dataclass(frozen=True, slots=True)
class FaceResult:
    track_id: int
    box: tuple[float, float, float, float]
    score: float
    expression: dict[str, float]
    distress: DistressSample


@dataclass(frozen=True, slots=True)
class FrameAnalysis:
    """Everything the analysis stages learnt about one frame."""

    t: float
    index: int
    source_id: str
    faces: tuple[FaceResult, ...]
    #: Events that opened or closed on this frame.
    opened: tuple[DistressEvent, ...] = ()
    closed: tuple[DistressEvent, ...] = ()
    #: Seconds spent per stage on this frame (decode, detect, track, expression, distress).
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 4),
            "faces": [
                {
                    "track_id": f.track_id,
                    "box": [round(v, 1) for v in f.box],
                    "score": round(f.score, 4),
                    "expression": {k: round(v, 4) for k, v in f.expression.items()},
                    "distress": round(f.distress.score, 4),
                    "distress_evidence": round_or_none(f.distress.evidence),
                    "distress_relative": round_or_none(f.distress.relative),
                    "distress_baseline": round_or_none(f.distress.baseline),
                    "quality": round(f.distress.quality, 4),
                    "in_event": f.distress.active,
                }
                for f in self.faces
            ],
        }


def round_or_none(x: float | None, digits: int = 4) -> float | None:
    """`round(x, digits)` for JSON, with None kept as None."""
    return None if x is None else round(x, digits)
