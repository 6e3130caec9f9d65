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
from raksha.domain.units import UnitState
from raksha.incidents.model import IncidentState
from raksha.services.units import Suggestion
from raksha.web.render import page
from raksha.web.site import Site

router = APIRouter(include_in_schema=False)

ACTIONS = ("acknowledge", "confirm", "dispatch", "dismiss", "resolve", "escalate", "on_scene")
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


def dispatch_units(
    site: Site,
    incident: IncidentOut,
    suggested: list[Suggestion] | None = None,
    available: list[UnitState] | None = None,
) -> list[dict[str, Any]]:
    """Units to offer for dispatch (a dispatch needs an available unit).

    The nearest available units now (`suggested`: by their live position, else their base)
    come first with their distances; then the units the incident was routed to and the
    station's other units, left out when the store knows them busy or off duty (`available`:
    the units known available; None when the live status is unknown)."""
    units: list[dict[str, Any]] = []
    seen: set[str] = set()
    free = None if available is None else {u.id for u in available}
    for s in suggested or ():
        if s.unit.id not in seen:
            seen.add(s.unit.id)
            units.append(
                {
                    "id": s.unit.id,
                    "kind": s.unit.kind,
                    "distance_m": s.distance_m,
                    "where": "live" if s.live else "base",
                }
            )
    candidates: list[tuple[str, str | None, float | None]] = [
        (u.id, u.kind, u.distance_m) for u in incident.patrol_units
    ]
    candidates += [(c.id, c.kind, None) for c in site.units_of(incident.station_id)]
    candidates += [
        (u.id, u.kind, None) for u in available or () if u.station_id == incident.station_id
    ]
    for unit_id, kind, distance in candidates:
        if unit_id in seen or (free is not None and unit_id not in free):
            continue
        seen.add(unit_id)
        units.append({"id": unit_id, "kind": kind, "distance_m": distance, "where": None})
    return units


def _unit_choices(
    ctx: ApiContext, who: Principal, incident: IncidentOut
) -> tuple[list[Suggestion], list[UnitState] | None]:
    """The nearest available units now and every available unit in the caller's scope."""
    if ctx.units is None or "dispatch" not in incident.allowed_actions:
        return [], None
    with service_errors():
        suggested = ctx.units.suggest(who.caller, incident.id)
        available = [u for u in ctx.units.visible(who.caller) if u.status.value == "available"]
    return suggested, available


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
    suggested, available = _unit_choices(ctx, who, incident)
    return page(
        request,
        "incident.html",
        who,
        status_code=status_code,
        title=f"Incident {incident_id[:8]}",
        incident=incident,
        bars=expression_bars(incident),
        units=dispatch_units(site, incident, suggested, available),
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
