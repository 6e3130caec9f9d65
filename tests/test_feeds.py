"""Alerts as EIDO-style JSON and OASIS CAP 1.2 XML (raksha.alerts.eido, .cap, .formats).

Every rendering is validated for real: EIDO documents with jsonschema (draft 2020-12, formats
checked, "date-time" by a strict RFC 3339 check since jsonschema's own needs an optional
package) against schemas/eido-raksha.schema.json, CAP alerts with xmlschema against
schemas/cap-1.2.xsd, both loaded from the installed package. Each schema is also shown to reject
broken documents, so a passing validation means something.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any

import pytest
import xmlschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from raksha.alerts.base import DeliveryError, alert_body
from raksha.alerts.cap import cap_xml
from raksha.alerts.eido import eido_body, eido_document
from raksha.alerts.formats import FORMATS, render
from raksha.alerts.outbox import PendingDelivery

SCHEMAS = files("raksha.alerts") / "schemas"
NS = "{urn:oasis:names:tc:emergency:cap:1.2}"
CAP_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
SENDER = "raksha@lucknow.police"

OPENED = datetime.fromisoformat("2026-12-06T10:14:40.000000+00:00")
HINDI_NOTE = "महिला बस स्टॉप पर मदद माँग रही है; दो लोग पीछा कर रहे थे।"

ROUTE = {
    "station_id": "hazratganj",
    "station_name": "Hazratganj Police Station",
    "method": "nearest",
    "distance_m": 420.0,
    "patrol_units": [
        {
            "id": "pink-scooter-07",
            "kind": "scooter",
            "station_id": "hazratganj",
            "distance_m": 300.0,
        }
    ],
}
UNIT = {
    "id": "pink-scooter-07",
    "name": "Pink Scooter 7",
    "kind": "scooter",
    "station_id": "hazratganj",
    "distance_m": 310.5,
}
ESCALATION = {
    "level": 2,
    "to": "control_room",
    "station_id": "aliganj",
    "reason": "not acknowledged within 60 s",
}

#: event -> (state after it, actor, carries the unit, carries the escalation, note)
EVENTS: dict[str, tuple[str, str, bool, bool, str | None]] = {
    "new": ("NEW", "camera:cam-hazratganj-1", False, False, None),
    "escalated": ("NEW", "system:escalation", False, True, None),
    "acknowledged": ("ACKNOWLEDGED", "officer-12", False, False, None),
    "confirmed": ("CONFIRMED", "officer-12", False, False, "Woman waving for help near gate 2"),
    "dispatched": ("DISPATCHED", "officer-12", True, False, None),
    "unit_acknowledged": ("DISPATCHED", "unit:pink-scooter-07", True, False, None),
    "on_scene": ("DISPATCHED", "unit:pink-scooter-07", True, False, "Reached; talking to her"),
    "reassigned": ("DISPATCHED", "system:escalation", True, True, None),
    "sos_joined": ("ACKNOWLEDGED", "sos:app", False, False, None),
    "resolved": ("RESOLVED", "officer-12", False, False, "Escorted home safely"),
    "dismissed": ("DISMISSED", "officer-12", False, False, "Children playing, no distress"),
    "sos_cancelled": ("DISMISSED", "sos:app", False, False, "Cancelled from the app"),
}
CAMERA_EVENTS = [e for e in EVENTS if e != "sos_cancelled"]
SOS_EVENTS = list(EVENTS)
CASES = [("camera", e) for e in CAMERA_EVENTS] + [("sos", e) for e in SOS_EVENTS]


def make_payload(
    event: str, *, origin: str = "camera", seq: int = 1, **over: Any
) -> dict[str, Any]:
    """A realistic state-change payload; `over` replaces (or, with None, nulls) fields."""
    state, actor, with_unit, with_escalation, note = EVENTS[event]
    if origin == "sos" and actor.startswith("camera:"):
        actor = "sos:app"
    at = OPENED + timedelta(seconds=22.123456 * seq)
    payload: dict[str, Any] = {
        "event": event,
        "seq": seq,
        "at": at.isoformat(),
        "state": state,
        "actor": actor,
        "note": note,
        "origin": origin,
        "priority": "high" if origin == "sos" or event == "sos_joined" else "normal",
        "camera_id": "cam-hazratganj-1" if origin == "camera" else None,
        "hotspot_id": "hazratganj",
        "place": "Hazratganj crossing",
        "lat": 26.8467,
        "lon": 80.9462,
        "opened_at": OPENED.isoformat(),
        "station_id": "hazratganj",
        "station_name": "Hazratganj Police Station",
        "peak_distress": 0.82 if origin == "camera" else None,
        "top_expression": "fear" if origin == "camera" else None,
        "route": ROUTE,
        "unit": UNIT if with_unit else None,
        "escalation": ESCALATION if with_escalation else None,
        "previous_alert": None,
    }
    if seq > 1:
        previous_at = OPENED + timedelta(seconds=22.123456 * (seq - 1))
        payload["previous_alert"] = {"id": str(uuid.uuid4()), "at": previous_at.isoformat()}
    payload.update(over)
    return payload


def make_delivery(
    payload: dict[str, Any], *, alert_id: str | None = None, incident_id: str | None = None
) -> PendingDelivery:
    return PendingDelivery(
        delivery_id=1,
        channel="webhook",
        alert_id=alert_id or str(uuid.uuid4()),
        incident_id=incident_id or str(uuid.uuid4()),
        station_id="hazratganj",
        payload=payload,
        attempts=0,
    )


def delivery_for(event: str, origin: str = "camera", /, **over: Any) -> PendingDelivery:
    """A delivery for `event`; `over` replaces payload fields (None nulls them)."""
    payload = make_payload(event, origin=origin, seq=1 if event == "new" else 3)
    payload.update(over)
    return make_delivery(payload)


def story(origin: str, events: list[str]) -> list[PendingDelivery]:
    """One incident's alerts in order, each naming the one before it."""
    incident_id = str(uuid.uuid4())
    out: list[PendingDelivery] = []
    for seq, event in enumerate(events, start=1):
        payload = make_payload(event, origin=origin, seq=seq)
        if out:
            prev = out[-1]
            payload["previous_alert"] = {"id": prev.alert_id, "at": prev.payload["at"]}
        out.append(make_delivery(payload, incident_id=incident_id))
    return out


# --- validators -----------------------------------------------------------------------------

_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def eido_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMAS.joinpath("eido-raksha.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    checker = FormatChecker(formats=Draft202012Validator.FORMAT_CHECKER.checkers)
    checker.checks("date-time")(_is_rfc3339)
    assert {"date-time", "uuid"} <= set(checker.checkers)
    return Draft202012Validator(schema, format_checker=checker)


@pytest.fixture(scope="module")
def cap_schema() -> xmlschema.XMLSchema10:
    schema = xmlschema.XMLSchema10(SCHEMAS.joinpath("cap-1.2.xsd").read_text(encoding="utf-8"))
    assert schema.target_namespace == "urn:oasis:names:tc:emergency:cap:1.2"
    return schema


def eido_errors(validator: Draft202012Validator, doc: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def check_cap(schema: xmlschema.XMLSchema10, body: bytes) -> ET.Element:
    """Validate against the XSD and the CAP rules XSD 1.0 cannot state; return the root."""
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    text = body.decode("utf-8")
    schema.validate(text)
    root = ET.fromstring(body)
    assert root.tag == f"{NS}alert"
    if _text(root, "scope") == "Restricted":
        assert _text(root, "restriction")
    if _text(root, "scope") == "Private":
        assert _text(root, "addresses")
    for polygon in root.iter(f"{NS}polygon"):
        pairs = (polygon.text or "").split()
        assert pairs[0] == pairs[-1]
    for tag in ("sent", "effective", "onset", "expires"):
        for element in root.iter(f"{NS}{tag}"):
            assert CAP_DATETIME.match(element.text or ""), (tag, element.text)
    return root


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(_q(path))
    return None if found is None else found.text


def _q(path: str) -> str:
    return "/".join(f"{NS}{part}" for part in path.split("/"))


def _texts(element: ET.Element, path: str) -> list[str]:
    return [e.text or "" for e in element.findall(_q(path))]


def _parameters(root: ET.Element) -> dict[str, str]:
    return {
        _text(p, "valueName") or "": _text(p, "value") or ""
        for p in root.findall(_q("info/parameter"))
    }


# --- every event validates ------------------------------------------------------------------


@pytest.mark.parametrize(("origin", "event"), CASES)
def test_eido_document_validates_for_every_event(
    eido_validator: Draft202012Validator, origin: str, event: str
) -> None:
    d = delivery_for(event, origin)
    doc = json.loads(eido_body(d))
    assert eido_errors(eido_validator, doc) == []
    assert doc["eidoMessageIdentifier"] == d.alert_id
    assert doc["incidentComponent"]["incidentTrackingIdentifier"] == d.incident_id
    assert doc["rakshaEvent"]["event"] == event
    assert doc["rakshaEvent"]["state"] == d.payload["state"]
    kind = "Person in distress" if origin == "camera" else "Panic alarm"
    assert doc["incidentComponent"]["incidentTypeCommonRegistryText"] == [kind]
    assert doc["agencyComponent"][0]["agencyName"] == "Hazratganj Police Station"
    assert ("unitComponent" in doc) == (d.payload["unit"] is not None)
    assert ("detectionComponent" in doc) == (origin == "camera")
    assert doc["locationComponent"][0]["geometry"] == {
        "type": "Point",
        "coordinates": [80.9462, 26.8467],
    }


@pytest.mark.parametrize(("origin", "event"), CASES)
def test_cap_alert_validates_for_every_event(
    cap_schema: xmlschema.XMLSchema10, origin: str, event: str
) -> None:
    d = delivery_for(event, origin)
    root = check_cap(cap_schema, cap_xml(d, sender=SENDER))
    assert _text(root, "identifier") == d.alert_id
    assert _text(root, "sender") == SENDER
    assert _text(root, "status") == "Actual"
    assert _text(root, "scope") == "Restricted"
    assert _text(root, "restriction") == "Police use only"
    assert _text(root, "incidents") == d.incident_id
    assert _text(root, "info/language") == "en-IN"
    assert _text(root, "info/senderName") == "Hazratganj Police Station"
    assert _text(root, "info/area/areaDesc") == "Hazratganj crossing"
    assert _texts(root, "info/area/circle") == ["26.8467,80.9462 0.1"]
    params = _parameters(root)
    assert params["RAKSHA_EVENT"] == event
    assert params["RAKSHA_SEQ"] == str(d.payload["seq"])
    assert params["RAKSHA_STATE"] == d.payload["state"]
    assert ("RAKSHA_UNIT" in params) == (d.payload["unit"] is not None)
    if _text(root, "msgType") in ("Update", "Cancel"):
        assert _text(root, "references")
    headline = _text(root, "info/headline") or ""
    assert "Hazratganj crossing" in headline
    assert len(headline) <= 160


def test_every_event_is_covered() -> None:
    assert set(CAMERA_EVENTS) | set(SOS_EVENTS) == set(EVENTS)
    assert len(EVENTS) == 12


# --- CAP semantics --------------------------------------------------------------------------


def test_cap_sent_is_whole_seconds_utc_with_explicit_offset(
    cap_schema: xmlschema.XMLSchema10,
) -> None:
    # 15:45:02.999999 in India is 10:15:02.999999 UTC: rounded down, never up.
    d = delivery_for("acknowledged", at="2026-12-06T15:45:02.999999+05:30")
    root = check_cap(cap_schema, cap_xml(d))
    assert _text(root, "sent") == "2026-12-06T10:15:02+00:00"
    assert _text(root, "info/onset") == "2026-12-06T10:14:40+00:00"
    sent = _text(root, "sent") or ""
    assert "." not in sent
    assert not sent.endswith("Z")


def test_update_references_the_previous_alert(cap_schema: xmlschema.XMLSchema10) -> None:
    events = [
        "new",
        "escalated",
        "acknowledged",
        "confirmed",
        "dispatched",
        "unit_acknowledged",
        "on_scene",
        "resolved",
    ]
    alerts = story("camera", events)
    roots = [check_cap(cap_schema, cap_xml(d, sender=SENDER)) for d in alerts]
    assert _text(roots[0], "msgType") == "Alert"
    assert _text(roots[0], "references") is None
    for prev, root in itertools.pairwise(roots):
        # "sender,identifier,sent" exactly as the previous alert carried them.
        expected = ",".join(_text(prev, tag) or "" for tag in ("sender", "identifier", "sent"))
        assert _text(root, "references") == expected
        assert _text(root, "msgType") == "Update"
        assert _text(root, "incidents") == _text(prev, "incidents")
    docs = [eido_document(d) for d in alerts]
    assert docs[0]["referencedMessage"] is None
    for prev_doc, doc in itertools.pairwise(docs):
        assert doc["referencedMessage"] == {
            "eidoMessageIdentifier": prev_doc["eidoMessageIdentifier"],
            "lastUpdateTimeStamp": prev_doc["lastUpdateTimeStamp"],
        }
    assert [d["rakshaEvent"]["sequence"] for d in docs] == list(range(1, len(events) + 1))


@pytest.mark.parametrize(
    ("origin", "event", "msg_type"),
    [
        ("camera", "new", "Alert"),
        ("sos", "new", "Alert"),
        ("camera", "acknowledged", "Update"),
        ("camera", "escalated", "Update"),
        ("camera", "on_scene", "Update"),
        ("camera", "resolved", "Update"),
        ("camera", "dismissed", "Cancel"),
        ("sos", "dismissed", "Cancel"),
        ("sos", "sos_cancelled", "Cancel"),
    ],
)
def test_msg_type_per_event(
    cap_schema: xmlschema.XMLSchema10, origin: str, event: str, msg_type: str
) -> None:
    root = check_cap(cap_schema, cap_xml(delivery_for(event, origin)))
    assert _text(root, "msgType") == msg_type


def test_dismissed_is_a_cancel_with_its_reason(cap_schema: xmlschema.XMLSchema10) -> None:
    d = delivery_for("dismissed")
    root = check_cap(cap_schema, cap_xml(d))
    assert _text(root, "msgType") == "Cancel"
    assert _text(root, "note") == "Children playing, no distress"
    assert _texts(root, "info/responseType") == ["None"]
    assert _text(root, "info/certainty") == "Unlikely"
    doc = eido_document(d)
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == ["Dismissed"]
    silent = check_cap(cap_schema, cap_xml(delivery_for("sos_cancelled", "sos", note=None)))
    assert _text(silent, "note") == "SOS cancelled by sos:app."


def test_resolved_carries_all_clear(cap_schema: xmlschema.XMLSchema10) -> None:
    d = delivery_for("resolved")
    root = check_cap(cap_schema, cap_xml(d))
    assert _texts(root, "info/responseType") == ["AllClear"]
    assert _text(root, "info/urgency") == "Past"
    assert eido_document(d)["incidentComponent"]["incidentStatusCommonRegistryText"] == ["Closed"]


@pytest.mark.parametrize(
    ("origin", "event", "certainty"),
    [
        ("camera", "new", "Possible"),
        ("camera", "acknowledged", "Possible"),
        ("camera", "confirmed", "Likely"),
        ("sos", "new", "Likely"),
        ("camera", "on_scene", "Observed"),
        ("sos", "on_scene", "Observed"),
    ],
)
def test_certainty(
    cap_schema: xmlschema.XMLSchema10, origin: str, event: str, certainty: str
) -> None:
    root = check_cap(cap_schema, cap_xml(delivery_for(event, origin)))
    assert _text(root, "info/certainty") == certainty


def test_severity_category_and_event_follow_priority_and_origin(
    cap_schema: xmlschema.XMLSchema10,
) -> None:
    camera = check_cap(cap_schema, cap_xml(delivery_for("new", "camera")))
    assert _text(camera, "info/severity") == "Moderate"
    assert _texts(camera, "info/category") == ["Safety"]
    assert _text(camera, "info/event") == "Person in distress"
    assert _text(camera, "info/urgency") == "Immediate"
    sos = check_cap(cap_schema, cap_xml(delivery_for("new", "sos")))
    assert _text(sos, "info/severity") == "Severe"
    assert _texts(sos, "info/category") == ["Safety", "Rescue"]
    assert _text(sos, "info/event") == "Panic alarm"
    high_camera = check_cap(cap_schema, cap_xml(delivery_for("new", priority="high")))
    assert _text(high_camera, "info/severity") == "Severe"


def test_camera_reading_is_labelled_an_estimate(cap_schema: xmlschema.XMLSchema10) -> None:
    d = delivery_for("new")
    detection = eido_document(d)["detectionComponent"][0]
    assert detection["modelReading"] == {"peakDistressScore": 0.82, "topExpressionLabel": "fear"}
    assert "estimate" in detection["interpretationText"]
    assert "not a verified fact" in detection["interpretationText"]
    description = _text(check_cap(cap_schema, cap_xml(d)), "info/description") or ""
    assert "model reading" in description
    assert "not a fact" in description


def test_bad_sender_is_refused() -> None:
    with pytest.raises(ValueError, match="sender"):
        cap_xml(delivery_for("new"), sender="raksha local")
    with pytest.raises(ValueError, match="sender"):
        cap_xml(delivery_for("new"), sender="a,b")


def test_text_xml_cannot_carry_is_replaced(cap_schema: xmlschema.XMLSchema10) -> None:
    root = check_cap(cap_schema, cap_xml(delivery_for("confirmed", note="bell\x07 rang")))
    assert _text(root, "note") == "bell\ufffd rang"


# --- the schemas reject broken documents ----------------------------------------------------


def _drop(path: str) -> Callable[[ET.Element], None]:
    def mutate(root: ET.Element) -> None:
        parent_path, _, tag = path.rpartition("/")
        parent = root.find(_q(parent_path)) if parent_path else root
        assert parent is not None
        element = parent.find(_q(tag))
        assert element is not None
        parent.remove(element)

    return mutate


def _set(path: str, value: str) -> Callable[[ET.Element], None]:
    def mutate(root: ET.Element) -> None:
        element = root.find(_q(path))
        assert element is not None
        element.text = value

    return mutate


def _swap_info_order(root: ET.Element) -> None:
    info = root.find(_q("info"))
    assert info is not None
    urgency = info.find(_q("urgency"))
    assert urgency is not None
    info.remove(urgency)
    info.insert(0, urgency)


CAP_BREAKAGES: dict[str, Callable[[ET.Element], None]] = {
    "missing identifier": _drop("identifier"),
    "missing sent": _drop("sent"),
    "missing info event": _drop("info/event"),
    "missing areaDesc": _drop("info/area/areaDesc"),
    "unknown msgType": _set("msgType", "Notice"),
    "unknown status": _set("status", "Real"),
    "unknown scope": _set("scope", "Police"),
    "unknown category": _set("info/category", "Crime"),
    "unknown urgency": _set("info/urgency", "Now"),
    "unknown severity": _set("info/severity", "Bad"),
    "unknown certainty": _set("info/certainty", "Sure"),
    "unknown responseType": _set("info/responseType", "Run"),
    "sent with Z": _set("sent", "2026-12-06T10:15:02Z"),
    "sent with fraction": _set("sent", "2026-12-06T10:15:02.123+00:00"),
    "sent without offset": _set("sent", "2026-12-06T10:15:02"),
    "sent not a date": _set("sent", "2026-13-06T10:15:02+00:00"),
    "identifier with a space": _set("identifier", "alert 1"),
    "references not a triple": _set("references", "raksha@local,abc"),
    "circle without radius": _set("info/area/circle", "26.8467,80.9462"),
    "info out of order": _swap_info_order,
}


@pytest.mark.parametrize("name", list(CAP_BREAKAGES))
def test_xsd_rejects_broken_cap(cap_schema: xmlschema.XMLSchema10, name: str) -> None:
    body = cap_xml(delivery_for("acknowledged"), sender=SENDER)
    check_cap(cap_schema, body)  # the unbroken alert is valid
    root = ET.fromstring(body)
    CAP_BREAKAGES[name](root)
    broken = ET.tostring(root, encoding="unicode")
    assert not cap_schema.is_valid(broken)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        cap_schema.validate(broken)


def _eido_set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    return mutate


def _eido_drop(key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        del doc[key]

    return mutate


EIDO_BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "missing message id": _eido_drop("eidoMessageIdentifier"),
    "missing incident": _eido_drop("incidentComponent"),
    "missing detection on a camera incident": _eido_drop("detectionComponent"),
    "message id not a uuid": _eido_set("eidoMessageIdentifier", "x" * 36),
    "unknown status": _eido_set("incidentComponent.incidentStatusCommonRegistryText", ["Open"]),
    "unknown event": _eido_set("rakshaEvent.event", "exploded"),
    "unknown state": _eido_set("rakshaEvent.state", "CLOSED"),
    "sequence zero": _eido_set("rakshaEvent.sequence", 0),
    "sequence as text": _eido_set("rakshaEvent.sequence", "3"),
    "unknown priority": _eido_set("incidentComponent.incidentPriorityText", "urgent"),
    "extra property": _eido_set("comment", "hello"),
    "extra property in a component": _eido_set("locationComponent.0.floor", 2),
    "impossible date": _eido_set("lastUpdateTimeStamp", "2026-13-45T10:00:00+00:00"),
    "time not in UTC": _eido_set("lastUpdateTimeStamp", "2026-12-06T15:45:02+05:30"),
    "time without offset": _eido_set("incidentComponent.incidentCreationTimeStamp", "2026-12-06"),
    "latitude out of range": _eido_set("locationComponent.0.geometry.coordinates", [80.9, 95.0]),
    "distress above 1": _eido_set("detectionComponent.0.modelReading.peakDistressScore", 1.5),
    "empty place": _eido_set("locationComponent.0.civicAddressText", ""),
}


@pytest.mark.parametrize("name", list(EIDO_BREAKAGES))
def test_eido_schema_rejects_broken_documents(
    eido_validator: Draft202012Validator, name: str
) -> None:
    doc = eido_document(delivery_for("dispatched"))
    assert eido_errors(eido_validator, doc) == []
    broken = copy.deepcopy(doc)
    EIDO_BREAKAGES[name](broken)
    with pytest.raises(ValidationError):
        eido_validator.validate(broken)


def test_eido_schema_rejects_detection_on_an_sos(eido_validator: Draft202012Validator) -> None:
    camera = eido_document(delivery_for("new", "camera"))
    sos = eido_document(delivery_for("new", "sos"))
    assert eido_errors(eido_validator, sos) == []
    sos["detectionComponent"] = camera["detectionComponent"]
    assert eido_errors(eido_validator, sos)


# --- text, formats, old and broken payloads -------------------------------------------------


def test_hindi_note_survives_as_utf8(
    cap_schema: xmlschema.XMLSchema10, eido_validator: Draft202012Validator
) -> None:
    d = delivery_for("confirmed", note=HINDI_NOTE, place="हज़रतगंज चौराहा")
    for fmt in ("eido", "cap", "raksha"):
        body, _ = render(d, fmt)
        assert HINDI_NOTE.encode("utf-8") in body, fmt  # raw UTF-8, not escapes
        assert b"\\u" not in body and b"&#" not in body, fmt
    doc = json.loads(render(d, "eido")[0].decode("utf-8"))
    assert eido_errors(eido_validator, doc) == []
    assert [n["noteText"] for n in doc["notesComponent"] if n["noteKindText"] == "note"] == [
        HINDI_NOTE
    ]
    assert doc["locationComponent"][0]["civicAddressText"] == "हज़रतगंज चौराहा"
    root = check_cap(cap_schema, render(d, "cap")[0])
    assert _text(root, "note") == HINDI_NOTE
    assert _text(root, "info/area/areaDesc") == "हज़रतगंज चौराहा"


def test_render_formats_and_content_types() -> None:
    d = delivery_for("dispatched")
    assert FORMATS == ("raksha", "eido", "cap")
    assert render(d, "raksha") == (alert_body(d), "application/json")
    assert render(d, "eido") == (eido_body(d), "application/json")
    assert render(d, "cap", sender=SENDER) == (cap_xml(d, sender=SENDER), "application/cap+xml")


def test_render_unknown_format_raises() -> None:
    with pytest.raises(ValueError, match=r"'geojson'.*raksha, eido, cap"):
        render(delivery_for("new"), "geojson")


def test_eido_body_is_compact_sorted_utf8() -> None:
    d = delivery_for("on_scene", note=HINDI_NOTE)
    body = eido_body(d)
    expected = json.dumps(
        eido_document(d), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert body == expected.encode("utf-8")
    assert body == eido_body(d)  # the same bytes every attempt


#: An alert as stored before alerts carried state changes (AlertPayload.to_json of then, plus
#: the ids the store adds): no event, seq, at, state, actor, origin, priority, place, lat/lon.
LEGACY_PAYLOAD: dict[str, Any] = {
    "camera_id": "cam-hazratganj-1",
    "hotspot_id": "hazratganj",
    "station_id": "hazratganj",
    "opened_at": "2026-12-06T10:14:40.654321+00:00",
    "peak_distress": 0.8234,
    "peak_absolute": 0.71,
    "peak_relative": 0.35,
    "top_expression": "fear",
    "route": ROUTE,
    "note": "Automated distress alert: a human must look before anyone is dispatched.",
    "alert_id": "7d1c3a52-5a7e-4a55-9d49-0c6f0e1f2a10",
    "incident_id": "0b6f7f0e-3c1e-4b7a-a1d5-2f8f5f0c9e11",
}


def test_old_payload_without_event_is_a_new_alert(
    cap_schema: xmlschema.XMLSchema10, eido_validator: Draft202012Validator
) -> None:
    d = make_delivery(copy.deepcopy(LEGACY_PAYLOAD))
    assert "event" not in d.payload
    doc = eido_document(d)
    assert eido_errors(eido_validator, doc) == []
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == ["New"]
    assert doc["rakshaEvent"] == {
        "event": "new",
        "sequence": 1,
        "state": "NEW",
        "actor": "camera:cam-hazratganj-1",
    }
    assert doc["lastUpdateTimeStamp"] == "2026-12-06T10:14:40.654321+00:00"
    assert doc["incidentComponent"]["incidentPriorityText"] == "normal"
    assert doc["incidentComponent"]["incidentOriginText"] == "camera"
    assert doc["referencedMessage"] is None
    assert doc["locationComponent"][0]["civicAddressText"] == "hazratganj"
    assert doc["locationComponent"][0]["geometry"] is None
    assert doc["agencyComponent"][0]["agencyName"] == "Hazratganj Police Station"
    assert doc["agencyComponent"][0]["routingMethodText"] == "nearest"
    root = check_cap(cap_schema, cap_xml(d))
    assert _text(root, "msgType") == "Alert"
    assert _text(root, "sent") == "2026-12-06T10:14:40+00:00"
    assert _text(root, "references") is None
    assert _text(root, "info/certainty") == "Possible"


def test_missing_coordinates_give_an_area_without_circle(
    cap_schema: xmlschema.XMLSchema10, eido_validator: Draft202012Validator
) -> None:
    d = delivery_for("dispatched", lat=None, lon=None)
    root = check_cap(cap_schema, cap_xml(d))
    area = root.find(_q("info/area"))
    assert area is not None
    assert [child.tag for child in area] == [f"{NS}areaDesc"]
    assert _text(root, "info/area/areaDesc") == "Hazratganj crossing"
    doc = eido_document(d)
    assert eido_errors(eido_validator, doc) == []
    assert doc["locationComponent"][0]["geometry"] is None


@pytest.mark.parametrize(
    ("to", "station_id"),
    [("supervisor", None), ("control_room", None), ("station", "aliganj"), ("next_station", None)],
)
def test_every_escalation_target_renders(
    cap_schema: xmlschema.XMLSchema10,
    eido_validator: Draft202012Validator,
    to: str,
    station_id: str | None,
) -> None:
    escalation = {"level": 3, "to": to, "station_id": station_id, "reason": "no unit dispatched"}
    d = delivery_for("escalated", escalation=escalation)
    doc = eido_document(d)
    assert eido_errors(eido_validator, doc) == []
    roles = [a["agencyRoleText"] for a in doc["agencyComponent"]]
    assert roles == (["Responsible", "Escalation"] if station_id else ["Responsible"])
    root = check_cap(cap_schema, cap_xml(d))
    assert _parameters(root)["RAKSHA_ESCALATION_LEVEL"] == "3"
    assert "Escalation level 3" in (_text(root, "info/description") or "")


UNRENDERABLE: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (event, payload changes, the field the error must name)
    "no opened_at": ("new", {"opened_at": None}, "opened_at"),
    "no at on an update": ("acknowledged", {"at": None}, "at"),
    "no state on an update": ("dispatched", {"state": None}, "state"),
    "no seq on an update": ("dispatched", {"seq": None}, "seq"),
    "no actor on an update": ("resolved", {"actor": None}, "actor"),
    "no place at all": (
        "new",
        {"place": None, "hotspot_id": None, "camera_id": None, "lat": None, "lon": None},
        "place",
    ),
    "unknown event": ("new", {"event": "exploded"}, "event"),
    "unknown state": ("acknowledged", {"state": "OPEN"}, "state"),
    "lat as text": ("new", {"lat": "26.8"}, "lat"),
    "lat out of range": ("new", {"lat": 126.8}, "lat"),
    "lon without lat": ("new", {"lat": None}, "lat"),
    "naive time": ("acknowledged", {"at": "2026-12-06T10:15:02"}, "at"),
    "time not a time": ("acknowledged", {"at": "yesterday"}, "at"),
    "unit without id": ("dispatched", {"unit": {"kind": "scooter"}}, "unit.id"),
    "escalation to nobody": (
        "escalated",
        {"escalation": {"level": 2, "to": "mayor"}},
        "escalation.to",
    ),
    "previous alert without time": (
        "acknowledged",
        {"previous_alert": {"id": "x"}},
        "previous_alert.at",
    ),
    "a unit's job card": ("dispatched", {"event": "job_card"}, "event"),
}


@pytest.mark.parametrize("fmt", ["eido", "cap"])
@pytest.mark.parametrize("name", list(UNRENDERABLE))
def test_unrenderable_payload_is_a_permanent_delivery_error(name: str, fmt: str) -> None:
    event, changes, field = UNRENDERABLE[name]
    d = delivery_for(event, **changes)
    with pytest.raises(DeliveryError) as caught:
        render(d, fmt)
    assert caught.value.permanent
    message = str(caught.value)
    assert d.alert_id in message
    assert repr(field) in message


def test_schemas_ship_inside_the_package() -> None:
    names = {entry.name for entry in SCHEMAS.iterdir()}
    assert {"eido-raksha.schema.json", "cap-1.2.xsd"} <= names
    xsd = SCHEMAS.joinpath("cap-1.2.xsd").read_text(encoding="utf-8")
    assert "written for Raksha's tests" in xsd
    assert "CAP 1.2 specification" in xsd


def test_what_the_incident_events_module_emits_renders(
    cap_schema: xmlschema.XMLSchema10, eido_validator: Draft202012Validator
) -> None:
    """The producer's own payloads (raksha.incidents.events), not just this file's."""
    events = pytest.importorskip("raksha.incidents.events")
    model = pytest.importorskip("raksha.incidents.model")
    snapshot = events.Snapshot(
        id=str(uuid.uuid4()),
        camera_id="cam-hazratganj-1",
        hotspot_id="hazratganj",
        station_id="hazratganj",
        station_name="Hazratganj Police Station",
        origin=model.Origin.CAMERA,
        priority=model.Priority.NORMAL,
        lat=26.8467,
        lon=80.9462,
        place="",
        opened_at=OPENED,
        peak_distress=0.82,
        top_expression="fear",
        route=ROUTE,
    )
    states = {e: model.IncidentState(state) for e, (state, *_) in EVENTS.items()}
    previous: dict[str, Any] | None = None
    for seq, event in enumerate(e for e in events.Event if e.value != "job_card"):
        at = OPENED + timedelta(seconds=10 * seq + 0.5)
        payload = events.event_payload(
            snapshot,
            event,
            seq=seq + 1,
            at=at,
            state=states.get(event.value, model.IncidentState.ACKNOWLEDGED),
            actor="officer-12",
            note=HINDI_NOTE,
            unit=UNIT if EVENTS.get(event.value, ("", "", False))[2] else None,
            previous_alert=previous,
        )
        d = make_delivery(payload)
        assert eido_errors(eido_validator, eido_document(d)) == [], event
        root = check_cap(cap_schema, cap_xml(d))
        assert _text(root, "info/area/areaDesc") == "hazratganj"  # place falls back
        previous = {"id": d.alert_id, "at": at.isoformat()}
