"""Bootstrap 95 % intervals for shares (accuracy, recall, false-alarm rate), resampled by
subject: when several faces come from one person or one movie they are not independent, so
whole subjects are drawn with replacement, not single faces. With no subjects known, each face
is its own subject (the ordinary bootstrap)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

B = npt.NDArray[np.bool_]

#: Resamples per interval; the percentile interval's ends are stable to about a point at this.
DEFAULT_RESAMPLES = 1000


def cluster_ids(subjects: Sequence[str] | None, n: int) -> npt.NDArray[np.int64]:
    """An integer cluster per row: the subject's, or the row's own when subjects are unknown
    (an empty subject name also counts as its own cluster)."""
    if subjects is None:
        return np.arange(n, dtype=np.int64)
    index: dict[str, int] = {}
    out = np.empty(n, dtype=np.int64)
    for i, s in enumerate(subjects):
        key = s if s else f"\0row{i}"
        out[i] = index.setdefault(key, len(index))
    return out


def share_interval(
    hit: B,
    among: B,
    clusters: npt.NDArray[np.int64],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of ``hit[among].mean()`` with clusters drawn with replacement.

    Returns (nan, nan) when no row is ``among``. Resamples that happen to draw no row
    ``among`` are left out of the percentiles."""
    among = np.asarray(among, dtype=bool)
    if not among.any() or resamples <= 0:
        return float("nan"), float("nan")
    hit = np.asarray(hit, dtype=bool) & among
    k = int(clusters.max()) + 1 if len(clusters) else 0
    num = np.bincount(clusters, weights=hit.astype(np.float64), minlength=k)
    den = np.bincount(clusters, weights=among.astype(np.float64), minlength=k)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(resamples, k))
    n_sum = num[draws].sum(axis=1)
    d_sum = den[draws].sum(axis=1)
    ok = d_sum > 0
    if not ok.any():
        return float("nan"), float("nan")
    shares = n_sum[ok] / d_sum[ok]
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(shares, [tail, 100.0 - tail])
    return float(lo), float(hi)
