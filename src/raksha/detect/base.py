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


@runtime_checkable
class RegionDetector(Protocol):
    """A detector that can also search only some regions of a frame (track-guided
    detection, raksha.pipeline.regions)."""

    def detect(self, image: npt.NDArray[np.uint8]) -> FaceDetections: ...

    def detect_regions(
        self, image: npt.NDArray[np.uint8], regions: npt.NDArray[np.float32]
    ) -> FaceDetections:
        """Faces in the (M,4) xyxy `regions` of the image, in image pixels. A face cut by a
        region's edge (where that edge lies inside the image) is left out: it belongs to a
        whole-frame search."""
        ...

    def regions_pay(self, height: int, width: int, count: int) -> bool:
        """Whether searching `count` regions costs less than searching the whole
        `height` x `width` frame."""
        ...
