"""The document every incident state change leaves through the outbox (pure).

One alert per change, numbered per incident (`seq`), in the same transaction as the change,
so each change is delivered once per channel: `new`, `acknowledged`, `confirmed`,
`escalated`, `dispatched`, `unit_acknowledged`, `on_scene`, `reassigned`, `sos_joined`,
`sos_cancelled`, `resolved`, `dismissed`; and `job_card`, the message to the dispatched unit.
Channels send it as Raksha's own JSON, an EIDO-style JSON document or a CAP 1.2 alert
(`raksha.alerts.formats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from raksha.incidents.model import Action, IncidentState, Origin, Priority


class Event(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CONFIRMED = "confirmed"
    ESCALATED = "escalated"
    DISPATCHED = "dispatched"
    UNIT_ACKNOWLEDGED = "unit_acknowledged"
    ON_SCENE = "on_scene"
    REASSIGNED = "reassigned"
    SOS_JOINED = "sos_joined"
    SOS_CANCELLED = "sos_cancelled"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
    #: Not a state change: the dispatched unit's orders.
    JOB_CARD = "job_card"


EVENT_OF_ACTION: dict[Action, Event] = {
    Action.ACKNOWLEDGE: Event.ACKNOWLEDGED,
    Action.CONFIRM: Event.CONFIRMED,
    Action.DISPATCH: Event.DISPATCHED,
    Action.DISMISS: Event.DISMISSED,
    Action.RESOLVE: Event.RESOLVED,
    Action.ESCALATE: Event.ESCALATED,
    Action.ON_SCENE: Event.ON_SCENE,
    Action.UNIT_ACK: Event.UNIT_ACKNOWLEDGED,
    Action.SOS_JOIN: Event.SOS_JOINED,
    Action.SOS_CANCEL: Event.SOS_CANCELLED,
    Action.REASSIGN: Event.REASSIGNED,
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What an event document says about its incident."""

    id: str
    camera_id: str | None
    hotspot_id: str | None
    station_id: str
    station_name: str
    origin: Origin
    priority: Priority
    lat: float | None
    lon: float | None
    place: str
    opened_at: datetime
    peak_distress: float | None
    top_expression: str | None
    route: dict[str, Any] | None


def _r(x: float | None, n: int = 6) -> float | None:
    return None if x is None else round(float(x), n)


def event_payload(
    inc: Snapshot,
    event: Event,
    *,
    seq: int,
    at: datetime,
    state: IncidentState,
    actor: str,
    note: str | None = None,
    unit: dict[str, Any] | None = None,
    escalation: dict[str, Any] | None = None,
    previous_alert: dict[str, Any] | None = None,
    station_id: str | None = None,
) -> dict[str, Any]:
    """The alert payload of one change (`raksha.alerts.base.alert_document` wraps it)."""
    return {
        "event": event.value,
        "seq": seq,
        "at": at.isoformat(),
        "state": state.value,
        "actor": actor,
        "note": note,
        "origin": inc.origin.value,
        "priority": inc.priority.value,
        "camera_id": inc.camera_id or None,
        "hotspot_id": inc.hotspot_id or None,
        "place": inc.place or inc.hotspot_id or "",
        "lat": _r(inc.lat),
        "lon": _r(inc.lon),
        "opened_at": inc.opened_at.isoformat(),
        "station_id": station_id or inc.station_id,
        "station_name": inc.station_name,
        "peak_distress": _r(inc.peak_distress, 4),
        "top_expression": inc.top_expression,
        "route": inc.route,
        "unit": unit,
        "escalation": escalation,
        "previous_alert": previous_alert,
    }


def _distance(m: float | None) -> tuple[str, str]:
    if m is None:
        return "nearby", "पास में"
    if m < 1000:
        return f"{m:.0f} m away", f"{m:.0f} मीटर दूर"
    return f"{m / 1000:.1f} km away", f"{m / 1000:.1f} किमी दूर"


def job_card(
    inc: Snapshot,
    unit: dict[str, Any],
    *,
    seq: int,
    at: datetime,
    actor: str,
    note: str | None,
    picture_jpeg_b64: str | None,
    ack_within_s: float,
    directions_url: str,
) -> dict[str, Any]:
    """The dispatched unit's orders, in English and Hindi, with a pixelated picture of the
    scene (bystanders blurred first) to find the person, and how to report back."""
    short = inc.id[:8]
    place = inc.place or inc.hotspot_id or "the reported place"
    en_d, hi_d = _distance(unit.get("distance_m"))
    raised_en = "an SOS call" if inc.origin is Origin.SOS else "a street camera"
    raised_hi = "एसओएस कॉल" if inc.origin is Origin.SOS else "सड़क कैमरा"
    text_en = (
        f"Raksha job {short}: a person may need help at {place}, {en_d} ({raised_en}; "
        f"an officer at {inc.station_name or inc.station_id} has looked and sent you). "
        f"Go now. Acknowledge within {ack_within_s:.0f} s. On arrival: make sure the person "
        "is safe, speak calmly, ask if they want help, and press 'On scene'."
    )
    text_hi = (
        f"रक्षा कार्य {short}: {place} पर किसी व्यक्ति को मदद की ज़रूरत हो सकती है, आपसे {hi_d} "
        f"({raised_hi}; {inc.station_name or inc.station_id} के अधिकारी ने देखकर आपको भेजा है)। "
        f"तुरंत जाएँ। {ack_within_s:.0f} सेकंड के भीतर स्वीकार करें। पहुँचने पर: व्यक्ति की सुरक्षा "
        "सुनिश्चित करें, शांति से बात करें, पूछें कि क्या उन्हें मदद चाहिए, और 'घटनास्थल पर' दबाएँ।"
    )
    return {
        "event": Event.JOB_CARD.value,
        "seq": seq,
        "at": at.isoformat(),
        "state": IncidentState.DISPATCHED.value,
        "actor": actor,
        "note": note,
        "origin": inc.origin.value,
        "priority": inc.priority.value,
        "incident_short_id": short,
        "place": place,
        "lat": _r(inc.lat),
        "lon": _r(inc.lon),
        "directions": directions_url.format(lat=inc.lat, lon=inc.lon) if inc.lat else None,
        "station_id": inc.station_id,
        "station_name": inc.station_name,
        "unit": unit,
        "ack_within_s": ack_within_s,
        "text": {"en": text_en, "hi": text_hi},
        "picture_jpeg_b64": picture_jpeg_b64,
        "picture_note": "pixelated, bystanders blurred: to find the person, not to identify",
    }
