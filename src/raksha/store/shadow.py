"""The shadow's would-be events (`shadow_events`), and how they compare with the live side.

    insert_event(engine, ShadowEvent(...))          # when the shadow scorer opens one
    close_event(engine, event_id, event_end_s=..., peak_distress=..., live_incident_id=...)
    report = shadow_comparison(engine, since=t0, until=t1)
    report.cameras["cam-7"].overlap_real

Nothing here touches `incidents`, `alerts` or the outbox but to read: a shadow event is
never alerted and never becomes an incident.

The comparison, per camera, of the shadow events opened and the live camera incidents
opened in `[since, until)` (two SELECTs: the shadow events with their live incident's state,
outer-joined; the live incidents counted per camera):

* `events`: shadow events; `overlap`: those the live side also raised (the shadow event has
  the live incident of the same person: open at the same time, or by the same track);
* `overlap_judged` / `overlap_real`: of the overlapping ones, how many live incidents an
  officer judged, and judged real (CONFIRMED, DISPATCHED, RESOLVED: `raksha.store.precision`);
* `live`: the live side's camera incidents; `live_caught`: how many of them a shadow event
  overlaps. A live incident from before the shadow was switched on counts as not caught.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update

from raksha.incidents.model import IncidentState, Origin
from raksha.store._db import clean_json, db_errors
from raksha.store.precision import REAL_STATES
from raksha.store.tables import incidents, shadow_events

__all__ = [
    "CameraComparison",
    "ShadowComparison",
    "ShadowEvent",
    "close_event",
    "events",
    "insert_event",
    "shadow_comparison",
]

E = shadow_events


@dataclass(frozen=True, slots=True)
class ShadowEvent:
    """One shadow event as stored."""

    id: str
    camera_id: str
    hotspot_id: str
    station_id: str
    opened_at: datetime
    track_id: int | None
    person_key: str | None
    event_start_s: float | None
    event_end_s: float | None
    peak_distress: float
    model_name: str
    model_sha256: str
    thresholds: dict[str, Any]
    live_incident_id: str | None = None


def insert_event(engine: Engine, event: ShadowEvent) -> None:
    if event.opened_at.utcoffset() is None:
        raise ValueError("opened_at must be timezone-aware")
    with db_errors("cannot store a shadow event"), engine.begin() as conn:
        conn.execute(
            E.insert().values(
                id=event.id,
                camera_id=event.camera_id,
                hotspot_id=event.hotspot_id,
                station_id=event.station_id,
                opened_at=event.opened_at,
                track_id=event.track_id,
                person_key=event.person_key,
                event_start_s=event.event_start_s,
                event_end_s=event.event_end_s,
                peak_distress=event.peak_distress,
                model_name=event.model_name,
                model_sha256=event.model_sha256,
                thresholds=clean_json(event.thresholds, "the shadow thresholds"),
                live_incident_id=event.live_incident_id,
            )
        )


def close_event(
    engine: Engine,
    event_id: str,
    *,
    event_end_s: float | None,
    peak_distress: float,
    live_incident_id: str | None = None,
    person_key: str | None = None,
) -> None:
    """Record the end and the peak of a shadow event; one without a live incident yet takes
    `live_incident_id`, or else the newest camera incident of `person_key` (the same track's)."""
    with db_errors(f"cannot close shadow event {event_id}"), engine.begin() as conn:
        live = live_incident_id
        if live is None and person_key is not None:
            live = conn.execute(
                select(incidents.c.id)
                .where(incidents.c.person_key == person_key)
                .order_by(incidents.c.opened_at.desc())
                .limit(1)
            ).scalar_one_or_none()
        conn.execute(
            update(E)
            .where(E.c.id == event_id)
            .values(
                event_end_s=event_end_s,
                peak_distress=peak_distress,
                live_incident_id=func.coalesce(E.c.live_incident_id, live),
            )
        )


def events(engine: Engine, camera_id: str | None = None) -> list[ShadowEvent]:
    """Every stored shadow event (of `camera_id`), oldest first."""
    query = select(E).order_by(E.c.opened_at, E.c.id)
    if camera_id is not None:
        query = query.where(E.c.camera_id == camera_id)
    with db_errors("cannot read shadow events"), engine.connect() as conn:
        return [
            ShadowEvent(
                id=r.id,
                camera_id=r.camera_id,
                hotspot_id=r.hotspot_id,
                station_id=r.station_id,
                opened_at=r.opened_at,
                track_id=r.track_id,
                person_key=r.person_key,
                event_start_s=r.event_start_s,
                event_end_s=r.event_end_s,
                peak_distress=float(r.peak_distress),
                model_name=r.model_name,
                model_sha256=r.model_sha256,
                thresholds=dict(r.thresholds),
                live_incident_id=r.live_incident_id,
            )
            for r in conn.execute(query)
        ]


@dataclass(slots=True)
class CameraComparison:
    """One camera's shadow events against its live incidents (see the module's docstring)."""

    events: int = 0
    overlap: int = 0
    overlap_judged: int = 0
    overlap_real: int = 0
    live: int = 0
    live_caught: int = 0
    #: The shadow models (name) whose events these are.
    models: set[str] = field(default_factory=set)

    @property
    def shadow_only(self) -> int:
        return self.events - self.overlap


@dataclass(frozen=True, slots=True)
class ShadowComparison:
    since: datetime
    until: datetime
    #: Per camera id, sorted; only cameras with shadow events.
    cameras: dict[str, CameraComparison]


def shadow_comparison(
    engine: Engine,
    *,
    since: datetime,
    until: datetime,
    station_ids: Iterable[str] | None = None,
) -> ShadowComparison:
    """The comparison of the shadow events and the live incidents opened in `[since, until)`
    at the cameras of `station_ids` (None: all) that had shadow events."""
    T = incidents
    shadow_q = (
        select(E.c.camera_id, E.c.model_name, E.c.live_incident_id, T.c.state)
        .select_from(E.outerjoin(T, T.c.id == E.c.live_incident_id))
        .where(E.c.opened_at >= since, E.c.opened_at < until)
    )
    live_q = (
        select(T.c.camera_id, func.count().label("n"))
        .where(
            T.c.origin == Origin.CAMERA.value,
            T.c.opened_at >= since,
            T.c.opened_at < until,
        )
        .group_by(T.c.camera_id)
    )
    if station_ids is not None:
        chosen = sorted(set(station_ids))
        shadow_q = shadow_q.where(E.c.station_id.in_(chosen))
        live_q = live_q.where(T.c.station_id.in_(chosen))
    cameras: dict[str, CameraComparison] = {}
    caught: dict[str, set[str]] = {}
    with db_errors("cannot read shadow events"), engine.connect() as conn:
        for row in conn.execute(shadow_q):
            c = cameras.setdefault(row.camera_id, CameraComparison())
            c.events += 1
            c.models.add(row.model_name)
            if row.live_incident_id is None:
                continue
            c.overlap += 1
            caught.setdefault(row.camera_id, set()).add(row.live_incident_id)
            if row.state is None:  # the incident is gone (retention)
                continue
            state = IncidentState(row.state)
            if state in REAL_STATES or state is IncidentState.DISMISSED:
                c.overlap_judged += 1
            if state in REAL_STATES:
                c.overlap_real += 1
        for row in conn.execute(live_q):
            if row.camera_id in cameras:
                cameras[row.camera_id].live = int(row.n)
    for cam, ids in caught.items():
        cameras[cam].live_caught = len(ids)
    return ShadowComparison(since, until, dict(sorted(cameras.items())))
