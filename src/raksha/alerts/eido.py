"""An alert as an EIDO-style JSON document (after NENA's Emergency Incident Data Object,
NENA-STA-024).

EIDO-style, not certified EIDO: the component layout and names follow EIDO, the content is
Raksha's, and `schemas/eido-raksha.schema.json` describes exactly what is emitted. The mapping:

- `eidoMessageIdentifier` is the alert id (one per state change), `lastUpdateTimeStamp` its time;
  `referencedMessage` is the incident's previous alert (null for the first, or an old alert);
- `incidentComponent`: tracking id = incident id; type "Person in distress" (camera) or "Panic
  alarm" (SOS); status text per event (STATUS_TEXT); priority; opening time;
- `rakshaEvent`: the event, its per-incident sequence number, the state after it, the actor;
- `locationComponent`: the place in words, the hotspot, a GeoJSON point ([lon, lat]) or null;
- `agencyComponent`: the responsible station (and the escalation's station, if another);
- `unitComponent`: only when the payload names a unit (dispatch, unit ack, on scene, reassign);
- `notesComponent`: what happened and who did it, the free-text note, the escalation;
- `detectionComponent` (camera incidents only): the model's reading, labelled as an estimate.

All times are RFC 3339 in UTC with an explicit +00:00 offset.
"""

from __future__ import annotations

import json
from typing import Any, Final

from raksha.alerts.base import DeliveryError
from raksha.alerts.formats import (
    EVENT_PHRASES,
    AlertView,
    alert_view,
    escalation_text,
    utc_iso,
)
from raksha.alerts.outbox import PendingDelivery

#: Identifies this document shape; bump when it changes incompatibly.
EIDO_PROFILE: Final = "raksha.eido/1"

INCIDENT_TYPE: Final[dict[str, str]] = {"camera": "Person in distress", "sos": "Panic alarm"}

STATUS_TEXT: Final[dict[str, str]] = {
    "new": "New",
    "acknowledged": "Acknowledged",
    "confirmed": "Confirmed",
    "escalated": "Escalated",
    "dispatched": "Dispatched",
    "unit_acknowledged": "Enroute",
    "on_scene": "OnScene",
    "reassigned": "Reassigned",
    "sos_joined": "SosJoined",
    "resolved": "Closed",
    "dismissed": "Dismissed",
    "sos_cancelled": "Cancelled",
}

UNIT_STATUS_TEXT: Final[dict[str, str]] = {
    "dispatched": "Dispatched",
    "unit_acknowledged": "Enroute",
    "on_scene": "OnScene",
    "reassigned": "Dispatched",
}

DETECTION_CAVEAT: Final = (
    "Automated model reading of video: an estimate of expression, not a verified fact. "
    "A human must look before anyone is dispatched."
)


def eido_document(delivery: PendingDelivery) -> dict[str, Any]:
    """The EIDO-style document for `delivery` (raises a permanent DeliveryError if the
    payload cannot be rendered)."""
    v = alert_view(delivery)
    at = utc_iso(v.at)
    doc: dict[str, Any] = {
        "eidoMessageIdentifier": v.alert_id,
        "eidoProfile": EIDO_PROFILE,
        "lastUpdateTimeStamp": at,
        "sendingSystemIdentifier": "raksha",
        "referencedMessage": None
        if v.previous_alert is None
        else {
            "eidoMessageIdentifier": v.previous_alert.id,
            "lastUpdateTimeStamp": utc_iso(v.previous_alert.at),
        },
        "incidentComponent": {
            "componentIdentifier": "incident-1",
            "incidentTrackingIdentifier": v.incident_id,
            "incidentTypeCommonRegistryText": [INCIDENT_TYPE[v.origin]],
            "incidentStatusCommonRegistryText": [STATUS_TEXT[v.event]],
            "incidentPriorityText": v.priority,
            "incidentOriginText": v.origin,
            "incidentCreationTimeStamp": utc_iso(v.opened_at),
            "lastUpdateTimeStamp": at,
            "locationReference": "location-1",
            "agencyReference": "agency-1",
        },
        "rakshaEvent": {
            "event": v.event,
            "sequence": v.seq,
            "state": v.state,
            "actor": v.actor,
        },
        "locationComponent": [_location(v)],
        "agencyComponent": _agencies(v),
        "notesComponent": _notes(v, at),
    }
    if v.unit is not None:
        doc["unitComponent"] = [
            {
                "componentIdentifier": "unit-1",
                "unitIdentifier": v.unit.id,
                "unitName": v.unit.name,
                "unitTypeText": v.unit.kind,
                "agencyIdentifier": v.unit.station_id,
                "distanceMeters": v.unit.distance_m,
                "unitStatusText": UNIT_STATUS_TEXT.get(v.event, "Assigned"),
            }
        ]
    if v.origin == "camera":
        doc["detectionComponent"] = [
            {
                "componentIdentifier": "detection-1",
                "sensorTypeText": "camera",
                "sensorIdentifier": v.camera_id,
                "modelReading": {
                    "peakDistressScore": v.peak_distress,
                    "topExpressionLabel": v.top_expression,
                },
                "interpretationText": DETECTION_CAVEAT,
            }
        ]
    return doc


def eido_body(delivery: PendingDelivery) -> bytes:
    """`eido_document` as compact, key-sorted UTF-8 JSON."""
    try:
        return json.dumps(
            eido_document(delivery),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")
    except ValueError as exc:  # NaN or infinity; a lone surrogate (UnicodeEncodeError)
        raise DeliveryError(
            f"alert {delivery.alert_id} cannot be encoded as EIDO JSON: {exc}", permanent=True
        ) from None


def _location(v: AlertView) -> dict[str, Any]:
    point = None
    if v.lat is not None and v.lon is not None:
        point = {"type": "Point", "coordinates": [v.lon, v.lat]}
    return {
        "componentIdentifier": "location-1",
        "locationTypeDescription": "Incident location",
        "civicAddressText": v.place,
        "hotspotIdentifier": v.hotspot_id,
        "geometry": point,
    }


def _agencies(v: AlertView) -> list[dict[str, Any]]:
    agencies: list[dict[str, Any]] = [
        {
            "componentIdentifier": "agency-1",
            "agencyIdentifier": v.station_id,
            "agencyName": v.station_name,
            "agencyRoleText": "Responsible",
            "routingMethodText": v.route_method,
            "distanceMeters": v.route_distance_m,
        }
    ]
    esc = v.escalation
    if esc is not None and esc.station_id is not None and esc.station_id != v.station_id:
        agencies.append(
            {
                "componentIdentifier": "agency-2",
                "agencyIdentifier": esc.station_id,
                "agencyName": None,
                "agencyRoleText": "Escalation",
                "routingMethodText": None,
                "distanceMeters": None,
            }
        )
    return agencies


def _notes(v: AlertView, at: str) -> list[dict[str, Any]]:
    texts = [("action", f"{EVENT_PHRASES[v.event]} by {v.actor}; state now {v.state}.")]
    if v.note is not None:
        texts.append(("note", v.note))
    if v.escalation is not None:
        texts.append(("escalation", escalation_text(v.escalation)))
    return [
        {
            "componentIdentifier": f"note-{i}",
            "noteDateTimeStamp": at,
            "noteKindText": kind,
            "authorIdentifier": v.actor,
            "noteText": text,
        }
        for i, (kind, text) in enumerate(texts, start=1)
    ]
