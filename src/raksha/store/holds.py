"""Legal holds in the store: an incident's evidence kept past its retention for a case.

    hold = place(engine, incident_id, case_number="FIR 112/2026", reason="...", by="sup", at=now)
    lift(engine, incident_id, hold.id, by="sup", reason="case closed", at=now)
    held(engine, ["id-1", "id-2"])                  # the ids with a hold in force

A hold in force is a row with `lifted_at` NULL; lifting fills `lifted_*` and never deletes the
row, so the store keeps who held what, when and why.

Placing, lifting and the retention purge of one incident serialise on the incident's row
(`locked`: a no-op UPDATE, which takes the row lock on PostgreSQL and the write lock on
SQLite): a purge that starts after a hold committed sees it and keeps the files, and two
purges of the same incident never delete (and audit) its files twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update

from raksha.store._db import db_errors
from raksha.store.errors import IncidentNotFound, StoreError
from raksha.store.tables import incidents as T
from raksha.store.tables import legal_holds as H


class HoldNotFound(StoreError):
    """No hold with that number on that incident."""

    exit_code = 1


class HoldAlreadyLifted(StoreError):
    """The hold was lifted already."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class LegalHold:
    id: int
    incident_id: str
    case_number: str
    reason: str
    placed_by: str
    placed_at: datetime
    lifted_by: str | None = None
    lifted_at: datetime | None = None
    lift_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted_at is None


def _hold(r: Row[Any]) -> LegalHold:
    return LegalHold(
        id=int(r.id),
        incident_id=r.incident_id,
        case_number=r.case_number,
        reason=r.reason,
        placed_by=r.placed_by,
        placed_at=r.placed_at,
        lifted_by=r.lifted_by,
        lifted_at=r.lifted_at,
        lift_reason=r.lift_reason,
    )


def lock_incident(conn: Connection, incident_id: str) -> bool:
    """Take the incident's row lock inside `conn`'s transaction; False when there is no such
    incident."""
    res = conn.execute(update(T).where(T.c.id == incident_id).values(version=T.c.version))
    return bool(res.rowcount)


def held_in(conn: Connection, incident_id: str) -> bool:
    query = select(H.c.id).where(H.c.incident_id == incident_id, H.c.lifted_at.is_(None))
    return conn.execute(query.limit(1)).first() is not None


@contextmanager
def locked(engine: Engine, incident_id: str, what: str) -> Iterator[Connection]:
    """A transaction holding the incident's row lock (IncidentNotFound when it is gone)."""
    with db_errors(f"cannot {what}"), engine.begin() as conn:
        if not lock_incident(conn, incident_id):
            raise IncidentNotFound(f"no incident with id {incident_id}")
        yield conn


def place(
    engine: Engine,
    incident_id: str,
    *,
    case_number: str,
    reason: str,
    by: str,
    at: datetime,
    with_it: Callable[[Connection, LegalHold], None] | None = None,
) -> LegalHold:
    """Record a hold in force; `with_it` (the audit entry) commits with it or not at all."""
    with locked(engine, incident_id, "place the legal hold") as conn:
        new_id = conn.execute(
            insert(H).returning(H.c.id),
            {
                "incident_id": incident_id,
                "case_number": case_number,
                "reason": reason,
                "placed_by": by,
                "placed_at": at,
            },
        ).scalar_one()
        hold = LegalHold(int(new_id), incident_id, case_number, reason, by, at)
        if with_it is not None:
            with_it(conn, hold)
        return hold


def lift(
    engine: Engine,
    incident_id: str,
    hold_id: int,
    *,
    by: str,
    reason: str,
    at: datetime,
    with_it: Callable[[Connection, LegalHold], None] | None = None,
) -> LegalHold:
    """Lift a hold in force (HoldNotFound, HoldAlreadyLifted); `with_it` commits with it."""
    with locked(engine, incident_id, "lift the legal hold") as conn:
        row = conn.execute(
            select(H).where(H.c.id == hold_id, H.c.incident_id == incident_id)
        ).first()
        if row is None:
            raise HoldNotFound(f"incident {incident_id} has no hold {hold_id}")
        if row.lifted_at is not None:
            raise HoldAlreadyLifted(f"hold {hold_id} was lifted already")
        conn.execute(
            update(H)
            .where(H.c.id == hold_id, H.c.lifted_at.is_(None))
            .values(lifted_by=by, lifted_at=at, lift_reason=reason)
        )
        old = _hold(row)
        hold = LegalHold(
            old.id,
            old.incident_id,
            old.case_number,
            old.reason,
            old.placed_by,
            old.placed_at,
            by,
            at,
            reason,
        )
        if with_it is not None:
            with_it(conn, hold)
        return hold


def of_incident(engine: Engine, incident_id: str, *, active_only: bool = False) -> list[LegalHold]:
    """The incident's holds, oldest first (only those in force with `active_only`)."""
    query = select(H).where(H.c.incident_id == incident_id)
    if active_only:
        query = query.where(H.c.lifted_at.is_(None))
    with db_errors("cannot read the legal holds"), engine.connect() as conn:
        return [_hold(r) for r in conn.execute(query.order_by(H.c.id))]


def held(engine: Engine, incident_ids: Iterable[str]) -> set[str]:
    """Which of `incident_ids` have a hold in force."""
    ids = sorted(set(incident_ids))
    found: set[str] = set()
    with db_errors("cannot read the legal holds"), engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = select(H.c.incident_id).where(
                H.c.incident_id.in_(chunk), H.c.lifted_at.is_(None)
            )
            found.update(str(i) for i in conn.execute(query.distinct()).scalars())
    return found


def in_force(engine: Engine, station_ids: Iterable[str] | None = None) -> list[LegalHold]:
    """Every hold in force (of the incidents of `station_ids`, when given), oldest first."""
    query = select(H).where(H.c.lifted_at.is_(None))
    if station_ids is not None:
        query = query.join(T, T.c.id == H.c.incident_id).where(
            T.c.station_id.in_(sorted(station_ids))
        )
    with db_errors("cannot read the legal holds"), engine.connect() as conn:
        return [_hold(r) for r in conn.execute(query.order_by(H.c.id))]
