"""A deployment's store as its config wants it: the workflow (deadlines, channels, unit
rules) and its patrol units. Both composition roots (`raksha run`, `raksha serve`) use it."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from raksha.alerts.factory import channel_roles
from raksha.alerts.webpush import PushNotifier
from raksha.config import RunConfig
from raksha.domain.routing import UnitRoute
from raksha.errors import ConfigError
from raksha.geo.routing import Router
from raksha.incidents.escalation import EscalationPolicy, Step
from raksha.incidents.model import Priority
from raksha.site.load import load_site_secrets, storage_url
from raksha.store import push as push_rows
from raksha.store.repository import IncidentStore, Workflow


def build_workflow(cfg: RunConfig, router: Router | None) -> Workflow:
    """Deadlines, channels and unit rules of `cfg` for the store (`IncidentStore.configure`)."""
    station_channels, unit_channels = channel_roles(cfg.alerts)
    esc = cfg.escalation
    policy = EscalationPolicy(
        acknowledge_s={Priority.NORMAL: esc.acknowledge_s, Priority.HIGH: esc.acknowledge_high_s},
        dispatch_s={Priority.NORMAL: esc.dispatch_s, Priority.HIGH: esc.dispatch_high_s},
        unit_ack_s=esc.unit_ack_s,
        step_s=esc.step_s,
        steps=tuple(Step(s) for s in esc.steps),
    )
    return Workflow(
        policy=policy,
        station_channels=station_channels,
        unit_channels=unit_channels,
        station_names={s.id: s.name for s in cfg.stations},
        next_station=None if router is None else router.nearest_station_excluding,
        position_max_age_s=cfg.dispatch.position_max_age_s,
        directions_url=cfg.dispatch.directions_url,
        sos_radius_m=cfg.sos.join_radius_m,
        sos_window_s=cfg.sos.join_window_s,
    )


def open_store(cfg: RunConfig, env: Mapping[str, str] | None = None) -> IncidentStore:
    """The deployment's store: migrated, configured with its workflow, its units synced."""
    env = os.environ if env is None else env
    store = IncidentStore.open(storage_url(cfg, env, load_site_secrets(cfg)))
    return configure_store(store, cfg)


def configure_store(store: IncidentStore, cfg: RunConfig) -> IncidentStore:
    router = Router.from_site(cfg) if cfg.stations else None
    store.configure(build_workflow(cfg, router))
    store.sync_units(cfg.patrol_units)
    return store


def live_units(store: IncidentStore, k: int = 3) -> Callable[[float, float], tuple[UnitRoute, ...]]:
    """The nearest available units now, for the route an incident is stored with."""

    def near(lat: float, lon: float) -> tuple[UnitRoute, ...]:
        return tuple(
            UnitRoute(u.id, u.kind, u.station_id, d)
            for u, d, _ in store.nearest_available_units(lat, lon, k=k)
        )

    return near


def push_notifier(
    cfg: RunConfig, store: IncidentStore, env: Mapping[str, str]
) -> PushNotifier | None:
    """The Web Push channel over the store's subscriptions (None: `alerts.push` unset)."""
    push = cfg.alerts.push
    if push is None:
        return None
    key = env.get(push.vapid_key_env, "")
    if not key:
        raise ConfigError(
            f"alerts.push.vapid_key_env: environment variable {push.vapid_key_env} is not set "
            "(make a key with `raksha push keygen`)"
        )
    return PushNotifier(
        lambda stations: push_rows.targets(store.engine, stations),
        lambda endpoint: push_rows.forget_endpoint(store.engine, endpoint),
        failed=lambda endpoint: push_rows.count_failure(store.engine, endpoint),
        reached=lambda endpoint: push_rows.count_success(store.engine, endpoint),
        private_key=key,
        subject=push.subject,
        allowed_hosts=push.allowed_hosts,
        events=push.events,
        ttl_s=push.ttl_s,
        timeout_s=push.timeout_s,
    )
