"""Temporal distress scoring: per-frame evidence, face quality, and a per-track state machine."""

from raksha.distress.config import DistressConfig
from raksha.distress.evidence import class_weights, distress_evidence
from raksha.distress.quality import face_quality, face_sharpness
from raksha.distress.scorer import DistressScorer
from raksha.distress.state import Phase, StepResult, TrackState, ema_alpha

__all__ = [
    "DistressConfig",
    "DistressScorer",
    "Phase",
    "StepResult",
    "TrackState",
    "class_weights",
    "distress_evidence",
    "ema_alpha",
    "face_quality",
    "face_sharpness",
]
