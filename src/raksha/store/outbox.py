"""The SQL side of the alert outbox (`raksha.alerts.outbox.OutboxStore`).

Claiming: `due_deliveries` leases the rows it returns by moving their `next_attempt_at` to
`now + claim_lease_s`, so another worker does not pick them up while this one is sending. On
PostgreSQL the candidates are selected `FOR UPDATE SKIP LOCKED`, so concurrent workers never
wait on or double-claim each other's rows; on SQLite (one writer at a time) each row is claimed
with a conditional UPDATE and only rows whose update took effect are returned. If a worker dies
mid-send, its lease runs out and the row is attempted again; receivers de-duplicate on the
alert id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

from raksha.alerts.outbox import PendingDelivery
from raksha.redact import redact
from raksha.store._db import db_errors
from raksha.store.engine import is_postgres
from raksha.store.errors import StoreError
from raksha.store.tables import alert_deliveries, alerts

D = alert_deliveries
#: Longest error text kept per delivery.
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """Where one alert stands on one channel.

    `attempts` counts failed attempts (as `PendingDelivery.attempts` does); a delivered row
    keeps the count of failures that came before its success.
    """

    delivery_id: int
    alert_id: str
    channel: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


def _first_line(error: str) -> str:
    lines = error.strip().splitlines()
    return redact(lines[0]) if lines else "unknown error"


class SqlOutbox:
    """Implements `OutboxStore` (and the dispatcher's optional `DeadLetterStore`) in SQL."""

    def __init__(
        self, engine: Engine, *, claim_lease_s: float = 60.0, max_attempts: int | None = None
    ) -> None:
        if claim_lease_s <= 0:
            raise ValueError("claim_lease_s must be > 0")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None (retry forever)")
        self.engine = engine
        self.claim_lease = timedelta(seconds=claim_lease_s)
        #: After this many failed attempts a delivery is marked `failed` and no longer retried;
        #: None (the default) retries forever, so a channel that is down never loses an alert.
        self.max_attempts = max_attempts

    def due_deliveries(self, channel: str, now: datetime, limit: int) -> list[PendingDelivery]:
        if limit <= 0:
            return []
        query = (
            select(
                D.c.id,
                D.c.channel,
                D.c.alert_id,
                D.c.attempts,
                alerts.c.incident_id,
                alerts.c.station_id,
                alerts.c.payload,
            )
            .join(alerts, alerts.c.id == D.c.alert_id)
            .where(D.c.channel == channel, D.c.state == "pending", D.c.next_attempt_at <= now)
            .order_by(D.c.next_attempt_at, D.c.id)
            .limit(limit)
        )
        lease_until = now + self.claim_lease
        with db_errors(f"cannot read due {channel} deliveries"), self.engine.begin() as conn:
            if is_postgres(self.engine):
                rows = conn.execute(query.with_for_update(of=D, skip_locked=True)).all()
                if rows:
                    conn.execute(
                        update(D)
                        .where(D.c.id.in_([r.id for r in rows]))
                        .values(next_attempt_at=lease_until)
                    )
            else:
                candidates = conn.execute(query).all()
                rows = [r for r in candidates if self._claim(conn, r.id, now, lease_until)]
        return [
            PendingDelivery(
                delivery_id=int(r.id),
                channel=str(r.channel),
                alert_id=str(r.alert_id),
                incident_id=str(r.incident_id or ""),  # "": a camera alert
                station_id=str(r.station_id),
                payload=dict(r.payload),
                attempts=int(r.attempts),
            )
            for r in rows
        ]

    @staticmethod
    def _claim(conn: Connection, delivery_id: int, now: datetime, until: datetime) -> bool:
        """SQLite: lease the row only if it is still pending and due (nobody leased it since)."""
        res = conn.execute(
            update(D)
            .where(D.c.id == delivery_id, D.c.state == "pending", D.c.next_attempt_at <= now)
            .values(next_attempt_at=until)
        )
        return res.rowcount == 1

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        with db_errors(f"cannot record delivery {delivery_id}"), self.engine.begin() as conn:
            res = conn.execute(
                update(D)
                .where(D.c.id == delivery_id, D.c.state == "pending")
                .values(state="delivered", delivered_at=at, next_attempt_at=at)
            )
            if res.rowcount == 0:
                self._require(conn, delivery_id)

    def mark_failed(self, delivery_id: int, error: str, next_attempt_at: datetime) -> None:
        values: dict[str, Any] = {
            "attempts": D.c.attempts + 1,
            "last_error": _first_line(error)[:MAX_ERROR_CHARS],
            "next_attempt_at": next_attempt_at,
        }
        with db_errors(f"cannot record failed delivery {delivery_id}"), self.engine.begin() as conn:
            res = conn.execute(
                update(D).where(D.c.id == delivery_id, D.c.state == "pending").values(**values)
            )
            if res.rowcount == 0:
                self._require(conn, delivery_id)
                return
            if self.max_attempts is not None:
                conn.execute(
                    update(D)
                    .where(and_(D.c.id == delivery_id, D.c.attempts >= self.max_attempts))
                    .values(state="failed")
                )

    def mark_dead(self, delivery_id: int, error: str, at: datetime) -> None:
        """Give up on a delivery (`DeadLetterStore`): state `failed`, never attempted again."""
        with db_errors(f"cannot record dead delivery {delivery_id}"), self.engine.begin() as conn:
            res = conn.execute(
                update(D)
                .where(D.c.id == delivery_id, D.c.state == "pending")
                .values(
                    state="failed",
                    attempts=D.c.attempts + 1,
                    last_error=_first_line(error)[:MAX_ERROR_CHARS],
                    next_attempt_at=at,
                )
            )
            if res.rowcount == 0:
                self._require(conn, delivery_id)

    def deliveries(self, incident_id: str) -> list[DeliveryStatus]:
        query = (
            select(D)
            .join(alerts, alerts.c.id == D.c.alert_id)
            .where(alerts.c.incident_id == incident_id)
            .order_by(D.c.id)
        )
        what = f"cannot read deliveries of incident {incident_id}"
        with db_errors(what), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            DeliveryStatus(
                delivery_id=int(r.id),
                alert_id=str(r.alert_id),
                channel=str(r.channel),
                state=str(r.state),
                attempts=int(r.attempts),
                next_attempt_at=r.next_attempt_at,
                last_error=r.last_error,
                delivered_at=r.delivered_at,
            )
            for r in rows
        ]

    @staticmethod
    def _require(conn: Connection, delivery_id: int) -> None:
        """A no-op update is fine for a delivery already finished, an error for an unknown id."""
        found = conn.execute(select(D.c.id).where(D.c.id == delivery_id)).first()
        if found is None:
            raise StoreError(f"no alert delivery with id {delivery_id}")
