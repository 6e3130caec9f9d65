"""Exponential backoff with jitter: the one rule for waiting before trying again.

Camera reconnects (`raksha.sources.reconnect`) and the alert outbox (`raksha.alerts.dispatcher`)
both wait by it. A leaf module: it imports nothing of Raksha, so every layer can use it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Wait `initial_s * factor**(attempt - 1)` before attempt `attempt` (1-based), capped at
    `max_s`, then scaled by a random factor drawn uniformly from `[1 - jitter, 1]`.

    The jitter is a fraction *below* the nominal delay, neither full jitter (uniform in
    `[0, nominal]`) nor +/- a fraction, because:

    - `max_s` stays the longest wait anyone waits (it is a documented setting, e.g.
      `source.reconnect_max_s`), and the delay still grows with each attempt: attempt n waits
      at least `(1 - jitter)` of its nominal delay, never almost nothing as full jitter can.
    - It still spreads a herd. After a shared outage (a switch, a VPN, a receiver restart)
      many cameras or alerts fail at the same moment and would otherwise retry in lock step,
      each retry a burst on the same recorder or receiver. Every attempt draws afresh, so the
      offsets add up over successive attempts and the herd spreads further each time; even
      at the cap, 10 % jitter spreads cameras over 3 s of a 30 s wait.

    `jitter=0` gives the exact nominal delays (and draws no random number).
    `max_s` below `initial_s` simply makes every wait `max_s`.
    """

    initial_s: float
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not (self.initial_s > 0 and self.max_s > 0):
            raise ValueError("Backoff needs initial_s > 0 and max_s > 0")
        if not self.factor >= 1:
            raise ValueError("Backoff needs factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("Backoff.jitter must be in [0, 1)")
        if not all(math.isfinite(v) for v in (self.initial_s, self.factor, self.max_s)):
            raise ValueError("Backoff needs finite initial_s, factor and max_s")

    def nominal(self, attempt: int) -> float:
        """The delay before `attempt` without jitter (attempts below 1 count as 1)."""
        exponent = max(attempt - 1, 0)
        if exponent == 0 or self.factor == 1:
            return min(self.initial_s, self.max_s)
        # Past the cap, stop: a large attempt number must neither overflow nor loop.
        if exponent * math.log(self.factor) >= math.log(self.max_s / self.initial_s):
            return self.max_s
        return min(self.initial_s * self.factor**exponent, self.max_s)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before `attempt`, jittered; `rng` (default: the `random` module) draws it."""
        return self.scaled(self.nominal(attempt), rng)

    def scaled(self, seconds: float, rng: random.Random | None = None) -> float:
        """`seconds` jittered the same way (for a fixed delay that should spread too)."""
        if self.jitter == 0:
            return seconds
        uniform = rng.uniform if rng is not None else random.uniform
        return seconds * uniform(1.0 - self.jitter, 1.0)
