"""Panic signals (SOS) in the store: each sender's messages once, and the open incident a
signal joins."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from raksha.geo.distance import haversine_m
from raksha.incidents.model import IncidentState
from raksha.store.tables import incidents, sos_messages

S = sos_messages
T = incidents


def record(
    conn: Connection,
    source_id: str,
    message_id: str,
    kind: str,
    lat: float | None,
    lon: float | None,
    sent_at: datetime,
    now: datetime,
) -> bool:
    """Insert the message; False (nothing written) when its (sender, id) is already here."""
    if conn.execute(
        select(S.c.message_id).where(S.c.source_id == source_id, S.c.message_id == message_id)
    ).first():
        return False
    try:
        with conn.begin_nested():
            conn.execute(
                S.insert(),
                {
                    "source_id": source_id,
                    "message_id": message_id,
                    "kind": kind,
                    "lat": lat,
                    "lon": lon,
                    "sent_at": sent_at,
                    "received_at": now,
                    "incident_id": None,
                },
            )
    except IntegrityError:  # the same message through the other transport, just now
        return False
    return True


def link(conn: Connection, source_id: str, message_id: str, incident_id: str) -> None:
    conn.execute(
        update(S)
        .where(S.c.source_id == source_id, S.c.message_id == message_id)
        .values(incident_id=incident_id)
    )


def open_incident_of(conn: Connection, source_id: str) -> str | None:
    closed = [s.value for s in IncidentState if s.is_terminal]
    row = conn.execute(
        select(S.c.incident_id)
        .join(T, T.c.id == S.c.incident_id)
        .where(S.c.source_id == source_id, S.c.kind == "panic", T.c.state.not_in(closed))
        .order_by(S.c.received_at.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row.incident_id)


def open_incident_near(
    conn: Connection, lat: float, lon: float, radius_m: float, window_s: float, now: datetime
) -> tuple[str, float] | None:
    closed = [s.value for s in IncidentState if s.is_terminal]
    rows = conn.execute(
        select(T.c.id, T.c.lat, T.c.lon).where(
            T.c.state.not_in(closed),
            T.c.lat.is_not(None),
            T.c.last_seen_at >= now - timedelta(seconds=window_s),
        )
    ).all()
    best: tuple[str, float] | None = None
    for r in rows:
        d = haversine_m(lat, lon, r.lat, r.lon)
        if d <= radius_m and (best is None or d < best[1]):
            best = (str(r.id), d)
    return best


def forget(conn: Connection, source_id: str, message_id: str) -> None:
    """Remove a message whose incident could not be stored, so the sender's retry of the
    same message is taken, not refused as a replay."""
    conn.execute(S.delete().where(S.c.source_id == source_id, S.c.message_id == message_id))
