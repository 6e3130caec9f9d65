"""What follows an incident action inside its transaction: patrol units claimed and freed,
the next deadline, and the state-change alert (and a dispatched unit's job card) in the
outbox. `IncidentStore.apply_action` calls `after_action`; the escalation timer is one more
action (`escalate` or `reassign` by `system:escalation`), so a timer step and its alert
commit together, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from raksha.domain.units import UnitState, UnitStatus
from raksha.errors import N_, Message
from raksha.geo.distance import haversine_m
from raksha.incidents.escalation import Deadline, DeadlineKind, EscalationPolicy, Step
from raksha.incidents.events import EVENT_OF_ACTION, Event, Snapshot, event_payload, job_card
from raksha.incidents.model import (
    Action,
    ActionRecord,
    IncidentState,
    Origin,
    Priority,
    new_id,
    utcnow,
)
from raksha.store import units
from raksha.store._db import clean_json
from raksha.store.errors import UnitUnavailable
from raksha.store.tables import alert_deliveries, alerts, incident_stations, incidents, sos_messages

T = incidents
#: The alert row itself is the "store" channel; it needs no delivery row.
STORE_CHANNEL = "store"


@dataclass(frozen=True)
class Workflow:
    """How a deployment runs its incidents after they are raised (from its config)."""

    policy: EscalationPolicy = field(default_factory=EscalationPolicy)
    #: Channels every state change goes out on; channels a job card goes out on.
    station_channels: tuple[str, ...] = ()
    unit_channels: tuple[str, ...] = ()
    station_names: Mapping[str, str] = field(default_factory=dict)
    #: The nearest station to a point other than the ones given (for the last step).
    next_station: Callable[[float, float, frozenset[str]], str | None] | None = None
    #: A unit's reported position counts for routing while it is younger than this.
    position_max_age_s: float = 600.0
    #: The directions link on a job card (`geo:` opens the phone's own map app).
    directions_url: str = "geo:{lat},{lon}"
    #: A camera incident this near (and this soon after) an SOS is raised to high priority.
    sos_radius_m: float = 300.0
    sos_window_s: float = 900.0


def snapshot(conn: Connection, incident_id: str) -> tuple[Snapshot, Any]:
    row = conn.execute(select(T).where(T.c.id == incident_id)).one()
    route = dict(row.route) if row.route else None
    name = str((route or {}).get("station_name", ""))
    return (
        Snapshot(
            id=row.id,
            camera_id=row.camera_id or None,
            hotspot_id=row.hotspot_id or None,
            station_id=row.station_id,
            station_name=name,
            origin=Origin(row.origin),
            priority=Priority(row.priority),
            lat=row.lat,
            lon=row.lon,
            place=row.place or "",
            opened_at=row.opened_at,
            peak_distress=None if row.origin == Origin.SOS.value else row.peak_distress,
            top_expression=row.top_expression,
            route=route,
        ),
        row,
    )


def previous_alert(conn: Connection, incident_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(alerts.c.id, alerts.c.created_at, alerts.c.payload)
        .where(alerts.c.incident_id == incident_id, alerts.c.event != Event.JOB_CARD.value)
        .order_by(alerts.c.seq.desc(), alerts.c.created_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    # The time the earlier alert was sent with (its `at`; older alerts: their opening).
    payload = dict(row.payload or {})
    sent = payload.get("at") or payload.get("opened_at") or row.created_at.isoformat()
    return {"id": row.id, "at": str(sent)}


def enqueue(
    conn: Connection,
    *,
    incident_id: str,
    station_id: str,
    payload: Mapping[str, Any],
    event: Event,
    seq: int,
    channels: Sequence[str],
    at: datetime,
    unit_id: str | None = None,
    alert_id: str | None = None,
) -> str:
    """One alert and one pending delivery per channel (the "store" channel needs none)."""
    aid = alert_id or new_id()
    body = clean_json(payload, "alert payload")
    body.update(alert_id=aid, incident_id=incident_id, station_id=station_id)
    conn.execute(
        insert(alerts),
        {
            "id": aid,
            "incident_id": incident_id,
            "station_id": station_id,
            "created_at": at,
            "payload": body,
            "event": event.value,
            "seq": seq,
            "unit_id": unit_id,
        },
    )
    wanted = [c for c in dict.fromkeys(channels) if c != STORE_CHANNEL]
    due = min(at, utcnow())  # a change recorded with a later time still goes out now
    if wanted:
        conn.execute(
            insert(alert_deliveries),
            [
                {
                    "alert_id": aid,
                    "channel": c,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": due,
                    "last_error": None,
                    "delivered_at": None,
                    "created_at": at,
                }
                for c in wanted
            ],
        )
    return aid


def near_recent_sos(
    conn: Connection, lat: float | None, lon: float | None, at: datetime, wf: Workflow
) -> bool:
    """Whether a panic signal came from near (`lat`, `lon`) shortly before `at`."""
    if lat is None or lon is None:
        return False
    rows = conn.execute(
        select(sos_messages.c.lat, sos_messages.c.lon).where(
            sos_messages.c.kind == "panic",
            sos_messages.c.received_at >= at - timedelta(seconds=wf.sos_window_s),
            sos_messages.c.lat.is_not(None),
        )
    ).all()
    return any(haversine_m(lat, lon, r.lat, r.lon) <= wf.sos_radius_m for r in rows)


def _unit_json(unit: UnitState, inc: Snapshot, at: datetime, wf: Workflow) -> dict[str, Any]:
    distance = None
    if inc.lat is not None and inc.lon is not None:
        ulat, ulon, _ = unit.where(at, wf.position_max_age_s)
        distance = round(haversine_m(inc.lat, inc.lon, ulat, ulon), 1)
    return {
        "id": unit.id,
        "kind": unit.kind,
        "station_id": unit.station_id,
        "name": unit.name,
        "distance_m": distance,
    }


def after_action(
    conn: Connection,
    wf: Workflow,
    rec: ActionRecord,
    *,
    deadline_kind: str | None,
    job_extra: Mapping[str, Any] | None = None,
) -> None:
    """Units, deadline and outbox for `rec`, just written in `conn`.

    Raises `UnknownUnit` / `UnitUnavailable` (the transaction rolls back) for a dispatch to a
    unit that does not exist or is not available, and for a unit acknowledging or arriving
    at a job that is not (or no longer) its own.
    """
    inc, row = snapshot(conn, rec.incident_id)
    at = rec.at
    seq = int(row.event_seq) + 1
    values: dict[str, Any] = {"event_seq": seq}
    unit_json: dict[str, Any] | None = None
    escalation: dict[str, Any] | None = None
    target_station = inc.station_id
    event = EVENT_OF_ACTION[rec.action]
    current_unit = row.unit_id
    job_for: UnitState | None = None

    if rec.action is Action.DISPATCH:
        job_for = units.claim(conn, rec.unit_id or "", inc.id, at)
        values["unit_id"] = job_for.id
        unit_json = _unit_json(job_for, inc, at, wf)
    elif rec.action in (Action.UNIT_ACK, Action.ON_SCENE):
        if rec.unit_id is not None and rec.unit_id != current_unit:
            raise UnitUnavailable(
                Message(
                    N_("incident %(incident)s is not (or no longer) patrol unit %(unit)s's job"),
                    incident=inc.id[:8],
                    unit=rec.unit_id,
                )
            )
        if current_unit is not None:
            unit = units.require_unit(conn, current_unit)
            unit_json = _unit_json(unit, inc, at, wf)
            if rec.action is Action.ON_SCENE:
                units.set_status(
                    conn,
                    current_unit,
                    UnitStatus.ON_SCENE,
                    at,
                    incident_id=inc.id,
                    only_if_incident=inc.id,
                )
    elif rec.action is Action.REASSIGN:
        job_for = units.claim(conn, rec.unit_id or "", inc.id, at)
        if current_unit is not None:
            units.release(conn, current_unit, inc.id, at)
        values["unit_id"] = job_for.id
        unit_json = _unit_json(job_for, inc, at, wf)
    elif rec.to_state.is_terminal and current_unit is not None:
        units.release(conn, current_unit, inc.id, at)

    # The clock: escalation steps (timer or button), or the next deadline after an action.
    level = int(row.escalation_level)
    running = DeadlineKind(row.deadline_kind) if row.deadline_kind else None
    if rec.action in (Action.ESCALATE, Action.REASSIGN):
        level += 1
        step = wf.policy.step(level) or Step.CONTROL_ROOM
        escalation = {"level": level, "to": step.value, "station_id": None, "reason": rec.note}
        if step is Step.NEXT_STATION and wf.next_station is not None and inc.lat is not None:
            shared = set(
                conn.execute(
                    select(incident_stations.c.station_id).where(
                        incident_stations.c.incident_id == inc.id
                    )
                ).scalars()
            )
            nxt = wf.next_station(inc.lat, inc.lon or 0.0, frozenset({inc.station_id, *shared}))
            if nxt is not None:
                conn.execute(
                    insert(incident_stations),
                    {"incident_id": inc.id, "station_id": nxt, "reason": rec.note or "", "at": at},
                )
                escalation.update(to="station", station_id=nxt)
                target_station = nxt
        values["escalation_level"] = level
        kind = running or (DeadlineKind(deadline_kind) if deadline_kind else None)
        if rec.action is Action.REASSIGN:
            nxt_deadline = wf.policy.after_action(
                Action.DISPATCH, rec.to_state, inc.priority, at, None
            )
        else:
            nxt_deadline = wf.policy.after_step(level, kind, at) if kind is not None else None
    else:
        current = (
            None
            if running is None or row.deadline_at is None
            else Deadline(running, row.deadline_at)
        )
        nxt_deadline = wf.policy.after_action(rec.action, rec.to_state, inc.priority, at, current)
        if nxt_deadline is None or running is None or nxt_deadline.kind is not running:
            values["escalation_level"] = 0
    values["deadline_at"] = None if nxt_deadline is None else nxt_deadline.at
    values["deadline_kind"] = None if nxt_deadline is None else nxt_deadline.kind.value
    if rec.action is Action.SOS_JOIN:
        values["priority"] = Priority.HIGH.value
        inc = Snapshot(**{**_fields(inc), "priority": Priority.HIGH})
        if nxt_deadline is not None and nxt_deadline.kind is DeadlineKind.ACKNOWLEDGE:
            # A person asked for help: the high-priority acknowledgement deadline applies
            # from the incident's opening, if it is the sooner one.
            sooner = wf.policy.first(Priority.HIGH, inc.opened_at)
            if sooner.at < nxt_deadline.at:
                values["deadline_at"] = sooner.at

    payload = event_payload(
        inc,
        event,
        seq=seq,
        at=at,
        state=rec.to_state,
        actor=rec.actor,
        note=rec.note,
        unit=unit_json,
        escalation=escalation,
        previous_alert=previous_alert(conn, inc.id),
        station_id=target_station,
    )
    enqueue(
        conn,
        incident_id=inc.id,
        station_id=target_station,
        payload=payload,
        event=event,
        seq=seq,
        channels=wf.station_channels,
        at=at,
    )
    if job_for is not None and unit_json is not None:
        seq += 1
        values["event_seq"] = seq
        card = job_card(
            inc,
            unit_json,
            seq=seq,
            at=at,
            actor=rec.actor,
            note=rec.note,
            picture_jpeg_b64=(job_extra or {}).get("picture_jpeg_b64"),
            ack_within_s=wf.policy.unit_ack_s,
            directions_url=wf.directions_url,
        )
        enqueue(
            conn,
            incident_id=inc.id,
            station_id=inc.station_id,
            payload=card,
            event=Event.JOB_CARD,
            seq=seq,
            channels=wf.unit_channels,
            at=at,
            unit_id=job_for.id,
        )
    conn.execute(update(T).where(T.c.id == inc.id).values(**values))


def _fields(inc: Snapshot) -> dict[str, Any]:
    return {name: getattr(inc, name) for name in Snapshot.__slots__}


def due_incidents(
    conn: Connection, now: datetime, limit: int
) -> list[tuple[str, str, datetime, str | None, float | None, float | None]]:
    """(id, deadline kind, deadline, unit, lat, lon) of open incidents whose deadline has
    passed, oldest deadline first."""
    closed = [s.value for s in IncidentState if s.is_terminal]
    rows = conn.execute(
        select(T.c.id, T.c.deadline_kind, T.c.deadline_at, T.c.unit_id, T.c.lat, T.c.lon)
        .where(T.c.deadline_at.is_not(None), T.c.deadline_at <= now, T.c.state.not_in(closed))
        .order_by(T.c.deadline_at)
        .limit(limit)
    ).all()
    return [(str(r.id), str(r.deadline_kind), r.deadline_at, r.unit_id, r.lat, r.lon) for r in rows]


_MISSED = {
    "acknowledge": "not acknowledged",
    "dispatch": "no unit dispatched",
    "unit_ack": "the patrol unit did not acknowledge its job",
}


def missed_reason(kind: str, deadline_at: datetime) -> str:
    return f"{_MISSED.get(kind, kind)} by the deadline ({deadline_at:%H:%M:%S} UTC)"


def also_stations(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    if not ids:
        return {}
    out: dict[str, list[str]] = {}
    for r in conn.execute(
        select(incident_stations.c.incident_id, incident_stations.c.station_id)
        .where(incident_stations.c.incident_id.in_(list(ids)))
        .order_by(incident_stations.c.at)
    ):
        out.setdefault(r.incident_id, []).append(r.station_id)
    return {k: tuple(v) for k, v in out.items()}


def max_seq(conn: Connection, incident_id: str) -> int:
    value = conn.execute(
        select(func.max(alerts.c.seq)).where(alerts.c.incident_id == incident_id)
    ).scalar_one_or_none()
    return int(value or 0)


def latest_job_card(conn: Connection, incident_id: str, unit_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(alerts.c.payload)
        .where(
            alerts.c.incident_id == incident_id,
            alerts.c.unit_id == unit_id,
            alerts.c.event == Event.JOB_CARD.value,
        )
        .order_by(alerts.c.seq.desc())
        .limit(1)
    ).first()
    return None if row is None else dict(row.payload)
