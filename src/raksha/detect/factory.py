"""Build the configured face detector."""

from __future__ import annotations

from pathlib import Path

from raksha.detect.base import FaceDetector
from raksha.detect.config import DetectorConfig


def build_detector(cfg: DetectorConfig, models_dir: Path | None = None) -> FaceDetector:
    """The detector `cfg` describes, with weights resolved through the model registry.

    Raises `raksha.errors.ModelError` when the weights are missing or unusable.
    """
    from raksha.models import model_path

    if cfg.kind == "yunet":
        from raksha.detect.yunet import YuNetDetector

        return YuNetDetector(model_path(cfg.model, models_dir), cfg)
    raise AssertionError(f"unknown detector kind {cfg.kind!r}")  # pragma: no cover
