"""Per-frame distress evidence: a weighted sum of expression probabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def class_weights(labels: Sequence[str], weights: Mapping[str, float]) -> F32:
    """The weight of each output column, by class name; a class not in `weights` weighs 0."""
    return np.array([float(weights.get(name, 0.0)) for name in labels], dtype=np.float32)


def distress_evidence(
    probs: npt.NDArray[np.floating], labels: Sequence[str], weights: Mapping[str, float]
) -> F32:
    """Evidence in [0,1] per face: clip(sum_k weight[label_k] * probs[:, k], 0, 1).

    `probs` is (N,K) with columns in `labels` order. Weights apply by class name, so a model
    that lacks a class (FER2013 has no contempt) simply contributes nothing for it. A row
    with a non-finite probability gives NaN, which the scorer treats as "no evidence".
    """
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(
            f"probs must be (N,{len(labels)}) for labels {tuple(labels)}, got {p.shape}"
        )
    w = class_weights(labels, weights)
    out: F32 = np.minimum(np.maximum(p @ w, 0.0), 1.0).astype(np.float32, copy=False)
    return out
