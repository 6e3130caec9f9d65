"""The live incident list and the incident page (with the officers' action buttons).

The pages call the same service as the API (`raksha.services.incidents`), so scoping,
auditing and the lifecycle rules are the same: an incident of another station is a 404 here
exactly as there, and an action commits with its audit entry or not at all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from raksha.api.context import ApiContext
from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.schemas import ActionIn, IncidentOut
from raksha.api.views import incident_view
from raksha.auth.access import Rule
from raksha.auth.roles import Role
from raksha.incidents.model import IncidentState
from raksha.web.render import page
from raksha.web.site import Site

router = APIRouter(include_in_schema=False)

ACTIONS = ("acknowledge", "confirm", "dispatch", "dismiss", "resolve", "escalate")
View = Literal["open", "closed", "all"]
OPEN_STATES = [s for s in IncidentState if not s.is_terminal]
CLOSED_STATES = [s for s in IncidentState if s.is_terminal]
IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


def _states(view: View) -> list[IncidentState] | None:
    return {"open": OPEN_STATES, "closed": CLOSED_STATES, "all": None}[view]


def _rows(ctx: ApiContext, who: Principal, view: View) -> list[IncidentOut]:
    with service_errors():
        found = ctx.incidents.list_visible(who.caller, states=_states(view))
    return [incident_view(i) for i in found]


@router.get("/incidents")
def incidents_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
    view: View = "open",
) -> Response:
    assert who.user is not None
    return page(
        request,
        "incidents.html",
        who,
        title="Incidents",
        view=view,
        incidents=_rows(ctx, who, view),
        scope=who.user.station_id or "all stations",
    )


@router.get("/incidents/rows")
def incident_rows(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
    view: View = "open",
) -> Response:
    """The list's rows alone (htmx swaps them in when an event says something changed)."""
    return page(request, "_incident_rows.html", who, view=view, incidents=_rows(ctx, who, view))


def dispatch_units(site: Site, incident: IncidentOut) -> list[dict[str, Any]]:
    """Units to offer for dispatch: the routed nearest ones first (with distances), then the
    station's other configured units."""
    units: list[dict[str, Any]] = []
    seen: set[str] = set()
    for u in incident.patrol_units:
        if u.id not in seen:
            seen.add(u.id)
            units.append({"id": u.id, "kind": u.kind, "distance_m": u.distance_m})
    for cfg in site.units_of(incident.station_id):
        if cfg.id not in seen:
            seen.add(cfg.id)
            units.append({"id": cfg.id, "kind": cfg.kind, "distance_m": None})
    return units


def expression_bars(incident: IncidentOut) -> list[tuple[str, float]]:
    dist = incident.expression_at_peak
    return sorted(((str(k), float(v)) for k, v in dist.items()), key=lambda kv: -kv[1])


def _incident_page(
    request: Request,
    ctx: ApiContext,
    who: Principal,
    incident_id: str,
    *,
    status_code: int = 200,
    error: str | None = None,
    done: str | None = None,
) -> Response:
    with service_errors():
        detail = ctx.incidents.view(who.caller, incident_id)
    incident = incident_view(detail.incident, detail.actions, detail.deliveries)
    site: Site = request.app.state.raksha_site
    role = who.user.role if who.user is not None else None
    hotspot = site.hotspot(incident.hotspot_id)
    return page(
        request,
        "incident.html",
        who,
        status_code=status_code,
        title=f"Incident {incident_id[:8]}",
        incident=incident,
        bars=expression_bars(incident),
        units=dispatch_units(site, incident),
        hotspot=hotspot,
        may_unblur=role in (Role.SUPERVISOR, Role.CONTROL_ROOM),
        error=error,
        done=done,
    )


@router.get("/incidents/{incident_id}")
def incident_page(
    request: Request,
    incident_id: IncidentId,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
    done: str | None = None,
) -> Response:
    shown = done if done in ACTIONS else None
    return _incident_page(request, ctx, who, incident_id, done=shown)


@router.post("/incidents/{incident_id}/act")
def incident_act(
    request: Request,
    incident_id: IncidentId,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_ACT))],
    action: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    unit_id: Annotated[str, Form(max_length=128)] = "",
    expected_version: Annotated[int | None, Form()] = None,
) -> Response:
    """An action button: the service's action with the form's fields; back to the page."""
    try:
        body = ActionIn(
            action=action,
            note=note.strip() or None,
            unit_id=unit_id.strip() or None,
            expected_version=expected_version,
        )
    except ValidationError:
        return _incident_page(
            request, ctx, who, incident_id, status_code=400, error=f"Unknown action {action!r}."
        )
    if body.action == "dispatch" and body.unit_id is None:
        return _incident_page(
            request, ctx, who, incident_id, status_code=400, error="Choose a unit to dispatch."
        )
    try:
        with service_errors():
            ctx.incidents.act(
                who.caller,
                incident_id,
                body.action,
                note=body.note,
                unit_id=body.unit_id,
                expected_version=body.expected_version,
            )
    except HTTPException as exc:
        if exc.status_code in (400, 409):
            return _incident_page(
                request, ctx, who, incident_id, status_code=exc.status_code, error=str(exc.detail)
            )
        raise
    return RedirectResponse(f"/incidents/{incident_id}?done={body.action}", status_code=303)
