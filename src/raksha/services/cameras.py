"""Cameras for a caller: the status rows of the cameras in their scope."""

from __future__ import annotations

from raksha.auth.access import Rule, visible_stations
from raksha.incidents.model import CameraStatus
from raksha.services.incidents import Caller
from raksha.store import camera_alerts
from raksha.store.camera_alerts import CameraAlert
from raksha.store.repository import IncidentStore


def visible_cameras(store: IncidentStore, caller: Caller) -> list[CameraStatus]:
    """Every camera's status for the control room and admins; an operator's or a
    supervisor's own station's only (`Denied` for a role that may not see cameras)."""
    scope = visible_stations(caller.user, Rule.CAMERAS_READ)
    return [c for c in store.cameras() if scope is None or c.station_id in scope]


def open_camera_alerts(store: IncidentStore) -> dict[str, CameraAlert]:
    """Each camera's oldest open camera alert (video loss, frozen, covered, moved, reconnect),
    by camera id; scoping is the caller's cameras' (`visible_cameras`)."""
    out: dict[str, CameraAlert] = {}
    for alert in camera_alerts.open_alerts(store.engine):
        out.setdefault(alert.camera_id, alert)
    return out
