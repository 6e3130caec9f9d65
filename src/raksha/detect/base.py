"""The FaceDetector seam."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from raksha.domain import FaceDetections


@runtime_checkable
class FaceDetector(Protocol):
    def detect(self, image: npt.NDArray[np.uint8]) -> FaceDetections:
        """Faces in a BGR image, in that image's pixel coordinates."""
        ...
