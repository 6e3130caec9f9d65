"""Time-based exponential smoothing, shared by the score and the baseline."""

from __future__ import annotations

import math


def ema_alpha(dt: float, half_life_s: float) -> float:
    """Weight of a new value after `dt` seconds: the old value's weight halves every half-life."""
    if dt <= 0.0:
        return 0.0
    return 1.0 - math.pow(0.5, dt / half_life_s)


def clip01(x: float) -> float:
    return min(1.0, max(0.0, x))
