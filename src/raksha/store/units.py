"""Patrol units in the store: their status, last known position and the incident they serve.

    sync_units(engine, cfg.patrol_units)            # at start: the site's units, statuses kept
    report_position(engine, "pink-scooter-07", 26.85, 80.94, at)
    nearest_available(conn, lat, lon, now=now)      # live positions, the base when stale

A unit is claimed for an incident inside the action's transaction (`claim`): a conditional
update on `status = 'available'`, so two officers dispatching the same scooter at once get
it once, and the second a clear refusal. Closing the incident frees it (`release`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Row, insert, select, update

from raksha.domain.units import UnitState, UnitStatus
from raksha.errors import N_, Message
from raksha.geo.distance import haversine_m
from raksha.geo.routing import PatrolUnitLike
from raksha.store._db import db_errors
from raksha.store.errors import StalePosition, UnitUnavailable, UnknownUnit
from raksha.store.tables import patrol_units

U = patrol_units
#: Faster than this between two reports is not a scooter or a car: a bad fix.
MAX_SPEED_MPS = 70.0
#: How far ahead of this machine's clock a report's time may be.
FUTURE_SLACK_S = 30.0


class UnitConfigLike(PatrolUnitLike, Protocol):
    """A configured unit (`PatrolUnitConfig`): the router's view of it, and its name."""

    @property
    def name(self) -> str: ...


def _state(r: Row[Any]) -> UnitState:
    return UnitState(
        id=r.id,
        kind=r.kind,
        station_id=r.station_id,
        name=r.name or "",
        home_lat=float(r.home_lat),
        home_lon=float(r.home_lon),
        status=UnitStatus(r.status),
        lat=r.lat,
        lon=r.lon,
        accuracy_m=r.accuracy_m,
        position_at=r.position_at,
        incident_id=r.incident_id,
        updated_at=r.updated_at,
        version=int(r.version),
    )


def sync_units(engine: Engine, units: Sequence[UnitConfigLike], now: datetime) -> None:
    """Make the store's units the site's: new ones start available at their base; known
    ones keep their live status and position; ones no longer configured go off duty."""
    wanted = {u.id: u for u in units}
    with db_errors("cannot record the patrol units"), engine.begin() as conn:
        have = {r.id: r for r in conn.execute(select(U)).all()}
        for uid, u in wanted.items():
            base = {
                "kind": u.kind,
                "station_id": u.station,
                "name": u.name,
                "home_lat": u.lat,
                "home_lon": u.lon,
            }
            if uid not in have:
                conn.execute(
                    insert(U),
                    {
                        "id": uid,
                        **base,
                        "status": UnitStatus.AVAILABLE.value,
                        "lat": None,
                        "lon": None,
                        "accuracy_m": None,
                        "position_at": None,
                        "incident_id": None,
                        "updated_at": now,
                        "version": 1,
                    },
                )
            elif any(getattr(have[uid], k) != v for k, v in base.items()):
                conn.execute(update(U).where(U.c.id == uid).values(**base, updated_at=now))
        for uid, r in have.items():
            if uid not in wanted and r.status == UnitStatus.AVAILABLE.value:
                conn.execute(
                    update(U)
                    .where(U.c.id == uid)
                    .values(status=UnitStatus.OFF_DUTY.value, updated_at=now)
                )


def list_units(engine: Engine, station_ids: Iterable[str] | None = None) -> list[UnitState]:
    query = select(U).order_by(U.c.station_id, U.c.id)
    if station_ids is not None:
        query = query.where(U.c.station_id.in_(list(station_ids)))
    with db_errors("cannot read the patrol units"), engine.connect() as conn:
        return [_state(r) for r in conn.execute(query).all()]


def get_unit(conn: Connection, unit_id: str) -> UnitState | None:
    row = conn.execute(select(U).where(U.c.id == unit_id)).first()
    return None if row is None else _state(row)


def require_unit(conn: Connection, unit_id: str | None) -> UnitState:
    if not unit_id:
        raise UnknownUnit(Message(N_("name the patrol unit (unit_id)")))
    unit = get_unit(conn, unit_id)
    if unit is None:
        known = [str(r) for r in conn.execute(select(U.c.id).order_by(U.c.id)).scalars()]
        shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
        raise UnknownUnit(
            Message(
                N_("unknown patrol unit %(unit)r; known units: %(known)s"),
                unit=unit_id,
                known=shown or Message(N_("(none)")),
            )
        )
    return unit


def claim(conn: Connection, unit_id: str, incident_id: str, at: datetime) -> UnitState:
    """Mark an available unit dispatched to `incident_id`, or refuse (`UnitUnavailable`)."""
    unit = require_unit(conn, unit_id)
    res = conn.execute(
        update(U)
        .where(U.c.id == unit_id, U.c.status == UnitStatus.AVAILABLE.value)
        .values(
            status=UnitStatus.DISPATCHED.value,
            incident_id=incident_id,
            updated_at=at,
            version=U.c.version + 1,
        )
    )
    if res.rowcount != 1:
        fresh = get_unit(conn, unit_id) or unit
        status = Message(fresh.status.value.replace("_", " "))
        if fresh.incident_id and fresh.status.busy:
            raise UnitUnavailable(
                Message(
                    N_(
                        "patrol unit %(unit)s is %(status)s with incident %(incident)s; "
                        "choose an available unit"
                    ),
                    unit=unit_id,
                    status=status,
                    incident=fresh.incident_id[:8],
                )
            )
        raise UnitUnavailable(
            Message(
                N_("patrol unit %(unit)s is %(status)s; choose an available unit"),
                unit=unit_id,
                status=status,
            )
        )
    return unit


def set_status(
    conn: Connection,
    unit_id: str,
    status: UnitStatus,
    at: datetime,
    *,
    incident_id: str | None = None,
    only_if_incident: str | None = None,
) -> None:
    """Set a unit's status; with `only_if_incident`, only while it serves that incident."""
    query = update(U).where(U.c.id == unit_id)
    if only_if_incident is not None:
        query = query.where(U.c.incident_id == only_if_incident)
    conn.execute(
        query.values(
            status=status.value, incident_id=incident_id, updated_at=at, version=U.c.version + 1
        )
    )


def release(conn: Connection, unit_id: str, incident_id: str, at: datetime) -> None:
    """The incident is closed or given to another unit: its unit is available again."""
    set_status(conn, unit_id, UnitStatus.AVAILABLE, at, only_if_incident=incident_id)


def set_duty(engine: Engine, unit_id: str, on_duty: bool, at: datetime) -> UnitState:
    """A unit goes off duty or comes back; refused while it serves an incident."""
    with db_errors(f"cannot update patrol unit {unit_id}"), engine.begin() as conn:
        unit = require_unit(conn, unit_id)
        if unit.status.busy:
            raise UnitUnavailable(
                Message(
                    N_(
                        "patrol unit %(unit)s is %(status)s; it is freed when its incident "
                        "is closed"
                    ),
                    unit=unit_id,
                    status=Message(unit.status.value.replace("_", " ")),
                )
            )
        status = UnitStatus.AVAILABLE if on_duty else UnitStatus.OFF_DUTY
        # Only while it is not busy: a dispatch that claimed it meanwhile wins.
        busy = [UnitStatus.DISPATCHED.value, UnitStatus.ON_SCENE.value]
        res = conn.execute(
            update(U)
            .where(U.c.id == unit_id, U.c.status.not_in(busy))
            .values(status=status.value, incident_id=None, updated_at=at, version=U.c.version + 1)
        )
        if res.rowcount != 1:
            raise UnitUnavailable(
                Message(
                    N_("patrol unit %(unit)s was just dispatched; try again later"), unit=unit_id
                )
            )
        fresh = get_unit(conn, unit_id)
    assert fresh is not None
    return fresh


def report_position(
    engine: Engine,
    unit_id: str,
    lat: float,
    lon: float,
    at: datetime,
    *,
    now: datetime,
    accuracy_m: float | None = None,
    max_age_s: float = 600.0,
) -> UnitState:
    """Record where a unit is. Refused (`StalePosition`, nothing changes): a report older
    than the stored one (a replay or out of order), older than `max_age_s`, from the future,
    off the globe, or implying a speed no vehicle has."""
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise StalePosition(f"position {lat}, {lon} is not on Earth")
    if accuracy_m is not None and (not math.isfinite(accuracy_m) or accuracy_m < 0):
        raise StalePosition("accuracy_m must be a non-negative number of metres")
    if at.tzinfo is None:
        raise StalePosition("the report's time needs a time zone")
    if at > now + timedelta(seconds=FUTURE_SLACK_S):
        raise StalePosition("the report's time is in the future; check the device's clock")
    if (now - at).total_seconds() > max_age_s:
        raise StalePosition(f"the report is older than {max_age_s:.0f} s")
    with db_errors(f"cannot record the position of unit {unit_id}"), engine.begin() as conn:
        unit = require_unit(conn, unit_id)
        if unit.position_at is not None:
            if at <= unit.position_at:
                raise StalePosition(
                    f"unit {unit_id} already reported a position at or after {at.isoformat()}"
                )
            assert unit.lat is not None and unit.lon is not None
            dt = (at - unit.position_at).total_seconds()
            if haversine_m(unit.lat, unit.lon, lat, lon) > MAX_SPEED_MPS * dt + 500.0:
                raise StalePosition(
                    f"unit {unit_id} cannot have moved that far in {dt:.0f} s; ignored"
                )
        res = conn.execute(
            update(U)
            .where(U.c.id == unit_id, U.c.version == unit.version)
            .values(
                lat=lat,
                lon=lon,
                accuracy_m=accuracy_m,
                position_at=at,
                updated_at=now,
                version=unit.version + 1,
            )
        )
        if res.rowcount != 1:
            raise StalePosition(f"unit {unit_id} reported twice at once; the other report won")
        fresh = get_unit(conn, unit_id)
    assert fresh is not None
    return fresh


def nearest_available(
    conn: Connection,
    lat: float,
    lon: float,
    *,
    now: datetime,
    max_age_s: float,
    exclude: Iterable[str] = (),
    k: int = 3,
) -> list[tuple[UnitState, float, bool]]:
    """The `k` nearest available units as (unit, metres, live position?), nearest first."""
    skip = set(exclude)
    rows = conn.execute(select(U).where(U.c.status == UnitStatus.AVAILABLE.value)).all()
    ranked = []
    for r in rows:
        unit = _state(r)
        if unit.id in skip:
            continue
        ulat, ulon, live = unit.where(now, max_age_s)
        ranked.append((unit, haversine_m(lat, lon, ulat, ulon), live))
    ranked.sort(key=lambda t: (t[1], t[0].id))
    return ranked[:k]
