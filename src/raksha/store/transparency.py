"""Incident and outcome counts per station and local month, for the transparency pack.

    counts = monthly_counts(store.engine, since=t0, until=t1, tz="Asia/Kolkata")
    counts.rows[("hazratganj", "2026-11", "camera")].dismissed
    counts.total("sos").opened

One SELECT reads, per incident opened in `[since, until)`, its station, origin, state and
opening time; the rows are folded here into (station, local month of the opening, origin).
Nothing is read per incident.

What counts (by the incident's state now, as `raksha.store.precision` and
`raksha.store.stats` count):

* **opened**: every incident opened in the period;
* **confirmed**, **dispatched**, **resolved**: in that state now (an officer confirmed a
  person in need; RESOLVED and DISPATCHED are only reachable through CONFIRMED);
* **dismissed**: DISMISSED, a false alarm;
* **open**: NEW or ACKNOWLEDGED, nobody has judged it yet.

So opened = confirmed + dispatched + resolved + dismissed + open for every row. Camera and
SOS incidents are kept apart (`origin`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from raksha.incidents.model import IncidentState, Origin
from raksha.store._db import db_errors
from raksha.store.stats import zone
from raksha.store.tables import incidents

__all__ = ["MonthCounts", "MonthlyCounts", "monthly_counts"]

S = IncidentState


@dataclass(frozen=True, slots=True)
class MonthCounts:
    """The incidents of one group by their state now (see the module's docstring)."""

    confirmed: int = 0
    dispatched: int = 0
    resolved: int = 0
    dismissed: int = 0
    open: int = 0

    @property
    def opened(self) -> int:
        return self.confirmed + self.dispatched + self.resolved + self.dismissed + self.open

    @property
    def real(self) -> int:
        """Confirmed by an officer (confirmed, dispatched or resolved now)."""
        return self.confirmed + self.dispatched + self.resolved

    def plus(self, state: str) -> MonthCounts:
        st = IncidentState(state)
        return MonthCounts(
            self.confirmed + (st is S.CONFIRMED),
            self.dispatched + (st is S.DISPATCHED),
            self.resolved + (st is S.RESOLVED),
            self.dismissed + (st is S.DISMISSED),
            self.open + (st in (S.NEW, S.ACKNOWLEDGED)),
        )

    def __add__(self, other: MonthCounts) -> MonthCounts:
        return MonthCounts(
            self.confirmed + other.confirmed,
            self.dispatched + other.dispatched,
            self.resolved + other.resolved,
            self.dismissed + other.dismissed,
            self.open + other.open,
        )


@dataclass(frozen=True, slots=True)
class MonthlyCounts:
    """The counts of the incidents opened in `[since, until)`."""

    since: datetime
    until: datetime
    #: The IANA zone the months are counted in.
    tz: str
    #: Per (station id, local month "YYYY-MM", origin "camera" | "sos"), sorted; only
    #: groups with at least one incident.
    rows: dict[tuple[str, str, str], MonthCounts]

    def total(self, origin: str | None = None) -> MonthCounts:
        """Every row (of one origin, when given) added up."""
        out = MonthCounts()
        for (_station, _month, o), counts in self.rows.items():
            if origin is None or o == origin:
                out = out + counts
        return out

    def by_station(self, origin: str | None = None) -> dict[str, MonthCounts]:
        """Per station, every month added up (of one origin, when given), sorted."""
        out: dict[str, MonthCounts] = {}
        for (station, _month, o), counts in self.rows.items():
            if origin is None or o == origin:
                out[station] = out.get(station, MonthCounts()) + counts
        return dict(sorted(out.items()))


def monthly_counts(
    engine: Engine,
    *,
    since: datetime,
    until: datetime,
    tz: str,
    station_ids: Iterable[str] | None = None,
) -> MonthlyCounts:
    """The counts of the incidents of `station_ids` (None: all) opened in `[since, until)`,
    months counted in `tz`. ValueError for a time without a zone, an empty period or an
    unknown zone; StoreError when the database fails."""
    for name, t in (("since", since), ("until", until)):
        if t.utcoffset() is None:
            raise ValueError(f"{name} needs a time zone")
    if since >= until:
        raise ValueError("since must be before until")
    local = zone(tz)
    T = incidents
    query = select(T.c.station_id, T.c.origin, T.c.state, T.c.opened_at).where(
        T.c.opened_at >= since, T.c.opened_at < until
    )
    if station_ids is not None:
        query = query.where(T.c.station_id.in_(sorted(set(station_ids))))
    rows: dict[tuple[str, str, str], MonthCounts] = {}
    with db_errors("cannot read the incident counts"), engine.connect() as conn:
        for row in conn.execute(query):
            month = row.opened_at.astimezone(local).strftime("%Y-%m")
            origin = Origin(row.origin or Origin.CAMERA.value).value
            key = (str(row.station_id), month, origin)
            rows[key] = rows.get(key, MonthCounts()).plus(row.state)
    return MonthlyCounts(since=since, until=until, tz=local.key, rows=dict(sorted(rows.items())))
