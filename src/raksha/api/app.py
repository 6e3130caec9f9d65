"""The dashboard's FastAPI app.

    app = create_app(cfg)                        # cfg: RunConfig (storage, evidence, stations)
    app = create_app(cfg, store=store, settings=ApiSettings(events_poll_s=0.2))

Routes: raksha.api.routes_* and raksha.api.sse; every route declares an access rule (see
raksha.auth.access) and `create_app` refuses to build an app with a route that has none.
When the `raksha.web` package is importable and `settings.web` is on, its
`register_web(app, ctx)` adds the web pages to the same app (see docs/dashboard-api.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Mount

from raksha.alerts.dispatcher import DispatchThread, OutboxDispatcher
from raksha.alerts.factory import build_notifiers
from raksha.alerts.mqtt_intake import MqttIntake
from raksha.api import (
    routes_audit,
    routes_auth,
    routes_cameras,
    routes_export,
    routes_holds,
    routes_incidents,
    routes_map,
    routes_push,
    routes_reports,
    routes_sos,
    routes_system,
    routes_units,
    routes_users,
    routes_watchlist,
    sse,
)
from raksha.api.bodylimit import BodyLimit
from raksha.api.context import ApiContext
from raksha.api.deps import rule_of
from raksha.api.settings import ApiSettings
from raksha.audit.log import AuditLog
from raksha.auth.ratelimit import LoginLimiter
from raksha.auth.sessions import SessionStore
from raksha.auth.users import UserStore
from raksha.config import RunConfig
from raksha.errors import RakshaError
from raksha.geo.routing import Router
from raksha.incidents.evidence import EvidenceWriter
from raksha.services.deployment import configure_store, push_notifier
from raksha.services.devices import DeviceTokens
from raksha.services.escalation import EscalationTimer
from raksha.services.incidents import IncidentService
from raksha.services.intake import DeviceIntake
from raksha.services.push import PushService
from raksha.services.retention_timer import retention_timer
from raksha.services.sos import SosService
from raksha.services.units import UnitService
from raksha.site.load import storage_url
from raksha.store.changes import IncidentChangeFeed
from raksha.store.errors import (
    ConcurrentUpdate,
    IncidentNotFound,
    StalePosition,
    StoreError,
    UnitUnavailable,
    UnknownUnit,
)
from raksha.store.repository import IncidentStore


class RouteWithoutRule(RakshaError):
    """A route was registered without declaring its access rule."""


log = logging.getLogger("raksha.api")


def _rules_of(dependant: Any) -> list[Any]:
    found = []
    for dep in getattr(dependant, "dependencies", []):
        rule = rule_of(dep.call)
        if rule is not None:
            found.append(rule)
        found.extend(_rules_of(dep))
    return found


def _flat_routes(routes: list[Any]) -> list[Any]:
    """Routes with included routers expanded (newer FastAPI keeps them as wrappers)."""
    out: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out.extend(_flat_routes(list(inner.routes)))
        else:
            out.append(route)
    return out


DOC_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


def check_rules(app: FastAPI) -> None:
    """Every route must declare exactly one access rule (static file mounts are public)."""
    for route in _flat_routes(list(app.router.routes)):
        if isinstance(route, APIRoute):
            rules = set(_rules_of(route.dependant))
            if len(rules) != 1:
                raise RouteWithoutRule(
                    f"route {sorted(route.methods or ())} {route.path} declares "
                    f"{len(rules)} access rules; it needs exactly one"
                )
        elif isinstance(route, Mount) or getattr(route, "path", "") in DOC_PATHS:
            continue
        else:
            raise RouteWithoutRule(f"route {getattr(route, 'path', route)!r} has no access rule")


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every APIRoute of `app` (for the access-matrix test and the docs)."""
    return [r for r in _flat_routes(list(app.router.routes)) if isinstance(r, APIRoute)]


def route_rule(route: APIRoute) -> Any:
    rules = _rules_of(route.dependant)
    return rules[0] if rules else None


def build_context(
    cfg: RunConfig, store: IncidentStore | None = None, settings: ApiSettings | None = None
) -> ApiContext:
    st = settings or ApiSettings()
    s = configure_store(store or IncidentStore.open(storage_url(cfg)), cfg)
    audit = AuditLog(s.engine)
    incidents = IncidentService(
        s,
        audit,
        # Reads only: the key is looked up per encrypted file (missing: that read is 503).
        EvidenceWriter(
            cfg.evidence.dir, key_env=cfg.evidence.key_env, key_file=cfg.evidence.key_file
        ),
        list_audit_every_s=st.list_audit_every_s,
    )
    return ApiContext(
        store=s,
        users=UserStore(s.engine),
        sessions=SessionStore(s.engine, idle_s=st.session_idle_s, absolute_s=st.session_absolute_s),
        audit=audit,
        incidents=incidents,
        units=UnitService(s, audit, incidents),
        sos=SosService(s, audit, cfg, Router.from_site(cfg), s.workflow.station_channels)
        if cfg.stations
        else None,
        devices=DeviceTokens.from_config(cfg, os.environ),
        push=PushService(s, audit, cfg.alerts.push, os.environ),
        limiter=LoginLimiter(st.login_limits),
        settings=st,
        evidence=cfg.evidence,
        stations=tuple(cfg.stations),
        config=cfg,
    )


def _dispatcher(cfg: RunConfig, ctx: ApiContext) -> DispatchThread | None:
    """The outbox sent from here too, so an officer's action (a job card, an escalation)
    leaves at once rather than at `raksha run`'s next round; rows are leased, so each
    delivery still goes once. Without the channels' secrets here, `raksha run` sends alone."""
    try:
        notifiers = build_notifiers(cfg.alerts, os.environ, cfg.patrol_units)
        push = push_notifier(cfg, ctx.store, os.environ)
    except RakshaError as exc:
        log.warning("alerts are sent by raksha run only: %s", exc)
        return None
    if push is not None:
        notifiers["push"] = push
    if not notifiers:
        return None
    return DispatchThread(OutboxDispatcher(ctx.store, notifiers))


def _mqtt_intake(cfg: RunConfig, ctx: ApiContext) -> MqttIntake | None:
    """Positions, duty and panic signals over MQTT, when a broker is configured."""
    mq = cfg.alerts.mqtt
    if mq is None or ctx.units is None or ctx.devices is None or not len(ctx.devices):
        return None
    intake = DeviceIntake(ctx.devices, ctx.units, ctx.sos)
    user = os.environ.get(mq.username_env, "") if mq.username_env else ""
    password = os.environ.get(mq.password_env, "") if mq.password_env else ""
    return MqttIntake(
        mq.host,
        mq.port,
        mq.topic_prefix,
        intake.handle,
        username=user or None,
        password=password or None,
    )


def create_app(
    cfg: RunConfig,
    *,
    store: IncidentStore | None = None,
    settings: ApiSettings | None = None,
    web: Callable[[FastAPI, ApiContext], None] | None = None,
) -> FastAPI:
    """The dashboard app over `cfg.storage.url` (or the given `store`, already migrated).

    `web` registers extra (web UI) routes; by default `raksha.web.register_web` when that
    package exists and `settings.web` is true.
    """
    ctx = build_context(cfg, store, settings)
    hub = sse.EventHub(
        IncidentChangeFeed(ctx.store.engine), poll_s=ctx.settings.events_poll_s, metrics=ctx.metrics
    )
    ctx.hub = hub
    dispatch = _dispatcher(cfg, ctx) if ctx.settings.background_jobs else None

    def changed() -> None:
        hub.poke()
        if dispatch is not None:  # a state change is in the outbox: send it now
            dispatch.dispatcher.wake()

    ctx.incidents.on_change = changed
    for service in (ctx.units, ctx.sos):
        if service is not None:
            service.on_change = changed
    intake = _mqtt_intake(cfg, ctx) if ctx.settings.background_jobs else None
    timer = (
        EscalationTimer(
            ctx.store,
            every_s=cfg.escalation.check_every_s,
            on_fired=lambda _fired: changed(),
        )
        if ctx.settings.background_jobs
        else None
    )
    # Evidence past its retention goes here too (each file deleted and audited once).
    retention = retention_timer(cfg, ctx.store) if ctx.settings.background_jobs else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        started = await hub.start()
        jobs = [job for job in (dispatch, timer, intake, retention) if job is not None]
        for job in jobs:
            job.start()
        try:
            yield
        finally:
            for job in reversed(jobs):
                job.stop()
            if started:
                await hub.stop()

    app = FastAPI(
        title="Raksha dashboard API",
        version="1",
        description=(
            "Station-scoped incidents, evidence, officer actions, live events and the audit "
            "log. Log in with POST /api/login; send the returned csrf_token as X-CSRF-Token "
            "on every POST."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served behind login by routes_system.openapi_schema
    )
    app.state.raksha = ctx
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.max_body_bytes)

    @app.exception_handler(UnknownUnit)
    @app.exception_handler(IncidentNotFound)
    async def _not_found(_request: Request, exc: StoreError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(UnitUnavailable)
    @app.exception_handler(ConcurrentUpdate)
    @app.exception_handler(StalePosition)
    async def _conflict(_request: Request, exc: StoreError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> Response:
        # One line, passwords already masked by the store; never a traceback.
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    @app.exception_handler(RakshaError)
    async def _raksha_error(_request: Request, exc: RakshaError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's default echoes each bad field's input, which for a login body with a
        # missing user name is the whole body, password included: keep only where and why.
        detail = [
            {key: err[key] for key in ("type", "loc", "msg") if key in err} for err in exc.errors()
        ]
        return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        ctx.metrics.requests.labels(name, request.method, str(response.status_code)).inc()
        ctx.metrics.latency.labels(name).observe(time.perf_counter() - start)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static/"):
            # Incidents, evidence and pages are personal data: never kept by a browser or proxy.
            response.headers.setdefault("Cache-Control", "no-store")
        if request.url.scheme == "https":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    for module in (
        routes_system,
        routes_auth,
        routes_incidents,
        routes_holds,
        routes_export,
        routes_cameras,
        routes_map,
        routes_audit,
        routes_users,
        routes_units,
        routes_sos,
        routes_push,
        routes_reports,
        routes_watchlist,
        sse,
    ):
        app.include_router(module.router)

    register = web
    if register is None and ctx.settings.web and importlib.util.find_spec("raksha.web"):
        register = getattr(importlib.import_module("raksha.web"), "register_web", None)
    if register is not None:
        register(app, ctx)
    check_rules(app)
    return app
