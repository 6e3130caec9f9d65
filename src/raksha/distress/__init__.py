"""Temporal distress scoring: per-frame evidence, face quality, each person's own baseline,
and a per-track state machine."""

from raksha.distress.baseline import Baseline
from raksha.distress.config import DistressConfig
from raksha.distress.evidence import class_weights, distress_evidence
from raksha.distress.quality import face_quality, face_sharpness
from raksha.distress.scorer import DistressScorer
from raksha.distress.smoothing import ema_alpha
from raksha.distress.state import Phase, StepResult, TrackState

__all__ = [
    "Baseline",
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
