"""Response times of incidents, read from their history in one query.

    rows = incident_times(store.engine, since=t0, until=t1, station_ids=["hazratganj"])
    rows[0].t_ack            # seconds from opening to the first acknowledgement, or None

One SELECT joins `incidents` with the actions that matter here (`incident_actions`, outer
join: an incident nobody has touched yet is a row too), ordered by incident and action number;
the rows are folded into one `IncidentTimes` per incident. Nothing is read per incident.

Definitions (all in seconds, None while the step has not happened):

* `t_ack` = the first `acknowledge` − `opened_at`;
* `t_dispatch` = the first `dispatch` − `opened_at`;
* `t_unit_ack` = the first `unit_ack` − the assignment it answers: the latest `dispatch` or
  `reassign` recorded before it (the store refuses a `unit_ack` by any other unit);
* `t_travel` = the first `on_scene` − the first `dispatch`; after a `reassign` this includes
  the time the first unit held the job;
* `t_on_scene` = the first `on_scene` − `opened_at` (the total).

"First" is by the order the actions were recorded (their number); the durations use their
`at` times. Each `dispatch` or `reassign` is an `Assignment` of one unit; a `unit_ack` or
`on_scene` belongs to the assignment current when it was recorded. Per-unit figures are taken
from the assignments (`Assignment.t_unit_ack`, `.t_travel` counted from that unit's own
assignment, `.t_on_scene` from the incident's opening).

An incident belongs to its own station (`incidents.station_id`); one escalated to another
station still counts for the station it was raised for. Filters: `since <= opened_at < until`,
station ids, origin (`camera` or `sos`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, select

from raksha.incidents.model import Action, IncidentState, Origin
from raksha.store._db import db_errors
from raksha.store.tables import incident_actions, incidents

__all__ = ["Assignment", "IncidentTimes", "incident_times"]

#: The actions the figures are made of; the others are not read.
_USED = (Action.ACKNOWLEDGE, Action.DISPATCH, Action.REASSIGN, Action.UNIT_ACK, Action.ON_SCENE)
_ASSIGNING = (Action.DISPATCH, Action.REASSIGN)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@dataclass(frozen=True, slots=True)
class Assignment:
    """One unit given the incident's job (`dispatch` or `reassign`) and what it did."""

    unit_id: str
    #: "dispatch" or "reassign".
    action: str
    at: datetime
    #: The incident's opening, for `t_on_scene`.
    opened_at: datetime
    unit_ack_at: datetime | None = None
    on_scene_at: datetime | None = None

    @property
    def t_unit_ack(self) -> float | None:
        return _seconds(self.at, self.unit_ack_at)

    @property
    def t_travel(self) -> float | None:
        """From this unit's own assignment to its arrival."""
        return _seconds(self.at, self.on_scene_at)

    @property
    def t_on_scene(self) -> float | None:
        return _seconds(self.opened_at, self.on_scene_at)


@dataclass(frozen=True, slots=True)
class IncidentTimes:
    """The times of one incident that its response figures are made of."""

    incident_id: str
    station_id: str
    origin: str
    priority: str
    state: str
    opened_at: datetime
    closed_at: datetime | None
    acknowledged_at: datetime | None = None
    dispatched_at: datetime | None = None
    #: The first `unit_ack` and the time of the assignment it answers.
    unit_ack_at: datetime | None = None
    unit_ack_answers_at: datetime | None = None
    on_scene_at: datetime | None = None
    assignments: tuple[Assignment, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        return not IncidentState(self.state).is_terminal

    @property
    def waiting_ack(self) -> bool:
        """Still open and nobody has acknowledged it."""
        return self.is_open and self.acknowledged_at is None

    @property
    def waiting_on_scene(self) -> bool:
        """Still open, a unit has been sent, and none has arrived."""
        return self.is_open and self.dispatched_at is not None and self.on_scene_at is None

    @property
    def t_ack(self) -> float | None:
        return _seconds(self.opened_at, self.acknowledged_at)

    @property
    def t_dispatch(self) -> float | None:
        return _seconds(self.opened_at, self.dispatched_at)

    @property
    def t_unit_ack(self) -> float | None:
        return _seconds(self.unit_ack_answers_at, self.unit_ack_at)

    @property
    def t_travel(self) -> float | None:
        return _seconds(self.dispatched_at, self.on_scene_at)

    @property
    def t_on_scene(self) -> float | None:
        return _seconds(self.opened_at, self.on_scene_at)


class _Fold:
    """Builds one IncidentTimes from its incident row and its actions, in recorded order."""

    def __init__(self, row: Any) -> None:
        self.row = row
        self.acknowledged_at: datetime | None = None
        self.dispatched_at: datetime | None = None
        self.unit_ack_at: datetime | None = None
        self.unit_ack_answers_at: datetime | None = None
        self.on_scene_at: datetime | None = None
        #: [unit_id, action, at, unit_ack_at, on_scene_at] per assignment.
        self.assignments: list[list[Any]] = []

    def add(self, action: str, unit_id: str | None, at: datetime) -> None:
        act = Action(action)
        current = self.assignments[-1] if self.assignments else None
        if act is Action.ACKNOWLEDGE:
            if self.acknowledged_at is None:
                self.acknowledged_at = at
        elif act in _ASSIGNING:
            if act is Action.DISPATCH and self.dispatched_at is None:
                self.dispatched_at = at
            self.assignments.append([unit_id or "", act.value, at, None, None])
        elif act is Action.UNIT_ACK and current is not None:
            if current[3] is None:
                current[3] = at
            if self.unit_ack_at is None:
                self.unit_ack_at = at
                self.unit_ack_answers_at = current[2]
        elif act is Action.ON_SCENE and current is not None:
            if current[4] is None:
                current[4] = at
            if self.on_scene_at is None:
                self.on_scene_at = at

    def done(self) -> IncidentTimes:
        r = self.row
        return IncidentTimes(
            incident_id=r.id,
            station_id=r.station_id,
            origin=r.origin,
            priority=r.priority,
            state=r.state,
            opened_at=r.opened_at,
            closed_at=r.closed_at,
            acknowledged_at=self.acknowledged_at,
            dispatched_at=self.dispatched_at,
            unit_ack_at=self.unit_ack_at,
            unit_ack_answers_at=self.unit_ack_answers_at,
            on_scene_at=self.on_scene_at,
            assignments=tuple(
                Assignment(unit, action, at, r.opened_at, acked, arrived)
                for unit, action, at, acked, arrived in self.assignments
            ),
        )


def incident_times(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    station_ids: Iterable[str] | None = None,
    origin: Origin | str | None = None,
) -> list[IncidentTimes]:
    """The incidents opened in `[since, until)` of `station_ids` (None: all) and `origin`
    (None: both), oldest first, each with the times of its response.

    Raises ValueError for a time without a zone or an unknown origin, StoreError when the
    database fails.
    """
    for name, t in (("since", since), ("until", until)):
        if t is not None and t.utcoffset() is None:
            raise ValueError(f"{name} needs a time zone")
    T, A = incidents, incident_actions
    joined = T.outerjoin(
        A, and_(A.c.incident_id == T.c.id, A.c.action.in_([a.value for a in _USED]))
    )
    query = (
        select(
            T.c.id,
            T.c.station_id,
            T.c.origin,
            T.c.priority,
            T.c.state,
            T.c.opened_at,
            T.c.closed_at,
            A.c.action,
            A.c.unit_id.label("action_unit_id"),
            A.c.at.label("action_at"),
        )
        .select_from(joined)
        .order_by(T.c.opened_at, T.c.id, A.c.id)
    )
    if since is not None:
        query = query.where(T.c.opened_at >= since)
    if until is not None:
        query = query.where(T.c.opened_at < until)
    if station_ids is not None:
        query = query.where(T.c.station_id.in_(sorted(set(station_ids))))
    if origin is not None:
        query = query.where(T.c.origin == Origin(origin).value)
    out: list[IncidentTimes] = []
    fold: _Fold | None = None
    with db_errors("cannot read incident response times"), engine.connect() as conn:
        for row in conn.execute(query):
            if fold is None or fold.row.id != row.id:
                if fold is not None:
                    out.append(fold.done())
                fold = _Fold(row)
            if row.action is not None:
                fold.add(row.action, row.action_unit_id, row.action_at)
    if fold is not None:
        out.append(fold.done())
    return out
