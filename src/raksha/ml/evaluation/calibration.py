"""Temperature scaling: one scalar that makes the top-class probabilities honest."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def apply_temperature(probs: npt.ArrayLike, temperature: float) -> npt.NDArray[np.float32]:
    """softmax(log(p) / T): the probabilities a model would give with its logits divided by T."""
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    out: npt.NDArray[np.float32] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def fit_temperature(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    grid: npt.ArrayLike | None = None,
) -> float:
    """The temperature (from ``grid``, default 0.5..3.0) with the lowest negative log-likelihood
    of the labels (indices; -1 rows left out)."""
    p = np.asarray(probs, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64)
    keep = lab >= 0
    p, lab = p[keep], lab[keep]
    if len(lab) == 0:
        return 1.0
    temps = np.linspace(0.5, 3.0, 51) if grid is None else np.asarray(grid, dtype=np.float64)
    best_t, best_nll = 1.0, np.inf
    for t in temps:
        q = apply_temperature(p, float(t))
        nll = float(-np.log(np.clip(q[np.arange(len(lab)), lab], 1e-12, 1.0)).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t
