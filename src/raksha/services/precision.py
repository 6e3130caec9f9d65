"""Field precision for the dashboard and `raksha report precision`: of the camera incidents
officers judged in the last `days` local days, the share that were real, per camera, per
station, per local hour of day and per model, each with its 95 % Wilson interval and the
dismissals' reasons; cameras below the configured floor are flagged for review.

    report = field_precision(caller, store, settings=cfg.precision, tz=cfg.timezone)
    report.cameras[0].share.value, report.cameras[0].review

Precision = real / (real + dismissed), where real is CONFIRMED, DISPATCHED or RESOLVED and
dismissed is DISMISSED (`raksha.store.precision` defines the counts; incidents nobody has
judged yet, and SOS incidents, are left out). The interval is `raksha.services.stats`'s
Wilson score interval. A camera is flagged **review** when it has at least
`precision.min_judged` judged incidents and its precision is below `precision.floor`
(the point estimate: the interval is shown beside it for the officer to weigh).

Scope and audit as the statistics page: a supervisor sees their station, the control room
every station or one (`raksha.services.reports.report_stations`); each report is one audit
entry `report.precision`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from raksha.audit.log import AuditLog
from raksha.errors import message_of
from raksha.incidents.model import utcnow
from raksha.services.errors import Invalid
from raksha.services.incidents import Caller
from raksha.services.reports import report_stations
from raksha.services.stats import MAX_DAYS, Share, period
from raksha.site.config import PrecisionConfig
from raksha.store.precision import PrecisionCounts, Tally, precision_counts
from raksha.store.repository import IncidentStore
from raksha.store.serialize import iso

__all__ = [
    "AUDIT_ACTION",
    "FieldPrecision",
    "PrecisionRow",
    "field_precision",
    "field_precision_for_operator",
    "needs_review",
]

AUDIT_ACTION = "report.precision"


@dataclass(frozen=True, slots=True)
class PrecisionRow:
    """One group's figures: real of judged, the open ones, the dismissals' reasons."""

    key: str
    real: int
    dismissed: int
    pending: int
    reasons: dict[str, int]
    #: Flagged for review (cameras only).
    review: bool = False

    @property
    def judged(self) -> int:
        return self.real + self.dismissed

    @property
    def share(self) -> Share:
        return Share(self.real, self.judged)

    @classmethod
    def of(cls, key: str, t: Tally, review: bool = False) -> PrecisionRow:
        return cls(key, t.real, t.dismissed, t.pending, dict(sorted(t.reasons.items())), review)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "real": self.real,
            "dismissed": self.dismissed,
            "judged": self.judged,
            "pending": self.pending,
            "precision": self.share.to_json(),
            "reasons": dict(self.reasons),
            "review": self.review,
        }


def needs_review(t: Tally, settings: PrecisionConfig) -> bool:
    """At least `min_judged` judged and a precision below the floor."""
    return t.judged >= settings.min_judged and t.real < settings.floor * t.judged


@dataclass(frozen=True, slots=True)
class FieldPrecision:
    """The field precision of the last `days_back` local days (see the module's docstring)."""

    days_back: int
    since: datetime
    until: datetime
    tz: str
    station: str | None
    station_choices: tuple[str, ...]
    floor: float
    min_judged: int
    overall: PrecisionRow
    #: Per camera: flagged ones first, then the lowest precision, then by id.
    cameras: tuple[PrecisionRow, ...]
    #: The station of each camera (its incidents').
    camera_stations: dict[str, str]
    stations: tuple[PrecisionRow, ...]
    #: Local hours "00" to "23".
    hours: tuple[PrecisionRow, ...]
    #: Per model: "name" and its SHA-256 in `models_sha`.
    models: tuple[PrecisionRow, ...]
    models_sha: tuple[str, ...]
    generated_at: datetime

    @property
    def flagged(self) -> tuple[PrecisionRow, ...]:
        return tuple(c for c in self.cameras if c.review)

    @classmethod
    def of(
        cls,
        raw: PrecisionCounts,
        settings: PrecisionConfig,
        *,
        days_back: int,
        station: str | None,
        station_choices: Collection[str],
    ) -> FieldPrecision:
        cams = [PrecisionRow.of(c, t, needs_review(t, settings)) for c, t in raw.cameras.items()]
        cams.sort(key=lambda r: (not r.review, _order(r), r.key))
        models = list(raw.models.items())
        return cls(
            days_back=days_back,
            since=raw.since,
            until=raw.until,
            tz=raw.tz,
            station=station,
            station_choices=tuple(sorted(station_choices)),
            floor=settings.floor,
            min_judged=settings.min_judged,
            overall=PrecisionRow.of("all", raw.overall),
            cameras=tuple(cams),
            camera_stations=dict(raw.camera_stations),
            stations=tuple(PrecisionRow.of(s, t) for s, t in raw.stations.items()),
            hours=tuple(PrecisionRow.of(f"{h:02d}", t) for h, t in sorted(raw.hours.items())),
            models=tuple(PrecisionRow.of(name, t) for (name, _sha), t in models),
            models_sha=tuple(sha for (_name, sha), _t in models),
            generated_at=utcnow(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "days_back": self.days_back,
            "since": iso(self.since),
            "until": iso(self.until),
            "tz": self.tz,
            "station": self.station,
            "floor": self.floor,
            "min_judged": self.min_judged,
            "overall": self.overall.to_json(),
            "cameras": [
                {**c.to_json(), "station": self.camera_stations.get(c.key)} for c in self.cameras
            ],
            "stations": [s.to_json() for s in self.stations],
            "hours": [h.to_json() for h in self.hours],
            "models": [
                {**m.to_json(), "sha256": sha}
                for m, sha in zip(self.models, self.models_sha, strict=True)
            ],
        }


def _order(row: PrecisionRow) -> float:
    value = row.share.value
    return 2.0 if value is None else value


def _counts(
    store: IncidentStore, days: int, tz: str, stations: Sequence[str] | None, now: datetime | None
) -> PrecisionCounts:
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(f"days must be between 1 and {MAX_DAYS}")
    try:
        since, until = period(days, tz, now)
        return precision_counts(store.engine, since=since, until=until, tz=tz, station_ids=stations)
    except ValueError as exc:
        raise Invalid(message_of(exc)) from None


def _details(report: FieldPrecision, stations: Sequence[str] | None) -> dict[str, Any]:
    return {
        "since": iso(report.since),
        "until": iso(report.until),
        "tz": report.tz,
        "stations": None if stations is None else list(stations),
        "judged": report.overall.judged,
        "flagged": [c.key for c in report.flagged],
    }


def field_precision(
    caller: Caller,
    store: IncidentStore,
    *,
    settings: PrecisionConfig,
    days: int | None = None,
    station: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
    known_stations: Collection[str] | None = None,
    audit: AuditLog | None = None,
) -> FieldPrecision:
    """The caller's field precision over the last `days` (default `settings.days`) local
    days of `tz`: their stations only (`Denied` 403 for a role outside `INCIDENTS_EXPORT`,
    404 for another station), `NotFound` for a station not in `known_stations`, `Invalid`
    for a period outside 1..366 days or an unknown zone. Audited as `report.precision`."""
    scope = report_stations(caller, None, known_stations)
    stations = report_stations(caller, station, known_stations)
    n = settings.days if days is None else days
    raw = _counts(store, n, tz, stations, now)
    choices = scope if scope is not None else sorted(known_stations or ())
    report = FieldPrecision.of(raw, settings, days_back=n, station=station, station_choices=choices)
    (audit or AuditLog(store.engine)).append(
        caller.name,
        AUDIT_ACTION,
        station_id=caller.user.station_id,
        address=caller.address,
        details=_details(report, stations),
    )
    return report


def field_precision_for_operator(
    store: IncidentStore,
    *,
    actor: str,
    settings: PrecisionConfig,
    days: int | None = None,
    tz: str = "UTC",
    known_stations: Collection[str] = (),
    now: datetime | None = None,
) -> FieldPrecision:
    """Every station's field precision, for the deployment's operator on the server
    (`raksha report precision`); `actor` names them in the audit entry."""
    n = settings.days if days is None else days
    raw = _counts(store, n, tz, None, now)
    report = FieldPrecision.of(
        raw, settings, days_back=n, station=None, station_choices=known_stations
    )
    AuditLog(store.engine).append(actor, AUDIT_ACTION, details=_details(report, None))
    return report
