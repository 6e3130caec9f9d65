"""Deliver the outbox: claim due deliveries per channel, send, record the outcome.

One `OutboxDispatcher` (one thread) per process. The store leases the rows it hands out
(`raksha.store.outbox`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, a conditional claim on
SQLite), so several dispatchers on one store (two `raksha run` processes) never claim the
same delivery at once; a dispatcher that dies mid-send leaves its rows to be claimed again
when their lease ends, and receivers drop the repeat by its `Idempotency-Key`.

Outcomes of one attempt:
- delivered: `mark_delivered`.
- transient failure (channel down, timeout, 5xx, 408/429): `mark_failed` with the next attempt
  after an exponential backoff with jitter, capped at `RetryPolicy.max_s` (or later, if the
  receiver sent `Retry-After`). Transient failures are retried for ever: a channel that is down
  never loses an alert. The channel is also *held* until that time, so the rest of its queue
  waits (with its attempt counts untouched) instead of each alert timing out in turn; when the
  hold ends one due alert probes the channel, and once it gets through the queue drains.
  Every round starts with such a one-delivery probe before it claims a batch, so a store that
  leases the rows it hands out never parks a batch behind a channel that is down. (If a channel
  fails in the middle of a batch, the rest of that batch is not attempted; a leasing store hands
  those rows out again when their lease ends.)
- permanent failure (the receiver refused the alert, e.g. HTTP 400/401/404): `mark_failed`
  with the much longer `RetryPolicy.permanent_s` delay, so a receiver whose configuration is
  fixed still gets it. From the `max_permanent_attempts`-th attempt on, a permanent failure
  marks the delivery dead instead, if the store offers `mark_dead` (`DeadLetterStore`);
  a store without it keeps retrying at the permanent delay. The channel is not held.

Each alert is sent at most once per channel in normal operation; a response lost after the
receiver acted on it leads to one more send, which receivers drop by its `Idempotency-Key`
(MQTT: the document's `alert_id`).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from raksha.alerts.base import DeliveryError, Notifier
from raksha.alerts.outbox import OutboxStore, PendingDelivery
from raksha.backoff import Backoff

log = logging.getLogger("raksha.alerts")

#: Longest error text recorded with a failed attempt.
_MAX_ERROR_CHARS = 500


@runtime_checkable
class DeadLetterStore(Protocol):
    """Optional outbox extension: give up on a delivery and record why."""

    def mark_dead(self, delivery_id: int, error: str, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a failed delivery again.

    After the n-th failed attempt (n = 1, 2, ...) the next one waits
    `min(max_s, base_s * factor**(n-1))` scaled by a random factor in `[1 - jitter, 1]`,
    so the delay never exceeds the cap and retries of many alerts spread out
    (`raksha.backoff.Backoff`, which camera reconnects use too).
    """

    base_s: float = 2.0
    factor: float = 2.0
    #: Also bounds how long a channel that came back waits before it is tried again.
    max_s: float = 60.0
    jitter: float = 0.25
    #: Delay after a permanent failure (the receiver refused the alert as sent).
    permanent_s: float = 3600.0
    #: From this attempt on, a permanent failure marks the delivery dead (if the store can).
    max_permanent_attempts: int = 3

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.max_s < self.base_s or self.factor < 1:
            raise ValueError("RetryPolicy needs 0 < base_s <= max_s and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("RetryPolicy.jitter must be in [0, 1)")
        if self.permanent_s <= 0 or self.max_permanent_attempts < 1:
            raise ValueError("RetryPolicy needs permanent_s > 0 and max_permanent_attempts >= 1")

    @property
    def backoff(self) -> Backoff:
        """The transient-failure backoff as a `Backoff` (attempt n: after n failures)."""
        return Backoff(self.base_s, self.factor, self.max_s, self.jitter)

    def backoff_s(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Seconds before the next attempt after `failed_attempts` transient failures (>= 1)."""
        return self.backoff.delay(failed_attempts, rng)

    def permanent_delay_s(self, rng: random.Random | None = None) -> float:
        """Seconds before the next attempt after a permanent failure (`permanent_s`, jittered)."""
        return self.backoff.scaled(self.permanent_s, rng)


@dataclass(slots=True)
class ChannelStats:
    attempted: int = 0
    delivered: int = 0
    #: Transient failures (will be retried after a backoff).
    failed: int = 0
    #: Permanent failures that will be retried after `permanent_s`.
    rejected: int = 0
    #: Permanent failures marked dead.
    dead: int = 0
    #: The channel was held this round (down earlier; its hold had not yet expired).
    held: bool = False
    #: The channel had more due deliveries than one batch.
    more_due: bool = False


@dataclass(slots=True)
class DispatchStats:
    """What one `run_once` did, per channel."""

    channels: dict[str, ChannelStats] = field(default_factory=dict)

    def _total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.channels.values())

    @property
    def attempted(self) -> int:
        return self._total("attempted")

    @property
    def delivered(self) -> int:
        return self._total("delivered")

    @property
    def failed(self) -> int:
        return self._total("failed")

    @property
    def rejected(self) -> int:
        return self._total("rejected")

    @property
    def dead(self) -> int:
        return self._total("dead")

    @property
    def held(self) -> list[str]:
        return [name for name, s in self.channels.items() if s.held]

    @property
    def more_due(self) -> bool:
        return any(s.more_due for s in self.channels.values())


def utc_now() -> datetime:
    return datetime.now(UTC)


class OutboxDispatcher:
    """Deliver due outbox rows through `notifiers` (channel name -> Notifier)."""

    def __init__(
        self,
        store: OutboxStore,
        notifiers: Mapping[str, Notifier],
        policy: RetryPolicy | None = None,
        *,
        policies: Mapping[str, RetryPolicy] | None = None,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = 50,
        rng: random.Random | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._store = store
        self._notifiers = dict(notifiers)
        self._policy = policy or RetryPolicy()
        self._policies = dict(policies or {})
        self._clock = clock
        self._batch_size = batch_size
        self._rng = rng or random.Random()
        self._held_until: dict[str, datetime] = {}
        self._wake = threading.Event()

    @property
    def channels(self) -> list[str]:
        return list(self._notifiers)

    def policy_for(self, channel: str) -> RetryPolicy:
        return self._policies.get(channel, self._policy)

    def held_until(self, channel: str) -> datetime | None:
        """When a channel that failed transiently will be tried again (None: not held)."""
        return self._held_until.get(channel)

    def wake(self) -> None:
        """Start the next round of `run_forever` now (e.g. after an incident was stored)."""
        self._wake.set()

    def run_once(self, now: datetime | None = None) -> DispatchStats:
        """One round: for each channel, send up to `batch_size` due deliveries.

        `now` fixes the round's time for due-ness and for every recorded timestamp; without
        it the dispatcher's clock is read as the round goes. Store errors propagate.
        """
        stamp: Callable[[], datetime] = (lambda: now) if now is not None else self._clock
        stats = DispatchStats()
        for channel, notifier in self._notifiers.items():
            stats.channels[channel] = self._run_channel(channel, notifier, stamp)
        return stats

    def run_forever(self, stop_event: threading.Event, poll_s: float = 1.0) -> None:
        """Run rounds until `stop_event` is set: at once while a batch was full, otherwise
        every `poll_s` seconds or on `wake()`. Errors are logged and never end the loop."""
        while not stop_event.is_set():
            busy = False
            try:
                busy = self.run_once().more_due
            except Exception:
                log.exception("alert dispatch round failed; trying again in %.1f s", poll_s)
            if busy or stop_event.is_set():
                continue
            self._wake.wait(poll_s)
            self._wake.clear()

    def close(self) -> None:
        """Close the notifiers that hold connections (those with a `close()` method)."""
        for notifier in self._notifiers.values():
            close = getattr(notifier, "close", None)
            if callable(close):
                close()

    # -- one channel -------------------------------------------------------------------------

    def _run_channel(
        self, channel: str, notifier: Notifier, stamp: Callable[[], datetime]
    ) -> ChannelStats:
        stats = ChannelStats()
        round_start = stamp()
        held = self._held_until.get(channel)
        if held is not None and round_start < held:
            stats.held = True
            return stats
        self._held_until.pop(channel, None)
        # Probe with one delivery before claiming a batch: if the channel is down, only that
        # one is attempted, and a store that leases what it hands out parks nothing untried.
        probe = self._store.due_deliveries(channel, round_start, 1)
        if not probe or self._send_batch(channel, notifier, probe, stats, stamp):
            return stats
        batch = self._store.due_deliveries(channel, round_start, self._batch_size)
        held_again = self._send_batch(channel, notifier, batch, stats, stamp)
        stats.more_due = not held_again and len(batch) >= self._batch_size
        return stats

    def _send_batch(
        self,
        channel: str,
        notifier: Notifier,
        batch: list[PendingDelivery],
        stats: ChannelStats,
        stamp: Callable[[], datetime],
    ) -> bool:
        """Send `batch` in order; True when a transient failure held the channel (the rest of
        the batch is left for later)."""
        for delivery in batch:
            stats.attempted += 1
            try:
                notifier.send(delivery)
            except DeliveryError as exc:
                if self._record_failure(channel, delivery, exc, stats, stamp):
                    return True
            except Exception as exc:  # a notifier bug must not stop delivery elsewhere
                log.exception("%s notifier failed unexpectedly", channel)
                error = DeliveryError(f"{channel}: unexpected {type(exc).__name__}")
                if self._record_failure(channel, delivery, error, stats, stamp):
                    return True
            else:
                self._store.mark_delivered(delivery.delivery_id, stamp())
                stats.delivered += 1
                log.debug("alert %s delivered via %s", delivery.alert_id, channel)
        return False

    def _record_failure(
        self,
        channel: str,
        delivery: PendingDelivery,
        exc: DeliveryError,
        stats: ChannelStats,
        stamp: Callable[[], datetime],
    ) -> bool:
        """Record a failed attempt; True when the channel is now held."""
        policy = self.policy_for(channel)
        attempt = delivery.attempts + 1
        error = str(exc)[:_MAX_ERROR_CHARS]
        at = stamp()
        if exc.permanent:
            if attempt >= policy.max_permanent_attempts and isinstance(
                self._store, DeadLetterStore
            ):
                self._store.mark_dead(delivery.delivery_id, error, at)
                stats.dead += 1
                log.error(
                    "alert %s via %s dead after %d attempts: %s",
                    delivery.alert_id,
                    channel,
                    attempt,
                    error,
                )
                return False
            delay = policy.permanent_delay_s(self._rng)
            self._store.mark_failed(delivery.delivery_id, error, at + timedelta(seconds=delay))
            stats.rejected += 1
            log.error(
                "alert %s via %s refused (attempt %d), next try in %.0f s: %s",
                delivery.alert_id,
                channel,
                attempt,
                delay,
                error,
            )
            return False
        delay = policy.backoff_s(attempt, self._rng)
        if exc.retry_after_s is not None:
            delay = max(delay, exc.retry_after_s)
        next_at = at + timedelta(seconds=delay)
        self._store.mark_failed(delivery.delivery_id, error, next_at)
        self._held_until[channel] = next_at
        stats.failed += 1
        log.warning(
            "alert %s via %s failed (attempt %d), channel paused for %.1f s: %s",
            delivery.alert_id,
            channel,
            attempt,
            delay,
            error,
        )
        return True


class DispatchThread:
    """An `OutboxDispatcher` on a thread of its own, with `start()` / `stop()` (the dashboard
    runs one beside `raksha run`'s: the store leases rows, so each delivery goes once)."""

    def __init__(self, dispatcher: OutboxDispatcher, poll_s: float = 1.0) -> None:
        self.dispatcher = dispatcher
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DispatchThread:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.dispatcher.run_forever,
                args=(self._stop, self.poll_s),
                name="raksha-dispatch",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self.dispatcher.wake()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.dispatcher.close()
