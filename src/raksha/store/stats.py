"""Incident statistics of a period, counted in the deployment's local days, from one query.

    stats = incident_stats(store.engine, since=t0, until=t1, tz="Asia/Kolkata",
                           station_ids=["hazratganj"], show_stations=["hazratganj"])
    stats.days[0].incidents       # incidents opened on the period's first local day
    stats.outcomes.dismissed      # false alarms
    stats.cameras["cam-7"].total  # incidents raised by that camera

One SELECT reads, per incident opened in `[since, until)`, its station, camera, origin,
state, opening time and its first `acknowledge` (a correlated subquery on `incident_actions`:
the first by recorded order, as `raksha.store.response_times` takes it). Nothing is read per
incident, and the rows are folded here: the days are local calendar days of `tz` (zoneinfo),
so an incident opened at 20:00 UTC belongs to the next day in Asia/Kolkata (UTC+05:30).

Definitions:

* outcome: `RESOLVED` is resolved, `DISMISSED` is dismissed (a false alarm), every other
  state is still open;
* per station: `incidents.station_id`, the station it was raised for;
* per camera: the incidents a camera raised (origin `camera`); an SOS placed near a camera
  is not counted against it;
* time to acknowledge: the first `acknowledge` − `opened_at`, in seconds, listed for the
  day the incident was opened; incidents nobody acknowledged have none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, select

from raksha.incidents.model import Action, IncidentState, Origin
from raksha.store._db import db_errors
from raksha.store.tables import incident_actions, incidents

__all__ = ["DayStats", "IncidentStats", "Outcomes", "incident_stats", "local_days", "zone"]


def zone(tz: str) -> ZoneInfo:
    """The zone named `tz` (e.g. "Asia/Kolkata"); ValueError for an unknown name."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


def local_days(since: datetime, until: datetime, tz: ZoneInfo) -> list[date]:
    """The local calendar days of `tz` that `[since, until)` touches, oldest first."""
    first = since.astimezone(tz).date()
    last = (until - timedelta(microseconds=1)).astimezone(tz).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class Outcomes:
    """How many incidents were resolved, dismissed (false alarms) or are still open."""

    resolved: int = 0
    dismissed: int = 0
    open: int = 0

    @property
    def total(self) -> int:
        return self.resolved + self.dismissed + self.open

    @property
    def closed(self) -> int:
        return self.resolved + self.dismissed

    def plus(self, state: str) -> Outcomes:
        if state == IncidentState.RESOLVED:
            return Outcomes(self.resolved + 1, self.dismissed, self.open)
        if state == IncidentState.DISMISSED:
            return Outcomes(self.resolved, self.dismissed + 1, self.open)
        return Outcomes(self.resolved, self.dismissed, self.open + 1)


@dataclass(frozen=True, slots=True)
class DayStats:
    """One local day: the incidents opened on it and their times to acknowledge (s)."""

    day: date
    incidents: int = 0
    ack_seconds: tuple[float, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class IncidentStats:
    """The counts of the incidents opened in `[since, until)`."""

    since: datetime
    until: datetime
    #: The zone the days are counted in (its IANA name).
    tz: str
    #: Every local day of the period, oldest first (days without incidents included).
    days: tuple[DayStats, ...]
    #: Per station id, sorted; each station of `show_stations` is there even with none.
    stations: dict[str, Outcomes]
    #: Per camera id of the camera-raised incidents, most incidents first (then by id).
    cameras: dict[str, Outcomes]
    outcomes: Outcomes
    #: Per origin ("camera", "sos"), both always there.
    origins: dict[str, int]

    @property
    def incidents(self) -> int:
        return self.outcomes.total


def incident_stats(
    engine: Engine,
    *,
    since: datetime,
    until: datetime,
    tz: str,
    station_ids: Iterable[str] | None = None,
    show_stations: Iterable[str] = (),
) -> IncidentStats:
    """The statistics of the incidents opened in `[since, until)` of `station_ids` (None:
    all), counted in the local days of `tz`.

    Raises ValueError for a time without a zone, an empty period or an unknown zone,
    StoreError when the database fails.
    """
    for name, t in (("since", since), ("until", until)):
        if t.utcoffset() is None:
            raise ValueError(f"{name} needs a time zone")
    if since >= until:
        raise ValueError("since must be before until")
    local = zone(tz)
    T, A = incidents, incident_actions
    first_ack = (
        select(A.c.at)
        .where(A.c.incident_id == T.c.id, A.c.action == Action.ACKNOWLEDGE.value)
        .order_by(A.c.id)
        .limit(1)
        .correlate(T)
        .scalar_subquery()
    )
    query = select(
        T.c.station_id,
        T.c.camera_id,
        T.c.origin,
        T.c.state,
        T.c.opened_at,
        first_ack.label("acknowledged_at"),
    ).where(T.c.opened_at >= since, T.c.opened_at < until)
    if station_ids is not None:
        query = query.where(T.c.station_id.in_(sorted(set(station_ids))))

    period = local_days(since, until, local)
    day_counts: dict[date, int] = dict.fromkeys(period, 0)
    per_day: dict[date, list[float]] = {d: [] for d in period}
    stations: dict[str, Outcomes] = {s: Outcomes() for s in show_stations}
    cameras: dict[str, Outcomes] = {}
    overall = Outcomes()
    origins: dict[str, int] = {o.value: 0 for o in Origin}
    with db_errors("cannot read incident statistics"), engine.connect() as conn:
        for row in conn.execute(query):
            day = row.opened_at.astimezone(local).date()
            day_counts[day] = day_counts.get(day, 0) + 1
            if row.acknowledged_at is not None:
                ack = (row.acknowledged_at - row.opened_at).total_seconds()
                per_day.setdefault(day, []).append(ack)
            stations[row.station_id] = stations.get(row.station_id, Outcomes()).plus(row.state)
            if row.origin == Origin.CAMERA:
                cameras[row.camera_id] = cameras.get(row.camera_id, Outcomes()).plus(row.state)
            overall = overall.plus(row.state)
            origins[row.origin] = origins.get(row.origin, 0) + 1
    return IncidentStats(
        since=since,
        until=until,
        tz=local.key,
        days=tuple(
            DayStats(d, day_counts[d], tuple(per_day.get(d, ()))) for d in sorted(day_counts)
        ),
        stations=dict(sorted(stations.items())),
        cameras=dict(sorted(cameras.items(), key=lambda kv: (-kv[1].total, kv[0]))),
        outcomes=overall,
        origins=origins,
    )
