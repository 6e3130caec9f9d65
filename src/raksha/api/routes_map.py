"""GET /api/map: stations, hotspots, patrol units and cameras with their status, for the map.

An operator or supervisor sees their own station, its patrol units, its cameras and the
hotspots those cameras watch; the control room and admins see everything. Camera URLs are
masked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from raksha.api.deps import Context, Principal, denied, require
from raksha.api.schemas import CameraOut, MapOut, PatrolUnitOut, PlaceOut
from raksha.api.views import camera_view
from raksha.auth.access import Denied, Rule, visible_stations
from raksha.redact import mask_url
from raksha.site.secrets import display_url

router = APIRouter(tags=["cameras"])


@router.get("/api/map", response_model=MapOut)
def site_map(
    ctx: Context, who: Annotated[Principal, Depends(require(Rule.CAMERAS_READ))]
) -> MapOut:
    """What to draw on the map, within the caller's scope."""
    assert who.user is not None
    try:
        scope = visible_stations(who.user, Rule.CAMERAS_READ)
    except Denied as exc:
        raise denied(exc) from None

    def mine(station_id: str | None) -> bool:
        return scope is None or station_id in scope

    cfg = ctx.config
    status = {c.camera_id: c for c in ctx.store.cameras()}
    hotspot_pos = {h.id: (h.lat, h.lon) for h in cfg.hotspots} if cfg is not None else {}
    cameras: list[CameraOut] = []
    seen: set[str] = set()
    for cam in cfg.cameras if cfg is not None else ():
        st = status.get(cam.id)
        station = st.station_id if st is not None else None
        if not mine(station):
            continue
        seen.add(cam.id)
        view = (
            camera_view(st)
            if st is not None
            else CameraOut(
                camera_id=cam.id,
                display_url=mask_url(display_url(cam)),
                online=False,
                enabled=cam.enabled,
            )
        )
        lat, lon = hotspot_pos.get(cam.hotspot, (None, None))
        cameras.append(
            view.model_copy(
                update={"hotspot_id": cam.hotspot, "name": cam.name, "lat": lat, "lon": lon}
            )
        )
    for cam_id, st in status.items():  # cameras known only from the store
        if cam_id not in seen and mine(st.station_id):
            lat, lon = hotspot_pos.get(st.hotspot_id or "", (None, None))
            cameras.append(camera_view(st).model_copy(update={"lat": lat, "lon": lon}))
    watched = {c.hotspot_id for c in cameras}
    return MapOut(
        stations=[
            PlaceOut(id=s.id, name=s.name, lat=s.lat, lon=s.lon) for s in ctx.stations if mine(s.id)
        ],
        hotspots=[
            PlaceOut(id=h.id, name=h.name, lat=h.lat, lon=h.lon)
            for h in (cfg.hotspots if cfg is not None else ())
            if scope is None or h.id in watched
        ],
        patrol_units=[
            PatrolUnitOut(
                id=u.id, kind=u.kind, station=u.station, name=u.name, lat=u.lat, lon=u.lon
            )
            for u in (cfg.patrol_units if cfg is not None else ())
            if mine(u.station)
        ],
        cameras=cameras,
    )
