"""GET /api/cameras: camera status in the caller's scope (URLs masked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.schemas import CameraList
from raksha.api.views import camera_view
from raksha.auth.access import Rule
from raksha.services.cameras import visible_cameras

router = APIRouter(tags=["cameras"])


@router.get("/api/cameras", response_model=CameraList)
def list_cameras(
    ctx: Context, who: Annotated[Principal, Depends(require(Rule.CAMERAS_READ))]
) -> CameraList:
    """Status of each camera (online, last frame, last error); an operator or supervisor sees
    only their station's cameras."""
    with service_errors():
        cams = visible_cameras(ctx.store, who.caller)
    return CameraList(cameras=[camera_view(c) for c in cams])
