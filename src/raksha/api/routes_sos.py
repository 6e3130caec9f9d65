"""POST /api/sos: a panic signal (or a person's own cancel) from a configured sender, with
its device token. It opens or joins an incident (see `raksha.services.sos`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from raksha.api.deps import Context, require_device, service_errors
from raksha.services.devices import Device
from raksha.services.sos import SosSignal

router = APIRouter(tags=["sos"])


class SosIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: str = Field(min_length=1, max_length=128, description="Unique per sender.")
    kind: Literal["panic", "cancel"] = "panic"
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    sent_at: datetime | None = Field(None, description="The sender's time, with a time zone.")
    note: str | None = Field(None, max_length=500)


class SosOut(BaseModel):
    incident_id: str
    result: Literal["opened", "joined", "cancelled"]
    station_id: str
    distance_m: float | None = None


@router.post(
    "/api/sos",
    response_model=SosOut,
    status_code=202,
    responses={401: {"description": "No or unknown device token"}, 409: {"description": "Replay"}},
)
def post_sos(
    body: SosIn, ctx: Context, device: Annotated[Device, Depends(require_device())]
) -> SosOut:
    """Take a panic signal: it opens or joins an incident, routed and prioritised."""
    if ctx.sos is None:
        raise HTTPException(503, "SOS intake is not configured (no stations)")
    with service_errors():
        out = ctx.sos.receive(device, signal_of(body))
    return SosOut(
        incident_id=out.incident_id,
        result=out.result,
        station_id=out.station_id,
        distance_m=None if out.distance_m is None else round(out.distance_m, 1),
    )


def signal_of(body: SosIn) -> SosSignal:
    return SosSignal(
        message_id=body.message_id,
        kind=body.kind,
        lat=body.lat,
        lon=body.lon,
        sent_at=body.sent_at,
        note=body.note,
    )
