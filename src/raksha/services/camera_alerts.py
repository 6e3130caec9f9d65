"""Officers acknowledge a camera alert (audited). Acknowledging a `moved` camera's alert makes
its pipeline learn the scene's reference again (`raksha.pipeline.camera_faults` looks for the
acknowledgement), so a camera turned on purpose stops alerting once its new view is learnt."""

from __future__ import annotations

from raksha.audit.log import AuditLog
from raksha.auth.access import Denied, Rule, check_station
from raksha.errors import N_, Message
from raksha.incidents.model import utcnow
from raksha.services.errors import Conflict, NotFound
from raksha.services.incidents import Caller
from raksha.store import camera_alerts as rows
from raksha.store._db import db_errors
from raksha.store.repository import IncidentStore


class CameraAlertService:
    def __init__(self, store: IncidentStore, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit

    def acknowledge(self, caller: Caller, alert_id: str) -> rows.CameraAlert:
        """Record that `caller` has seen the open alert; NotFound for a missing alert or one
        of another station (the same reply), Conflict once cleared or acknowledged."""
        alert = rows.get(self.store.engine, alert_id)
        try:
            check_station(caller.user, Rule.INCIDENTS_ACT, alert.station_id if alert else None)
        except Denied as exc:
            if exc.status == 404:
                raise NotFound("not found") from None
            raise
        if alert is None:
            raise NotFound("not found")
        now = utcnow()
        with db_errors("cannot acknowledge a camera alert"), self.store.engine.begin() as c:
            if not rows.acknowledge(c, alert_id, caller.name, now):
                raise Conflict(Message(N_("The camera alert is cleared or already acknowledged.")))
            self.audit.append_in(
                c,
                caller.name,
                "camera.acknowledged",
                target=f"camera:{alert.camera_id}",
                station_id=alert.station_id,
                address=caller.address,
                details={"kind": alert.kind, "camera_alert": alert.id},
                at=now,
            )
        found = rows.get(self.store.engine, alert_id)
        assert found is not None
        return found
