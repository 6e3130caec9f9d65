"""Render one alert delivery in the format a receiver asked for.

Every incident state change is an alert in the outbox; `render(delivery, fmt)` turns one into
the bytes a channel sends and their content type:

- "raksha": Raksha's own document (`raksha.alerts.base.alert_body`), "application/json";
- "eido": an EIDO-style JSON document (`raksha.alerts.eido`), "application/json";
- "cap": an OASIS CAP 1.2 alert (`raksha.alerts.cap`), "application/cap+xml".

Both standard formats read the alert's payload (`raksha.incidents.events.event_payload`)
through `alert_view`, which checks it and fills in what older alerts lack: alerts stored
before state changes became alerts carry no `event`, `seq`, `at`, `state`, `origin`,
`priority`, `actor`, `place` or coordinates, and are read as the incident's opening ("new",
seq 1, at = opened_at, state NEW, origin camera, priority normal, actor the camera, place the
hotspot). A payload that cannot be rendered (a required field missing or of the wrong type,
an unknown event, a unit's `job_card`, which is no state change) raises a permanent
DeliveryError naming the alert and the field: sending it again unchanged cannot help.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, TypeVar

from raksha.alerts.base import DeliveryError, alert_body
from raksha.alerts.outbox import PendingDelivery

_T = TypeVar("_T")

FORMATS: Final = ("raksha", "eido", "cap")

CONTENT_TYPES: Final[dict[str, str]] = {
    "raksha": "application/json",
    "eido": "application/json",
    "cap": "application/cap+xml",
}

EVENTS: Final = (
    "new",
    "acknowledged",
    "confirmed",
    "escalated",
    "dispatched",
    "unit_acknowledged",
    "on_scene",
    "reassigned",
    "sos_joined",
    "sos_cancelled",
    "resolved",
    "dismissed",
)
#: A camera's own alerts (`raksha.pipeline.camera_health`): no incident's state change, so
#: they go out in the "raksha" format only (webhook, MQTT `…/stations/<id>/cameras`).
CAMERA_EVENTS: Final = ("camera.fault", "camera.recovered")
STATES: Final = ("NEW", "ACKNOWLEDGED", "CONFIRMED", "DISPATCHED", "RESOLVED", "DISMISSED")
ORIGINS: Final = ("camera", "sos")
PRIORITIES: Final = ("normal", "high")
#: "next_station" is what an escalation to the next station records when there was none to
#: send it to; "station" names the station it went to.
ESCALATION_TARGETS: Final = ("supervisor", "control_room", "station", "next_station")
ROUTING_METHODS: Final = ("nearest", "jurisdiction")

#: Events after which the incident needs no further action.
CLOSING_EVENTS: Final = frozenset({"resolved", "dismissed", "sos_cancelled"})
#: Events that withdraw the alert (it should not have been acted on).
CANCELLING_EVENTS: Final = frozenset({"dismissed", "sos_cancelled"})

#: What happened, in words, for notes and descriptions.
EVENT_PHRASES: Final[dict[str, str]] = {
    "new": "Incident opened",
    "acknowledged": "Acknowledged at the station",
    "confirmed": "Confirmed by an officer",
    "escalated": "Escalated",
    "dispatched": "Unit dispatched",
    "unit_acknowledged": "Unit accepted the dispatch",
    "on_scene": "Unit on scene",
    "reassigned": "Job reassigned to another unit",
    "sos_joined": "A person raised an SOS here",
    "resolved": "Resolved",
    "dismissed": "Dismissed",
    "sos_cancelled": "SOS cancelled",
}


@dataclass(frozen=True, slots=True)
class Unit:
    id: str
    name: str | None
    kind: str | None
    station_id: str | None
    distance_m: float | None


@dataclass(frozen=True, slots=True)
class Escalation:
    level: int
    to: str
    station_id: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class PreviousAlert:
    id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert's payload, checked, with defaults filled; times are aware UTC datetimes."""

    alert_id: str
    incident_id: str
    station_id: str
    station_name: str
    event: str
    seq: int
    at: datetime
    opened_at: datetime
    state: str
    actor: str
    note: str | None
    origin: str
    priority: str
    camera_id: str | None
    hotspot_id: str | None
    place: str
    lat: float | None
    lon: float | None
    peak_distress: float | None
    top_expression: str | None
    route_method: str | None
    route_distance_m: float | None
    unit: Unit | None
    escalation: Escalation | None
    previous_alert: PreviousAlert | None


def render(
    delivery: PendingDelivery, fmt: str, *, sender: str = "raksha@local"
) -> tuple[bytes, str]:
    """The body for `delivery` in format `fmt` and its content type.

    Raises ValueError for a format not in FORMATS, and a permanent DeliveryError for a payload
    that cannot be rendered. `sender` is the CAP sender (ignored by the JSON formats).
    """
    # Imported here: both renderers import this module for `alert_view`.
    from raksha.alerts.cap import cap_xml
    from raksha.alerts.eido import eido_body

    if fmt in CONTENT_TYPES and fmt != "raksha" and is_camera_event(delivery):
        raise DeliveryError(
            f"alert {delivery.alert_id} is a camera alert: sent in the raksha format only",
            permanent=True,
        )
    if fmt == "raksha":
        body = alert_body(delivery)
    elif fmt == "eido":
        body = eido_body(delivery)
    elif fmt == "cap":
        body = cap_xml(delivery, sender=sender)
    else:
        raise ValueError(f"unknown alert format {fmt!r}; known formats: {', '.join(FORMATS)}")
    return body, CONTENT_TYPES[fmt]


def is_camera_event(delivery: PendingDelivery) -> bool:
    """Whether `delivery` is a camera's own alert rather than an incident's state change."""
    return delivery.payload.get("event") in CAMERA_EVENTS


def utc_iso(t: datetime) -> str:
    """`t` as RFC 3339 in UTC with an explicit +00:00 offset (microseconds kept if any)."""
    return t.astimezone(UTC).isoformat()


def escalation_text(esc: Escalation) -> str:
    """The escalation in one sentence."""
    target = esc.to.replace("_", " ")
    where = f" at {esc.station_id}" if esc.station_id else ""
    why = f": {esc.reason}" if esc.reason else ""
    return f"Escalation level {esc.level} to the {target}{where}{why}."


def alert_view(delivery: PendingDelivery) -> AlertView:
    """Check `delivery.payload` and read it, filling the defaults of older alerts."""
    r = _Reader(delivery)
    if r.text("event") == "job_card":
        r.fail("event", "is 'job_card': a unit's orders, not a state change (send it as raksha)")
    event = r.choice("event", EVENTS, default="new")
    is_new = event == "new"
    opened_at = r.time("opened_at")
    origin = r.choice("origin", ORIGINS, default="camera")
    camera_id = r.text("camera_id")
    hotspot_id = r.text("hotspot_id")
    lat = r.number("lat", low=-90.0, high=90.0)
    lon = r.number("lon", low=-180.0, high=180.0)
    if (lat is None) != (lon is None):
        r.fail("lat" if lat is None else "lon", "is missing (the other coordinate is set)")
    route = r.mapping("route")
    station_name = r.text("station_name") or (route.text("station_name") if route else None)
    place = r.text("place") or hotspot_id or camera_id
    if place is None and lat is not None:
        place = f"{lat},{lon}"
    if place is None:
        r.fail("place", "is missing (no place, hotspot_id, camera_id or lat/lon)")
    default_actor = f"camera:{camera_id}" if origin == "camera" and camera_id else "system"
    seq = r.integer("seq", default=1 if is_new else None, low=1)
    at = r.time("at") if not is_new or r.has("at") else opened_at
    return AlertView(
        alert_id=delivery.alert_id,
        incident_id=delivery.incident_id,
        station_id=delivery.station_id,
        station_name=station_name or delivery.station_id,
        event=event,
        seq=r.required(seq, "seq"),
        at=at,
        opened_at=opened_at,
        state=r.choice("state", STATES, default="NEW" if is_new else None),
        actor=r.text("actor") or r.required(default_actor if is_new else None, "actor"),
        note=r.text("note"),
        origin=origin,
        priority=r.choice("priority", PRIORITIES, default="normal"),
        camera_id=camera_id,
        hotspot_id=hotspot_id,
        place=place,
        lat=lat,
        lon=lon,
        peak_distress=r.number("peak_distress", low=0.0, high=1.0),
        top_expression=r.text("top_expression"),
        route_method=route.maybe_choice("method", ROUTING_METHODS) if route else None,
        route_distance_m=route.number("distance_m", low=0.0) if route else None,
        unit=_unit(r.mapping("unit")),
        escalation=_escalation(r.mapping("escalation")),
        previous_alert=_previous(r.mapping("previous_alert")),
    )


def _unit(r: _Reader | None) -> Unit | None:
    if r is None:
        return None
    return Unit(
        id=r.required(r.text("id"), "id"),
        name=r.text("name"),
        kind=r.text("kind"),
        station_id=r.text("station_id"),
        distance_m=r.number("distance_m", low=0.0),
    )


def _escalation(r: _Reader | None) -> Escalation | None:
    if r is None:
        return None
    return Escalation(
        level=r.required(r.integer("level", default=None, low=1), "level"),
        to=r.choice("to", ESCALATION_TARGETS, default=None),
        station_id=r.text("station_id"),
        reason=r.text("reason"),
    )


def _previous(r: _Reader | None) -> PreviousAlert | None:
    if r is None:
        return None
    return PreviousAlert(id=r.required(r.text("id"), "id"), at=r.time("at"))


class _Reader:
    """Typed reads of one payload (or a part of it); every failure names the alert and field."""

    def __init__(self, delivery: PendingDelivery, data: Any = None, prefix: str = "") -> None:
        self._delivery = delivery
        self._data: dict[str, Any] = delivery.payload if data is None else data
        self._prefix = prefix

    def fail(self, key: str, problem: str) -> NoReturn:
        raise DeliveryError(
            f"alert {self._delivery.alert_id} cannot be rendered: "
            f"field {self._prefix + key!r} {problem}",
            permanent=True,
        )

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def required(self, value: _T | None, key: str) -> _T:
        if value is None:
            self.fail(key, "is missing")
        return value

    def text(self, key: str) -> str | None:
        value = self._data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.fail(key, f"is not text: {value!r}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], *, default: str | None) -> str:
        return self.required(self.maybe_choice(key, allowed) or default, key)

    def maybe_choice(self, key: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(key)
        if value is not None and value not in allowed:
            self.fail(key, f"has an unknown value {value!r} (known: {', '.join(allowed)})")
        return value

    def integer(self, key: str, *, default: int | None, low: int) -> int | None:
        value = self._data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.fail(key, f"is not an integer >= {low}: {value!r}")
        return value

    def number(self, key: str, *, low: float, high: float = math.inf) -> float | None:
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"is not a number: {value!r}")
        if not math.isfinite(value) or not low <= value <= high:
            self.fail(key, f"is out of range [{low}, {high}]: {value!r}")
        return float(value)

    def time(self, key: str) -> datetime:
        value = self.text(key)
        if value is None:
            self.fail(key, "is missing")
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            self.fail(key, f"is not an ISO-8601 time: {value!r}")
        if t.tzinfo is None or t.utcoffset() is None:
            self.fail(key, f"has no UTC offset: {value!r}")
        return t.astimezone(UTC)

    def mapping(self, key: str) -> _Reader | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(key, f"is not an object: {value!r}")
        return _Reader(self._delivery, value, f"{self._prefix}{key}.")
