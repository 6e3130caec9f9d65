"""Pure data types passed between pipeline stages (no I/O here)."""

from raksha.domain.types import (
    EXPRESSION_CLASSES,
    DistressEvent,
    DistressSample,
    ExpressionScores,
    FaceDetections,
    FaceResult,
    Frame,
    FrameAnalysis,
    SourceInfo,
)

__all__ = [
    "EXPRESSION_CLASSES",
    "DistressEvent",
    "DistressSample",
    "ExpressionScores",
    "FaceDetections",
    "FaceResult",
    "Frame",
    "FrameAnalysis",
    "SourceInfo",
]
