"""Trade-off of the distress policy on labelled faces: false alarms on neutral and happy faces
against the share of fear / sadness / anger faces scored as distress, over thresholds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from raksha.domain import EXPRESSION_CLASSES
from raksha.ml.evaluation.metrics import DISTRESS_CLASSES, distress_scored


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    threshold: float
    neutral_as_distress: float
    happy_as_distress: float
    recall: dict[str, float]


def sweep(
    probs8: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    weights: Mapping[str, float],
    thresholds: Sequence[float],
) -> list[OperatingPoint]:
    """One OperatingPoint per threshold (faces labelled -1 are left out)."""
    keep = labels >= 0
    p, lab = probs8[keep], labels[keep]

    def share(mask: npt.NDArray[np.bool_], name: str) -> float:
        sel = lab == EXPRESSION_CLASSES.index(name)
        return float(mask[sel].mean()) if sel.any() else float("nan")

    out: list[OperatingPoint] = []
    for t in thresholds:
        m = distress_scored(p, weights, float(t))
        out.append(
            OperatingPoint(
                float(t),
                share(m, "neutral"),
                share(m, "happiness"),
                {c: share(m, c) for c in DISTRESS_CLASSES},
            )
        )
    return out
