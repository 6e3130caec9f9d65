"""The change feed of incidents: what is new or changed since the last look.

The pipeline may write incidents from another process, so readers (the dashboard's live
events) poll: `IncidentChangeFeed.poll()` returns each incident whose `version` moved since
it was last reported, oldest change first, as `("incident.new" | "incident.update",
summary)`. Rows committed late with an older `updated_at` (a slow writer) are still caught
within `OVERLAP`; `prime()` starts from now, so what is already there is not announced.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from raksha.store._db import db_errors
from raksha.store.serialize import iso
from raksha.store.tables import incidents as T
from raksha.store.workflow import also_stations

#: Rows committed late with an older `updated_at` are still caught within this margin.
OVERLAP = timedelta(seconds=10)
#: At most this many rows per poll (the rest come with the next).
BATCH = 5000

_COLUMNS = (
    T.c.id,
    T.c.station_id,
    T.c.camera_id,
    T.c.hotspot_id,
    T.c.state,
    T.c.version,
    T.c.opened_at,
    T.c.updated_at,
    T.c.peak_distress,
    T.c.top_expression,
    T.c.origin,
    T.c.priority,
    T.c.deadline_at,
    T.c.deadline_kind,
    T.c.escalation_level,
    T.c.unit_id,
    T.c.place,
)


def incident_summary(row: Any) -> dict[str, Any]:
    """What a live event says about an incident (no evidence, no expression details)."""
    return {
        "id": row.id,
        "station_id": row.station_id,
        "camera_id": row.camera_id,
        "hotspot_id": row.hotspot_id,
        "state": row.state,
        "version": int(row.version),
        "opened_at": iso(row.opened_at),
        "updated_at": iso(row.updated_at),
        "peak_distress": round(float(row.peak_distress), 4),
        "top_expression": row.top_expression,
        "origin": row.origin,
        "priority": row.priority,
        "deadline_at": iso(row.deadline_at),
        "deadline_kind": row.deadline_kind,
        "escalation_level": int(row.escalation_level or 0),
        "unit_id": row.unit_id,
        "place": row.place,
    }


class IncidentChangeFeed:
    """New and changed incidents since the last `poll` (one reader per feed)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cursor: datetime | None = None
        #: incident id -> (version reported, its updated_at), within the overlap window.
        self._seen: dict[str, tuple[int, datetime]] = {}

    def prime(self) -> None:
        """Start from now: remember what is already there (within the overlap window) so it
        is not announced as new."""
        with db_errors("cannot read incidents"), self.engine.connect() as conn:
            self._cursor = conn.execute(select(func.max(T.c.updated_at))).scalar()
            if self._cursor is None:
                return
            rows = conn.execute(
                select(T.c.id, T.c.version, T.c.updated_at).where(
                    T.c.updated_at > self._cursor - OVERLAP
                )
            ).all()
        for r in rows:
            self._seen[r.id] = (int(r.version), r.updated_at)

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        """Changes since the last poll, as (event type, summary)."""
        query = select(*_COLUMNS).order_by(T.c.updated_at)
        if self._cursor is not None:
            query = query.where(T.c.updated_at > self._cursor - OVERLAP)
        with db_errors("cannot read incidents"), self.engine.connect() as conn:
            rows = conn.execute(query.limit(BATCH)).all()
            shared = also_stations(conn, [r.id for r in rows])
        out: list[tuple[str, dict[str, Any]]] = []
        for r in rows:
            version = int(r.version)
            seen = self._seen.get(r.id)
            if seen is not None and seen[0] >= version:
                continue
            kind = "incident.new" if seen is None and version == 1 else "incident.update"
            self._seen[r.id] = (version, r.updated_at)
            summary = incident_summary(r)
            summary["also_stations"] = list(shared.get(r.id, ()))
            out.append((kind, summary))
            if self._cursor is None or r.updated_at > self._cursor:
                self._cursor = r.updated_at
        if self._cursor is not None:
            floor = self._cursor - OVERLAP * 2
            for key in [k for k, (_v, at) in self._seen.items() if at < floor]:
                del self._seen[key]
        return out
