"""The map: stations (with their jurisdictions), hotspots, cameras with their online status,
and, live for the station staff, the open incidents and the patrol units where they are now.
Drawn with Leaflet on a plain background unless a tile URL is set.

The page's script keeps the incidents current from the live events (`/api/events`) and the
units by polling `/api/units`; an admin (who may see cameras but not incidents) gets the
configured units at their bases and no incidents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.routes_units import unit_out
from raksha.api.schemas import CameraOut, IncidentOut
from raksha.api.views import camera_view, incident_view
from raksha.auth.access import Rule, station_scope
from raksha.domain.units import UnitState
from raksha.incidents.model import IncidentState
from raksha.services.camera_alerts import CameraAlertService
from raksha.services.cameras import open_camera_alerts, visible_cameras
from raksha.services.errors import ServiceError
from raksha.site.effective import effective_camera_config
from raksha.web.i18n import gettext as _
from raksha.web.render import STAFF, page
from raksha.web.settings import WebSettings
from raksha.web.site import Site, jurisdiction_json

router = APIRouter(include_in_schema=False)


def camera_status(cam: CameraOut) -> str:
    if not cam.enabled:
        return "disabled"
    return "online" if cam.online else "offline"


OPEN_STATES = [s for s in IncidentState if not s.is_terminal]


def incident_marker(site: Site, i: IncidentOut) -> dict[str, Any]:
    """An open incident as the map draws it: where it is (its own position, else its
    hotspot's), its state, priority, origin and the running deadline."""
    lat, lon = i.lat, i.lon
    if lat is None or lon is None:
        spot = site.hotspot(i.hotspot_id)
        lat, lon = (spot.lat, spot.lon) if spot is not None else (None, None)
    return {
        "id": i.id,
        "station_id": i.station_id,
        "hotspot_id": i.hotspot_id,
        "state": i.state,
        "version": i.version,
        "origin": i.origin,
        "priority": i.priority,
        "place": i.place,
        "opened_at": i.opened_at,
        "deadline_at": i.deadline_at,
        "deadline_kind": i.deadline_kind,
        "escalation_level": i.escalation_level,
        "unit_id": i.unit_id,
        "lat": lat,
        "lon": lon,
    }


def map_data(
    site: Site,
    cameras: list[CameraOut],
    all_stations: bool,
    *,
    incidents: list[IncidentOut] | None = None,
    units: list[UnitState] | None = None,
    configured_fps: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """What the map script draws. `cameras` are the API's camera views (already scoped);
    configured cameras with no status yet appear as "unknown" for callers who see every
    station (their station is decided by routing, so a station-bound caller does not get
    them)."""
    out_cams: list[dict[str, Any]] = []
    known: set[str] = set()
    for cam in cameras:
        known.add(cam.camera_id)
        spot = site.hotspot(cam.hotspot_id)
        out_cams.append(
            {
                "id": cam.camera_id,
                "hotspot_id": cam.hotspot_id,
                "station_id": cam.station_id,
                "status": camera_status(cam),
                "last_frame_at": cam.last_frame_at,
                "last_error": cam.last_error,
                "analysed_fps": cam.analysed_fps,
                "configured_fps": (configured_fps or {}).get(cam.camera_id),
                "frames_dropped": cam.frames_dropped,
                "p95_latency_ms": cam.p95_latency_ms,
                "alert": None
                if cam.alert is None
                else {
                    "id": cam.alert.id,
                    "kind": cam.alert.kind,
                    "since": cam.alert.since,
                    "acknowledged_by": cam.alert.acknowledged_by,
                },
                "lat": spot.lat if spot else None,
                "lon": spot.lon if spot else None,
            }
        )
    if all_stations:
        for cfg in site.cameras:
            if cfg.id in known:
                continue
            spot = site.hotspot(cfg.hotspot)
            out_cams.append(
                {
                    "id": cfg.id,
                    "hotspot_id": cfg.hotspot,
                    "station_id": None,
                    "status": "unknown" if cfg.enabled else "disabled",
                    "last_frame_at": None,
                    "last_error": None,
                    "analysed_fps": None,
                    "configured_fps": (configured_fps or {}).get(cfg.id),
                    "frames_dropped": None,
                    "p95_latency_ms": None,
                    "alert": None,
                    "lat": spot.lat if spot else None,
                    "lon": spot.lon if spot else None,
                }
            )
    return {
        "stations": [
            {
                "id": s.id,
                "name": s.name or s.id,
                "lat": s.lat,
                "lon": s.lon,
                "jurisdiction": jurisdiction_json(s),
            }
            for s in site.stations
        ],
        "hotspots": [
            {"id": h.id, "name": h.name or h.id, "lat": h.lat, "lon": h.lon} for h in site.hotspots
        ],
        "units": (
            [
                {"id": u.id, "kind": u.kind, "station": u.station, "lat": u.lat, "lon": u.lon}
                for u in site.patrol_units
            ]
            if units is None
            else [
                {**unit_out(u).model_dump(), "station": u.station_id, "kind": u.kind} for u in units
            ]
        ),
        "live": units is not None,
        "incidents": [incident_marker(site, i) for i in incidents or ()],
        "cameras": out_cams,
    }


def configured_rates(ctx: Context) -> dict[str, float]:
    """Each camera's configured analysis rate (its own `fps`, else the site's)."""
    cfg = ctx.config
    if cfg is None:
        return {}
    return {cam.id: effective_camera_config(cfg, cam).source.fps for cam in cfg.cameras}


def scoped_cameras(ctx: Context, who: Principal) -> list[CameraOut]:
    """The caller's cameras as the API shows them, each with its open camera alert."""
    alerts = open_camera_alerts(ctx.store)
    return [camera_view(c, alerts.get(c.camera_id)) for c in visible_cameras(ctx.store, who.caller)]


@router.get("/map")
def map_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.CAMERAS_READ))],
) -> Response:
    return _map_page(request, ctx, who)


def _map_page(
    request: Request, ctx: Context, who: Principal, error: str | None = None, status: int = 200
) -> Response:
    assert who.user is not None
    site: Site = request.app.state.raksha_site
    web: WebSettings = request.app.state.raksha_web
    live = who.user.role in STAFF and ctx.units is not None
    with service_errors():
        cameras = scoped_cameras(ctx, who)
        incidents = (
            [incident_view(i) for i in ctx.incidents.list_visible(who.caller, states=OPEN_STATES)]
            if live
            else None
        )
        units = ctx.units.visible(who.caller) if live and ctx.units is not None else None
    data = map_data(
        site,
        cameras,
        all_stations=station_scope(who.user) is None,
        incidents=incidents,
        units=units,
        configured_fps=configured_rates(ctx),
    )
    data["position_max_age_s"] = ctx.store.workflow.position_max_age_s
    data["tiles"] = (
        {"url": web.tile_url, "attribution": web.tile_attribution} if web.tile_url else None
    )
    counts = {
        k: sum(1 for c in data["cameras"] if c["status"] == k)
        for k in ("online", "offline", "unknown", "disabled")
    }
    return page(
        request,
        "map.html",
        who,
        title=_("Map"),
        data=data,
        counts=counts,
        can_ack=who.user.role in STAFF,
        error=error,
        status_code=status,
    )


@router.get("/map/cameras")
def camera_rows(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.CAMERAS_READ))],
) -> Response:
    """The camera table's rows alone: the map page swaps them in every few seconds, so
    status, last frame and analysed rate (against the configured one) stay current."""
    assert who.user is not None
    site: Site = request.app.state.raksha_site
    with service_errors():
        cameras = scoped_cameras(ctx, who)
    data = map_data(
        site,
        cameras,
        all_stations=station_scope(who.user) is None,
        configured_fps=configured_rates(ctx),
    )
    return page(request, "_camera_rows.html", who, data=data, can_ack=who.user.role in STAFF)


@router.post("/map/camera-alerts/{alert_id}/acknowledge")
def acknowledge_camera_alert(
    request: Request,
    alert_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")],
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_ACT))],
) -> Response:
    """An officer of the camera's station (or the control room) has seen its camera alert:
    recorded and audited (`camera.acknowledged`), then back to the map."""
    try:
        CameraAlertService(ctx.store, ctx.audit).acknowledge(who.caller, alert_id)
    except ServiceError as exc:
        if exc.status == 404:
            return _map_page(request, ctx, who, _("No such camera alert."), 404)
        if exc.status == 409:
            return _map_page(
                request, ctx, who, _("The camera alert is cleared or already acknowledged."), 409
            )
        raise
    return RedirectResponse("/map", status_code=303)
