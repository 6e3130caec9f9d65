"""Patrol units for officers (where they are, which are nearest and free) and for the units
themselves (report position and duty, read the job, acknowledge it, arrive).

Officers reach units through their login (station-scoped like incidents). A unit reaches its
own record through its device token (`raksha.services.devices`): a token opens one unit and
nothing else. A unit's acknowledgement and arrival are incident actions, audited with the
unit as actor; position reports are telemetry and are not audited one by one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from raksha.audit.log import AuditLog
from raksha.auth.access import Rule, visible_stations
from raksha.domain.units import UnitState
from raksha.errors import message_of
from raksha.incidents.lifecycle import IllegalTransition
from raksha.incidents.model import Action, utcnow
from raksha.services.devices import Device
from raksha.services.errors import BadRequest, Conflict, Invalid, NotFound, ServiceError
from raksha.services.incidents import Caller, IncidentService
from raksha.store.errors import StalePosition, UnitUnavailable, UnknownUnit
from raksha.store.repository import IncidentStore


class Forbidden(ServiceError):
    status = 403


@dataclass(frozen=True, slots=True)
class Suggestion:
    unit: UnitState
    distance_m: float
    #: True when measured from the unit's live position (else from its base).
    live: bool


class UnitService:
    def __init__(
        self,
        store: IncidentStore,
        audit: AuditLog,
        incidents: IncidentService,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.incidents = incidents
        self.on_change = on_change

    # ---- officers ---------------------------------------------------------------------------

    def visible(self, caller: Caller) -> list[UnitState]:
        scope = visible_stations(caller.user, Rule.INCIDENTS_READ)
        return self.store.units(None if scope is None else sorted(scope))

    def suggest(self, caller: Caller, incident_id: str, k: int = 3) -> list[Suggestion]:
        """The nearest available units for an incident now (live positions)."""
        incident = self.incidents._scoped(caller, incident_id, Rule.INCIDENTS_READ)
        if incident.lat is None or incident.lon is None:
            return []
        return [
            Suggestion(u, d, live)
            for u, d, live in self.store.nearest_available_units(incident.lat, incident.lon, k=k)
        ]

    # ---- the unit itself --------------------------------------------------------------------

    @staticmethod
    def _own(device: Device, unit_id: str) -> None:
        if device.kind != "unit" or device.id != unit_id:
            raise Forbidden("this token is not patrol unit " + unit_id + "'s")

    def report_position(
        self,
        device: Device,
        unit_id: str,
        lat: float,
        lon: float,
        at: datetime | None,
        accuracy_m: float | None = None,
    ) -> UnitState:
        self._own(device, unit_id)
        when = at or utcnow()
        if when.tzinfo is None:
            raise Invalid("the position's time needs a time zone (e.g. 2026-12-06T10:15:00Z)")
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise Invalid("lat and lon must be numbers")
        try:
            unit = self.store.report_position(unit_id, lat, lon, when, accuracy_m=accuracy_m)
        except UnknownUnit as exc:
            raise NotFound(message_of(exc)) from None
        except StalePosition as exc:
            raise Conflict(message_of(exc)) from None
        if self.on_change is not None:
            self.on_change()
        return unit

    def set_duty(self, device: Device, unit_id: str, on_duty: bool) -> UnitState:
        self._own(device, unit_id)
        try:
            unit = self.store.set_unit_duty(unit_id, on_duty)
        except UnknownUnit as exc:
            raise NotFound(message_of(exc)) from None
        except UnitUnavailable as exc:
            raise Conflict(message_of(exc)) from None
        self.audit.append(
            device.actor,
            "unit.duty",
            target=f"unit:{unit_id}",
            station_id=unit.station_id,
            details={"on_duty": on_duty},
        )
        return unit

    def job(self, device: Device, unit_id: str) -> dict[str, Any] | None:
        """The unit's current job card (None: no job)."""
        self._own(device, unit_id)
        unit = self.store.unit(unit_id)
        if unit is None:
            raise NotFound(f"unknown patrol unit {unit_id!r}")
        if unit.incident_id is None:
            return None
        card = self.store.latest_job_card(unit.incident_id, unit_id)
        incident = self.store.get_incident(unit.incident_id)
        if card is None or incident is None:
            return None
        return {
            **card,
            "incident_id": incident.id,
            "incident_state": incident.state.value,
            "unit_status": unit.status.value,
        }

    def act(self, device: Device, unit_id: str, action: Action, note: str | None = None) -> str:
        """The unit acknowledges its job (`unit_ack`) or reports arrival (`on_scene`)."""
        self._own(device, unit_id)
        if action not in (Action.UNIT_ACK, Action.ON_SCENE):
            raise BadRequest("a unit may acknowledge its job or report arrival only")
        unit = self.store.unit(unit_id)
        if unit is None:
            raise NotFound(f"unknown patrol unit {unit_id!r}")
        if unit.incident_id is None:
            raise Conflict(f"patrol unit {unit_id} has no job")
        incident_id = unit.incident_id
        target = f"incident:{incident_id}"

        def audit_it(conn: Any, rec: Any) -> None:
            self.audit.append_in(
                conn,
                device.actor,
                "incident.action",
                target=target,
                station_id=unit.station_id,
                details={"action": action.value, "unit_id": unit_id, "note": note},
            )

        try:
            self.store.apply_action(
                incident_id, action, device.actor, note, unit_id, with_it=audit_it
            )
        except (IllegalTransition, UnitUnavailable) as exc:
            raise Conflict(message_of(exc)) from None
        if self.on_change is not None:
            self.on_change()
        return incident_id
