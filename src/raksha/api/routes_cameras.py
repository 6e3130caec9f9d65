"""GET /api/cameras: camera status in the caller's scope (URLs masked), each with its open
camera alert; POST /api/camera-alerts/{alert_id}/acknowledge: an officer has seen one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.schemas import CameraAlertOut, CameraList
from raksha.api.views import camera_alert_view, camera_view
from raksha.auth.access import Rule
from raksha.services.camera_alerts import CameraAlertService
from raksha.services.cameras import open_camera_alerts, visible_cameras

router = APIRouter(tags=["cameras"])


@router.get("/api/cameras", response_model=CameraList)
def list_cameras(
    ctx: Context, who: Annotated[Principal, Depends(require(Rule.CAMERAS_READ))]
) -> CameraList:
    """Status of each camera (online, last frame, last error, its open camera alert); an
    operator or supervisor sees only their station's cameras."""
    with service_errors():
        cams = visible_cameras(ctx.store, who.caller)
        alerts = open_camera_alerts(ctx.store)
    return CameraList(cameras=[camera_view(c, alerts.get(c.camera_id)) for c in cams])


@router.post("/api/camera-alerts/{alert_id}/acknowledge", response_model=CameraAlertOut)
def acknowledge_camera_alert(
    alert_id: str,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_ACT))],
) -> CameraAlertOut:
    """Staff of the camera's station (and the control room) acknowledge its open camera
    alert (audited); a moved camera's scene is then learnt again. 409 once cleared or
    acknowledged."""
    with service_errors():
        alert = CameraAlertService(ctx.store, ctx.audit).acknowledge(who.caller, alert_id)
    return camera_alert_view(alert)
