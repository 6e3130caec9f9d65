"""Login throttling: attempts counted per account and per address in a sliding window.

An attempt is counted *before* its password is checked (`begin`, atomic under one lock), so
a burst of parallel guesses cannot slip past the limit while the slow hashes run; a success
takes its own attempt back (`succeeded`) and clears the account's count, not the
address's, so one valid login cannot reset a guessing run.

In memory, per server process (one `raksha serve` process per deployment).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    #: Failures of one account within `window_s` before it is refused.
    per_account: int = 5
    #: Failures from one address within `window_s` before it is refused.
    per_address: int = 20
    window_s: float = 900.0


class LoginLimiter:
    def __init__(
        self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}
        #: (kind, key) -> (time of the last audited refusal, refusals counted since).
        self._refusals: dict[tuple[str, str], tuple[float, int]] = {}

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            q = deque()
            self._fails[key] = q
        while q and q[0] <= now - self.limits.window_s:
            q.popleft()
        return q

    def blocked(self, account: str, address: str) -> tuple[str, int] | None:
        """(`"account"` or `"address"`, seconds to wait) when a login must be refused now."""
        now = self._clock()
        with self._lock:
            return self._refusal(account, address, now)

    def _refusal(self, account: str, address: str, now: float) -> tuple[str, int] | None:
        for kind, key, limit in (
            ("account", "u:" + account.lower(), self.limits.per_account),
            ("address", "a:" + address, self.limits.per_address),
        ):
            q = self._prune(key, now)
            if len(q) >= limit:
                wait = q[len(q) - limit] + self.limits.window_s - now
                return kind, max(1, math.ceil(wait))
        return None

    def begin(self, account: str, address: str) -> tuple[str, int] | float:
        """Refuse (as `blocked` does) or count this attempt now, before its password is
        checked; returns the attempt's time, to hand to `succeeded`."""
        now = self._clock()
        with self._lock:
            refused = self._refusal(account, address, now)
            if refused is not None:
                return refused
            self._prune("u:" + account.lower(), now).append(now)
            self._prune("a:" + address, now).append(now)
            self._bound()
        return now

    def cancel(self, account: str, address: str, at: float) -> None:
        """Take back an attempt whose password was never checked (the server was busy or
        the database down): it does not count against the account or the address."""
        with self._lock:
            for key in ("u:" + account.lower(), "a:" + address):
                q = self._fails.get(key)
                if q is not None:
                    with contextlib.suppress(ValueError):
                        q.remove(at)

    def should_audit_refusal(self, kind: str, key: str, every_s: float = 60.0) -> int | None:
        """Whether to write an audit entry for this refused attempt: at most one per
        (kind, key) every `every_s`, so a client hammering the login cannot flood the chained
        log. Returns the refusals since the last entry (None: this one is only counted)."""
        now = self._clock()
        with self._lock:
            last, skipped = self._refusals.get((kind, key), (float("-inf"), 0))
            if now - last < every_s:
                self._refusals[(kind, key)] = (last, skipped + 1)
                return None
            self._refusals[(kind, key)] = (now, 0)
            if len(self._refusals) > 100_000:
                cutoff = now - every_s
                for k in [k for k, (t, _n) in self._refusals.items() if t < cutoff]:
                    del self._refusals[k]
            return skipped

    def _bound(self) -> None:
        if len(self._fails) > 100_000:  # bound memory under a spray of names
            for k in [k for k, q in self._fails.items() if not q]:
                del self._fails[k]

    def succeeded(self, account: str, address: str | None = None, at: float | None = None) -> None:
        """A right password: the account's count is cleared, and the address's attempt made
        at `at` (from `begin`) is taken back."""
        with self._lock:
            self._fails.pop("u:" + account.lower(), None)
            q = self._fails.get("a:" + address) if address is not None else None
            if q is not None and at is not None:
                with contextlib.suppress(ValueError):
                    q.remove(at)
