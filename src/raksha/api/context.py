"""What every route needs, built once per app: the stores, the audit log and the settings.

Routes reach it with `raksha.api.deps.get_context` (it is `app.state.raksha`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raksha.api.metrics import Metrics
from raksha.api.settings import ApiSettings
from raksha.audit.log import AuditLog
from raksha.auth.ratelimit import LoginLimiter
from raksha.auth.sessions import SessionStore
from raksha.auth.users import UserStore
from raksha.config import RunConfig
from raksha.services.devices import DeviceTokens
from raksha.services.incidents import IncidentService
from raksha.services.push import PushService
from raksha.services.sos import SosService
from raksha.services.units import UnitService
from raksha.site.config import EvidenceConfig, StationConfig
from raksha.store.repository import IncidentStore


@dataclass(slots=True)
class ApiContext:
    store: IncidentStore
    users: UserStore
    sessions: SessionStore
    audit: AuditLog
    limiter: LoginLimiter
    settings: ApiSettings
    evidence: EvidenceConfig
    #: What callers may do with incidents (routes and pages go through it).
    incidents: IncidentService
    stations: tuple[StationConfig, ...] = ()
    #: The whole deployment config (hotspots, patrol units, cameras) for maps; None in tests
    #: that build a context by hand.
    config: RunConfig | None = None
    metrics: Metrics = field(default_factory=Metrics)
    #: The event hub (raksha.api.sse.EventHub), set by create_app.
    hub: object | None = None
    #: Patrol units for officers and for the units' own devices; panic signals in.
    units: UnitService | None = None
    sos: SosService | None = None
    devices: DeviceTokens | None = None
    #: Web Push subscriptions (None in contexts built by hand).
    push: PushService | None = None

    @property
    def station_ids(self) -> list[str]:
        return [s.id for s in self.stations]
