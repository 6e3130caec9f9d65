"""Cameras for a caller: the status rows of the cameras in their scope."""

from __future__ import annotations

from raksha.auth.access import Rule, visible_stations
from raksha.incidents.model import CameraStatus
from raksha.services.incidents import Caller
from raksha.store.repository import IncidentStore


def visible_cameras(store: IncidentStore, caller: Caller) -> list[CameraStatus]:
    """Every camera's status for the control room and admins; an operator's or a
    supervisor's own station's only (`Denied` for a role that may not see cameras)."""
    scope = visible_stations(caller.user, Rule.CAMERAS_READ)
    return [c for c in store.cameras() if scope is None or c.station_id in scope]
