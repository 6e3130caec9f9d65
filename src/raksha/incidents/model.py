"""Domain types for incidents: what the pipeline hands the store and what the store gives back.

Pure dataclasses, no I/O. Times are timezone-aware UTC `datetime`s; the store refuses naive
ones. The routing decision is a typed `Route` (`raksha.domain.routing`); the JSON-like fields
(`expression_at_peak`, `thresholds`) are plain dicts so that
any stage can fill them without importing another stage's types.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from raksha.domain.routing import Route, UnitRoute


class IncidentState(StrEnum):
    NEW = "NEW"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    CONFIRMED = "CONFIRMED"
    DISPATCHED = "DISPATCHED"
    RESOLVED = "RESOLVED"
    #: A false alarm.
    DISMISSED = "DISMISSED"

    @property
    def is_terminal(self) -> bool:
        return self in (IncidentState.RESOLVED, IncidentState.DISMISSED)


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    CONFIRM = "confirm"
    DISPATCH = "dispatch"
    DISMISS = "dismiss"
    RESOLVE = "resolve"
    #: Recorded in the history without changing the state (e.g. "nobody acknowledged in time").
    ESCALATE = "escalate"
    #: The dispatched unit reports it has arrived (the state stays DISPATCHED).
    ON_SCENE = "on_scene"
    #: The dispatched unit acknowledges its job card.
    UNIT_ACK = "unit_ack"
    #: A panic signal (SOS) joined the incident; a person's own "I am safe" was received.
    SOS_JOIN = "sos_join"
    SOS_CANCEL = "sos_cancel"
    #: The job went to another unit because the first did not acknowledge in time.
    REASSIGN = "reassign"


class DismissReason(StrEnum):
    """Why an officer dismissed an incident: what field precision counts the false alarms by."""

    #: A person was there, but not in distress (a laugh, a yawn, a squint in the sun).
    NO_DISTRESS = "no_distress"
    #: No person: a poster, a reflection, a mannequin.
    NOT_A_PERSON = "not_a_person"
    #: The same person and moment as another incident.
    DUPLICATE = "duplicate"
    OTHER = "other"


#: What a dismissal recorded before reasons were asked for (a NULL reason) reads as.
UNSPECIFIED_REASON = "unspecified"


class Origin(StrEnum):
    #: Raised by a camera's distress score.
    CAMERA = "camera"
    #: Raised by a person: a panic button, a 112 app, a phone.
    SOS = "sos"


class Priority(StrEnum):
    NORMAL = "normal"
    #: A person asked for help (SOS), or a camera incident near a recent SOS.
    HIGH = "high"


class EvidenceKind(StrEnum):
    #: A JPEG crop of the subject's face.
    FACE = "face"
    #: The full frame with every other face blurred.
    FRAME_BLURRED = "frame_blurred"
    #: A short video around the decision, every face but the subject's blurred.
    CLIP = "clip"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """One evidence file already on disk; `sha256` was computed when it was written."""

    kind: EvidenceKind
    path: str
    sha256: str
    bytes: int
    #: SHA-256 of the content (the plain JPEG or MP4 bytes), taken at capture; it stays the
    #: same when a key rotation re-encrypts the file (`sha256`, of the bytes on disk, does
    #: not). None for files recorded before it was kept.
    content_sha256: str | None = None

    def __post_init__(self) -> None:
        for digest in (self.sha256, self.content_sha256):
            if digest is None:
                continue
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"sha256 must be 64 lowercase hex digits, got {digest!r}")
        if self.bytes < 0:
            raise ValueError("bytes must be >= 0")


@dataclass(frozen=True, slots=True)
class NewIncident:
    """A distress event the pipeline wants stored as an incident.

    `id` may be chosen by the caller (e.g. to name the evidence folder before writing the
    files); by default a fresh UUID4 is used.

    `route` is the routing decision: the station, how it was chosen, and the nearest
    patrol units with their distances.

    `thresholds` holds the distress settings in force (e.g. `DistressConfig.model_dump()`).
    `person_key` identifies the person for merging re-detections (e.g. "<source>:<track>").
    `peak_absolute`, `peak_relative` and `baseline_at_peak` split the peak into the model's
    own reading and its rise above the person's baseline (see `DistressEvent`); None where
    the event did not have them (relative scoring off, baseline not yet learnt).
    """

    camera_id: str
    hotspot_id: str
    station_id: str
    peak_distress: float
    expression_at_peak: dict[str, float]
    model_name: str
    model_sha256: str
    thresholds: dict[str, Any]
    route: Route
    track_id: int | None = None
    source_id: str = ""
    event_start_s: float | None = None
    event_end_s: float | None = None
    person_key: str | None = None
    opened_at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)
    peak_absolute: float | None = None
    peak_relative: float | None = None
    baseline_at_peak: float | None = None
    #: Where it is (the hotspot's position for a camera; the sender's for an SOS).
    lat: float | None = None
    lon: float | None = None
    place: str = ""
    origin: Origin = Origin.CAMERA
    priority: Priority = Priority.NORMAL

    def __post_init__(self) -> None:
        if self.opened_at.tzinfo is None:
            raise ValueError("opened_at must be timezone-aware")
        if not 0.0 <= self.peak_distress <= 1.0:
            raise ValueError(f"peak_distress must be in [0,1], got {self.peak_distress}")
        for name in ("peak_absolute", "peak_relative", "baseline_at_peak"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0,1] or None, got {value}")

    @property
    def top_expression(self) -> str | None:
        return top_expression(self.expression_at_peak)

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON (for the spool that keeps it through a database outage)."""
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "hotspot_id": self.hotspot_id,
            "station_id": self.station_id,
            "peak_distress": self.peak_distress,
            "expression_at_peak": dict(self.expression_at_peak),
            "model_name": self.model_name,
            "model_sha256": self.model_sha256,
            "thresholds": self.thresholds,
            "route": self.route.to_json(),
            "track_id": self.track_id,
            "source_id": self.source_id,
            "event_start_s": self.event_start_s,
            "event_end_s": self.event_end_s,
            "person_key": self.person_key,
            "opened_at": self.opened_at.isoformat(),
            "peak_absolute": self.peak_absolute,
            "peak_relative": self.peak_relative,
            "baseline_at_peak": self.baseline_at_peak,
            "lat": self.lat,
            "lon": self.lon,
            "place": self.place,
            "origin": self.origin.value,
            "priority": self.priority.value,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> NewIncident:
        return NewIncident(
            id=str(d["id"]),
            camera_id=str(d["camera_id"]),
            hotspot_id=str(d["hotspot_id"]),
            station_id=str(d["station_id"]),
            peak_distress=float(d["peak_distress"]),
            expression_at_peak={str(k): float(v) for k, v in d["expression_at_peak"].items()},
            model_name=str(d["model_name"]),
            model_sha256=str(d["model_sha256"]),
            thresholds=dict(d["thresholds"]),
            route=Route.from_json(d["route"]),
            track_id=d.get("track_id"),
            source_id=str(d.get("source_id", "")),
            event_start_s=d.get("event_start_s"),
            event_end_s=d.get("event_end_s"),
            person_key=d.get("person_key"),
            opened_at=datetime.fromisoformat(d["opened_at"]),
            peak_absolute=d.get("peak_absolute"),
            peak_relative=d.get("peak_relative"),
            baseline_at_peak=d.get("baseline_at_peak"),
            lat=d.get("lat"),
            lon=d.get("lon"),
            place=str(d.get("place", "")),
            origin=Origin(d.get("origin", "camera")),
            priority=Priority(d.get("priority", "normal")),
        )


def top_expression(distribution: dict[str, float]) -> str | None:
    if not distribution:
        return None
    return max(distribution, key=lambda k: distribution[k])


#: What every alert says about itself: it is a prompt for a person, not a verdict.
ALERT_NOTE = "Automated distress alert: a human must look before anyone is dispatched."


@dataclass(frozen=True, slots=True)
class AlertPayload:
    """What an alert tells its receivers (a station's screen, a patrol unit's phone) about
    a new incident; channels wrap it in the document of `raksha.alerts.base`."""

    camera_id: str
    hotspot_id: str
    station_id: str
    opened_at: datetime
    peak_distress: float
    top_expression: str | None
    route: Route
    #: The expression's own evidence and the change from the person's usual reading (None
    #: where the event did not have them).
    peak_absolute: float | None = None
    peak_relative: float | None = None
    note: str = ALERT_NOTE
    origin: Origin = Origin.CAMERA
    priority: Priority = Priority.NORMAL
    lat: float | None = None
    lon: float | None = None
    place: str = ""
    actor: str = ""

    @staticmethod
    def of(new: NewIncident) -> AlertPayload:
        return AlertPayload(
            origin=new.origin,
            priority=new.priority,
            lat=new.lat,
            lon=new.lon,
            place=new.place,
            actor=f"camera:{new.camera_id}" if new.origin is Origin.CAMERA else new.source_id,
            camera_id=new.camera_id,
            hotspot_id=new.hotspot_id,
            station_id=new.station_id,
            opened_at=new.opened_at,
            peak_distress=new.peak_distress,
            top_expression=new.top_expression,
            route=new.route,
            peak_absolute=new.peak_absolute,
            peak_relative=new.peak_relative,
        )

    def to_json(self) -> dict[str, Any]:
        def r4(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            # The state-change fields every event carries (`raksha.incidents.events`).
            "event": "new",
            "seq": 1,
            "at": self.opened_at.isoformat(),
            "state": IncidentState.NEW.value,
            "actor": self.actor,
            "origin": self.origin.value,
            "priority": self.priority.value,
            "place": self.place or self.hotspot_id,
            "lat": None if self.lat is None else round(self.lat, 6),
            "lon": None if self.lon is None else round(self.lon, 6),
            "station_name": self.route.station_name,
            "unit": None,
            "escalation": None,
            "previous_alert": None,
            "camera_id": self.camera_id or None,
            "hotspot_id": self.hotspot_id or None,
            "station_id": self.station_id,
            "opened_at": self.opened_at.isoformat(),
            "peak_distress": round(self.peak_distress, 4),
            "peak_absolute": r4(self.peak_absolute),
            "peak_relative": r4(self.peak_relative),
            "top_expression": self.top_expression,
            "route": self.route.to_json(),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One step of an incident's history: who did what, when, and the state change."""

    action: Action
    from_state: IncidentState
    to_state: IncidentState
    actor: str
    at: datetime
    note: str | None = None
    unit_id: str | None = None
    incident_id: str = ""
    #: A dismissal's reason; None for other actions and for dismissals recorded before
    #: reasons were asked for (shown as UNSPECIFIED_REASON).
    reason: DismissReason | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """A stored incident with its evidence."""

    id: str
    camera_id: str
    hotspot_id: str
    station_id: str
    state: IncidentState
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    last_seen_at: datetime
    peak_distress: float
    expression_at_peak: dict[str, float]
    top_expression: str | None
    model_name: str
    model_sha256: str
    thresholds: dict[str, Any]
    #: None for a stored route that is not a route document (written by hand or by an old
    #: version): the incident still shows, without its route.
    route: Route | None
    track_id: int | None
    source_id: str
    event_start_s: float | None
    event_end_s: float | None
    person_key: str | None
    #: Bumped by every recorded action and every merge; for optimistic checks by clients.
    version: int
    evidence: tuple[EvidenceFile, ...] = ()
    #: The peak split into the model's own reading and the rise above the person's baseline
    #: (None on incidents stored before these were recorded, or without relative scoring).
    peak_absolute: float | None = None
    peak_relative: float | None = None
    baseline_at_peak: float | None = None
    origin: Origin = Origin.CAMERA
    priority: Priority = Priority.NORMAL
    lat: float | None = None
    lon: float | None = None
    place: str = ""
    #: The running deadline (what must happen by when) and the escalation step reached.
    deadline_at: datetime | None = None
    deadline_kind: str | None = None
    escalation_level: int = 0
    #: The patrol unit it is dispatched to.
    unit_id: str | None = None
    #: Further stations it was escalated to (they see it too).
    also_stations: tuple[str, ...] = ()

    @property
    def patrol_units(self) -> tuple[UnitRoute, ...]:
        return () if self.route is None else self.route.patrol_units


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera_id: str
    hotspot_id: str | None
    station_id: str | None
    #: The camera URL with any password masked; never the secret itself.
    display_url: str | None
    enabled: bool
    online: bool
    last_frame_at: datetime | None
    last_error: str | None
    updated_at: datetime
    health: CameraHealth | None = None


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """How a camera's analysis keeps up, as its worker last reported it."""

    #: Analysed frames per second since the previous report.
    analysed_fps: float
    #: Frames dropped (oldest first) because analysis fell behind, since the worker started.
    frames_dropped: int
    #: p95 of capture-to-score latency over the latest analysed frames (None: none yet).
    p95_latency_ms: float | None
    #: The highest distress score of any face since the previous report (None: no face);
    #: an SOS near this camera carries it.
    max_distress: float | None = None
