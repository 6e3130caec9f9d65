"""Login throttling that slows a guesser without locking the real officer out.

Failed attempts are counted in a sliding window (`window_s`) three ways:

- per account *and address*: after `per_account` failures that account is refused from that
  address (the guesser's machine), not from the officer's own;
- per address: after `per_address` failures (any accounts) the address is refused;
- per account, from every address: after `account_slow_after` failures each further attempt
  on the account must wait, since the last failure, 1 s, then 2, 4, ... up to
  `account_max_delay_s`: a distributed guesser gets a few tries a minute, and the officer
  waits a minute at worst, never a quarter of an hour.

An attempt is counted *before* its password is checked (`begin`, atomic under one lock), so
a burst of parallel guesses cannot slip past the limits while the slow hashes run; a success
takes its own attempt back and clears the account's counts (not the address's, so one valid
login cannot reset a guessing run); `unlock` clears an account at a supervisor's word.

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
    #: Failures of one account from one address within `window_s` before that address is
    #: refused for that account.
    per_account: int = 5
    #: Failures from one address within `window_s` before it is refused.
    per_address: int = 20
    window_s: float = 900.0
    #: Failures of one account from all addresses before its attempts are spaced out.
    account_slow_after: int = 10
    #: The longest wait between attempts on a slowed account.
    account_max_delay_s: float = 60.0


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

    @staticmethod
    def _keys(account: str, address: str) -> tuple[str, str, str]:
        name = account.lower()
        return "ua:" + name + "|" + address, "a:" + address, "u:" + name

    def _refusal(self, account: str, address: str, now: float) -> tuple[str, int] | None:
        pair, addr, acct = self._keys(account, address)
        for kind, key, limit in (
            ("account", pair, self.limits.per_account),
            ("address", addr, self.limits.per_address),
        ):
            q = self._prune(key, now)
            if len(q) >= limit:
                wait = q[len(q) - limit] + self.limits.window_s - now
                return kind, max(1, math.ceil(wait))
        q = self._prune(acct, now)
        over = len(q) - self.limits.account_slow_after
        if over >= 0 and q:
            delay = min(self.limits.account_max_delay_s, 2.0**over)
            wait = q[-1] + delay - now
            if wait > 0:
                return "account", max(1, math.ceil(wait))
        return None

    def begin(self, account: str, address: str) -> tuple[str, int] | float:
        """Refuse (as `blocked` does) or count this attempt now, before its password is
        checked; returns the attempt's time, to hand to `succeeded`."""
        now = self._clock()
        with self._lock:
            refused = self._refusal(account, address, now)
            if refused is not None:
                return refused
            for key in self._keys(account, address):
                self._prune(key, now).append(now)
            self._bound()
        return now

    def cancel(self, account: str, address: str, at: float) -> None:
        """Take back an attempt whose password was never checked (the server was busy or
        the database down): it does not count against the account or the address."""
        with self._lock:
            for key in self._keys(account, address):
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
        """A right password: the account's counts (from this address and from all) are
        cleared, and the address's attempt made at `at` (from `begin`) is taken back."""
        with self._lock:
            pair, addr, acct = self._keys(account, address or "")
            self._fails.pop(acct, None)
            self._fails.pop(pair, None)
            q = self._fails.get(addr) if address is not None else None
            if q is not None and at is not None:
                with contextlib.suppress(ValueError):
                    q.remove(at)

    def unlock(self, account: str) -> int:
        """Clear an account's failures from every address (a supervisor vouched for the
        officer); returns how many were cleared. Addresses stay throttled."""
        name = account.lower()
        with self._lock:
            cleared = len(self._fails.get("u:" + name, ()))
            for k in [k for k in self._fails if k == "u:" + name or k.startswith(f"ua:{name}|")]:
                del self._fails[k]
        return cleared
