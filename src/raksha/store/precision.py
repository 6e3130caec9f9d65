"""Field precision counts: of the camera incidents officers judged, how many were real.

    counts = precision_counts(store.engine, since=t0, until=t1, tz="Asia/Kolkata")
    counts.cameras["cam-7"].real, counts.cameras["cam-7"].dismissed
    counts.hours[22].reasons      # {"no_distress": 3, "unspecified": 1}

One SELECT reads, per camera incident opened in `[since, until)`, its camera, station,
model (name and SHA-256), state, opening time and, for a dismissed one, the reason of its
dismissal (an outer join on its `dismiss` action: an incident is dismissed at most once, as
DISMISSED is terminal). Nothing is read per incident; the rows are folded here.

What counts (by the incident's state now):

* **real**: CONFIRMED, DISPATCHED or RESOLVED. An officer looked and confirmed a person in
  distress; RESOLVED is only reachable through CONFIRMED (`raksha.incidents.lifecycle`), so
  every resolved incident was confirmed first;
* **dismissed**: DISMISSED, a false alarm, whatever state it was dismissed from (one
  confirmed and then dismissed counts as dismissed: the last judgement stands);
* **pending**: NEW or ACKNOWLEDGED, nobody has judged it yet; left out of the precision.

Only `origin = camera` incidents: an SOS is a person's call, not the model's decision. The
reasons are those of `raksha.incidents.model.DismissReason`, and "unspecified" for the
dismissals stored before reasons were asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, and_, select

from raksha.incidents.model import UNSPECIFIED_REASON, Action, IncidentState, Origin
from raksha.store._db import db_errors
from raksha.store.stats import zone
from raksha.store.tables import incident_actions, incidents

__all__ = [
    "PENDING_STATES",
    "REAL_STATES",
    "PrecisionCounts",
    "Tally",
    "precision_counts",
]

S = IncidentState
#: The states of an incident judged real.
REAL_STATES = frozenset({S.CONFIRMED, S.DISPATCHED, S.RESOLVED})
#: The states of an incident nobody has judged yet.
PENDING_STATES = frozenset({S.NEW, S.ACKNOWLEDGED})


@dataclass(slots=True)
class Tally:
    """The judged (real, dismissed) and not yet judged incidents of one group."""

    real: int = 0
    dismissed: int = 0
    pending: int = 0
    #: Dismissals per reason (only reasons that occurred).
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def judged(self) -> int:
        return self.real + self.dismissed

    def add(self, state: str, reason: str | None) -> None:
        st = IncidentState(state)
        if st in REAL_STATES:
            self.real += 1
        elif st is S.DISMISSED:
            self.dismissed += 1
            why = reason or UNSPECIFIED_REASON
            self.reasons[why] = self.reasons.get(why, 0) + 1
        else:
            self.pending += 1


@dataclass(frozen=True, slots=True)
class PrecisionCounts:
    """The tallies of the camera incidents opened in `[since, until)`."""

    since: datetime
    until: datetime
    #: The IANA zone the hours of day are counted in.
    tz: str
    overall: Tally
    #: Per camera id, sorted by id.
    cameras: dict[str, Tally]
    #: The station each camera's incidents were raised for (its latest incident's).
    camera_stations: dict[str, str]
    #: Per station id, sorted.
    stations: dict[str, Tally]
    #: Per local hour of day of the opening, 0 to 23, every hour there.
    hours: dict[int, Tally]
    #: Per (model name, model SHA-256), sorted.
    models: dict[tuple[str, str], Tally]


def precision_counts(
    engine: Engine,
    *,
    since: datetime,
    until: datetime,
    tz: str,
    station_ids: Iterable[str] | None = None,
) -> PrecisionCounts:
    """The tallies of the camera incidents of `station_ids` (None: all) opened in
    `[since, until)`, hours of day counted in `tz`. ValueError for a time without a zone,
    an empty period or an unknown zone; StoreError when the database fails."""
    for name, t in (("since", since), ("until", until)):
        if t.utcoffset() is None:
            raise ValueError(f"{name} needs a time zone")
    if since >= until:
        raise ValueError("since must be before until")
    local = zone(tz)
    T, A = incidents, incident_actions
    query = (
        select(
            T.c.camera_id,
            T.c.station_id,
            T.c.model_name,
            T.c.model_sha256,
            T.c.state,
            T.c.opened_at,
            A.c.reason,
        )
        .select_from(
            T.outerjoin(A, and_(A.c.incident_id == T.c.id, A.c.action == Action.DISMISS.value))
        )
        .where(
            T.c.origin == Origin.CAMERA.value,
            T.c.opened_at >= since,
            T.c.opened_at < until,
        )
        .order_by(T.c.opened_at, T.c.id)
    )
    if station_ids is not None:
        query = query.where(T.c.station_id.in_(sorted(set(station_ids))))
    overall = Tally()
    cameras: dict[str, Tally] = {}
    camera_stations: dict[str, str] = {}
    stations: dict[str, Tally] = {}
    hours = {h: Tally() for h in range(24)}
    models: dict[tuple[str, str], Tally] = {}
    with db_errors("cannot read field precision"), engine.connect() as conn:
        for row in conn.execute(query):
            groups = (
                overall,
                cameras.setdefault(row.camera_id, Tally()),
                stations.setdefault(row.station_id, Tally()),
                hours[row.opened_at.astimezone(local).hour],
                models.setdefault((row.model_name, row.model_sha256), Tally()),
            )
            for tally in groups:
                tally.add(row.state, row.reason)
            camera_stations[row.camera_id] = row.station_id
    return PrecisionCounts(
        since=since,
        until=until,
        tz=local.key,
        overall=overall,
        cameras=dict(sorted(cameras.items())),
        camera_stations=camera_stations,
        stations=dict(sorted(stations.items())),
        hours=hours,
        models=dict(sorted(models.items())),
    )
