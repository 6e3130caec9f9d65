"""Legal holds on an incident's evidence: list, place, lift (supervisors of the incident's
station and the control room, `Rule.EVIDENCE_HOLD`).

Thin adapters over `raksha.services.holds`: the service checks the scope, validates the case
number and reason, and commits each change with its audit entry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from raksha.api.context import ApiContext
from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.routes_incidents import IncidentId
from raksha.auth.access import Rule
from raksha.services.holds import CASE_MAX, REASON_MAX, HoldService
from raksha.store.holds import LegalHold

router = APIRouter(tags=["legal holds"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such incident (or hold) in your scope"},
    409: {"description": "Already held for this case, or the hold was lifted already"},
    422: {"description": "A case number and a reason (3 characters or more) are needed"},
}


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_number: str = Field(min_length=1, max_length=CASE_MAX)
    reason: str = Field(min_length=1, max_length=REASON_MAX)


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=REASON_MAX)


class HoldOut(BaseModel):
    id: int
    incident_id: str
    case_number: str
    reason: str
    placed_by: str
    placed_at: datetime
    active: bool
    lifted_by: str | None = None
    lifted_at: datetime | None = None
    lift_reason: str | None = None


class PlacedHoldOut(HoldOut):
    """The hold placed, and what it can still keep: a hold is recorded even when the
    retention purge deleted the evidence already (0 files present)."""

    evidence_recorded: int
    evidence_present: int
    #: When the retention purge deleted evidence of the incident (null: never).
    evidence_deleted_at: datetime | None = None
    #: The same in words ("0 files: evidence already deleted on 2026-05-02 by retention. ...").
    evidence: str


class HoldList(BaseModel):
    holds: list[HoldOut]
    #: Whether a hold is in force (the evidence is kept past its retention).
    held: bool


def hold_view(h: LegalHold) -> HoldOut:
    return HoldOut(
        id=h.id,
        incident_id=h.incident_id,
        case_number=h.case_number,
        reason=h.reason,
        placed_by=h.placed_by,
        placed_at=h.placed_at,
        active=h.active,
        lifted_by=h.lifted_by,
        lifted_at=h.lifted_at,
        lift_reason=h.lift_reason,
    )


def hold_service(ctx: ApiContext) -> HoldService:
    return HoldService(ctx.store, ctx.audit)


@router.get("/api/incidents/{incident_id}/holds", response_model=HoldList, responses=RESPONSES)
def list_holds(
    incident_id: IncidentId,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.EVIDENCE_HOLD))],
) -> HoldList:
    """The incident's legal holds, in force and lifted, oldest first."""
    with service_errors():
        found = hold_service(ctx).of_incident(who.caller, incident_id)
    return HoldList(holds=[hold_view(h) for h in found], held=any(h.active for h in found))


@router.post(
    "/api/incidents/{incident_id}/holds",
    response_model=PlacedHoldOut,
    status_code=201,
    responses=RESPONSES,
)
def place_hold(
    incident_id: IncidentId,
    body: HoldIn,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.EVIDENCE_HOLD))],
) -> PlacedHoldOut:
    """Keep the incident's evidence for a case: never purged while the hold is in force.
    Audited as `evidence.hold_placed` with the case number and reason. The hold is recorded
    even when the evidence was deleted already: `evidence_present` says how many files it
    keeps (0, with `evidence_deleted_at`, when retention deleted them)."""
    with service_errors():
        service = hold_service(ctx)
        hold = service.place(
            who.caller, incident_id, case_number=body.case_number, reason=body.reason
        )
        left = service.evidence_left(who.caller, incident_id)
    return PlacedHoldOut(
        **hold_view(hold).model_dump(),
        evidence_recorded=left.recorded,
        evidence_present=left.present,
        evidence_deleted_at=left.purged_at,
        evidence=str(left.message),
    )


@router.post(
    "/api/incidents/{incident_id}/holds/{hold_id}/lift",
    response_model=HoldOut,
    responses=RESPONSES,
)
def lift_hold(
    incident_id: IncidentId,
    hold_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: LiftIn,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.EVIDENCE_HOLD))],
) -> HoldOut:
    """Lift a hold (the retention policy applies again once no hold is in force). Audited
    as `evidence.hold_lifted` with the reason."""
    with service_errors():
        hold = hold_service(ctx).lift(who.caller, incident_id, hold_id, reason=body.reason)
    return hold_view(hold)
