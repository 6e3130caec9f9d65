"""Request and response bodies of the JSON API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: What an officer may ask for (the buttons).
ActionName = Literal[
    "acknowledge", "confirm", "dispatch", "dismiss", "resolve", "escalate", "on_scene"
]
#: Every step a history may hold (a unit's acknowledgement, a panic signal, the timer).
HistoryActionName = Literal[
    "acknowledge",
    "confirm",
    "dispatch",
    "dismiss",
    "resolve",
    "escalate",
    "on_scene",
    "unit_ack",
    "sos_join",
    "sos_cancel",
    "reassign",
]
#: Why an officer dismissed an incident (`raksha.incidents.model.DismissReason`).
DismissReasonName = Literal["no_distress", "not_a_person", "duplicate", "other"]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(
        None, max_length=16, description="The 6-digit code (admin, supervisor, control room)."
    )


class UserOut(BaseModel):
    username: str
    role: str
    station_id: str | None
    disabled: bool = False
    created_at: str | None = None
    last_login_at: str | None = None


class LoginOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send it as X-CSRF-Token on every POST.")
    expires_at: str


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MeOut(BaseModel):
    user: UserOut
    csrf_token: str | None


class OkOut(BaseModel):
    ok: bool = True


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: ActionName
    note: str | None = Field(None, max_length=2000)
    unit_id: str | None = Field(None, max_length=128)
    reason: DismissReasonName | None = Field(
        None, description="Why it is dismissed: required with dismiss, refused with the others."
    )
    expected_version: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Refuse (409) if the incident changed since."
    )


StateName = Literal["NEW", "ACKNOWLEDGED", "CONFIRMED", "DISPATCHED", "RESOLVED", "DISMISSED"]


class UnitOut(BaseModel):
    """A patrol unit the incident was routed to, nearest first."""

    id: str
    kind: str | None = None
    station_id: str | None = None
    distance_m: float | None = Field(None, description="From the camera's hotspot, metres.")


class RouteOut(BaseModel):
    """Where the incident was sent: the station and how it was chosen."""

    station_id: str
    station_name: str = ""
    method: str = Field(description="jurisdiction (inside its polygon) or nearest.")
    distance_m: float | None = Field(None, description="Hotspot to station, metres.")
    patrol_units: list[UnitOut] = Field(default_factory=list)


class EvidenceOut(BaseModel):
    n: int = Field(description="1-based; GET `url` for the image (blurred by default).")
    kind: str = Field(description="face or frame_blurred.")
    sha256: str = Field(description="Of the stored file; checked on every read.")
    bytes: int
    encrypted: bool
    url: str


class ModelOut(BaseModel):
    name: str
    sha256: str


class ActionRecordOut(BaseModel):
    action: HistoryActionName
    from_state: StateName
    to_state: StateName
    actor: str
    at: str | None
    note: str | None = None
    unit_id: str | None = None
    #: Dismissals only: why ("unspecified" for those recorded before reasons were asked).
    reason: DismissReasonName | Literal["unspecified"] | None = None


class DeliveryOut(BaseModel):
    channel: str
    state: str
    attempts: int


class IncidentOut(BaseModel):
    """One incident as an officer sees it: no file paths, no secrets."""

    id: str
    camera_id: str
    hotspot_id: str
    station_id: str
    state: StateName
    opened_at: str | None
    updated_at: str | None
    closed_at: str | None
    peak_distress: float = Field(description="0..1, the highest distress score of the event.")
    expression_at_peak: dict[str, float] = Field(description="The model's reading at the peak.")
    peak_absolute: float | None = Field(None, description="The expression's own evidence.")
    peak_relative: float | None = Field(None, description="The change from the person's usual.")
    baseline_at_peak: float | None = Field(None, description="The person's usual level then.")
    top_expression: str | None
    patrol_units: list[UnitOut]
    route: RouteOut | None
    evidence: list[EvidenceOut]
    track_id: int | None
    source_id: str
    event_start_s: float | None
    event_end_s: float | None
    model: ModelOut
    thresholds: dict[str, Any]
    version: int
    origin: Literal["camera", "sos"] = Field("camera", description="Who raised it.")
    priority: Literal["normal", "high"] = "normal"
    lat: float | None = None
    lon: float | None = None
    place: str = ""
    deadline_at: str | None = Field(None, description="When the running deadline passes.")
    deadline_kind: str | None = Field(None, description="acknowledge, dispatch or unit_ack.")
    escalation_level: int = 0
    unit_id: str | None = Field(None, description="The patrol unit it is dispatched to.")
    also_stations: list[str] = Field(default_factory=list, description="Escalated to.")
    allowed_actions: list[ActionName]
    actions: list[ActionRecordOut] | None = Field(None, description="History (one incident).")
    deliveries: list[DeliveryOut] | None = Field(None, description="Alert delivery per channel.")


class ActionOut(BaseModel):
    action: ActionRecordOut
    incident: IncidentOut


class IncidentList(BaseModel):
    incidents: list[IncidentOut]
    count: int


class CameraAlertOut(BaseModel):
    """A camera's open camera alert (`camera_health`): what is wrong and since when."""

    id: str
    #: video_loss, frozen, covered, moved, reconnect
    kind: str
    since: str
    message: str
    acknowledged_by: str | None = None
    cleared_at: str | None = None


class CameraOut(BaseModel):
    """A camera's status; `display_url` is masked (never a password, token or query secret)."""

    camera_id: str
    hotspot_id: str | None = None
    station_id: str | None = None
    display_url: str | None = None
    enabled: bool = True
    online: bool = False
    last_frame_at: str | None = None
    last_error: str | None = None
    updated_at: str | None = None
    analysed_fps: float | None = None
    frames_dropped: int | None = None
    p95_latency_ms: float | None = None
    #: The camera's oldest open camera alert (None: none).
    alert: CameraAlertOut | None = None
    name: str | None = None
    lat: float | None = None
    lon: float | None = None


class CameraList(BaseModel):
    cameras: list[CameraOut]


class PlaceOut(BaseModel):
    id: str
    name: str
    lat: float
    lon: float


class PatrolUnitOut(BaseModel):
    id: str
    kind: str
    station: str
    name: str
    lat: float
    lon: float


class MapOut(BaseModel):
    stations: list[PlaceOut]
    hotspots: list[PlaceOut]
    patrol_units: list[PatrolUnitOut]
    cameras: list[CameraOut]


class AuditList(BaseModel):
    entries: list[dict[str, Any]]


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head: dict[str, Any] = Field(description="Newest entry number and hash; keep a copy.")
    problems: list[dict[str, Any]] = Field(description="Where the chain breaks (seq, problem).")
    actions: dict[str, int] = Field(description="Entries per action in the verified chain.")
    recent: list[dict[str, Any]] = Field(description="The newest entries verified.")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=2, max_length=64)
    role: Literal["operator", "supervisor", "control_room", "auditor", "admin"]
    station_id: str | None = Field(None, max_length=128)
    password: str = Field(min_length=10, max_length=1024)


class UserList(BaseModel):
    users: list[UserOut]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
