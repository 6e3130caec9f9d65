"""Face tracking stage: the FaceTracker seam, its settings and `build_tracker`."""

from raksha.track.base import FaceTracker
from raksha.track.config import ByteTrackConfig, TrackerConfig
from raksha.track.factory import build_tracker

__all__ = ["ByteTrackConfig", "FaceTracker", "TrackerConfig", "build_tracker"]
