"""The ExpressionClassifier seam."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from raksha.domain import ExpressionScores, FaceDetections


@runtime_checkable
class ExpressionClassifier(Protocol):
    @property
    def labels(self) -> tuple[str, ...]:
        """Canonical class names (a subset of EXPRESSION_CLASSES), in output column order."""
        ...

    def classify(self, image: npt.NDArray[np.uint8], faces: FaceDetections) -> ExpressionScores:
        """One probability row per face of the BGR image, batched."""
        ...
