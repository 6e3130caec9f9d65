"""The incident page's custody panel: legal holds (place, lift) and the signed case export.

Shown only to the roles that may use them (supervisors of the incident's station and the
control room): `raksha.web.custody` gives the panel's data to the incident page
(`incident_custody.html`); the forms post here with the session's CSRF token and go through
`raksha.services.holds`, which checks the scope and writes the audit entries. The export
link is the API's `/api/incidents/{id}/export.zip` (audited there).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response

from raksha.api.context import ApiContext
from raksha.api.deps import Context, Principal, require, service_errors
from raksha.auth.access import Rule
from raksha.services.holds import CASE_MAX, REASON_MAX, HoldService
from raksha.web.i18n import localize
from raksha.web.pages_incidents import IncidentId, _incident_page

router = APIRouter(include_in_schema=False)

#: Refusals shown on the incident page beside the forms (others become the error page).
SHOWN = (400, 409, 422)


def _refused(
    request: Request, ctx: ApiContext, who: Principal, incident_id: str, exc: HTTPException
) -> Response:
    if exc.status_code not in SHOWN:
        raise exc
    return _incident_page(
        request, ctx, who, incident_id, status_code=exc.status_code, error=localize(exc.detail)
    )


@router.post("/incidents/{incident_id}/holds")
def place_hold(
    request: Request,
    incident_id: IncidentId,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.EVIDENCE_HOLD))],
    case_number: Annotated[str, Form(max_length=CASE_MAX)] = "",
    reason: Annotated[str, Form(max_length=REASON_MAX)] = "",
) -> Response:
    try:
        with service_errors():
            HoldService(ctx.store, ctx.audit).place(
                who.caller, incident_id, case_number=case_number, reason=reason
            )
    except HTTPException as exc:
        return _refused(request, ctx, who, incident_id, exc)
    return RedirectResponse(f"/incidents/{incident_id}?custody=placed#custody", status_code=303)


@router.post("/incidents/{incident_id}/holds/{hold_id}/lift")
def lift_hold(
    request: Request,
    incident_id: IncidentId,
    hold_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.EVIDENCE_HOLD))],
    reason: Annotated[str, Form(max_length=REASON_MAX)] = "",
) -> Response:
    try:
        with service_errors():
            HoldService(ctx.store, ctx.audit).lift(who.caller, incident_id, hold_id, reason=reason)
    except HTTPException as exc:
        return _refused(request, ctx, who, incident_id, exc)
    return RedirectResponse(f"/incidents/{incident_id}?custody=lifted#custody", status_code=303)
