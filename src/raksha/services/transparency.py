"""The transparency pack's figures, from the live config and the store (`raksha report
transparency`; rendered by `raksha.services.transparency_render`; docs/transparency.md).

    pack = transparency_pack(cfg, store, days=365)
    pack.incidents.camera_total.dismissed, pack.retention.unblurs, pack.gaps

Every figure here is read from one place and nowhere else:

* what is tracked: the live `expression.model` and `distress:` settings (`cfg.distress`);
* where cameras are: `hotspots:` and `cameras:`, each hotspot's station by the same routing
  the pipeline uses (jurisdiction polygons, else the nearest station);
* who can see what: `raksha.auth.access.POLICIES`, and the users per role in the store;
* retention: `evidence:` and, over the period, the audit log's `evidence.purged`,
  `evidence.view`, `evidence.unblur`, `evidence.exported` and hold entries, and the legal
  holds in force now (`raksha.store.holds`);
* accuracy: a results file of `raksha eval expression --json` when one is given, and the
  field precision of the period (`raksha.store.precision.precision_counts`);
* incidents: `raksha.store.transparency.monthly_counts` (one query);
* the DPIA/FRIA sections: the values above and the optional `transparency:` section; what
  is missing is named as a gap, never filled in with a guess.

The period is the last `days` local days of `cfg.timezone`, today included (as the
statistics page counts them). Nothing here prints; `transparency_for_operator` appends one
audit entry `report.transparency`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from raksha.audit.log import AuditLog
from raksha.auth.access import POLICIES, Rule
from raksha.auth.roles import Role
from raksha.auth.users import UserStore
from raksha.config import RunConfig
from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import ConfigError, RakshaError, message_of
from raksha.geo.routing import Router
from raksha.incidents.model import Origin, utcnow
from raksha.services.errors import Invalid
from raksha.services.precision import needs_review
from raksha.services.stats import MAX_DAYS, Share, period
from raksha.site.config import HotspotConfig
from raksha.store import holds
from raksha.store.precision import Tally, precision_counts
from raksha.store.repository import IncidentStore
from raksha.store.serialize import iso
from raksha.store.transparency import MonthCounts, monthly_counts

__all__ = [
    "AUDIT_ACTION",
    "DEFAULT_DAYS",
    "Access",
    "Accuracy",
    "DatasetAccuracy",
    "DpiaSection",
    "HotspotPlace",
    "IncidentRow",
    "Incidents",
    "Retention",
    "Setting",
    "Tracking",
    "TransparencyPack",
    "read_eval_results",
    "transparency_for_operator",
    "transparency_pack",
]

AUDIT_ACTION = "report.transparency"
DEFAULT_DAYS = 365
#: The audit actions the retention section counts.
EVIDENCE_ACTIONS = (
    "evidence.purged",
    "evidence.view",
    "evidence.unblur",
    "evidence.exported",
    "evidence.hold_placed",
    "evidence.hold_lifted",
)

NOT_ENABLED = "not enabled"


@dataclass(frozen=True, slots=True)
class Setting:
    """One live setting: its config key, its value, what it does."""

    key: str
    value: str | float | int | bool
    meaning: str


@dataclass(frozen=True, slots=True)
class Tracking:
    """What is tracked and how (section 1)."""

    model: str
    #: The expression classes a face is read as.
    classes: tuple[str, ...]
    #: Each class's weight in the distress evidence (0: not counted).
    weights: dict[str, float]
    #: Thresholds and timing of the decision.
    decision: tuple[Setting, ...]
    #: Face-quality gates.
    quality: tuple[Setting, ...]
    relative_on: bool
    #: The person-relative signal's settings.
    relative: tuple[Setting, ...]
    #: What is kept of an incident (clips, blurring).
    evidence: tuple[Setting, ...]
    #: The shadow model or thresholds, when configured ("not enabled" otherwise).
    shadow: str
    does: tuple[str, ...]
    does_not: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CameraPlace:
    id: str
    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class HotspotPlace:
    """A place cameras watch (section 2)."""

    id: str
    name: str
    lat: float
    lon: float
    #: The station its incidents go to (None: no station configured).
    station: str | None
    station_name: str | None
    purpose: str | None
    legal_basis: str | None
    cameras: tuple[CameraPlace, ...]

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class AccessRule:
    rule: str
    meaning: str
    #: The roles the rule lets in (empty: no login, see `meaning`).
    roles: tuple[str, ...]
    station_scoped: bool


@dataclass(frozen=True, slots=True)
class RoleUsers:
    role: str
    station_bound: bool
    active: int
    disabled: int


@dataclass(frozen=True, slots=True)
class Access:
    """Who can see what (section 3)."""

    roles: tuple[str, ...]
    rules: tuple[AccessRule, ...]
    users: tuple[RoleUsers, ...]
    station_scoping: str


@dataclass(frozen=True, slots=True)
class Retention:
    """Retention and deletion (section 4); counts over the period, holds now."""

    retention_days: int
    encrypt: bool
    #: Seconds between two automatic purges; 0: off.
    purge_every_s: float
    clip_before_s: float
    clip_after_s: float
    #: `evidence.purged` entries (one per incident whose files were deleted).
    purges: int
    files_deleted: int
    bytes_deleted: int
    holds_in_force: int
    holds_placed: int
    holds_lifted: int
    views: int
    unblurs: int
    exports: int


@dataclass(frozen=True, slots=True)
class DatasetAccuracy:
    """One dataset's figures from a results file of `raksha eval expression --json`."""

    dataset: str
    model: str | None
    n: int | None
    accuracy: float | None
    accuracy_ci: tuple[float, float] | None
    #: Fear and sadness pooled (the file's `distress_recall_pooled`).
    distress_recall: float | None
    distress_recall_ci: tuple[float, float] | None
    neutral_as_distress: float | None
    neutral_as_distress_ci: tuple[float, float] | None
    interval_method: str | None


@dataclass(frozen=True, slots=True)
class PrecisionFigure:
    """Field precision of one group: real of judged, with the 95 % Wilson interval."""

    key: str
    station: str | None
    real: int
    dismissed: int
    pending: int
    precision: float | None
    low: float | None
    high: float | None
    review: bool = False

    @property
    def judged(self) -> int:
        return self.real + self.dismissed

    @classmethod
    def of(
        cls, key: str, t: Tally, station: str | None = None, review: bool = False
    ) -> PrecisionFigure:
        share = Share(t.real, t.judged)
        return cls(
            key, station, t.real, t.dismissed, t.pending, share.value, share.low, share.high, review
        )


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Measured accuracy (section 5)."""

    live_model: str
    #: The results file read (None: none given).
    eval_source: str | None
    datasets: tuple[DatasetAccuracy, ...]
    floor: float
    min_judged: int
    overall: PrecisionFigure
    stations: tuple[PrecisionFigure, ...]
    cameras: tuple[PrecisionFigure, ...]


@dataclass(frozen=True, slots=True)
class IncidentRow:
    station: str
    month: str
    origin: str
    opened: int
    confirmed: int
    dispatched: int
    resolved: int
    dismissed: int
    open: int

    @classmethod
    def of(cls, station: str, month: str, origin: str, c: MonthCounts) -> IncidentRow:
        return cls(
            station,
            month,
            origin,
            c.opened,
            c.confirmed,
            c.dispatched,
            c.resolved,
            c.dismissed,
            c.open,
        )


@dataclass(frozen=True, slots=True)
class Incidents:
    """Incidents and outcomes per station and local month (section 6)."""

    #: Camera incidents per (station, month), sorted.
    camera: tuple[IncidentRow, ...]
    #: SOS incidents per (station, month), sorted.
    sos: tuple[IncidentRow, ...]
    camera_total: IncidentRow
    sos_total: IncidentRow


@dataclass(frozen=True, slots=True)
class DpiaSection:
    key: str
    title: str
    statements: tuple[str, ...]
    gaps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Contacts:
    operator: str | None
    contact: str | None
    dpo_contact: str | None
    complaint_url: str | None
    necessity: str | None
    dpia_reference: str | None


@dataclass(frozen=True, slots=True)
class TransparencyPack:
    """Every figure of the pack (see the module's docstring)."""

    generated_at: datetime
    days: int
    since: datetime
    until: datetime
    tz: str
    contacts: Contacts
    tracking: Tracking
    places: tuple[HotspotPlace, ...]
    access: Access
    retention: Retention
    accuracy: Accuracy
    incidents: Incidents
    #: Watchlist use: "not enabled" unless the config has a watchlist.
    watchlist: str
    dpia: tuple[DpiaSection, ...]
    #: Every gap named in the pack, once, in the order found.
    gaps: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"format": "raksha-transparency-1", **_jsonable(asdict(self))}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---- section 1: what is tracked ---------------------------------------------------------------


def _tracking(cfg: RunConfig) -> Tracking:
    d = cfg.distress
    ev = cfg.evidence
    decision = (
        Setting("distress.enter_threshold", d.enter_threshold, "an event may open at this score"),
        Setting("distress.exit_threshold", d.exit_threshold, "an event closes below this score"),
        Setting("distress.min_duration_s", d.min_duration_s, "seconds at or above the entry level"),
        Setting(
            "distress.confirm_frames",
            d.confirm_frames,
            "consecutive frames at or above the entry level, so one odd frame never alerts",
        ),
        Setting("distress.exit_hold_s", d.exit_hold_s, "seconds below the exit level to close"),
        Setting("distress.half_life_s", d.half_life_s, "smoothing half-life of the score (s)"),
        Setting("distress.cooldown_s", d.cooldown_s, "seconds before the same person may alert"),
        Setting("distress.max_gap_s", d.max_gap_s, "a person unseen this long is forgotten"),
    )
    quality = (
        Setting("distress.min_face_px", d.min_face_px, "smaller faces give no evidence (px)"),
        Setting("distress.full_face_px", d.full_face_px, "faces this large count in full (px)"),
        Setting(
            "distress.min_detector_score", d.min_detector_score, "less certain faces are ignored"
        ),
        Setting("distress.min_sharpness", d.min_sharpness, "blurrier faces give no evidence"),
        Setting("distress.full_sharpness", d.full_sharpness, "sharper faces count in full"),
    )
    relative = (
        Setting("distress.relative", d.relative, "compare each person with their own baseline"),
        Setting("distress.relative_gain", d.relative_gain, "weight of a rise above the baseline"),
        Setting("distress.baseline_s", d.baseline_s, "seconds to learn the person's baseline"),
        Setting(
            "distress.baseline_down_half_life_s",
            d.baseline_down_half_life_s,
            "how fast the baseline follows a calmer face (s)",
        ),
        Setting(
            "distress.baseline_up_half_life_s",
            d.baseline_up_half_life_s,
            "how slowly the baseline follows a more distressed face (s)",
        ),
        Setting(
            "distress.absolute_weight",
            d.absolute_weight,
            "weight of the face's own level when the relative signal is on",
        ),
    )
    evidence = (
        Setting("evidence.clip_before_s", ev.clip_before_s, "video kept before the decision (s)"),
        Setting("evidence.clip_after_s", ev.clip_after_s, "video kept after the decision (s)"),
        Setting("evidence.blur_expand", ev.blur_expand, "margin of the blur over other faces"),
    )
    weights = {c: float(d.weights.get(c, 0.0)) for c in EXPRESSION_CLASSES}
    counted = ", ".join(f"{c} x{w:g}" for c, w in weights.items() if w > 0)
    if cfg.shadow is None:
        shadow = NOT_ENABLED
    else:
        changed = ", ".join(f"{k}={v}" for k, v in sorted(cfg.shadow.distress.items()))
        shadow = (
            f"model {cfg.shadow.model or cfg.expression.model}"
            + (f" with {changed}" if changed else "")
            + ": stored for comparison only, never alerts"
        )
    clips = ev.clip_before_s > 0 or ev.clip_after_s > 0
    does = (
        f"finds faces in the video of {sum(c.enabled for c in cfg.cameras)} enabled camera(s) "
        f"and reads each face's expression with the model {cfg.expression.model}",
        f"scores distress per person over time from the classes {counted}, and raises an "
        f"incident when the score stays at or above {d.enter_threshold:g} for "
        f"{d.min_duration_s:g} s",
        "stores, for an incident only, a crop of the person's face and the frame with every "
        "other face blurred"
        + (
            f", and a clip of {ev.clip_before_s:g} s before to {ev.clip_after_s:g} s after "
            "with every other face blurred"
            if clips
            else ""
        ),
        "routes the incident to the police station responsible for the place; an officer "
        "looks at it and confirms or dismisses it",
    )
    does_not = (
        (
            "does not identify anyone: there is no face recognition and no name is attached to "
            "a face"
            if _watchlist(cfg) == NOT_ENABLED
            else "does not identify anyone except people on the authorised watchlist, and only "
            "on the authorised cameras while an authorisation is in force"
        ),
        "does not match faces against a watchlist"
        + ("" if _watchlist(cfg) == NOT_ENABLED else " other than the configured one"),
        "does not keep video of people passing by: frames without an incident are not stored",
        "does not send anyone on its own: an officer confirms an incident before a unit can be "
        "dispatched",
    )
    return Tracking(
        model=cfg.expression.model,
        classes=tuple(EXPRESSION_CLASSES),
        weights=weights,
        decision=decision,
        quality=quality,
        relative_on=d.relative,
        relative=relative,
        evidence=evidence,
        shadow=shadow,
        does=does,
        does_not=does_not,
    )


def _watchlist(cfg: RunConfig) -> str:
    """ "not enabled": the config has no watchlist section (none exists yet)."""
    section = getattr(cfg, "watchlist", None)
    if section is None:
        return NOT_ENABLED
    auths = ", ".join(
        f"{a.id} (by {a.authorised_by}; cameras {', '.join(a.cameras)}; "
        f"{a.start.isoformat()} to {a.end.isoformat()}; at most {a.max_list_size} people)"
        for a in section.authorisations
    )
    return (
        f"enabled: threshold {section.threshold:g}, {section.votes.k} of {section.votes.n} "
        f"faces of a track, false-match ceiling {section.fmr_ceiling:g}, every match confirmed "
        f"by two officers; authorisations: {auths or 'none'}"
    )


# ---- section 2: where the cameras are ---------------------------------------------------------


def _station_of(cfg: RunConfig) -> Callable[[HotspotConfig], str | None]:
    try:
        router = Router.from_site(cfg)
    except ConfigError:
        return lambda _h: None
    return lambda h: router.route(h.lat, h.lon).station_id


def _places(cfg: RunConfig) -> tuple[HotspotPlace, ...]:
    station_of = _station_of(cfg)
    names = {s.id: s.name for s in cfg.stations}
    out = []
    for h in cfg.hotspots:
        station = station_of(h)
        cams = tuple(CameraPlace(c.id, c.name, c.enabled) for c in cfg.cameras if c.hotspot == h.id)
        out.append(
            HotspotPlace(
                id=h.id,
                name=h.name,
                lat=h.lat,
                lon=h.lon,
                station=station,
                station_name=(names.get(station) or None) if station else None,
                purpose=h.purpose,
                legal_basis=h.legal_basis,
                cameras=cams,
            )
        )
    return tuple(out)


# ---- section 3: who can see what -------------------------------------------------------------

_RULE_MEANING: dict[Rule, str] = {
    Rule.PUBLIC: "open without login (health check, the login page)",
    Rule.LOGGED_IN: "any logged-in user: log out, see who they are",
    Rule.INCIDENTS_READ: "see incidents",
    Rule.INCIDENTS_ACT: "acknowledge, confirm, dispatch, dismiss, resolve incidents",
    Rule.INCIDENTS_EXPORT: "statistics, reports and case exports",
    Rule.EVIDENCE_VIEW: "view evidence (other faces blurred)",
    Rule.EVIDENCE_UNBLUR: "view unblurred evidence, with a stated reason",
    Rule.EVIDENCE_HOLD: "place or lift a legal hold",
    Rule.EVENTS: "the live stream of incident changes",
    Rule.CAMERAS_READ: "see cameras and their status",
    Rule.AUDIT_READ: "read and verify the audit log",
    Rule.USERS_ADMIN: "manage users",
    Rule.USERS_UNLOCK: "unlock a throttled officer's login",
    Rule.WATCHLIST: "see and decide face watchlist matches (two officers confirm each)",
    Rule.METRICS: "service metrics",
    Rule.DEVICE: "a patrol unit's phone or an SOS sender, with its own device token",
}


def _access(store: IncidentStore) -> Access:
    roles = tuple(r.value for r in Role)
    rules = tuple(
        AccessRule(
            rule=rule.value,
            meaning=_RULE_MEANING.get(rule, rule.value.replace("_", " ")),
            roles=tuple(r.value for r in Role if r in policy.roles),
            station_scoped=policy.station_scoped,
        )
        for rule, policy in POLICIES.items()
    )
    users = UserStore(store.engine).list()
    per_role = tuple(
        RoleUsers(
            role=r.value,
            station_bound=r.station_bound,
            active=sum(1 for u in users if u.role is r and not u.disabled),
            disabled=sum(1 for u in users if u.role is r and u.disabled),
        )
        for r in Role
    )
    bound = ", ".join(r.value for r in Role if r.station_bound)
    scoping = (
        f"{bound} work for one station and reach only that station's incidents, evidence and "
        "cameras (anything else answers as if it did not exist); the other roles are not bound "
        "to a station"
    )
    return Access(roles=roles, rules=rules, users=per_role, station_scoping=scoping)


# ---- section 4: retention --------------------------------------------------------------------


def _retention(cfg: RunConfig, store: IncidentStore, since: datetime, until: datetime) -> Retention:
    log = AuditLog(store.engine)
    counts = log.tally(EVIDENCE_ACTIONS, since=since, until=until)
    files = 0
    size = 0
    for entry in log.between("evidence.purged", since=since, until=until):
        files += _int(entry.details.get("files"))
        size += _int(entry.details.get("bytes"))
    ev = cfg.evidence
    return Retention(
        retention_days=ev.retention_days,
        encrypt=ev.encrypt,
        purge_every_s=ev.purge_every_s,
        clip_before_s=ev.clip_before_s,
        clip_after_s=ev.clip_after_s,
        purges=counts["evidence.purged"],
        files_deleted=files,
        bytes_deleted=size,
        holds_in_force=len(holds.in_force(store.engine)),
        holds_placed=counts["evidence.hold_placed"],
        holds_lifted=counts["evidence.hold_lifted"],
        views=counts["evidence.view"],
        unblurs=counts["evidence.unblur"],
        exports=counts["evidence.exported"],
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# ---- section 5: accuracy ---------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _ci(intervals: Any, key: str) -> tuple[float, float] | None:
    if not isinstance(intervals, dict):
        return None
    pair = intervals.get(key)
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return None
    low, high = _num(pair[0]), _num(pair[1])
    return None if low is None or high is None else (low, high)


def _dataset(name: str, doc: Mapping[str, Any]) -> DatasetAccuracy:
    n = doc.get("n")
    intervals = doc.get("intervals")
    method = doc.get("interval_method")
    model = doc.get("model")
    return DatasetAccuracy(
        dataset=name,
        model=model if isinstance(model, str) else None,
        n=n if isinstance(n, int) and not isinstance(n, bool) else None,
        accuracy=_num(doc.get("accuracy")),
        accuracy_ci=_ci(intervals, "accuracy"),
        distress_recall=_num(doc.get("distress_recall_pooled")),
        distress_recall_ci=_ci(intervals, "distress"),
        neutral_as_distress=_num(doc.get("neutral_as_distress")),
        neutral_as_distress_ci=_ci(intervals, "neutral_as_distress"),
        interval_method=method if isinstance(method, str) else None,
    )


def read_eval_results(path: Path) -> tuple[DatasetAccuracy, ...]:
    """The per-dataset figures of a `raksha eval expression --json` file (one dataset, or
    `{"datasets": {...}}` for several); RakshaError naming the file when it cannot be read
    or is not such a file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RakshaError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RakshaError(f"{path} is not JSON: {message_of(exc)}") from None
    if isinstance(doc, dict) and isinstance(doc.get("datasets"), dict):
        items = [(str(k), v) for k, v in doc["datasets"].items() if isinstance(v, dict)]
    elif isinstance(doc, dict) and "accuracy" in doc:
        where = doc.get("dataset")
        name = Path(where).name if isinstance(where, str) and where else path.stem
        items = [(name, doc)]
    else:
        items = []
    if not items:
        raise RakshaError(
            f"{path} is not a results file of `raksha eval expression --json` "
            "(no accuracy and no datasets)"
        )
    return tuple(_dataset(name, d) for name, d in items)


def _accuracy(
    cfg: RunConfig,
    store: IncidentStore,
    since: datetime,
    until: datetime,
    eval_results: tuple[DatasetAccuracy, ...],
    eval_source: str | None,
) -> Accuracy:
    raw = precision_counts(store.engine, since=since, until=until, tz=cfg.timezone)
    settings = cfg.precision
    return Accuracy(
        live_model=cfg.expression.model,
        eval_source=eval_source,
        datasets=eval_results,
        floor=settings.floor,
        min_judged=settings.min_judged,
        overall=PrecisionFigure.of("all", raw.overall),
        stations=tuple(PrecisionFigure.of(s, t, s) for s, t in raw.stations.items()),
        cameras=tuple(
            PrecisionFigure.of(c, t, raw.camera_stations.get(c), needs_review(t, settings))
            for c, t in raw.cameras.items()
        ),
    )


# ---- section 6: incidents --------------------------------------------------------------------


def _incidents(cfg: RunConfig, store: IncidentStore, since: datetime, until: datetime) -> Incidents:
    counts = monthly_counts(store.engine, since=since, until=until, tz=cfg.timezone)
    by_origin: dict[str, list[IncidentRow]] = {Origin.CAMERA.value: [], Origin.SOS.value: []}
    for (station, month, origin), c in counts.rows.items():
        by_origin.setdefault(origin, []).append(IncidentRow.of(station, month, origin, c))
    cam, sos = Origin.CAMERA.value, Origin.SOS.value
    return Incidents(
        camera=tuple(by_origin[cam]),
        sos=tuple(by_origin[sos]),
        camera_total=IncidentRow.of("all", "all", cam, counts.total(cam)),
        sos_total=IncidentRow.of("all", "all", sos, counts.total(sos)),
    )


# ---- section 8: DPIA / FRIA ------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f}%"


def _dpia(
    cfg: RunConfig,
    contacts: Contacts,
    tracking: Tracking,
    places: Sequence[HotspotPlace],
    retention: Retention,
    accuracy: Accuracy,
    incidents: Incidents,
    watchlist: str,
) -> tuple[DpiaSection, ...]:
    sections: list[DpiaSection] = []
    t_missing = "not stated in the config: transparency"
    no_section = cfg.transparency is None

    def missing(name: str) -> str:
        if no_section:
            return f"{t_missing} section is absent ({name} not stated)"
        return f"{t_missing}.{name} is not set"

    # Necessity
    st: list[str] = []
    gaps: list[str] = []
    if contacts.necessity:
        st.append(f"The operator states: {contacts.necessity}")
    else:
        gaps.append(missing("necessity"))
    for p in places:
        if p.purpose:
            st.append(f"Hotspot {p.label}: {p.purpose}")
        else:
            gaps.append(f"not stated in the config: hotspot {p.id} has no purpose")
    if not places:
        gaps.append("no hotspots are configured")
    sections.append(DpiaSection("necessity", "Necessity", tuple(st), tuple(gaps)))

    # Proportionality
    n_cams = sum(len(p.cameras) for p in places)
    st = [
        f"{n_cams} camera(s) at {len(places)} hotspot(s); only faces are read, and only "
        "expression classes are kept with an incident",
        "frames without an incident are not stored; an incident keeps a face crop, a frame "
        "with every other face blurred"
        + (
            f" and a {retention.clip_before_s + retention.clip_after_s:g} s clip"
            if retention.clip_before_s or retention.clip_after_s
            else ""
        ),
        f"evidence is deleted after {retention.retention_days} days unless the case is still "
        "being worked or a legal hold is in force",
    ]
    gaps = []
    for p in places:
        if p.legal_basis:
            st.append(f"Legal basis at {p.label}: {p.legal_basis}")
        else:
            gaps.append(f"not stated in the config: hotspot {p.id} has no legal basis")
    sections.append(DpiaSection("proportionality", "Proportionality", tuple(st), tuple(gaps)))

    # Risks
    flagged = [c.key for c in accuracy.cameras if c.review]
    st = [
        "a reading of an expression is not a fact about a person: faces of people the model "
        "was not trained on may be read as more or less distressed than they are",
        "a false alarm brings police to a person who did not need them; "
        f"{incidents.camera_total.dismissed} camera incident(s) were dismissed as false alarms "
        "in the period",
        "a missed person in distress gets no help from the camera; the system does not replace "
        "patrols or the 112 number",
        "pictures of people are stored for incidents; access to them is a risk to privacy",
    ]
    gaps = []
    if flagged:
        st.append("cameras below the field-precision floor, to be reviewed: " + ", ".join(flagged))
    sections.append(DpiaSection("risks", "Risks", tuple(st), tuple(gaps)))

    # Safeguards
    st = [
        "every view, unblurred view, export, hold and deletion of evidence is written to an "
        "append-only, hash-chained audit log; in the period: "
        f"{retention.views} view(s), {retention.unblurs} unblurred view(s), "
        f"{retention.exports} export(s), {retention.purges} purge(s) deleting "
        f"{retention.files_deleted} file(s)",
        "officers of one station reach only that station's incidents and evidence; unblurred "
        "evidence is for supervisors and the control room, with a stated reason",
        f"legal holds in force now: {retention.holds_in_force}",
    ]
    gaps = []
    if retention.encrypt:
        st.append("evidence is encrypted at rest (evidence.encrypt: true)")
    else:
        gaps.append("evidence is not encrypted at rest (evidence.encrypt: false)")
    if retention.purge_every_s > 0:
        st.append(f"the retention purge runs every {retention.purge_every_s:g} s")
    else:
        gaps.append(
            "the automatic retention purge is off (evidence.purge_every_s: 0): deletion relies "
            "on someone running `raksha evidence purge`"
        )
    sections.append(DpiaSection("safeguards", "Safeguards", tuple(st), tuple(gaps)))

    # Human oversight
    c = incidents.camera_total
    st = [
        "no unit is dispatched without an officer's confirmation of the incident",
        f"of {c.opened} camera incident(s) in the period, officers confirmed "
        f"{c.confirmed + c.dispatched + c.resolved} (still confirmed {c.confirmed}, dispatched "
        f"{c.dispatched}, resolved {c.resolved}), dismissed {c.dismissed}; {c.open} not yet "
        "judged",
        f"an unacknowledged incident is escalated after {cfg.escalation.acknowledge_s:g} s "
        f"({', '.join(cfg.escalation.steps) or 'no steps'})",
        f"watchlist: {watchlist}",
    ]
    sections.append(DpiaSection("oversight", "Human oversight", tuple(st), ()))

    # Accuracy and bias
    st = []
    gaps = []
    if accuracy.datasets:
        for d in accuracy.datasets:
            st.append(
                f"{d.dataset} ({d.model or 'model not named'}, n={d.n if d.n is not None else '-'}"
                f"): accuracy {_pct(d.accuracy)}, distress recall {_pct(d.distress_recall)}, "
                f"neutral read as distress {_pct(d.neutral_as_distress)}"
            )
            if d.model is not None and d.model != accuracy.live_model:
                gaps.append(
                    f"the measured results are of model {d.model}, not of the live model "
                    f"{accuracy.live_model}"
                )
    else:
        gaps.append(
            f"no measured accuracy was supplied for the live model {accuracy.live_model} "
            "(give --eval-json with the output of `raksha eval expression --json`)"
        )
    o = accuracy.overall
    if o.judged:
        st.append(
            f"field precision: {o.real} of {o.judged} judged camera incidents were real "
            f"({_pct(o.precision)}, 95% interval {_pct(o.low)} to {_pct(o.high)})"
        )
    else:
        gaps.append("no camera incident was judged by officers in the period: no field precision")
    sections.append(DpiaSection("accuracy", "Accuracy and bias", tuple(st), tuple(gaps)))

    # Data subjects' rights
    st = []
    gaps = []
    if contacts.complaint_url:
        st.append(f"complaints: {contacts.complaint_url}")
    else:
        gaps.append(missing("complaint_url"))
    if contacts.dpo_contact:
        st.append(f"data-protection officer: {contacts.dpo_contact}")
    else:
        gaps.append(missing("dpo_contact"))
    st.append(
        f"a person's pictures are kept at most {retention.retention_days} days unless a case "
        "or a legal hold needs them; the record of who saw them stays in the audit log"
    )
    sections.append(DpiaSection("rights", "Data subjects' rights", tuple(st), tuple(gaps)))

    # Contact
    st = []
    gaps = []
    for name, value, label in (
        ("operator", contacts.operator, "operator"),
        ("contact", contacts.contact, "contact"),
        ("dpia_reference", contacts.dpia_reference, "DPIA reference"),
    ):
        if value:
            st.append(f"{label}: {value}")
        else:
            gaps.append(missing(name))
    sections.append(DpiaSection("contact", "Contact", tuple(st), tuple(gaps)))
    return tuple(sections)


# ---- the pack --------------------------------------------------------------------------------


def transparency_pack(
    cfg: RunConfig,
    store: IncidentStore,
    *,
    days: int = DEFAULT_DAYS,
    now: datetime | None = None,
    eval_results: tuple[DatasetAccuracy, ...] = (),
    eval_source: str | None = None,
) -> TransparencyPack:
    """Every figure of the pack over the last `days` local days of `cfg.timezone`
    (`Invalid` outside 1..366)."""
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(f"--days must be between 1 and {MAX_DAYS}")
    try:
        since, until = period(days, cfg.timezone, now)
    except ValueError as exc:
        raise Invalid(message_of(exc)) from None
    t = cfg.transparency
    contacts = Contacts(
        operator=t.operator if t else None,
        contact=t.contact if t else None,
        dpo_contact=t.dpo_contact if t else None,
        complaint_url=t.complaint_url if t else None,
        necessity=t.necessity if t else None,
        dpia_reference=t.dpia_reference if t else None,
    )
    tracking = _tracking(cfg)
    places = _places(cfg)
    access = _access(store)
    retention = _retention(cfg, store, since, until)
    accuracy = _accuracy(cfg, store, since, until, eval_results, eval_source)
    incidents = _incidents(cfg, store, since, until)
    watchlist = _watchlist(cfg)
    dpia = _dpia(cfg, contacts, tracking, places, retention, accuracy, incidents, watchlist)
    gaps: list[str] = []
    for section in dpia:
        for gap in section.gaps:
            if gap not in gaps:
                gaps.append(gap)
    return TransparencyPack(
        generated_at=now or utcnow(),
        days=days,
        since=since,
        until=until,
        tz=cfg.timezone,
        contacts=contacts,
        tracking=tracking,
        places=places,
        access=access,
        retention=retention,
        accuracy=accuracy,
        incidents=incidents,
        watchlist=watchlist,
        dpia=dpia,
        gaps=tuple(gaps),
    )


def transparency_for_operator(
    cfg: RunConfig,
    store: IncidentStore,
    *,
    actor: str,
    days: int = DEFAULT_DAYS,
    now: datetime | None = None,
    eval_results: tuple[DatasetAccuracy, ...] = (),
    eval_source: str | None = None,
) -> TransparencyPack:
    """The pack for the deployment's operator on the server (`raksha report transparency`),
    audited as `report.transparency` under `actor` after the figures were read."""
    pack = transparency_pack(
        cfg, store, days=days, now=now, eval_results=eval_results, eval_source=eval_source
    )
    AuditLog(store.engine).append(
        actor,
        AUDIT_ACTION,
        details={
            "since": iso(pack.since),
            "until": iso(pack.until),
            "tz": pack.tz,
            "gaps": len(pack.gaps),
        },
    )
    return pack
