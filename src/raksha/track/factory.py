"""Build the configured face tracker."""

from __future__ import annotations

from raksha.track.base import FaceTracker
from raksha.track.config import TrackerConfig


def build_tracker(cfg: TrackerConfig) -> FaceTracker:
    """A fresh tracker (one per video stream) as `cfg` describes."""
    if cfg.kind == "bytetrack":
        from raksha.track.bytetrack import ByteTracker

        return ByteTracker(cfg)
    raise AssertionError(f"unknown tracker kind {cfg.kind!r}")  # pragma: no cover
