"""The FaceTracker seam."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from raksha.domain import FaceDetections


@runtime_checkable
class FaceTracker(Protocol):
    def update(self, detections: FaceDetections, t: float) -> npt.NDArray[np.int64]:
        """Track ids (>= 1) for the input rows, in input order; -1 for a row left untracked."""
        ...
