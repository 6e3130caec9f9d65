"""The map: stations (with their jurisdictions), hotspots, patrol units and cameras with
their online status. Drawn with Leaflet on a plain background unless a tile URL is set."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.schemas import CameraOut
from raksha.api.views import camera_view
from raksha.auth.access import Rule, station_scope
from raksha.services.cameras import visible_cameras
from raksha.web.render import page
from raksha.web.settings import WebSettings
from raksha.web.site import Site, jurisdiction_json

router = APIRouter(include_in_schema=False)


def camera_status(cam: CameraOut) -> str:
    if not cam.enabled:
        return "disabled"
    return "online" if cam.online else "offline"


def map_data(site: Site, cameras: list[CameraOut], all_stations: bool) -> dict[str, Any]:
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
                "frames_dropped": cam.frames_dropped,
                "p95_latency_ms": cam.p95_latency_ms,
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
                    "frames_dropped": None,
                    "p95_latency_ms": None,
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
        "units": [
            {"id": u.id, "kind": u.kind, "station": u.station, "lat": u.lat, "lon": u.lon}
            for u in site.patrol_units
        ],
        "cameras": out_cams,
    }


@router.get("/map")
def map_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.CAMERAS_READ))],
) -> Response:
    assert who.user is not None
    site: Site = request.app.state.raksha_site
    web: WebSettings = request.app.state.raksha_web
    with service_errors():
        cameras = [camera_view(c) for c in visible_cameras(ctx.store, who.caller)]
    data = map_data(site, cameras, all_stations=station_scope(who.user) is None)
    data["tiles"] = (
        {"url": web.tile_url, "attribution": web.tile_attribution} if web.tile_url else None
    )
    counts = {
        k: sum(1 for c in data["cameras"] if c["status"] == k)
        for k in ("online", "offline", "unknown", "disabled")
    }
    return page(request, "map.html", who, title="Map", data=data, counts=counts)
