"""GET /api/cameras: camera status in the caller's scope (URLs masked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from raksha.api.deps import Context, Principal, denied, require
from raksha.api.schemas import CameraList
from raksha.api.views import camera_view
from raksha.auth.access import Denied, Rule, visible_stations

router = APIRouter(tags=["cameras"])


@router.get("/api/cameras", response_model=CameraList)
def list_cameras(
    ctx: Context, who: Annotated[Principal, Depends(require(Rule.CAMERAS_READ))]
) -> CameraList:
    """Status of each camera (online, last frame, last error); an operator or supervisor sees
    only their station's cameras."""
    assert who.user is not None
    try:
        scope = visible_stations(who.user, Rule.CAMERAS_READ)
    except Denied as exc:
        raise denied(exc) from None
    cams = [c for c in ctx.store.cameras() if scope is None or c.station_id in scope]
    return CameraList(cameras=[camera_view(c) for c in cams])
