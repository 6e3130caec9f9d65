"""What a device sends over MQTT, checked and acted on like its HTTP twin.

Each message is JSON with the sender's device token in `token`:

    raksha/units/<unit_id>/position  {"token": "…", "lat": 26.85, "lon": 80.94, "at": "…Z"}
    raksha/units/<unit_id>/status    {"token": "…", "on_duty": false}
    raksha/sos/<source_id>           {"token": "…", "message_id": "…", "kind": "panic",
                                      "lat": …, "lon": …, "sent_at": "…Z"}

A message that is not JSON, has no or a wrong token, or that the service refuses (a replay, a
stale or impossible position) changes nothing and is logged in one line (never the token).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime
from typing import Any, Literal

from raksha.services.devices import DeviceTokens
from raksha.services.errors import ServiceError
from raksha.services.sos import SosService, SosSignal
from raksha.services.units import UnitService

log = logging.getLogger("raksha.intake")


class DeviceIntake:
    def __init__(self, tokens: DeviceTokens, units: UnitService, sos: SosService | None) -> None:
        self.tokens = tokens
        self.units = units
        self.sos = sos
        #: Outcomes by kind ("position.ok", "sos.refused", ...), for tests and metrics.
        self.outcomes: Counter[str] = Counter()

    def handle(self, kind: str, sender: str, payload: bytes) -> None:
        outcome = "refused"
        try:
            doc = json.loads(payload.decode("utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            device = self.tokens.identify(str(doc.get("token") or ""))
            if device is None:
                raise PermissionError("no or unknown device token")
            if kind == "position":
                self.units.report_position(
                    device,
                    sender,
                    float(doc["lat"]),
                    float(doc["lon"]),
                    _time(doc.get("at")),
                    None if doc.get("accuracy_m") is None else float(doc["accuracy_m"]),
                )
            elif kind == "status":
                if not isinstance(doc.get("on_duty"), bool):
                    raise ValueError("on_duty must be true or false")
                self.units.set_duty(device, sender, doc["on_duty"])
            elif kind == "sos":
                if self.sos is None:
                    raise PermissionError("SOS intake is not configured")
                if device.id != sender:
                    raise PermissionError("the topic names another sender")
                self.sos.receive(device, _signal(doc))
            outcome = "ok"
        except (ServiceError, PermissionError, ValueError, KeyError, TypeError) as exc:
            what = exc.detail if isinstance(exc, ServiceError) else str(exc)
            log.warning("MQTT %s from %s refused: %s", kind, sender, what)
        finally:
            self.outcomes[f"{kind}.{outcome}"] += 1


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _signal(doc: dict[str, Any]) -> SosSignal:
    kind: Literal["panic", "cancel"] = "cancel" if doc.get("kind") == "cancel" else "panic"
    if doc.get("kind") not in (None, "panic", "cancel"):
        raise ValueError("kind must be panic or cancel")
    return SosSignal(
        message_id=str(doc["message_id"]),
        kind=kind,
        lat=None if doc.get("lat") is None else float(doc["lat"]),
        lon=None if doc.get("lon") is None else float(doc["lon"]),
        sent_at=_time(doc.get("sent_at")),
        note=None if doc.get("note") is None else str(doc["note"])[:500],
    )
