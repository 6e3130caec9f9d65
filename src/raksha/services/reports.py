"""Reports on the incidents: response times (acknowledge, dispatch, unit acknowledgement,
travel, on scene) per station, per patrol unit and overall, with p50 and p95.

    report = response_times(caller, store, since, until, station)      # the dashboard
    report = response_times_for_operator(store, actor="cli:root", ...)  # the CLI, on the server
    report.to_json()

The figures of each incident are defined in `raksha.store.response_times`. Percentiles are
**nearest-rank**: the p-th percentile of n sorted values is the value at rank ceil(p·n/100)
(1-based), so it is always a time that was observed; with one value p50 = p95 = that value,
and with none both are None. Next to the figures, `waiting_ack` counts the incidents still
open that nobody has acknowledged and `waiting_on_scene` those dispatched with no unit there
yet, so incidents still waiting are never silently left out of the picture.

A caller sees the stations `raksha.auth.access.visible_stations(user, INCIDENTS_EXPORT)`
allows, as `IncidentService.list_visible` does (another station is `Denied` 404, a role
outside the rule 403); every report, on the dashboard or the CLI, is one audit entry
`report.response_times`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from raksha.audit.log import AuditLog
from raksha.auth.access import Rule, check_station, visible_stations
from raksha.incidents.model import Origin, utcnow
from raksha.services.errors import Invalid, NotFound
from raksha.services.incidents import Caller
from raksha.store.repository import IncidentStore
from raksha.store.response_times import Assignment, IncidentTimes, incident_times
from raksha.store.serialize import iso

AUDIT_ACTION = "report.response_times"
PERCENTILE_METHOD = "nearest-rank"
#: The figures of a station (and of all stations), in report order.
STATION_FIGURES = ("acknowledge", "dispatch", "unit_ack", "travel", "on_scene")
#: The figures of a patrol unit.
UNIT_FIGURES = ("unit_ack", "travel", "on_scene")


def percentile(values: Sequence[float], p: int) -> float | None:
    """The nearest-rank `p`-th percentile (0 < p <= 100) of `values`; None when empty."""
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, (p * len(ordered) + 99) // 100)  # ceil(p·n/100) in integers
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Stat:
    """How many incidents a figure has, and its p50 and p95 in seconds."""

    n: int
    p50_s: float | None
    p95_s: float | None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        present = [v for v in values if v is not None]
        return cls(len(present), percentile(present, 50), percentile(present, 95))

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "p50_s": self.p50_s, "p95_s": self.p95_s}


@dataclass(frozen=True, slots=True)
class GroupTimes:
    """The figures of a set of incidents (one station's, or all)."""

    incidents: int
    waiting_ack: int
    waiting_on_scene: int
    acknowledge: Stat
    dispatch: Stat
    unit_ack: Stat
    travel: Stat
    on_scene: Stat

    @classmethod
    def of(cls, rows: Sequence[IncidentTimes]) -> GroupTimes:
        return cls(
            incidents=len(rows),
            waiting_ack=sum(r.waiting_ack for r in rows),
            waiting_on_scene=sum(r.waiting_on_scene for r in rows),
            acknowledge=Stat.of(r.t_ack for r in rows),
            dispatch=Stat.of(r.t_dispatch for r in rows),
            unit_ack=Stat.of(r.t_unit_ack for r in rows),
            travel=Stat.of(r.t_travel for r in rows),
            on_scene=Stat.of(r.t_on_scene for r in rows),
        )

    def figure(self, name: str) -> Stat:
        stat: Stat = getattr(self, name)
        return stat

    def to_json(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "waiting_ack": self.waiting_ack,
            "waiting_on_scene": self.waiting_on_scene,
            **{name: self.figure(name).to_json() for name in STATION_FIGURES},
        }


@dataclass(frozen=True, slots=True)
class UnitTimes:
    """A patrol unit's figures over the jobs it was given (dispatched or reassigned)."""

    unit_id: str
    jobs: int
    unit_ack: Stat
    travel: Stat
    on_scene: Stat

    def figure(self, name: str) -> Stat:
        stat: Stat = getattr(self, name)
        return stat

    def to_json(self) -> dict[str, Any]:
        return {
            "unit_id": self.unit_id,
            "jobs": self.jobs,
            **{name: self.figure(name).to_json() for name in UNIT_FIGURES},
        }


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """Response-time figures of the incidents opened in `[since, until)`."""

    since: datetime | None
    until: datetime | None
    #: The stations asked for (None: every station the asker may see, i.e. all).
    stations_filter: tuple[str, ...] | None
    origin: str | None
    generated_at: datetime
    overall: GroupTimes
    #: Per station id, sorted.
    stations: dict[str, GroupTimes]
    #: Per patrol unit id, sorted.
    units: dict[str, UnitTimes]

    @classmethod
    def summarise(
        cls,
        rows: Sequence[IncidentTimes],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        stations_filter: Sequence[str] | None = None,
        origin: str | None = None,
        show_stations: Iterable[str] = (),
        generated_at: datetime | None = None,
    ) -> ResponseTimes:
        """The figures of `rows`; every station in `show_stations` gets a row, with no
        incidents if it has none."""
        by_station: dict[str, list[IncidentTimes]] = {s: [] for s in show_stations}
        jobs: dict[str, list[Assignment]] = {}
        for r in rows:
            by_station.setdefault(r.station_id, []).append(r)
            for a in r.assignments:
                jobs.setdefault(a.unit_id, []).append(a)
        units = {
            unit: UnitTimes(
                unit_id=unit,
                jobs=len(done),
                unit_ack=Stat.of(a.t_unit_ack for a in done),
                travel=Stat.of(a.t_travel for a in done),
                on_scene=Stat.of(a.t_on_scene for a in done),
            )
            for unit, done in sorted(jobs.items())
        }
        return cls(
            since=since,
            until=until,
            stations_filter=None if stations_filter is None else tuple(stations_filter),
            origin=origin,
            generated_at=generated_at or utcnow(),
            overall=GroupTimes.of(rows),
            stations={s: GroupTimes.of(v) for s, v in sorted(by_station.items())},
            units=units,
        )

    def to_json(self) -> dict[str, Any]:
        """The report as `GET /api/reports/response-times` and `raksha report --json` give it."""
        return {
            "percentile_method": PERCENTILE_METHOD,
            "generated_at": iso(self.generated_at),
            "since": iso(self.since),
            "until": iso(self.until),
            "stations_filter": None if self.stations_filter is None else list(self.stations_filter),
            "origin": self.origin,
            "overall": self.overall.to_json(),
            "stations": [{"station_id": s, **g.to_json()} for s, g in self.stations.items()],
            "units": [u.to_json() for u in self.units.values()],
        }


def _check_filter(since: datetime | None, until: datetime | None, origin: str | None) -> None:
    for name, t in (("since", since), ("until", until)):
        if t is not None and t.utcoffset() is None:
            raise Invalid(f"{name} needs a time zone (e.g. 2026-11-22T08:00:00Z)")
    if since is not None and until is not None and since >= until:
        raise Invalid("since must be before until")
    if origin is not None and origin not in {o.value for o in Origin}:
        raise Invalid(f"unknown origin {origin!r}; known: {', '.join(o.value for o in Origin)}")


def _details(report: ResponseTimes, rows: int) -> dict[str, Any]:
    return {
        "since": iso(report.since),
        "until": iso(report.until),
        "stations": None if report.stations_filter is None else list(report.stations_filter),
        "origin": report.origin,
        "incidents": rows,
    }


def report_stations(
    caller: Caller, station: str | None, known_stations: Collection[str] | None
) -> list[str] | None:
    """The stations a report for `caller` covers (None: every station): `station` when
    given and theirs (`Denied` 404 otherwise, `NotFound` when not in `known_stations`),
    else all of theirs. `Denied` 403 for a role outside `INCIDENTS_EXPORT`."""
    rule = Rule.INCIDENTS_EXPORT
    scope = visible_stations(caller.user, rule)
    if station is not None:
        check_station(caller.user, rule, station)
        if known_stations is not None and station not in known_stations:
            raise NotFound(f"unknown station {station!r}")
        return [station]
    return None if scope is None else sorted(scope)


def response_times(
    caller: Caller,
    store: IncidentStore,
    since: datetime | None,
    until: datetime | None,
    station: str | None,
    *,
    origin: str | None = None,
    known_stations: Collection[str] | None = None,
    audit: AuditLog | None = None,
) -> ResponseTimes:
    """The caller's response times: their stations only (`Denied` 403 for a role outside
    `INCIDENTS_EXPORT`, 404 for another station), `station` one of them, `NotFound` for a
    station not in `known_stations` (when given). Audited as `report.response_times`."""
    stations = report_stations(caller, station, known_stations)
    _check_filter(since, until, origin)
    rows = incident_times(
        store.engine, since=since, until=until, station_ids=stations, origin=origin
    )
    shown = stations if stations is not None else sorted(known_stations or ())
    report = ResponseTimes.summarise(
        rows,
        since=since,
        until=until,
        stations_filter=stations,
        origin=origin,
        show_stations=shown,
    )
    (audit or AuditLog(store.engine)).append(
        caller.name,
        AUDIT_ACTION,
        station_id=caller.user.station_id,
        address=caller.address,
        details=_details(report, len(rows)),
    )
    return report


def response_times_for_operator(
    store: IncidentStore,
    *,
    actor: str,
    since: datetime | None = None,
    until: datetime | None = None,
    stations: Sequence[str] | None = None,
    origin: str | None = None,
    known_stations: Collection[str] | None = None,
) -> ResponseTimes:
    """Every station's response times (or `stations`'), for the deployment's operator on
    the server (`raksha report`); `actor` names them in the audit entry. `Invalid` for a
    time without a zone, `NotFound` for a station not in `known_stations` (when given)."""
    if stations is not None and known_stations is not None:
        unknown = sorted(set(stations) - set(known_stations))
        if unknown:
            known = ", ".join(sorted(known_stations)) or "none"
            raise NotFound(f"unknown station {', '.join(map(repr, unknown))}; known: {known}")
    _check_filter(since, until, origin)
    chosen = None if stations is None else sorted(set(stations))
    rows = incident_times(store.engine, since=since, until=until, station_ids=chosen, origin=origin)
    report = ResponseTimes.summarise(
        rows,
        since=since,
        until=until,
        stations_filter=chosen,
        origin=origin,
        show_stations=chosen if chosen is not None else sorted(known_stations or ()),
    )
    AuditLog(store.engine).append(actor, AUDIT_ACTION, details=_details(report, len(rows)))
    return report
