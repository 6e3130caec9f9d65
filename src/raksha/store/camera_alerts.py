"""Camera alerts' rows: a camera's own faults (video loss, frozen picture, covered lens, moved
camera, failing reconnects), open until it recovers.

Raising and clearing write the row and one outbox alert (`camera.fault`, `camera.recovered`)
addressed to the camera's station (the control room sees every station's alerts), with a
pending delivery per channel. Functions taking a `Connection` run inside the caller's
transaction, so that the change commits with its audit entry or not at all. The snapshot (a
coarsely pixelated JPEG) stays in the store: alert payloads carry no image bytes, and no
camera URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert, select, update

from raksha.incidents.model import new_id, utcnow
from raksha.store._db import db_errors
from raksha.store.tables import alert_deliveries, alerts
from raksha.store.tables import camera_alerts as C

__all__ = [
    "FAULT_EVENT",
    "RECOVERED_EVENT",
    "CameraAlert",
    "acknowledge",
    "acknowledged_open",
    "clear",
    "drop_old_snapshots",
    "get",
    "history",
    "open_alerts",
    "raise_alert",
    "snapshot",
]

FAULT_EVENT: Final = "camera.fault"
RECOVERED_EVENT: Final = "camera.recovered"
#: The channel that is the row itself (as for incidents).
STORE_CHANNEL: Final = "store"


@dataclass(frozen=True, slots=True)
class CameraAlert:
    id: str
    camera_id: str
    station_id: str
    kind: str
    since: datetime
    raised_at: datetime
    message: str
    cleared_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    has_snapshot: bool = False


def _row(r: Any) -> CameraAlert:
    return CameraAlert(
        id=str(r.id),
        camera_id=str(r.camera_id),
        station_id=str(r.station_id),
        kind=str(r.kind),
        since=r.since,
        raised_at=r.raised_at,
        message=str(r.message),
        cleared_at=r.cleared_at,
        acknowledged_at=r.acknowledged_at,
        acknowledged_by=r.acknowledged_by,
        has_snapshot=bool(r.has_snapshot),
    )


_COLUMNS = (
    C.c.id,
    C.c.camera_id,
    C.c.station_id,
    C.c.kind,
    C.c.since,
    C.c.raised_at,
    C.c.message,
    C.c.cleared_at,
    C.c.acknowledged_at,
    C.c.acknowledged_by,
    C.c.snapshot.is_not(None).label("has_snapshot"),
)


def _enqueue(
    c: Connection,
    station_id: str,
    payload: dict[str, Any],
    channels: Sequence[str],
    at: datetime,
) -> str:
    aid = new_id()
    body = {**payload, "alert_id": aid, "station_id": station_id}
    c.execute(
        insert(alerts),
        {
            "id": aid,
            "incident_id": None,
            "station_id": station_id,
            "created_at": at,
            "payload": body,
            "event": payload["event"],
            "seq": 1,
            "unit_id": None,
        },
    )
    wanted = [ch for ch in dict.fromkeys(channels) if ch != STORE_CHANNEL]
    if wanted:
        due = min(at, utcnow())
        c.execute(
            insert(alert_deliveries),
            [
                {
                    "alert_id": aid,
                    "channel": ch,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": due,
                    "last_error": None,
                    "delivered_at": None,
                    "created_at": at,
                }
                for ch in wanted
            ],
        )
    return aid


def _payload(alert: CameraAlert, event: str, at: datetime) -> dict[str, Any]:
    return {
        "event": event,
        "camera_alert_id": alert.id,
        "camera_id": alert.camera_id,
        "kind": alert.kind,
        "since": alert.since.isoformat(),
        "at": at.isoformat(),
        "message": alert.message,
        "audience": ["station", "control_room"],
    }


def raise_alert(
    c: Connection, alert: CameraAlert, snapshot: bytes | None, channels: Sequence[str]
) -> str | None:
    """Store `alert` (open) and its `camera.fault` outbox alert; the outbox alert's id. None
    (nothing written) when the camera already has an open alert of that kind: raising is
    idempotent, checked inside the caller's transaction."""
    existing = c.execute(
        select(C.c.id)
        .where(
            C.c.camera_id == alert.camera_id,
            C.c.kind == alert.kind,
            C.c.cleared_at.is_(None),
        )
        .limit(1)
    ).first()
    if existing is not None:
        return None
    c.execute(
        insert(C),
        {
            "id": alert.id,
            "camera_id": alert.camera_id,
            "station_id": alert.station_id,
            "kind": alert.kind,
            "since": alert.since,
            "raised_at": alert.raised_at,
            "message": alert.message,
            "snapshot": snapshot or None,
            "cleared_at": None,
        },
    )
    return _enqueue(
        c,
        alert.station_id,
        _payload(alert, FAULT_EVENT, alert.raised_at),
        channels,
        alert.raised_at,
    )


def clear(
    c: Connection, camera_id: str, kind: str, at: datetime, channels: Sequence[str]
) -> CameraAlert | None:
    """Clear every open alert of the camera of `kind` (there should be one at most) and
    enqueue one `camera.recovered` outbox alert, for the oldest; None when none was open."""
    found = c.execute(
        select(*_COLUMNS)
        .where(C.c.camera_id == camera_id, C.c.kind == kind, C.c.cleared_at.is_(None))
        .order_by(C.c.since, C.c.id)
    ).all()
    if not found:
        return None
    c.execute(
        update(C)
        .where(C.c.id.in_([r.id for r in found]), C.c.cleared_at.is_(None))
        .values(cleared_at=at)
    )
    alert = _row(found[0])
    _enqueue(c, alert.station_id, _payload(alert, RECOVERED_EVENT, at), channels, at)
    return alert


def drop_old_snapshots(c: Connection, before: datetime) -> list[str]:
    """Delete the snapshots of alerts cleared before `before` (the rows stay); their ids."""
    ids = [
        str(i)
        for i in c.execute(
            select(C.c.id).where(
                C.c.cleared_at.is_not(None), C.c.cleared_at < before, C.c.snapshot.is_not(None)
            )
        ).scalars()
    ]
    if ids:
        c.execute(update(C).where(C.c.id.in_(ids)).values(snapshot=None))
    return ids


def open_alerts(engine: Engine, camera_id: str | None = None) -> list[CameraAlert]:
    """The open camera alerts (of one camera), oldest first."""
    query = select(*_COLUMNS).where(C.c.cleared_at.is_(None)).order_by(C.c.since, C.c.id)
    if camera_id is not None:
        query = query.where(C.c.camera_id == camera_id)
    with db_errors("cannot read camera alerts"), engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]


def history(engine: Engine, camera_id: str, limit: int = 50) -> list[CameraAlert]:
    """A camera's alerts, open and cleared, newest first."""
    query = (
        select(*_COLUMNS)
        .where(C.c.camera_id == camera_id)
        .order_by(C.c.raised_at.desc(), C.c.id)
        .limit(limit)
    )
    with db_errors("cannot read camera alerts"), engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]


def get(engine: Engine, alert_id: str) -> CameraAlert | None:
    with db_errors("cannot read a camera alert"), engine.connect() as conn:
        row = conn.execute(select(*_COLUMNS).where(C.c.id == alert_id)).first()
    return None if row is None else _row(row)


def snapshot(engine: Engine, alert_id: str) -> bytes | None:
    with db_errors("cannot read a camera alert's snapshot"), engine.connect() as conn:
        value = conn.execute(select(C.c.snapshot).where(C.c.id == alert_id)).scalar()
    return bytes(value) if value is not None else None


def acknowledge(c: Connection, alert_id: str, officer: str, at: datetime) -> bool:
    """Record that `officer` acknowledged an open alert (a moved camera's scene is then
    learnt again); False when it is not open or already acknowledged."""
    res = c.execute(
        update(C)
        .where(C.c.id == alert_id, C.c.cleared_at.is_(None), C.c.acknowledged_at.is_(None))
        .values(acknowledged_at=at, acknowledged_by=officer)
    )
    return res.rowcount == 1


def acknowledged_open(engine: Engine, camera_id: str, kind: str) -> str | None:
    """The id of the camera's open, acknowledged alert of `kind`, or None."""
    query = select(C.c.id).where(
        C.c.camera_id == camera_id,
        C.c.kind == kind,
        C.c.cleared_at.is_(None),
        C.c.acknowledged_at.is_not(None),
    )
    with db_errors("cannot read camera alerts"), engine.connect() as conn:
        value = conn.execute(query).scalar()
    return None if value is None else str(value)
