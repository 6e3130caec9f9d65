"""Reports: response times per station and per patrol unit (station-scoped, audited).

A thin adapter over `raksha.services.reports`: the service scopes the figures to the
caller's stations and writes the audit entry; the route types the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.auth.access import Rule
from raksha.incidents.model import Origin
from raksha.services.reports import response_times

router = APIRouter(tags=["reports"])


class StatOut(BaseModel):
    n: int = Field(description="Incidents (or jobs) with this step done.")
    p50_s: float | None = Field(description="Median seconds (nearest rank); None when n = 0.")
    p95_s: float | None = Field(description="95th percentile seconds (nearest rank).")


class GroupOut(BaseModel):
    incidents: int = Field(description="Incidents opened in the period.")
    waiting_ack: int = Field(description="Still open and not acknowledged.")
    waiting_on_scene: int = Field(description="Still open, dispatched, no unit on scene.")
    acknowledge: StatOut = Field(description="First acknowledge − opened.")
    dispatch: StatOut = Field(description="First dispatch − opened.")
    unit_ack: StatOut = Field(description="First unit_ack − the dispatch/reassign it answers.")
    travel: StatOut = Field(description="First on_scene − first dispatch.")
    on_scene: StatOut = Field(description="First on_scene − opened.")


class StationOut(GroupOut):
    station_id: str


class UnitOut(BaseModel):
    unit_id: str
    jobs: int = Field(description="Times it was given a job (dispatch or reassign).")
    unit_ack: StatOut = Field(description="Its unit_ack − its dispatch/reassign.")
    travel: StatOut = Field(description="Its on_scene − its own dispatch/reassign.")
    on_scene: StatOut = Field(description="Its on_scene − the incident's opening.")


class ResponseTimesOut(BaseModel):
    percentile_method: Literal["nearest-rank"]
    generated_at: str
    since: str | None
    until: str | None
    stations_filter: list[str] | None = Field(
        description="The stations the figures cover (None: all)."
    )
    origin: Literal["camera", "sos"] | None
    overall: GroupOut
    stations: list[StationOut]
    units: list[UnitOut]


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such station in your scope"},
    422: {"description": "A time without a zone, or since not before until"},
}


@router.get("/api/reports/response-times", response_model=ResponseTimesOut, responses=NOT_FOUND)
def get_response_times(
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_EXPORT))],
    since: Annotated[datetime | None, Query(description="Opened at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Opened before (ISO 8601).")] = None,
    station: Annotated[str | None, Query(max_length=128)] = None,
    origin: Annotated[Origin | None, Query(description="Only camera or SOS incidents.")] = None,
) -> ResponseTimesOut:
    """Time to acknowledge, dispatch, unit acknowledgement, travel and on scene (p50, p95)
    per station, per patrol unit and overall, over the caller's stations; audited."""
    with service_errors():
        report = response_times(
            who.caller,
            ctx.store,
            since,
            until,
            station,
            origin=None if origin is None else origin.value,
            known_stations=ctx.station_ids or None,
            audit=ctx.audit,
        )
    return ResponseTimesOut.model_validate(report.to_json())
