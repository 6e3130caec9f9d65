"""One person's own usual distress evidence (their baseline), learnt as the track goes on.

The expression models read many unfamiliar faces as mostly neutral, so a face that turns
from calm to frightened may move its evidence from 0.05 to only 0.45, below the entry
level. Measured against the person's own baseline that is a large change. The baseline is:

- established as the mean of the readable frames in the first `window_s` seconds after the
  track's first readable frame (no baseline, so no relative signal, before that);
- then it follows a level (the track's smoothed evidence): down with a short half-life, up
  with a long one, and not up at all while the caller holds it (an event pending or open,
  or the relative signal high). A change held for seconds therefore stays visible, a slow
  drift over minutes is absorbed, and a calmer face is learnt quickly.

Plain floats only: a few arithmetic operations per readable frame.
"""

from __future__ import annotations

from raksha.distress.smoothing import clip01, ema_alpha


class Baseline:
    """The baseline of one track. Per readable frame, in time order: `at(t)` gives the
    baseline to judge the frame by, then `learn(...)` takes the frame in."""

    __slots__ = (
        "_count",
        "_down_s",
        "_last_t",
        "_max_step_s",
        "_mean",
        "_start",
        "_up_s",
        "_window_s",
    )

    def __init__(
        self, window_s: float, down_half_life_s: float, up_half_life_s: float, max_step_s: float
    ) -> None:
        if window_s <= 0 or down_half_life_s <= 0 or up_half_life_s <= 0 or max_step_s <= 0:
            raise ValueError("baseline window, half-lives and max step must be > 0")
        self._window_s = window_s
        self._down_s = down_half_life_s
        self._up_s = up_half_life_s
        #: A long unreadable stretch moves the baseline no more than this many seconds would.
        self._max_step_s = max_step_s
        self._start: float | None = None
        #: Readable frames averaged so far; 0 once the baseline is established.
        self._count = 0
        self._last_t = 0.0
        #: The running mean of the first window, then the baseline itself.
        self._mean = 0.0

    @property
    def established(self) -> bool:
        return self._start is not None and self._count == 0

    @property
    def value(self) -> float | None:
        """The baseline in [0,1]; None until established."""
        return self._mean if self.established else None

    def at(self, t: float) -> float | None:
        """The baseline for a readable frame at `t`: None while `t` lies inside the first
        window; the first frame at or past its end establishes it (from the earlier ones)."""
        if self._start is None:
            return None
        if self._count > 0:
            if t - self._start < self._window_s:
                return None
            self._count = 0  # the window is over: its mean is the baseline
        return self._mean

    def learn(self, t: float, evidence: float, level: float, hold_up: bool) -> None:
        """Take in a readable frame at `t`: its raw `evidence` while the first window is
        open, else a step towards `level` (the smoothed evidence; up only when not
        `hold_up`). A frame is judged by `at(t)` before it is learnt."""
        e = clip01(evidence)
        if self._start is None:
            self._start, self._count, self._mean, self._last_t = t, 1, e, t
            return
        if self._count > 0:
            if t - self._start < self._window_s:  # a running mean (exact for a constant)
                self._count += 1
                self._mean += (e - self._mean) / self._count
                self._last_t = t
                return
            self._count = 0  # the window is over (`at` was not asked first)
        target = clip01(level)
        dt = min(t - self._last_t, self._max_step_s)
        self._last_t = t
        if target < self._mean:
            self._mean += ema_alpha(dt, self._down_s) * (target - self._mean)
        elif target > self._mean and not hold_up:
            self._mean += ema_alpha(dt, self._up_s) * (target - self._mean)
