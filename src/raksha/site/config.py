"""Typed, frozen settings for the site part of `raksha run` (the YAML keys of issue 4).

Validators do no I/O. A station's `jurisdiction` may be inline GeoJSON (checked here) or a path
to a GeoJSON file, which `raksha.site.load.load_site` reads in a separate, explicit step.
Camera URLs may carry `${NAME}` placeholders filled from the environment or a secrets file
(see `raksha.site.secrets`); `repr`/`str` of every model show URLs masked by `raksha.redact`.

Cross-references are checked once the whole site is parsed: duplicate ids, a patrol unit at an
unknown station, a camera at an unknown hotspot. Each error names its field, e.g.
`cameras.2.hotspot: unknown hotspot 'charbag'; known hotspots: ...`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from raksha.geo.polygons import Area, area_from_geojson, normalize_geojson
from raksha.redact import mask_url

#: Ids appear in MQTT topics (`raksha/stations/<id>/incidents`) and URLs, so they may not
#: contain `/`, `\\`, `+`, `#` or control characters, nor start or end with a space.
#: Prefer lower-case words joined by `-` (e.g. `hazratganj`, `pink-scooter-07`).
ID_PATTERN = r"^[^/\\+#\s\x00-\x1f\x7f]([^/\\+#\x00-\x1f\x7f]{0,126}[^/\\+#\s\x00-\x1f\x7f])?$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]

#: Patrol unit kinds the demo and dashboard know; any lower-case word is accepted.
KNOWN_PATROL_KINDS = ("scooter", "motorcycle", "car", "van", "pink_booth", "foot", "bicycle")
PatrolKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_lat(value: float) -> float:
    if not math.isfinite(value) or not -90.0 <= value <= 90.0:
        raise ValueError(f"latitude must be between -90 and 90 degrees, got {value}")
    return value


def _check_lon(value: float) -> float:
    if not math.isfinite(value) or not -180.0 <= value <= 180.0:
        raise ValueError(f"longitude must be between -180 and 180 degrees, got {value}")
    return value


#: Degrees, checked with an error that says which bound was crossed.
Lat = Annotated[float, AfterValidator(_check_lat)]
Lon = Annotated[float, AfterValidator(_check_lon)]


def _tupled(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tupled(v) for v in value)
    return value


class Jurisdiction(_Frozen):
    """A checked GeoJSON Polygon or MultiPolygon ([longitude, latitude] positions)."""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: tuple[Any, ...]

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        geo = normalize_geojson(data)
        return {"type": geo["type"], "coordinates": _tupled(geo["coordinates"])}

    @model_validator(mode="after")
    def _check(self) -> Jurisdiction:
        area_from_geojson(self)
        return self

    def area(self) -> Area:
        return area_from_geojson(self)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        n = len(self.coordinates) if self.type == "MultiPolygon" else 1
        yield "type", self.type
        yield "polygons", n


def _coerce_jurisdiction(value: Any) -> Any:
    """Mapping -> checked `Jurisdiction` (clean one-line errors); string -> a file `Path`."""
    if value is None or isinstance(value, Jurisdiction | Path):
        return value
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("jurisdiction file name is empty")
        return Path(value)
    if isinstance(value, dict):
        geo = normalize_geojson(value)  # ValueError with a clear message
        area_from_geojson(geo)
        return Jurisdiction.model_construct(
            type=geo["type"], coordinates=_tupled(geo["coordinates"])
        )
    raise ValueError(
        "jurisdiction must be an inline GeoJSON Polygon/MultiPolygon or the path of a GeoJSON file"
    )


class StationConfig(_Frozen):
    id: Id
    name: str = ""
    lat: Lat
    lon: Lon
    #: Inline GeoJSON, or a GeoJSON file (relative to the config file) until `load_site`.
    jurisdiction: Annotated[Jurisdiction | Path | None, BeforeValidator(_coerce_jurisdiction)] = (
        None
    )


class PatrolUnitConfig(_Frozen):
    id: Id
    kind: PatrolKind
    #: The station the unit belongs to.
    station: Id
    #: Its home position (booth, beat start).
    lat: Lat
    lon: Lon
    name: str = ""
    #: Environment variable holding the unit's device token: its phone page and its vehicle
    #: tracker send it (`Authorization: Bearer …`, or `token` in an MQTT message) to report
    #: positions and status and to acknowledge jobs. None: the unit cannot report.
    token_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: Where the SMS gateway sends its job cards (E.164, e.g. +919800000000); None: no SMS.
    phone: str | None = Field(None, pattern=r"^\+[1-9][0-9]{6,14}$")


class HotspotConfig(_Frozen):
    id: Id
    name: str = ""
    lat: Lat
    lon: Lon
    #: Why a camera watches this place (e.g. "night-time crowding at the bus stand"), for the
    #: transparency pack and the public notice; None: listed there as a gap.
    purpose: str | None = Field(None, min_length=1, max_length=2000)
    #: The legal basis of the cameras here (an act, an order, a permission), for the
    #: transparency pack and the public notice; None: listed there as a gap.
    legal_basis: str | None = Field(None, min_length=1, max_length=2000)


class CameraCredentials(_Frozen):
    """Names (not values) of the variables holding a camera's user name and password.

    They are looked up in the environment, then in the secrets file, and put into the URL's
    user-info (percent-encoded) when the stream is opened.
    """

    user_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    password_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class CameraConfig(_Frozen):
    id: Id
    hotspot: Id
    #: `file:///…`, a path, `rtsp://…`, `http(s)://…`; may contain `${NAME}` placeholders.
    url: str = Field(min_length=1)
    #: Frames analysed per second for this camera; None (unset): the site's `source.fps`.
    fps: float | None = Field(None, gt=0, le=120)
    #: This camera's `detector.min_face_px` (the smallest face to find, px of its frames), when
    #: it differs from the site's: a close-up camera at a booth can set 60 and be detected at a
    #: fraction of the cost of a wide street camera. None: the site's setting.
    min_face_px: float | None = Field(None, ge=0, le=4096)
    enabled: bool = True
    name: str = ""
    credentials: CameraCredentials | None = None

    @property
    def display_url(self) -> str:
        """The URL with every password and secret masked; safe to log, store and show."""
        return mask_url(self.url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for key, value in super().__repr_args__():
            yield key, (self.display_url if key == "url" else value)


class StorageConfig(_Frozen):
    #: SQLAlchemy URL: `sqlite:///raksha.db` (relative to the working directory) or
    #: `postgresql+psycopg://user@host/db`; `${NAME}` placeholders are allowed for a password.
    url: str = "sqlite:///raksha.db"

    @field_validator("url")
    @classmethod
    def _supported(cls, v: str) -> str:
        scheme = v.split(":", 1)[0].lower()
        if scheme not in (
            "sqlite",
            "sqlite+pysqlite",
            "postgresql",
            "postgres",
            "postgresql+psycopg",
        ):
            raise ValueError(
                f"unsupported database {scheme!r}; use sqlite:///PATH or "
                "postgresql+psycopg://user@host/dbname"
            )
        return v

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "url", self.display_url


class EvidenceConfig(_Frozen):
    #: Where evidence files go: `<dir>/<incident_id>/…` (relative to the working directory).
    dir: Path = Path("evidence")
    #: Days evidence is kept before a clean-up may delete it.
    retention_days: int = Field(30, ge=1)
    #: Seconds between two rounds of the retention purge and orphan sweep that `raksha run`
    #: and `raksha serve` run by themselves; 0 turns it off (then `raksha evidence purge`).
    purge_every_s: float = Field(3600.0, ge=0)
    #: The deployment's Ed25519 signing key for case exports (PEM, mode 0600; make one with
    #: `raksha evidence keygen-signing --out FILE`); relative to the working directory.
    signing_key_file: Path | None = None
    #: Encrypt evidence at rest with Fernet (AES-128-CBC + HMAC-SHA256): on by default. The
    #: keys are in `key_file` (one per line, the first encrypts; `raksha evidence keygen`),
    #: else in the environment variable `key_env` (several separated by commas). Without a
    #: key, Raksha refuses to start and says how to make one.
    encrypt: bool = True
    key_env: str = Field("RAKSHA_EVIDENCE_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: A file holding the evidence keys (mode 0600; relative to the working directory).
    key_file: Path | None = None
    #: Margin around the subject's face crop, as a fraction of the box size on each side.
    face_margin: float = Field(0.3, ge=0, le=3)
    #: Other faces' boxes are grown by this fraction on each side before they are blurred.
    blur_expand: float = Field(0.2, ge=0, le=2)
    jpeg_quality: int = Field(92, ge=50, le=100)
    #: Each incident's clip: seconds before and after the decision (from a ring buffer in
    #: memory per camera; frames without an incident never touch disk). 0 and 0: no clips.
    clip_before_s: float = Field(5.0, ge=0, le=30)
    clip_after_s: float = Field(5.0, ge=0, le=30)
    #: Clip frames are scaled down to at most this width (the buffer's memory: about
    #: width x height x 3 bytes x analysed fps x clip_before_s per camera).
    clip_width: int = Field(640, ge=160, le=1920)


class _SignedPost(_Frozen):
    """An HTTP(S) receiver of signed POSTs (the webhook, a feed, the SMS gateway)."""

    #: Named in the error of a URL that is not http(s).
    what: ClassVar[str] = "url"
    url: str = Field(min_length=1)
    #: Environment variable holding the HMAC-SHA256 signing secret (required: receivers must
    #: be able to tell Raksha's alerts from anyone else's).
    secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_s: float = Field(5.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{cls.what} must start with http:// or https://")
        return v

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for key, value in super().__repr_args__():
            yield key, (mask_url(self.url) if key == "url" else value)


class WebhookConfig(_SignedPost):
    what: ClassVar[str] = "webhook url"


class MqttConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("raksha", pattern=r"^[^#+\s]+$")
    #: 1 or 2: QoS 0 cannot confirm that an alert arrived.
    qos: Literal[1, 2] = 1
    client_id: str | None = None
    #: Environment variables holding broker credentials, if it needs them.
    username_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: What is published per state change: Raksha's JSON on `…/stations/<id>/incidents`
    #: (job cards on `…/units/<id>/jobs`), EIDO JSON on `…/eido`, CAP XML on `…/cap`.
    formats: tuple[Literal["raksha", "eido", "cap"], ...] = ("raksha",)


FeedFormat = Literal["raksha", "eido", "cap"]


class FeedConfig(_SignedPost):
    """A further receiver of every state change (a 112/CAD system), over HTTP POST."""

    what: ClassVar[str] = "feed url"
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,19}$")
    format: FeedFormat = "eido"


class SmsConfig(_SignedPost):
    """An SMS gateway reached by webhook: job cards go to the unit's `phone` as
    `{"to": "+91…", "text": "…", "ref": "<alert id>"}` (signed like the webhook)."""

    what: ClassVar[str] = "sms url"
    #: Which language's text the SMS carries.
    language: Literal["hi", "en"] = "hi"


class PushConfig(_Frozen):
    """Web Push (VAPID) to dashboard users' browsers: a short notice of a new or escalated
    incident (place and station, never evidence), sent through the push service each browser
    uses. Off unless configured; only push services on `allowed_hosts` are ever contacted."""

    #: Environment variable holding the VAPID private key (`raksha push keygen` makes one).
    vapid_key_env: str = Field("RAKSHA_VAPID_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: Who runs the server, for the push services (`mailto:` or `https:`).
    subject: str = Field(pattern=r"^(mailto:|https://)\S+$")
    #: Host names of the push services browsers may subscribe with (e.g.
    #: fcm.googleapis.com, updates.push.services.mozilla.com); required.
    allowed_hosts: tuple[str, ...] = Field(min_length=1)
    #: Events a browser is told about.
    events: tuple[str, ...] = ("new", "escalated", "sos_joined", "reassigned")
    #: How long a push service keeps an undelivered notice (seconds).
    ttl_s: int = Field(300, ge=0, le=86400)
    timeout_s: float = Field(5.0, gt=0, le=60)


class AlertsConfig(_Frozen):
    webhook: WebhookConfig | None = None
    mqtt: MqttConfig | None = None
    #: Further HTTP receivers of every state change, in a standard format (EIDO JSON, CAP).
    feeds: tuple[FeedConfig, ...] = ()
    sms: SmsConfig | None = None
    push: PushConfig | None = None


class EscalationConfig(_Frozen):
    """Deadlines per priority and the steps taken when one passes
    (`raksha.incidents.escalation`)."""

    acknowledge_s: float = Field(60.0, gt=0, le=86400)
    acknowledge_high_s: float = Field(30.0, gt=0, le=86400)
    dispatch_s: float = Field(180.0, gt=0, le=86400)
    dispatch_high_s: float = Field(120.0, gt=0, le=86400)
    #: The dispatched unit must acknowledge its job card within this.
    unit_ack_s: float = Field(60.0, gt=0, le=86400)
    #: Seconds between two steps while a deadline stays missed.
    step_s: float = Field(60.0, gt=0, le=86400)
    steps: tuple[Literal["supervisor", "control_room", "next_station"], ...] = (
        "supervisor",
        "control_room",
        "next_station",
    )
    #: How often each process looks for passed deadlines.
    check_every_s: float = Field(1.0, gt=0, le=60)


class SosSourceConfig(_Frozen):
    """A sender of panic signals: a 112 app gateway, a pink booth's button, a phone."""

    id: Id
    kind: Literal["app", "booth", "phone", "tracker"] = "app"
    name: str = ""
    #: Environment variable holding its device token.
    token_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: A fixed sender's position (a booth); signals without a position use it.
    lat: Lat | None = None
    lon: Lon | None = None


class SosConfig(_Frozen):
    sources: tuple[SosSourceConfig, ...] = ()
    #: A signal joins an open incident this near, seen this recently.
    join_radius_m: float = Field(300.0, ge=0, le=50_000)
    join_window_s: float = Field(900.0, ge=0, le=86400)
    #: A signal older than this (by its own clock) is refused as stale.
    max_age_s: float = Field(300.0, gt=0, le=86400)
    #: A camera this near the signal lends its name to the incident.
    camera_radius_m: float = Field(250.0, ge=0, le=50_000)
    #: Signals farther than this from every station are refused as impossible.
    max_distance_km: float = Field(100.0, gt=0, le=20_000)


class DispatchConfig(_Frozen):
    #: A unit's reported position counts for routing while younger than this.
    position_max_age_s: float = Field(600.0, gt=0, le=86400)
    #: The directions link on a job card; `geo:` opens the phone's own map app.
    directions_url: str = "geo:{lat},{lon}"


class PrecisionConfig(_Frozen):
    """Field precision: of the camera incidents officers judged, the share that were real
    (docs/field-precision.md)."""

    #: A camera with at least `min_judged` judged incidents and a precision below this is
    #: flagged for review (its placement, its thresholds, the scene).
    floor: float = Field(0.3, ge=0, le=1)
    min_judged: int = Field(10, ge=1)
    #: The window (local days, today included) the figures and the flag are computed over.
    days: int = Field(30, ge=1, le=366)


class CameraHealthConfig(_Frozen):
    """Cameras that report their own failures (docs/reliability.md, "Camera alerts"): each
    condition must hold for its `*_s` seconds to raise a camera alert, and be gone for
    `clear_s` seconds to clear it. The grey levels are of 0..255 thumbnails."""

    #: False: no camera alerts at all.
    enabled: bool = True
    #: Video loss: a live camera delivered no frame for this long.
    video_loss_s: float = Field(15.0, gt=0, le=3600)
    #: Frozen picture: consecutive frames repeat, for `frozen_s` seconds: 99 % of the grey
    #: pixels (sampled, not averaged, at up to 640 px across) differ by at most
    #: `frozen_max_diff` grey levels. 0 (the default): exact repeats only, as a stuck decoder
    #: or encoder hands out; a still street's sensor noise is never taken for a frozen one.
    frozen_s: float = Field(20.0, gt=0, le=3600)
    frozen_max_diff: float = Field(0.0, ge=0, le=255)
    #: Covered or defocused lens: the frame's grey standard deviation below `covered_max_std`
    #: or its Laplacian sharpness (variance, 160x90 grey) below `covered_max_sharpness`, for
    #: `covered_s` seconds.
    covered_s: float = Field(20.0, gt=0, le=3600)
    covered_max_std: float = Field(6.0, ge=0, le=255)
    covered_max_sharpness: float = Field(1.5, ge=0)
    #: Scene changed (camera moved): the normalised correlation of the frame's 32x18 edge
    #: thumbnail with the reference learnt over the first `reference_s` seconds below
    #: `moved_min_correlation` for `moved_s` seconds. Relearnt when an officer acknowledges.
    reference_s: float = Field(60.0, gt=0, le=3600)
    moved_s: float = Field(30.0, gt=0, le=3600)
    moved_min_correlation: float = Field(0.4, ge=-1, le=1)
    #: Reconnect attempts failing in a row before a camera alert (0: never).
    reconnect_failures: int = Field(3, ge=0)
    #: A raised alert clears once its condition has been gone this long (no flapping).
    clear_s: float = Field(10.0, ge=0, le=3600)
    #: Once cleared, the same kind is not raised again on the camera for this long (a
    #: borderline camera raises once, not every few minutes).
    cooldown_s: float = Field(300.0, ge=0, le=86400)


class TransparencyConfig(_Frozen):
    """Who answers for the deployment, for the transparency pack and the public notices
    (`raksha report transparency`, docs/transparency.md). Every field is optional; a missing
    one is named in the pack as a gap."""

    #: The body that runs the cameras (e.g. "Lucknow Police Commissionerate").
    operator: str | None = Field(None, min_length=1, max_length=300)
    #: Where the public asks about the cameras (a phone number, an address, an e-mail).
    contact: str | None = Field(None, min_length=1, max_length=300)
    #: The data-protection officer, or whoever answers for personal data.
    dpo_contact: str | None = Field(None, min_length=1, max_length=300)
    #: Where a complaint is filed (a web page).
    complaint_url: str | None = Field(None, pattern=r"^https?://\S+$", max_length=500)
    #: Why cameras are needed at all, in the operator's words (the DPIA's necessity).
    necessity: str | None = Field(None, min_length=1, max_length=5000)
    #: The reference of the data-protection / fundamental-rights impact assessment.
    dpia_reference: str | None = Field(None, min_length=1, max_length=300)


class WatchlistAuthorisation(_Frozen):
    """One authorisation of the face watchlist: who approved it, on what legal basis and for
    what purpose, on which cameras, from when until when, for how many people at most."""

    id: Id
    #: The senior officer who authorised it (name and rank).
    authorised_by: str = Field(min_length=3, max_length=300)
    legal_basis: str = Field(min_length=3, max_length=2000)
    purpose: str = Field(min_length=3, max_length=2000)
    cameras: tuple[Id, ...] = Field(min_length=1)
    #: The window, timezone-aware (e.g. 2026-12-06T18:00:00+05:30).
    start: AwareDatetime
    end: AwareDatetime
    #: The most people the list may hold while this authorisation is in force.
    max_list_size: int = Field(ge=1, le=100_000)

    @model_validator(mode="after")
    def _window(self) -> WatchlistAuthorisation:
        if self.end <= self.start:
            raise ValueError(f"authorisation {self.id}: end must be after start")
        return self

    def open_at(self, now: datetime) -> bool:
        """Whether `now` (timezone-aware) lies in [start, end)."""
        return self.start <= now < self.end


class WatchlistVotes(_Frozen):
    """A track is matched when `k` of its last `n` embedded faces agree on one person."""

    k: int = Field(2, ge=1, le=100)
    n: int = Field(3, ge=1, le=100)

    @model_validator(mode="after")
    def _order(self) -> WatchlistVotes:
        if self.k > self.n:
            raise ValueError(f"votes: k ({self.k}) may not exceed n ({self.n})")
        return self


class WatchlistConfig(_Frozen):
    """The face watchlist (docs/watchlist.md). Absent: off, and no face model is loaded.

    Matching is only enabled when `eval_json` (a `raksha eval watchlist --json` result)
    shows a false-match rate at `threshold` no higher than `fmr_ceiling`; the check reads the
    file, so it runs in `raksha.site.load.load_site`, not here."""

    authorisations: tuple[WatchlistAuthorisation, ...] = ()
    #: Cosine similarity at or above which a face matches an enrolled person.
    threshold: float = Field(ge=-1, le=1)
    votes: WatchlistVotes = Field(default_factory=WatchlistVotes)
    #: The highest measured false-match rate per search the deployment accepts.
    fmr_ceiling: float = Field(0.001, gt=0, le=1)
    #: The measurement of the matcher (relative to the config file until `load_site`).
    eval_json: Path | None = None
    #: Delete the whole list (people and templates) once no authorisation is in force.
    delete_list_when_closed: bool = False
    #: Seconds between two faces of one track that are embedded (the sharpest in between).
    embed_every_s: float = Field(1.0, gt=0, le=60)


def in_force(wl: WatchlistConfig, now: datetime) -> tuple[WatchlistAuthorisation, ...]:
    """The authorisations whose window is open at `now` (timezone-aware)."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return tuple(a for a in wl.authorisations if a.open_at(now))


def active_cameras(cfg: SiteConfig | WatchlistConfig | None, now: datetime) -> frozenset[str]:
    """The cameras on which the watchlist may match at `now`: those of the authorisations
    whose window is open. Empty without a `watchlist:` section."""
    wl = cfg.watchlist if isinstance(cfg, SiteConfig) else cfg
    if wl is None:
        return frozenset()
    return frozenset(c for a in in_force(wl, now) for c in a.cameras)


def _ref_error(
    loc: tuple[str | int, ...], kind: str, value: str, known: list[str]
) -> InitErrorDetails:
    shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
    return InitErrorDetails(
        type=PydanticCustomError(
            "unknown_reference",
            "unknown {kind} '{value}'; known {kind}s: {known}",
            {"kind": kind, "value": value, "known": shown or "(none)"},
        ),
        loc=loc,
        input=value,
    )


def _dup_error(loc: tuple[str | int, ...], what: str, value: str, first: int) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(
            "duplicate_id",
            "duplicate {what} id '{value}' (also used by {what}s.{first})",
            {"what": what, "value": value, "first": first},
        ),
        loc=loc,
        input=value,
    )


def _check_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Asia/Kolkata or UTC"
        ) from None
    return value


class SiteConfig(_Frozen):
    """The site part of the run config (embed its fields at the top level of the YAML)."""

    stations: tuple[StationConfig, ...] = ()
    patrol_units: tuple[PatrolUnitConfig, ...] = ()
    hotspots: tuple[HotspotConfig, ...] = ()
    cameras: tuple[CameraConfig, ...] = ()
    storage: StorageConfig = Field(default_factory=StorageConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    sos: SosConfig = Field(default_factory=SosConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    precision: PrecisionConfig = Field(default_factory=PrecisionConfig)
    #: Camera alerts: video loss, frozen picture, covered lens, moved camera.
    camera_health: CameraHealthConfig = Field(default_factory=CameraHealthConfig)
    #: Who runs the cameras and whom to ask (transparency pack, public notices); None: the
    #: pack names each of its fields as a gap.
    transparency: TransparencyConfig | None = None
    #: Where times are shown to people, with their date and the zone's name (the CLI, the
    #: dashboard, its statistics' days). Stored times are always UTC.
    timezone: Annotated[str, AfterValidator(_check_zone)] = "UTC"
    #: KEY=VALUE file with camera credentials (relative to the config file until `load_site`).
    secrets_file: Path | None = None
    #: The face watchlist (docs/watchlist.md); None: off.
    watchlist: WatchlistConfig | None = None

    @model_validator(mode="after")
    def _cross_check(self) -> SiteConfig:
        errors: list[InitErrorDetails] = []
        groups: list[tuple[str, str, tuple[Any, ...]]] = [
            ("stations", "station", self.stations),
            ("patrol_units", "patrol_unit", self.patrol_units),
            ("hotspots", "hotspot", self.hotspots),
            ("cameras", "camera", self.cameras),
        ]
        for field, what, items in groups:
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                if item.id in seen:
                    errors.append(_dup_error((field, i, "id"), what, item.id, seen[item.id]))
                else:
                    seen[item.id] = i
        station_ids = [s.id for s in self.stations]
        hotspot_ids = [h.id for h in self.hotspots]
        for i, unit in enumerate(self.patrol_units):
            if unit.station not in station_ids:
                errors.append(
                    _ref_error(("patrol_units", i, "station"), "station", unit.station, station_ids)
                )
        for i, cam in enumerate(self.cameras):
            if cam.hotspot not in hotspot_ids:
                errors.append(
                    _ref_error(("cameras", i, "hotspot"), "hotspot", cam.hotspot, hotspot_ids)
                )
        if self.cameras and not self.stations:
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError(
                        "no_stations", "cameras are configured but no police stations to route to"
                    ),
                    loc=("stations",),
                    input=[],
                )
            )
        if self.watchlist is not None:
            camera_ids = [c.id for c in self.cameras]
            for i, auth in enumerate(self.watchlist.authorisations):
                for j, cam_id in enumerate(auth.cameras):
                    if cam_id not in camera_ids:
                        loc = ("watchlist", "authorisations", i, "cameras", j)
                        errors.append(_ref_error(loc, "camera", cam_id, camera_ids))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    def station(self, station_id: str) -> StationConfig:
        for s in self.stations:
            if s.id == station_id:
                return s
        raise KeyError(station_id)

    def hotspot(self, hotspot_id: str) -> HotspotConfig:
        for h in self.hotspots:
            if h.id == hotspot_id:
                return h
        raise KeyError(hotspot_id)

    def camera(self, camera_id: str) -> CameraConfig:
        for c in self.cameras:
            if c.id == camera_id:
                return c
        raise KeyError(camera_id)
