"""Face detection stage: the FaceDetector seam, its settings and `build_detector`.

Backends (which import OpenCV) are loaded only when built.
"""

from raksha.detect.base import FaceDetector
from raksha.detect.config import DetectorConfig, YuNetConfig
from raksha.detect.factory import build_detector

__all__ = ["DetectorConfig", "FaceDetector", "YuNetConfig", "build_detector"]
