"""The contract between the store's outbox and the delivery workers.

An incident's alert is written to the store together with one delivery row per configured
channel, in the same transaction as the incident (persist first). Delivery workers then claim
due rows, try to deliver, and record the outcome; a channel that is down leaves its rows pending
with a later `next_attempt_at`, so nothing is lost and delivery resumes when it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    delivery_id: int
    #: "webhook", "mqtt", ... (the store channel is the row itself and needs no delivery).
    channel: str
    #: Stable per alert; receivers de-duplicate on it (the webhook's idempotency key).
    alert_id: str
    incident_id: str
    station_id: str
    #: JSON-serialisable alert body (no secrets, no evidence bytes).
    payload: dict[str, Any]
    #: Attempts made before this one.
    attempts: int


class OutboxStore(Protocol):
    def due_deliveries(self, channel: str, now: datetime, limit: int) -> list[PendingDelivery]:
        """Pending deliveries of `channel` whose next attempt is due, oldest first."""
        ...

    def mark_delivered(self, delivery_id: int, at: datetime) -> None: ...

    def mark_failed(self, delivery_id: int, error: str, next_attempt_at: datetime) -> None:
        """Record a failed attempt (attempts += 1) and when to try again."""
        ...
