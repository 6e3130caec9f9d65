"""The live incident list and the incident page (with the officers' action buttons).

The list's filters (state, station for the roles that see several, camera, local dates,
minimum score) live in the query string, so a filtered list can be shared and its live
refresh (`/incidents/rows`) keeps them; `?q=` finds an incident by its id or the id's first
characters; supervisors and the control room get a button to the CSV export with the same
filters (`/api/export/incidents.csv`, audited there).

The pages call the same service as the API (`raksha.services.incidents`), so scoping,
auditing and the lifecycle rules are the same: an incident of another station is a 404 here
exactly as there, and an action commits with its audit entry or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from raksha.api.context import ApiContext
from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.schemas import ActionIn, IncidentOut
from raksha.api.views import incident_view
from raksha.auth.access import POLICIES, Denied, Rule
from raksha.auth.roles import Role
from raksha.domain.units import UnitState
from raksha.incidents.model import DismissReason, IncidentState
from raksha.services.cameras import visible_cameras
from raksha.services.units import Suggestion
from raksha.web.custody import custody_context
from raksha.web.i18n import gettext as _
from raksha.web.i18n import localize
from raksha.web.render import page, site_timezone
from raksha.web.site import Site

router = APIRouter(include_in_schema=False)

ACTIONS = ("acknowledge", "confirm", "dispatch", "dismiss", "resolve", "escalate", "on_scene")
#: What the dismiss button's reason may be.
DISMISS_REASONS = frozenset(r.value for r in DismissReason)
View = Literal["open", "closed", "all"]
OPEN_STATES = [s for s in IncidentState if not s.is_terminal]
CLOSED_STATES = [s for s in IncidentState if s.is_terminal]
IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
#: The export the list's button links to (audited there as `incident.export`).
EXPORT_URL = "/api/export/incidents.csv"
#: How many of the newest visible incidents a search by the start of an id looks through.
SEARCH_WINDOW = 5000
SEARCH_MIN = 4
SEARCH_TEXT = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
FULL_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+){0,2}$")
#: Query-string filter values as the list's form sends them ('' = not set).
Text = Annotated[str, Query(max_length=128)]


def _states(view: View) -> list[IncidentState] | None:
    return {"open": OPEN_STATES, "closed": CLOSED_STATES, "all": None}[view]


def _zone(name: str) -> tuple[str, tzinfo]:
    """The time zone the list's dates are days in (an IANA name), else UTC."""
    if name and ZONE_NAME.match(name):
        try:
            return name, ZoneInfo(name)
        except (ValueError, OSError, KeyError):
            pass
    return "UTC", UTC


def _day(value: str, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        message = (
            _("The start date is not a date (YYYY-MM-DD).")
            if what == "start"
            else _("The end date is not a date (YYYY-MM-DD).")
        )
        raise HTTPException(422, message) from None


@dataclass(frozen=True, slots=True)
class Filters:
    """What the list shows, as it stands in the query string (shareable, kept by the live
    refresh): the tab (`view`), a state, a station (roles that see several), a camera, local
    dates from/to (both included, days in the time zone `tz`: the deployment's unless the form
    names another) and a minimum peak score in percent."""

    view: View = "open"
    state: IncidentState | None = None
    station: str | None = None
    camera: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    score: int | None = None
    tz: str = ""

    @classmethod
    def parse(
        cls,
        who: Principal,
        *,
        view: View,
        state: str,
        station: str,
        camera: str,
        day_from: str,
        day_to: str,
        score: str,
        tz: str,
    ) -> Filters:
        try:
            chosen = IncidentState(state.strip().upper()) if state.strip() else None
        except ValueError:
            raise HTTPException(422, _("Unknown state %(state)r.") % {"state": state}) from None
        points: int | None = None
        if score.strip():
            try:
                points = round(float(score))
            except ValueError:
                raise HTTPException(422, _("The score is a number from 0 to 100.")) from None
            if not 0 <= points <= 100:
                raise HTTPException(422, _("The score is a number from 0 to 100."))
        first, last = _day(day_from, "start"), _day(day_to, "end")
        if first is not None and last is not None and first > last:
            raise HTTPException(422, _("The start date is after the end date."))
        several = who.user is not None and not who.user.role.station_bound
        return cls(
            view=view,
            state=chosen,
            station=(station.strip() or None) if several else None,
            camera=camera.strip() or None,
            day_from=first,
            day_to=last,
            score=points,
            tz=_zone(tz.strip())[0] if tz.strip() else "",
        )

    @property
    def narrowed(self) -> bool:
        """Whether anything but the tab narrows the list."""
        return any(
            v is not None
            for v in (self.state, self.station, self.camera, self.day_from, self.day_to, self.score)
        )

    @property
    def states(self) -> list[IncidentState] | None:
        """A chosen state, else the tab's states."""
        return [self.state] if self.state is not None else _states(self.view)

    @property
    def since(self) -> datetime | None:
        if self.day_from is None:
            return None
        zone = _zone(self.tz)[1]
        return datetime.combine(self.day_from, time.min, tzinfo=zone).astimezone(UTC)

    @property
    def until(self) -> datetime | None:
        if self.day_to is None:
            return None
        zone = _zone(self.tz)[1]
        after = self.day_to + timedelta(days=1)
        return datetime.combine(after, time.min, tzinfo=zone).astimezone(UTC)

    @property
    def min_score(self) -> float | None:
        return None if self.score is None else self.score / 100.0

    def params(self) -> dict[str, str]:
        """The filters as the page's query string has them (only those set)."""
        out = {
            "view": self.view,
            "state": self.state.value if self.state is not None else "",
            "station": self.station or "",
            "camera": self.camera or "",
            "from": self.day_from.isoformat() if self.day_from is not None else "",
            "to": self.day_to.isoformat() if self.day_to is not None else "",
            "score": str(self.score) if self.score is not None else "",
            "tz": self.tz if (self.day_from or self.day_to) else "",
        }
        return {k: v for k, v in out.items() if v}

    def query(self, **changes: Any) -> str:
        return urlencode((replace(self, **changes) if changes else self).params())

    def export_query(self) -> str:
        """The same filters for the CSV export (`/api/export/incidents.csv`): times in UTC,
        the score from 0 to 1, the states listed."""
        pairs: list[tuple[str, str]] = []
        for key, value in (
            ("since", self.since.isoformat() if self.since is not None else None),
            ("until", self.until.isoformat() if self.until is not None else None),
            ("station", self.station),
            ("camera", self.camera),
            ("min_score", f"{self.min_score:g}" if self.min_score is not None else None),
        ):
            if value is not None:
                pairs.append((key, value))
        pairs += [("state", s.value) for s in self.states or ()]
        return urlencode(pairs)


def _filters(
    who: Principal,
    view: View,
    state: str,
    station: str,
    camera: str,
    day_from: str,
    day_to: str,
    score: str,
    tz: str,
) -> Filters:
    return Filters.parse(
        who,
        view=view,
        state=state,
        station=station,
        camera=camera,
        day_from=day_from,
        day_to=day_to,
        score=score,
        tz=tz,
    )


def _rows(ctx: ApiContext, who: Principal, f: Filters) -> list[IncidentOut]:
    with service_errors():
        found = ctx.incidents.list_visible(
            who.caller,
            states=f.states,
            station=f.station,
            since=f.since,
            until=f.until,
            camera=f.camera,
            min_score=f.min_score,
        )
    return [incident_view(i) for i in found]


def _search(ctx: ApiContext, who: Principal, text: str) -> list[IncidentOut]:
    """The visible incidents whose id starts with `text` (among the newest SEARCH_WINDOW)."""
    wanted = text.lower()
    with service_errors():
        found = ctx.incidents.list_visible(who.caller, limit=SEARCH_WINDOW)
    return [incident_view(i) for i in found if i.id.lower().startswith(wanted)]


def _cameras(ctx: ApiContext, who: Principal) -> list[str]:
    """The camera ids the caller may see, for the camera filter's suggestions."""
    try:
        return sorted({c.camera_id for c in visible_cameras(ctx.store, who.caller)})
    except Denied:
        return []


def _list_page(
    request: Request,
    ctx: ApiContext,
    who: Principal,
    f: Filters,
    *,
    incidents: list[IncidentOut] | None = None,
    q: str = "",
    search_error: str | None = None,
    status_code: int = 200,
) -> Response:
    assert who.user is not None
    role = who.user.role
    return page(
        request,
        "incidents.html",
        who,
        status_code=status_code,
        title=_("Incidents"),
        view=f.view,
        filters=f,
        rows_query=f.query(),
        incidents=_rows(ctx, who, f) if incidents is None else incidents,
        scope=who.user.station_id or _("all stations"),
        states=list(IncidentState),
        stations=ctx.station_ids if not role.station_bound else [],
        cameras=_cameras(ctx, who),
        may_export=role in POLICIES[Rule.INCIDENTS_EXPORT].roles,
        export_url=f"{EXPORT_URL}?{f.export_query()}" if f.export_query() else EXPORT_URL,
        q=q,
        search_error=search_error,
        # The matches of a search stay as they are (the live refresh would show the filters').
        search_hits=incidents is not None,
    )


@router.get("/incidents")
def incidents_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
    view: View = "open",
    state: Text = "",
    station: Text = "",
    camera: Text = "",
    day_from: Annotated[str, Query(alias="from", max_length=32)] = "",
    day_to: Annotated[str, Query(alias="to", max_length=32)] = "",
    score: Annotated[str, Query(max_length=16)] = "",
    tz: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """The list with its filters; `q` (an incident id, or its first characters) opens that
    incident when the caller may see it."""
    f = _filters(
        who, view, state, station, camera, day_from, day_to, score, tz or site_timezone(request)
    )
    text = q.strip()
    if not text:
        return _list_page(request, ctx, who, f)
    if not SEARCH_TEXT.match(text) or len(text) < SEARCH_MIN:
        return _list_page(
            request,
            ctx,
            who,
            f,
            q=text,
            status_code=422,
            search_error=_("Type an incident id or its first %(least)d to 8 characters.")
            % {"least": SEARCH_MIN},
        )
    found = _search(ctx, who, text)
    if len(found) == 1:
        return RedirectResponse(f"/incidents/{found[0].id}", status_code=303)
    if not found and FULL_ID.match(text):
        # An older incident than the search looks through: its page decides (404 if unseen).
        return RedirectResponse(f"/incidents/{text.lower()}", status_code=303)
    if not found:
        return _list_page(
            request,
            ctx,
            who,
            f,
            q=text,
            status_code=404,
            search_error=_("Incident %(id)s not found in your scope.") % {"id": text},
        )
    return _list_page(
        request,
        ctx,
        who,
        f,
        incidents=found,
        q=text,
        search_error=_("%(n)d incidents start with %(id)s: choose one.")
        % {"n": len(found), "id": text},
    )


@router.get("/incidents/rows")
def incident_rows(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
    view: View = "open",
    state: Text = "",
    station: Text = "",
    camera: Text = "",
    day_from: Annotated[str, Query(alias="from", max_length=32)] = "",
    day_to: Annotated[str, Query(alias="to", max_length=32)] = "",
    score: Annotated[str, Query(max_length=16)] = "",
    tz: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The list's rows alone (htmx swaps them in when an event says something changed),
    with the same filters as the page."""
    f = _filters(
        who, view, state, station, camera, day_from, day_to, score, tz or site_timezone(request)
    )
    return page(
        request,
        "_incident_rows.html",
        who,
        view=f.view,
        filters=f,
        rows_query=f.query(),
        incidents=_rows(ctx, who, f),
    )


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
        title=_("Incident %(id)s") % {"id": incident_id[:8]},
        incident=incident,
        bars=expression_bars(incident),
        units=dispatch_units(site, incident, suggested, available),
        hotspot=hotspot,
        may_unblur=role in (Role.SUPERVISOR, Role.CONTROL_ROOM),
        custody=custody_context(ctx, who, incident_id),
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
    reason: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """An action button: the service's action with the form's fields; back to the page.
    The form's reason goes with a dismissal only, which needs one."""
    why = reason.strip() if action == "dismiss" else ""
    if action == "dismiss" and why not in DISMISS_REASONS:
        return _incident_page(
            request,
            ctx,
            who,
            incident_id,
            status_code=400,
            error=_("Choose why the incident is dismissed."),
        )
    try:
        body = ActionIn(
            action=action,
            note=note.strip() or None,
            unit_id=unit_id.strip() or None,
            expected_version=expected_version,
            reason=why or None,
        )
    except ValidationError:
        return _incident_page(
            request,
            ctx,
            who,
            incident_id,
            status_code=400,
            error=_("Unknown action %(action)r.") % {"action": action},
        )
    if body.action == "dispatch" and body.unit_id is None:
        return _incident_page(
            request, ctx, who, incident_id, status_code=400, error=_("Choose a unit to dispatch.")
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
                reason=body.reason,
            )
    except HTTPException as exc:
        if exc.status_code in (400, 409):
            return _incident_page(
                request,
                ctx,
                who,
                incident_id,
                status_code=exc.status_code,
                error=localize(exc.detail),
            )
        raise
    return RedirectResponse(f"/incidents/{incident_id}?done={body.action}", status_code=303)
