"""What one camera runs with: the site's stage settings with that camera's own overrides.

One rule for every override: a camera field left unset (None) inherits the site's setting;
a field that is set replaces it for that camera only. `OVERRIDES` lists which camera field
overrides which stage setting, so a new per-camera setting is one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from raksha.detect.config import DetectorConfig
from raksha.site.config import CameraConfig
from raksha.sources.config import SourceConfig

#: camera field -> (stage section, field in that section).
OVERRIDES: dict[str, tuple[str, str]] = {
    "fps": ("source", "fps"),
    "min_face_px": ("detector", "min_face_px"),
}


class StageSettings(Protocol):
    """The site-wide stage settings a camera may override (a `RunConfig` is one)."""

    @property
    def source(self) -> SourceConfig: ...
    @property
    def detector(self) -> DetectorConfig: ...


@dataclass(frozen=True, slots=True)
class CameraSettings:
    """The settings one camera's pipeline is built from."""

    camera: CameraConfig
    source: SourceConfig
    detector: DetectorConfig


def effective_camera_config(site: StageSettings, camera: CameraConfig) -> CameraSettings:
    """The site's `source` and `detector` settings with `camera`'s overrides applied."""
    updates: dict[str, dict[str, object]] = {"source": {}, "detector": {}}
    for camera_field, (section, field) in OVERRIDES.items():
        value = getattr(camera, camera_field)
        if value is not None:
            updates[section][field] = value
    return CameraSettings(
        camera=camera,
        source=site.source.model_copy(update=updates["source"]),
        detector=site.detector.model_copy(update=updates["detector"]),
    )
