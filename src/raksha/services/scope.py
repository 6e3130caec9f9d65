"""An incident for a caller under a rule: the station check every incident service makes.

Another station's incident is `NotFound`, exactly as one that does not exist; the attempt is
audited as `incident.denied` (the caller learns nothing, the log keeps it).
"""

from __future__ import annotations

from raksha.audit.log import AuditLog
from raksha.auth.access import Denied, Rule, check_station
from raksha.incidents.model import Incident
from raksha.services.errors import NotFound
from raksha.services.incidents import Caller
from raksha.store.repository import IncidentStore


def scoped_incident(
    store: IncidentStore, audit: AuditLog, caller: Caller, incident_id: str, rule: Rule
) -> Incident:
    """The incident when `caller` may use `rule` on it; Denied (403) for a role outside the
    rule, NotFound for another station's or a missing incident."""
    incident = store.get_incident(incident_id)
    station = incident.station_id if incident is not None else None
    try:
        check_station(caller.user, rule, station)
    except Denied as exc:
        if exc.status != 404:
            raise
        audit.append(
            caller.name,
            "incident.denied",
            target=f"incident:{incident_id}",
            station_id=caller.user.station_id,
            address=caller.address,
            details={
                "rule": rule.value,
                "why": "no such incident" if incident is None else "another station",
                "incident_station": station,
            },
        )
        raise NotFound("not found") from None
    if incident is None:
        raise NotFound("not found")
    return incident
