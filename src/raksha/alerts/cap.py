"""An alert as an OASIS Common Alerting Protocol (CAP) 1.2 message.

One CAP alert per Raksha alert (per incident state change), for police use only:

- `identifier` = alert id, `sender` = the configured sender, `sent` = the change's time rounded
  down to the whole second, in UTC with an explicit "+00:00" offset (CAP forbids "Z" and, in
  practice, fractional seconds); `status` Actual; `scope` Restricted, "Police use only";
- `msgType`: Alert for "new", Cancel for "dismissed" and "sos_cancelled", Update otherwise;
  `references` names the incident's previous alert as "sender,identifier,sent" (its `sent`
  computed the same way, so it matches what that alert carried); `incidents` = incident id;
- `note`: the alert's free-text note; for a Cancel without one, who cancelled it;
- one `info` (en-IN): category Safety (and Rescue for an SOS); event "Person in distress" or
  "Panic alarm"; responseType per event (Assess, Execute, AllClear once resolved, None when
  cancelled); urgency Immediate (Past once closed); severity Severe for high priority, else
  Moderate; certainty Possible for a camera reading, Likely for an SOS, a high-priority
  incident (an SOS nearby) or once an officer has confirmed or dispatched, Observed once a
  unit is on scene, Unlikely when cancelled; onset = opening time;
  senderName = station; headline, description, instruction in words; RAKSHA_* parameters;
- one `area`: areaDesc = the place, and a circle "lat,lon 0.1" (0.1 km) when coordinates are
  known. Without coordinates the area is the description alone (valid CAP).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Final

from raksha.alerts.base import DeliveryError
from raksha.alerts.formats import (
    CANCELLING_EVENTS,
    CLOSING_EVENTS,
    EVENT_PHRASES,
    AlertView,
    alert_view,
    escalation_text,
)
from raksha.alerts.outbox import PendingDelivery

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
#: CAP requires an explicit numeric offset. The spec's prose asks for "-00:00" for UTC; the
#: OASIS schema accepts either sign, and receivers commonly expect "+00:00", which we send.
UTC_OFFSET: Final = "+00:00"
RESTRICTION: Final = "Police use only"
LANGUAGE: Final = "en-IN"
#: Radius of the area circle around the reported point, in km (CAP's unit).
CIRCLE_RADIUS_KM: Final = 0.1
HEADLINE_MAX: Final = 160
XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'

EVENT_TYPE: Final[dict[str, str]] = {"camera": "Person in distress", "sos": "Panic alarm"}

RESPONSE_TYPE: Final[dict[str, str]] = {
    "new": "Assess",
    "acknowledged": "Assess",
    "confirmed": "Execute",
    "escalated": "Assess",
    "dispatched": "Execute",
    "unit_acknowledged": "Execute",
    "on_scene": "Execute",
    "reassigned": "Execute",
    "sos_joined": "Assess",
    "resolved": "AllClear",
    "dismissed": "None",
    "sos_cancelled": "None",
}

INSTRUCTION: Final[dict[str, str]] = {
    "new": "Look at the camera and acknowledge in Raksha; nobody is dispatched before a human "
    "has looked.",
    "acknowledged": "Confirm or dismiss after looking at the camera.",
    "confirmed": "Dispatch the nearest available unit.",
    "escalated": "Not yet handled in time: acknowledge in Raksha now.",
    "dispatched": "Unit to proceed to the location and report on scene.",
    "unit_acknowledged": "Unit on its way: report on scene on arrival.",
    "on_scene": "Unit on scene: resolve the incident in Raksha when done.",
    "reassigned": "Job moved to another unit: that unit to proceed to the location and report "
    "on scene.",
    "sos_joined": "A person at the place raised an SOS: treat as urgent and act now.",
    "resolved": "No further action needed.",
    "dismissed": "No action: the alert was dismissed.",
    "sos_cancelled": "No action: the sender cancelled the SOS.",
}
SOS_NEW_INSTRUCTION: Final = "Acknowledge and dispatch the nearest available unit."

#: Characters CAP forbids in identifiers and senders (they separate `references` entries).
_RESTRICTED = re.compile(r"[\s,<&]")
#: Characters XML 1.0 cannot carry at all (control characters other than tab,
#: LF and CR; lone surrogates, which UTF-8 cannot encode either).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def cap_time(t: datetime) -> str:
    """`t` as a CAP dateTime: UTC, whole seconds, explicit offset."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + UTC_OFFSET


def cap_xml(delivery: PendingDelivery, *, sender: str = "raksha@local") -> bytes:
    """The CAP 1.2 alert for `delivery` as UTF-8 XML with a declaration.

    Raises ValueError for a sender CAP cannot carry (spaces, commas, "<" or "&"), and a
    permanent DeliveryError for a payload that cannot be rendered.
    """
    if not sender or _RESTRICTED.search(sender):
        raise ValueError(f"CAP sender {sender!r} must be non-empty without spaces, ',', '<', '&'")
    v = alert_view(delivery)
    for what, value in (("alert id", v.alert_id), ("incident id", v.incident_id)):
        if _RESTRICTED.search(value):
            raise DeliveryError(
                f"alert {v.alert_id} cannot be rendered as CAP: its {what} {value!r} "
                "contains a space, ',', '<' or '&'",
                permanent=True,
            )

    alert = ET.Element("alert", xmlns=CAP_NS)
    _sub(alert, "identifier", v.alert_id)
    _sub(alert, "sender", sender)
    _sub(alert, "sent", cap_time(v.at))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", _msg_type(v.event))
    _sub(alert, "scope", "Restricted")
    _sub(alert, "restriction", RESTRICTION)
    note = v.note
    if note is None and v.event in CANCELLING_EVENTS:  # a Cancel says why (CAP 1.2, note)
        note = f"{EVENT_PHRASES[v.event]} by {v.actor}."
    if note is not None:
        _sub(alert, "note", note)
    prev = v.previous_alert
    if prev is not None:
        if _RESTRICTED.search(prev.id):
            raise DeliveryError(
                f"alert {v.alert_id} cannot be rendered as CAP: field 'previous_alert.id' "
                f"{prev.id!r} contains a space, ',', '<' or '&'",
                permanent=True,
            )
        _sub(alert, "references", f"{sender},{prev.id},{cap_time(prev.at)}")
    _sub(alert, "incidents", v.incident_id)
    _info(alert, v)

    ET.indent(alert)
    return XML_DECLARATION + ET.tostring(alert, encoding="unicode").encode("utf-8")


def _msg_type(event: str) -> str:
    if event == "new":
        return "Alert"
    return "Cancel" if event in CANCELLING_EVENTS else "Update"


#: Events after which a person (an officer, or someone raising an SOS) has vouched for it.
_HUMAN_CONFIRMED: Final = frozenset(
    {"confirmed", "dispatched", "unit_acknowledged", "reassigned", "sos_joined"}
)


def _certainty(v: AlertView) -> str:
    if v.event in CANCELLING_EVENTS:
        return "Unlikely"
    if v.event in ("on_scene", "resolved"):
        return "Observed"
    if v.origin == "sos" or v.priority == "high" or v.event in _HUMAN_CONFIRMED:
        return "Likely"
    return "Possible"


def _info(alert: ET.Element, v: AlertView) -> None:
    event_type = EVENT_TYPE[v.origin]
    info = _sub(alert, "info")
    _sub(info, "language", LANGUAGE)
    _sub(info, "category", "Safety")
    if v.origin == "sos":
        _sub(info, "category", "Rescue")
    _sub(info, "event", event_type)
    _sub(info, "responseType", RESPONSE_TYPE[v.event])
    _sub(info, "urgency", "Past" if v.event in CLOSING_EVENTS else "Immediate")
    _sub(info, "severity", "Severe" if v.priority == "high" else "Moderate")
    _sub(info, "certainty", _certainty(v))
    _sub(info, "onset", cap_time(v.opened_at))
    _sub(info, "senderName", v.station_name)
    phrase = EVENT_PHRASES[v.event]
    headline = f"{event_type} at {v.place}: {phrase[0].lower()}{phrase[1:]}"
    if len(headline) > HEADLINE_MAX:
        headline = headline[: HEADLINE_MAX - 1] + "…"
    _sub(info, "headline", headline)
    _sub(info, "description", _description(v))
    instruction = INSTRUCTION[v.event]
    if v.event == "new" and v.origin == "sos":
        instruction = SOS_NEW_INSTRUCTION
    _sub(info, "instruction", instruction)
    for name, value in _parameters(v):
        parameter = _sub(info, "parameter")
        _sub(parameter, "valueName", name)
        _sub(parameter, "value", value)
    area = _sub(info, "area")
    _sub(area, "areaDesc", v.place)
    if v.lat is not None and v.lon is not None:
        _sub(area, "circle", f"{_coord(v.lat)},{_coord(v.lon)} {CIRCLE_RADIUS_KM}")


def _description(v: AlertView) -> str:
    if v.origin == "sos":
        lines = [f"Panic alarm raised from the Raksha SOS app at {v.place}."]
    else:
        camera = f"Camera {v.camera_id}" if v.camera_id else "A camera"
        reading = []
        if v.peak_distress is not None:
            reading.append(f"peak distress {v.peak_distress:.2f}")
        if v.top_expression is not None:
            reading.append(f"top expression {v.top_expression}")
        detail = (
            f" (model reading: {', '.join(reading)}; an estimate, not a fact)" if reading else ""
        )
        lines = [f"{camera} at {v.place} flagged a person who may be in distress{detail}."]
    lines.append(f"{EVENT_PHRASES[v.event]} by {v.actor}; state now {v.state}.")
    if v.unit is not None:
        name = f" {v.unit.name}" if v.unit.name and v.unit.name != v.unit.id else ""
        kind = f" ({v.unit.kind})" if v.unit.kind else ""
        away = f", {v.unit.distance_m:.0f} m away" if v.unit.distance_m is not None else ""
        lines.append(f"Unit {v.unit.id}{name}{kind}{away}.")
    if v.escalation is not None:
        lines.append(escalation_text(v.escalation))
    return "\n".join(lines)


def _parameters(v: AlertView) -> list[tuple[str, str]]:
    params = [
        ("RAKSHA_EVENT", v.event),
        ("RAKSHA_SEQ", str(v.seq)),
        ("RAKSHA_STATE", v.state),
        ("RAKSHA_ORIGIN", v.origin),
        ("RAKSHA_PRIORITY", v.priority),
        ("RAKSHA_ACTOR", v.actor),
        ("RAKSHA_STATION", v.station_id),
    ]
    optional = [
        ("RAKSHA_UNIT", v.unit.id if v.unit else None),
        ("RAKSHA_CAMERA", v.camera_id),
        ("RAKSHA_HOTSPOT", v.hotspot_id),
        ("RAKSHA_ESCALATION_LEVEL", str(v.escalation.level) if v.escalation else None),
        ("RAKSHA_PEAK_DISTRESS", None if v.peak_distress is None else f"{v.peak_distress:.4f}"),
        ("RAKSHA_TOP_EXPRESSION", v.top_expression),
    ]
    return params + [(name, value) for name, value in optional if value is not None]


def _coord(x: float) -> str:
    """A WGS 84 coordinate in plain decimal notation (never an exponent), at most 6 places."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = None if text is None else _NOT_XML.sub("\ufffd", text)
    return element
