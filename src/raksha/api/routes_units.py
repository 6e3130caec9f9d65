"""Patrol units: officers see them (station-scoped) and the nearest free ones for an
incident; a unit's own device (its token) reports position and duty, reads its job card,
acknowledges it and reports arrival."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from raksha.api.deps import Context, Principal, require, require_device, service_errors
from raksha.auth.access import Rule
from raksha.domain.units import UnitState
from raksha.incidents.model import Action
from raksha.services.devices import Device
from raksha.services.units import UnitService
from raksha.store.serialize import iso

router = APIRouter(tags=["units"])

UnitId = Annotated[str, Path(min_length=1, max_length=128)]
IncidentId = Annotated[str, Path(min_length=1, max_length=64)]
NEEDS_TOKEN: dict[int | str, dict[str, Any]] = {401: {"description": "No or unknown device token"}}


class UnitOutLive(BaseModel):
    id: str
    kind: str
    station_id: str
    name: str
    status: Literal["available", "dispatched", "on_scene", "off_duty"]
    lat: float | None = Field(description="Last reported position (None: never reported).")
    lon: float | None
    accuracy_m: float | None
    position_at: str | None
    home_lat: float
    home_lon: float
    incident_id: str | None


class UnitListOut(BaseModel):
    units: list[UnitOutLive]


class SuggestionOut(BaseModel):
    unit: UnitOutLive
    distance_m: float
    live: bool = Field(description="Measured from its live position (else from its base).")


class SuggestionList(BaseModel):
    units: list[SuggestionOut]


class PositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    at: datetime | None = Field(None, description="When the fix was taken (with a time zone).")
    accuracy_m: float | None = Field(None, ge=0, le=100_000)


class DutyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_duty: bool


class UnitActIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=500)


class JobOut(BaseModel):
    job: dict[str, Any] | None


class UnitActOut(BaseModel):
    incident_id: str
    action: str


def unit_out(u: UnitState) -> UnitOutLive:
    return UnitOutLive(
        id=u.id,
        kind=u.kind,
        station_id=u.station_id,
        name=u.name,
        status=u.status.value,
        lat=u.lat,
        lon=u.lon,
        accuracy_m=u.accuracy_m,
        position_at=iso(u.position_at),
        home_lat=u.home_lat,
        home_lon=u.home_lon,
        incident_id=u.incident_id,
    )


def _units(ctx: Context) -> UnitService:
    assert ctx.units is not None
    return ctx.units


@router.get("/api/units", response_model=UnitListOut)
def list_units(
    ctx: Context, who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))]
) -> UnitListOut:
    """Patrol units with their live status and position, in the caller's scope."""
    with service_errors():
        return UnitListOut(units=[unit_out(u) for u in _units(ctx).visible(who.caller)])


@router.get("/api/incidents/{incident_id}/units", response_model=SuggestionList)
def suggest_units(
    incident_id: IncidentId,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
) -> SuggestionList:
    """The nearest available units for the incident now, nearest first."""
    with service_errors():
        found = _units(ctx).suggest(who.caller, incident_id)
    return SuggestionList(
        units=[
            SuggestionOut(unit=unit_out(s.unit), distance_m=round(s.distance_m, 1), live=s.live)
            for s in found
        ]
    )


@router.post("/api/units/{unit_id}/position", response_model=UnitOutLive, responses=NEEDS_TOKEN)
def report_position(
    unit_id: UnitId,
    body: PositionIn,
    ctx: Context,
    device: Annotated[Device, Depends(require_device())],
) -> UnitOutLive:
    """A unit's position (its phone page or tracker). 409 for a report older than the last
    one, too old, from the future or implying an impossible speed: nothing changes."""
    with service_errors():
        unit = _units(ctx).report_position(
            device, unit_id, body.lat, body.lon, body.at, body.accuracy_m
        )
    return unit_out(unit)


@router.post("/api/units/{unit_id}/duty", response_model=UnitOutLive, responses=NEEDS_TOKEN)
def set_duty(
    unit_id: UnitId,
    body: DutyIn,
    ctx: Context,
    device: Annotated[Device, Depends(require_device())],
) -> UnitOutLive:
    """On or off duty (refused while the unit serves an incident)."""
    with service_errors():
        return unit_out(_units(ctx).set_duty(device, unit_id, body.on_duty))


@router.get("/api/units/{unit_id}/job", response_model=JobOut, responses=NEEDS_TOKEN)
def get_job(
    unit_id: UnitId, ctx: Context, device: Annotated[Device, Depends(require_device())]
) -> JobOut:
    """The unit's current job card (null when it has none)."""
    with service_errors():
        return JobOut(job=_units(ctx).job(device, unit_id))


@router.post("/api/units/{unit_id}/job/ack", response_model=UnitActOut, responses=NEEDS_TOKEN)
def ack_job(
    unit_id: UnitId,
    ctx: Context,
    device: Annotated[Device, Depends(require_device())],
    body: UnitActIn | None = None,
) -> UnitActOut:
    """The unit acknowledges its job card."""
    return _unit_act(ctx, device, unit_id, Action.UNIT_ACK, body)


@router.post("/api/units/{unit_id}/job/on-scene", response_model=UnitActOut, responses=NEEDS_TOKEN)
def on_scene(
    unit_id: UnitId,
    ctx: Context,
    device: Annotated[Device, Depends(require_device())],
    body: UnitActIn | None = None,
) -> UnitActOut:
    """The unit has arrived."""
    return _unit_act(ctx, device, unit_id, Action.ON_SCENE, body)


def _unit_act(
    ctx: Context, device: Device, unit_id: str, action: Action, body: UnitActIn | None
) -> UnitActOut:
    with service_errors():
        iid = _units(ctx).act(device, unit_id, action, body.note if body else None)
    return UnitActOut(incident_id=iid, action=action.value)
