"""Incident statistics for the dashboard: incidents per local day, per station, per camera
(top 10) and by outcome, the false-alarm share with its 95 % Wilson interval, the median time
to acknowledge per day, and camera vs SOS origins.

    stats = incident_statistics(caller, store, days=30, station=None)   # the /stats page
    stats.false_alarm.value, stats.false_alarm.low, stats.false_alarm.high

The period is the last `days` local calendar days of the deployment's zone (`tz`, default
Asia/Kolkata), today included: from the local midnight `days - 1` days ago to the coming
local midnight. The counts are defined in `raksha.store.stats`.

The **false-alarm share** is dismissed / closed (resolved + dismissed): incidents still open
have no outcome yet and are left out of it. Its interval is the Wilson score interval at
95 % (z = 1.959964), which stays inside [0, 1] and is sensible for small counts and for
0 or n false alarms; with no closed incident there is no share and no interval.

The median time to acknowledge is the nearest-rank p50 (`raksha.services.reports.percentile`),
as on the response-time report, of the incidents opened that day that were acknowledged.

A caller sees what `raksha.auth.access.visible_stations(user, INCIDENTS_EXPORT)` allows,
exactly as the response-time report (`Denied` 404 for another station, 403 for a role
outside the rule); each report is one audit entry `report.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from raksha.audit.log import AuditLog
from raksha.errors import message_of
from raksha.incidents.model import utcnow
from raksha.services.errors import Invalid
from raksha.services.incidents import Caller
from raksha.services.reports import percentile, report_stations
from raksha.store.repository import IncidentStore
from raksha.store.serialize import iso
from raksha.store.stats import IncidentStats, Outcomes, incident_stats, zone

__all__ = [
    "AUDIT_ACTION",
    "DEFAULT_TZ",
    "TOP_CAMERAS",
    "DayFigures",
    "Share",
    "Statistics",
    "incident_statistics",
    "period",
    "wilson_interval",
]

AUDIT_ACTION = "report.stats"
DEFAULT_TZ = "Asia/Kolkata"
#: The most days a period may span.
MAX_DAYS = 366
#: How many cameras the report names; the rest are summed up.
TOP_CAMERAS = 10
#: The two-sided 95 % normal quantile.
Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of `k` successes in `n` trials (None when n == 0)."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError("need 0 <= k <= n")
    if n == 0:
        return None
    p = k / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True, slots=True)
class Share:
    """`k` of `n`, with its 95 % Wilson interval (all None when n == 0)."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.k, self.n)

    @property
    def low(self) -> float | None:
        ci = self.interval
        return None if ci is None else ci[0]

    @property
    def high(self) -> float | None:
        ci = self.interval
        return None if ci is None else ci[1]

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class DayFigures:
    """One local day: incidents opened, how many of them were acknowledged, and the median
    time to acknowledge them (seconds; None when none was)."""

    day: date
    incidents: int
    acknowledged: int
    ack_median_s: float | None


def _outcomes_json(o: Outcomes) -> dict[str, int]:
    return {"total": o.total, "resolved": o.resolved, "dismissed": o.dismissed, "open": o.open}


@dataclass(frozen=True, slots=True)
class Statistics:
    """The statistics of the last `days_back` local days (see the module's docstring)."""

    days_back: int
    since: datetime
    until: datetime
    #: The IANA zone the days are counted in.
    tz: str
    #: The station asked for (None: every station the caller may see).
    station: str | None
    #: The stations the caller may choose from, sorted.
    station_choices: tuple[str, ...]
    days: tuple[DayFigures, ...]
    stations: dict[str, Outcomes]
    #: The `TOP_CAMERAS` cameras that raised the most incidents, most first.
    cameras: dict[str, Outcomes]
    #: How many more cameras raised incidents, and those incidents' outcomes.
    other_cameras: int
    other_camera_outcomes: Outcomes
    outcomes: Outcomes
    #: Dismissed of closed.
    false_alarm: Share
    origins: dict[str, int]
    generated_at: datetime

    @property
    def incidents(self) -> int:
        return self.outcomes.total

    @classmethod
    def of(
        cls,
        raw: IncidentStats,
        *,
        days_back: int,
        station: str | None,
        station_choices: Collection[str],
        generated_at: datetime | None = None,
    ) -> Statistics:
        top = dict(list(raw.cameras.items())[:TOP_CAMERAS])
        rest = list(raw.cameras.values())[TOP_CAMERAS:]
        return cls(
            days_back=days_back,
            since=raw.since,
            until=raw.until,
            tz=raw.tz,
            station=station,
            station_choices=tuple(sorted(station_choices)),
            days=tuple(
                DayFigures(
                    d.day, d.incidents, len(d.ack_seconds), percentile(list(d.ack_seconds), 50)
                )
                for d in raw.days
            ),
            stations=raw.stations,
            cameras=top,
            other_cameras=len(rest),
            other_camera_outcomes=Outcomes(
                sum(o.resolved for o in rest),
                sum(o.dismissed for o in rest),
                sum(o.open for o in rest),
            ),
            outcomes=raw.outcomes,
            false_alarm=Share(raw.outcomes.dismissed, raw.outcomes.closed),
            origins=raw.origins,
            generated_at=generated_at or utcnow(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "days_back": self.days_back,
            "since": iso(self.since),
            "until": iso(self.until),
            "tz": self.tz,
            "station": self.station,
            "incidents": self.incidents,
            "days": [
                {
                    "day": d.day.isoformat(),
                    "incidents": d.incidents,
                    "acknowledged": d.acknowledged,
                    "ack_median_s": d.ack_median_s,
                }
                for d in self.days
            ],
            "stations": {s: _outcomes_json(o) for s, o in self.stations.items()},
            "cameras": {c: _outcomes_json(o) for c, o in self.cameras.items()},
            "other_cameras": self.other_cameras,
            "outcomes": _outcomes_json(self.outcomes),
            "false_alarm": self.false_alarm.to_json(),
            "origins": dict(self.origins),
        }


def period(days: int, tz: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """`[since, until)` in UTC: the last `days` local days of `tz`, today included."""
    local = zone(tz)
    today = (now or utcnow()).astimezone(local).date()
    since = datetime.combine(today - timedelta(days=days - 1), time(), local)
    until = datetime.combine(today + timedelta(days=1), time(), local)
    return since.astimezone(UTC), until.astimezone(UTC)


def incident_statistics(
    caller: Caller,
    store: IncidentStore,
    *,
    days: int = 7,
    station: str | None = None,
    tz: str = DEFAULT_TZ,
    now: datetime | None = None,
    known_stations: Collection[str] | None = None,
    audit: AuditLog | None = None,
) -> Statistics:
    """The caller's statistics of the last `days` local days of `tz`: their stations only
    (`Denied` 403 for a role outside `INCIDENTS_EXPORT`, 404 for another station), `station`
    one of them, `NotFound` for a station not in `known_stations` (when given), `Invalid`
    for a period outside 1..366 days or an unknown zone. Audited as `report.stats`."""
    scope = report_stations(caller, None, known_stations)
    stations = report_stations(caller, station, known_stations)
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(f"days must be between 1 and {MAX_DAYS}")
    try:
        since, until = period(days, tz, now)
    except ValueError as exc:
        raise Invalid(message_of(exc)) from None
    shown = stations if stations is not None else sorted(known_stations or ())
    raw = incident_stats(
        store.engine, since=since, until=until, tz=tz, station_ids=stations, show_stations=shown
    )
    choices = scope if scope is not None else sorted(known_stations or ())
    report = Statistics.of(raw, days_back=days, station=station, station_choices=choices)
    (audit or AuditLog(store.engine)).append(
        caller.name,
        AUDIT_ACTION,
        station_id=caller.user.station_id,
        address=caller.address,
        details={
            "since": iso(since),
            "until": iso(until),
            "tz": raw.tz,
            "stations": stations,
            "incidents": raw.incidents,
        },
    )
    return report
