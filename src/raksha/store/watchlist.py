"""The face watchlist's rows: people, their encrypted templates, alerts and decisions.

The store holds bytes only: templates and thumbnails arrive here already encrypted
(`raksha.services.watchlist` encrypts with the evidence keys) and leave encrypted. Functions
taking a `Connection` run inside the caller's transaction, so that a change commits with its
audit entry or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update

from raksha.store._db import db_errors
from raksha.store.tables import watchlist_alerts as A
from raksha.store.tables import watchlist_decisions as D
from raksha.store.tables import watchlist_people as P
from raksha.store.tables import watchlist_templates as T

__all__ = [
    "Decision",
    "Person",
    "WatchlistAlert",
    "active_count",
    "add_decision",
    "add_person",
    "alert",
    "alerts",
    "claim_pending",
    "decisions",
    "delete_templates",
    "drop_old_probe_thumbnails",
    "enrolled_templates",
    "gallery_version",
    "insert_alert",
    "lock_list",
    "people",
    "person",
    "remove_person",
    "set_alert_state",
    "stored_counts",
    "template_thumbnail",
]


def _aware(t: datetime, what: str) -> datetime:
    if t.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return t


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    category: str
    reason: str
    image_source: str
    added_by: str
    added_at: datetime
    review_date: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None
    removed_reason: str | None = None
    templates: int = 0


@dataclass(frozen=True, slots=True)
class WatchlistAlert:
    id: str
    person_id: str
    camera_id: str
    station_id: str
    opened_at: datetime
    score: float
    probe_thumbnail_enc: bytes | None
    state: str = "pending"
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    alert_id: str
    officer: str
    decision: str
    at: datetime


def _person(row: Any, templates: int = 0) -> Person:
    return Person(
        row.id,
        row.category,
        row.reason,
        row.image_source,
        row.added_by,
        row.added_at,
        row.review_date,
        row.removed_at,
        row.removed_by,
        row.removed_reason,
        templates,
    )


def person(c: Connection, person_id: str) -> Person | None:
    row = c.execute(select(P).where(P.c.id == person_id)).first()
    if row is None:
        return None
    n = c.execute(select(func.count()).select_from(T).where(T.c.person_id == person_id)).scalar()
    return _person(row, int(n or 0))


def active_count(c: Connection) -> int:
    """People listed now (not removed)."""
    n = c.execute(select(func.count()).select_from(P).where(P.c.removed_at.is_(None))).scalar()
    return int(n or 0)


def add_person(c: Connection, p: Person, templates: Sequence[tuple[bytes, bytes | None]]) -> None:
    """Insert a person with their encrypted (embedding, thumbnail) templates."""
    _aware(p.added_at, "added_at")
    _aware(p.review_date, "review_date")
    c.execute(
        insert(P).values(
            id=p.id,
            category=p.category,
            reason=p.reason,
            image_source=p.image_source,
            added_by=p.added_by,
            added_at=p.added_at,
            review_date=p.review_date,
        )
    )
    for n, (emb, thumb) in enumerate(templates, start=1):
        c.execute(
            insert(T).values(
                person_id=p.id, n=n, embedding_enc=emb, thumbnail_enc=thumb, created_at=p.added_at
            )
        )


def remove_person(c: Connection, person_id: str, *, by: str, reason: str, at: datetime) -> int:
    """Mark a listed person removed and delete their templates; the templates deleted."""
    _aware(at, "at")
    c.execute(
        update(P)
        .where(P.c.id == person_id, P.c.removed_at.is_(None))
        .values(removed_at=at, removed_by=by, removed_reason=reason)
    )
    return int(c.execute(delete(T).where(T.c.person_id == person_id)).rowcount or 0)


def delete_templates(c: Connection) -> int:
    """Delete every template (the whole list's biometric data); the number deleted."""
    return int(c.execute(delete(T)).rowcount or 0)


def people(engine: Engine, *, include_removed: bool = False) -> list[Person]:
    counts = (
        select(T.c.person_id, func.count().label("n")).group_by(T.c.person_id).subquery("counts")
    )
    q = select(P, counts.c.n).outerjoin(counts, counts.c.person_id == P.c.id).order_by(P.c.id)
    if not include_removed:
        q = q.where(P.c.removed_at.is_(None))
    with db_errors("cannot read the watchlist"), engine.connect() as c:
        return [_person(r, int(r.n or 0)) for r in c.execute(q)]


def lock_list(c: Connection) -> None:
    """Take the write lock on the list before counting it, so that two concurrent
    enrolments cannot both see room for one more: on SQLite any write statement begins the
    write transaction (pysqlite begins one only at the first write), on PostgreSQL a table
    lock that conflicts with itself."""
    if c.dialect.name == "postgresql":
        c.execute(text(f"LOCK TABLE {P.name} IN SHARE ROW EXCLUSIVE MODE"))
    else:
        c.execute(update(P).where(P.c.id.is_(None)).values(id=P.c.id))


def stored_counts(c: Connection) -> tuple[int, int]:
    """(people listed now, templates stored) whatever the config says."""
    n = c.execute(select(func.count()).select_from(T)).scalar()
    return active_count(c), int(n or 0)


def _matchable(q: Any, now: datetime) -> Any:
    return q.where(P.c.removed_at.is_(None), P.c.review_date > _aware(now, "now"))


def enrolled_templates(engine: Engine, now: datetime) -> list[tuple[str, bytes]]:
    """(person id, encrypted embedding) of every listed person's templates whose review
    date has not passed at `now`."""
    q = _matchable(
        select(T.c.person_id, T.c.embedding_enc).join(P, P.c.id == T.c.person_id), now
    ).order_by(T.c.person_id, T.c.n)
    with db_errors("cannot read the watchlist templates"), engine.connect() as c:
        return [(str(r.person_id), bytes(r.embedding_enc)) for r in c.execute(q)]


def gallery_version(engine: Engine, now: datetime) -> tuple[int, int, int]:
    """What changes whenever the matchable gallery does: (templates matchable at `now`,
    people removed, templates stored). A cached gallery is good while this is unchanged."""
    matchable = _matchable(
        select(func.count()).select_from(T.join(P, P.c.id == T.c.person_id)), now
    )
    removed = select(func.count()).select_from(P).where(P.c.removed_at.is_not(None))
    stored = select(func.count()).select_from(T)
    with db_errors("cannot read the watchlist"), engine.connect() as c:
        return (
            int(c.execute(matchable).scalar() or 0),
            int(c.execute(removed).scalar() or 0),
            int(c.execute(stored).scalar() or 0),
        )


def template_thumbnail(engine: Engine, person_id: str) -> bytes | None:
    q = (
        select(T.c.thumbnail_enc)
        .where(T.c.person_id == person_id, T.c.thumbnail_enc.is_not(None))
        .order_by(T.c.n)
        .limit(1)
    )
    with db_errors("cannot read a watchlist thumbnail"), engine.connect() as c:
        v = c.execute(q).scalar()
    return None if v is None else bytes(v)


def _alert(row: Any) -> WatchlistAlert:
    thumb = row.probe_thumbnail_enc
    return WatchlistAlert(
        row.id,
        row.person_id,
        row.camera_id,
        row.station_id,
        row.opened_at,
        float(row.score),
        None if thumb is None else bytes(thumb),
        row.state,
        row.closed_at,
    )


def insert_alert(c: Connection, a: WatchlistAlert) -> None:
    _aware(a.opened_at, "opened_at")
    c.execute(
        insert(A).values(
            id=a.id,
            person_id=a.person_id,
            camera_id=a.camera_id,
            station_id=a.station_id,
            opened_at=a.opened_at,
            score=a.score,
            probe_thumbnail_enc=a.probe_thumbnail_enc,
            state=a.state,
        )
    )


def alerts(
    engine: Engine, *, state: str | None = None, station_ids: Sequence[str] | None = None
) -> list[WatchlistAlert]:
    """Alerts, newest first; `station_ids` None: every station."""
    q = select(A).order_by(A.c.opened_at.desc())
    if state is not None:
        q = q.where(A.c.state == state)
    if station_ids is not None:
        q = q.where(A.c.station_id.in_(list(station_ids)))
    with db_errors("cannot read watchlist alerts"), engine.connect() as c:
        return [_alert(r) for r in c.execute(q)]


def count_alerts(engine: Engine, *, state: str, station_ids: Sequence[str] | None = None) -> int:
    """How many alerts are in `state`; `station_ids` None: every station."""
    q = select(func.count()).select_from(A).where(A.c.state == state)
    if station_ids is not None:
        q = q.where(A.c.station_id.in_(list(station_ids)))
    with db_errors("cannot count watchlist alerts"), engine.connect() as c:
        return int(c.execute(q).scalar_one())


def alert(c: Connection, alert_id: str) -> WatchlistAlert | None:
    row = c.execute(select(A).where(A.c.id == alert_id)).first()
    return None if row is None else _alert(row)


def claim_pending(c: Connection, alert_id: str) -> bool:
    """Lock a pending alert for a decision; False when it is closed or does not exist.

    A no-op UPDATE, because `SELECT ... FOR UPDATE` is nothing on SQLite and pysqlite begins
    the transaction only at the first write: the UPDATE takes the database's write lock on
    SQLite and the row's lock on PostgreSQL, so that everything read after it in the same
    transaction (the state, the earlier decisions) stays as read until the commit."""
    q = update(A).where(A.c.id == alert_id, A.c.state == "pending").values(state=A.c.state)
    return bool(c.execute(q).rowcount)


def decisions(c: Connection, alert_id: str) -> list[Decision]:
    q = select(D).where(D.c.alert_id == alert_id).order_by(D.c.id)
    return [Decision(r.alert_id, r.officer, r.decision, r.at) for r in c.execute(q)]


def add_decision(c: Connection, d: Decision) -> None:
    """Insert a decision; the UNIQUE(alert_id, officer) constraint refuses a second one by
    the same officer (IntegrityError: check `decisions` first)."""
    _aware(d.at, "at")
    c.execute(
        insert(D).values(alert_id=d.alert_id, officer=d.officer, decision=d.decision, at=d.at)
    )


def set_alert_state(
    c: Connection, alert_id: str, state: str, at: datetime, *, drop_probe: bool = False
) -> bool:
    """Close a pending alert (never one closed already); whether it was pending. With
    `drop_probe` its probe thumbnail is deleted with it (a rejected match: not the person)."""
    values: dict[str, Any] = {"state": state, "closed_at": _aware(at, "at")}
    if drop_probe:
        values["probe_thumbnail_enc"] = None
    q = update(A).where(A.c.id == alert_id, A.c.state == "pending").values(**values)
    return bool(c.execute(q).rowcount)


def drop_old_probe_thumbnails(c: Connection, closed_before: datetime) -> list[str]:
    """Delete the probe thumbnails of alerts closed before `closed_before`; their ids."""
    found = [
        str(r.id)
        for r in c.execute(
            select(A.c.id).where(
                A.c.state != "pending",
                A.c.closed_at < _aware(closed_before, "closed_before"),
                A.c.probe_thumbnail_enc.is_not(None),
            )
        )
    ]
    if found:
        c.execute(update(A).where(A.c.id.in_(found)).values(probe_thumbnail_enc=None))
    return found
