"""Web Push subscriptions in the store: add, remove, and the browsers to tell about a
station's incident (its own officers' and the control room's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert, or_, select, update

from raksha.store._db import db_errors
from raksha.store.tables import push_subscriptions as P

#: Roles told about every station's incidents.
ALL_STATION_ROLES = ("control_room",)


@dataclass(frozen=True, slots=True)
class PushTarget:
    endpoint: str
    p256dh: str
    auth: str
    username: str


def subscribe(
    engine: Engine,
    *,
    username: str,
    role: str,
    station_id: str | None,
    endpoint: str,
    p256dh: str,
    auth: str,
    now: datetime,
) -> None:
    """Keep a browser's subscription (one row per endpoint: a re-subscription replaces it)."""
    with db_errors("cannot record the push subscription"), engine.begin() as conn:
        conn.execute(delete(P).where(P.c.endpoint == endpoint))
        conn.execute(
            insert(P),
            {
                "username": username,
                "role": role,
                "station_id": station_id,
                "endpoint": endpoint,
                "p256dh": p256dh,
                "auth": auth,
                "created_at": now,
                "failures": 0,
            },
        )


def unsubscribe(engine: Engine, username: str, endpoint: str | None = None) -> int:
    """Remove a user's subscription (all of them when `endpoint` is None); how many went."""
    query = delete(P).where(P.c.username == username)
    if endpoint is not None:
        query = query.where(P.c.endpoint == endpoint)
    with db_errors("cannot remove the push subscription"), engine.begin() as conn:
        return int(conn.execute(query).rowcount or 0)


def forget_endpoint(engine: Engine, endpoint: str) -> None:
    """The push service says the subscription is gone (404/410): drop it."""
    with db_errors("cannot remove the push subscription"), engine.begin() as conn:
        conn.execute(delete(P).where(P.c.endpoint == endpoint))


#: A subscription that failed this many deliveries in a row is dropped.
MAX_FAILURES = 5


def count_failure(engine: Engine, endpoint: str) -> bool:
    """One more failed delivery to `endpoint`; True when that dropped the subscription."""
    with db_errors("cannot record a push failure"), engine.begin() as conn:
        conn.execute(update(P).where(P.c.endpoint == endpoint).values(failures=P.c.failures + 1))
        dropped = conn.execute(
            delete(P).where(P.c.endpoint == endpoint, P.c.failures >= MAX_FAILURES)
        ).rowcount
        return bool(dropped)


def count_success(engine: Engine, endpoint: str) -> None:
    with db_errors("cannot record a push delivery"), engine.begin() as conn:
        conn.execute(update(P).where(P.c.endpoint == endpoint).values(failures=0))


def targets(engine: Engine, station_ids: list[str]) -> list[PushTarget]:
    """Subscriptions of the stations' officers and of the control room."""
    query = select(P.c.endpoint, P.c.p256dh, P.c.auth, P.c.username).where(
        or_(P.c.role.in_(ALL_STATION_ROLES), P.c.station_id.in_(station_ids))
    )
    with db_errors("cannot read push subscriptions"), engine.connect() as conn:
        return [PushTarget(r.endpoint, r.p256dh, r.auth, r.username) for r in conn.execute(query)]


def of_user(engine: Engine, username: str) -> list[str]:
    with db_errors("cannot read push subscriptions"), engine.connect() as conn:
        query = select(P.c.endpoint).where(P.c.username == username).order_by(P.c.id)
        return [str(e) for e in conn.execute(query).scalars()]
