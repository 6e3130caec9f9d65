"""Event-level figures: alerts matched to labelled distress segments (pure: no I/O).

Definitions (docs/events.md):

* An alert is an event as it opens: the frame time the scorer opened it on.
* A distress segment is *detected* when an alert on the subject opens inside it, from its
  first frame to its end plus ``late_s`` (default 0: strictly inside). Its *time to alert*
  is the first such alert's time minus the segment's start.
* Every other alert is a *false alarm*: one that opens outside every distress window, or
  on someone other than the subject (a passer-by in the background), wherever it opens.
  Further subject alerts inside an already detected window are *duplicates* (counted,
  neither hits nor false alarms).
* False alarms per hour are divided by the hours of video outside the distress windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Window:
    """A labelled distress segment, [start_s, end_s] seconds."""

    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class AlertAt:
    """An alert's opening time and whether it was on the clip's subject."""

    t: float
    on_subject: bool = True


@dataclass(frozen=True, slots=True)
class ClipMatch:
    """One clip's alerts against its distress windows."""

    #: Per window, in order: seconds from its start to its first alert, or None (missed).
    time_to_alert: tuple[float | None, ...]
    #: Per alert, in order: "hit", "duplicate" or "false alarm".
    verdicts: tuple[str, ...]
    #: Seconds of the clip outside every (late-extended) distress window.
    non_distress_s: float

    @property
    def false_alarms(self) -> int:
        return self.verdicts.count("false alarm")

    @property
    def duplicates(self) -> int:
        return self.verdicts.count("duplicate")


def match_clip(
    windows: Sequence[Window], alerts: Sequence[AlertAt], duration_s: float, late_s: float = 0.0
) -> ClipMatch:
    """Match one clip's alerts (in any order) to its distress windows: in time order, the
    first subject alert inside a window detects it, later ones there are duplicates."""
    if late_s < 0:
        raise ValueError(f"late_s must be >= 0, got {late_s}")
    first: list[float | None] = [None] * len(windows)
    verdicts = ["false alarm"] * len(alerts)
    for k in sorted(range(len(alerts)), key=lambda k: alerts[k].t):
        alert = alerts[k]
        if not alert.on_subject:
            continue
        inside = [i for i, w in enumerate(windows) if w.start_s <= alert.t <= w.end_s + late_s]
        if not inside:
            continue
        i = inside[0]
        if first[i] is None:
            first[i] = alert.t - windows[i].start_s
            verdicts[k] = "hit"
        else:
            verdicts[k] = "duplicate"
    return ClipMatch(tuple(first), tuple(verdicts), _outside(windows, duration_s, late_s))


def _outside(windows: Sequence[Window], duration_s: float, late_s: float) -> float:
    """Seconds of [0, duration_s] not covered by any [start, end + late_s]."""
    spans = sorted(
        (max(0.0, w.start_s), min(duration_s, w.end_s + late_s))
        for w in windows
        if w.start_s < duration_s
    )
    covered, reach = 0.0, 0.0
    for start, end in spans:
        start = max(start, reach)
        if end > start:
            covered += end - start
            reach = end
    return max(0.0, duration_s - covered)


@dataclass(frozen=True, slots=True)
class EventMetrics:
    """Figures over a set of clips."""

    distress_segments: int
    detected: int
    false_alarms: int
    duplicates: int
    non_distress_h: float
    #: Times to alert of the detected segments, seconds, ascending.
    times_to_alert: tuple[float, ...]

    @property
    def recall(self) -> float:
        return self.detected / self.distress_segments if self.distress_segments else math.nan

    @property
    def false_alarms_per_hour(self) -> float:
        return self.false_alarms / self.non_distress_h if self.non_distress_h > 0 else math.nan

    @property
    def false_alarms_per_hour_upper95(self) -> float:
        """One-sided 95 % upper bound (exact Poisson) of the false alarm rate."""
        if self.non_distress_h <= 0:
            return math.nan
        from scipy.stats import chi2

        return float(chi2.ppf(0.95, 2 * (self.false_alarms + 1)) / 2) / self.non_distress_h

    def recall_interval95(self) -> tuple[float, float]:
        """Wilson 95 % interval of the recall."""
        n = self.distress_segments
        if n == 0:
            return (math.nan, math.nan)
        z, p = 1.959964, self.detected / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (max(0.0, centre - half), min(1.0, centre + half))

    def time_to_alert(self, q: float) -> float:
        """The q-th percentile (0-100, linear between ranks) of the times to alert."""
        if not self.times_to_alert:
            return math.nan
        return float(np.percentile(np.asarray(self.times_to_alert), q))


def summarize(matches: Sequence[ClipMatch]) -> EventMetrics:
    """The figures over clips (calm videos are clips without windows)."""
    times = sorted(t for m in matches for t in m.time_to_alert if t is not None)
    return EventMetrics(
        distress_segments=sum(len(m.time_to_alert) for m in matches),
        detected=len(times),
        false_alarms=sum(m.false_alarms for m in matches),
        duplicates=sum(m.duplicates for m in matches),
        non_distress_h=sum(m.non_distress_s for m in matches) / 3600.0,
        times_to_alert=tuple(times),
    )
