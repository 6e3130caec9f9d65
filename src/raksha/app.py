"""The composition roots: everything `raksha run` and `raksha serve` are made of, wired in
one place, readable top to bottom.

    runtime = build_runtime(load_run_config("raksha.yaml"))   # raksha run
    app = build_dashboard(load_run_config("raksha.yaml"))     # raksha serve

Nothing else builds stores, notifiers, routers or camera pipelines for a deployment; the
pieces themselves take what they need as arguments and never reach back up.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from raksha.alerts.dispatcher import OutboxDispatcher
from raksha.alerts.factory import build_notifiers, camera_channels
from raksha.api.settings import ApiSettings
from raksha.config import AnalysisConfig, RunConfig
from raksha.detect.factory import build_detector
from raksha.errors import ConfigError, RakshaError
from raksha.expression.base import ExpressionClassifier
from raksha.expression.factory import build_expression_classifier
from raksha.geo.routing import Router
from raksha.incidents.evidence import EvidenceWriter
from raksha.models import file_sha256
from raksha.ort_session import check_provider, use_provider
from raksha.pipeline.analyzer import FrameAnalyzer, Models
from raksha.pipeline.batcher import BatchedClassifier
from raksha.pipeline.camera import CameraPipeline
from raksha.pipeline.camera_faults import CameraFaultReporter
from raksha.pipeline.clip_sink import ClipIncidentSink
from raksha.pipeline.incident_sink import IncidentSink, StoredIncident
from raksha.pipeline.runtime import Runtime
from raksha.pipeline.shadow import ShadowModels, ShadowScorer, ShadowSink
from raksha.pipeline.spool import Spool
from raksha.pipeline.watchlist import WatchlistShared
from raksha.services.deployment import configure_store, live_units, push_notifier
from raksha.services.escalation import EscalationTimer
from raksha.services.retention import sweep_orphaned_evidence
from raksha.services.retention_timer import retention_timer, spooled_evidence
from raksha.services.retention_timer import spool_path as configured_spool
from raksha.services.watchlist import watchlist_runtime
from raksha.site.config import CameraConfig
from raksha.site.effective import effective_camera_config
from raksha.site.load import load_site_secrets, storage_url
from raksha.site.secrets import camera_secrets, resolve_camera_url
from raksha.sources.base import FrameSource
from raksha.sources.factory import open_live_source
from raksha.sources.realtime import live_feed
from raksha.sources.targets import SourceKind, parse_target
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)


def preflight(
    cfg: RunConfig,
    *,
    models_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    cameras: bool = True,
) -> list[str]:
    """Everything `raksha run` would refuse about `cfg` on this machine, one message each,
    without starting anything: secrets not set, the store's URL, the alert channels' secrets,
    the evidence key, the models. `raksha config check` and `build_runtime` both ask this.
    With `cameras=False` (a cluster's coordinator, which runs none), what only cameras need
    is not asked for here: camera secrets, the evidence key, the models, the provider; each
    camera host asks for them on its own node."""
    from raksha.models import verify
    from raksha.site.load import unresolved_secrets
    from raksha.store.engine import parse_url

    env = os.environ if env is None else env
    models_dir = models_dir if models_dir is not None else cfg.models_dir
    problems = unresolved_secrets(cfg, env, cameras=cameras)
    checks: list[tuple[str, Callable[[], object]]] = [
        ("storage.url", lambda: parse_url(storage_url(cfg, env, load_site_secrets(cfg)))),
        ("alerts", lambda: _close_all(build_notifiers(cfg.alerts, env, cfg.patrol_units))),
        ("devices", lambda: _device_tokens(cfg, env)),
        ("alerts.push", lambda: _push_key(cfg, env)),
    ]
    if cameras:
        checks += [
            ("evidence", lambda: EvidenceWriter.from_config(cfg.evidence, env)),
            ("execution.provider", lambda: check_provider(cfg.execution.provider)),
        ]
    for where, check in checks:
        try:
            check()
        except RakshaError as exc:
            message = str(exc)
            if message not in problems:
                problems.append(message if message.startswith(where) else f"{where}: {message}")
    models = []
    if cameras:  # (a cluster's coordinator loads none)
        models = [
            ("detector.model", cfg.detector.model),
            ("expression.model", cfg.expression.model),
        ]
    if cameras and cfg.shadow is not None and cfg.shadow.model is not None:
        models.append(("shadow.model", cfg.shadow.model))
    if cameras and cfg.watchlist is not None:
        from raksha.watchlist.embed import DEFAULT_MODEL as FACE_EMBEDDING

        models.append(("watchlist", FACE_EMBEDDING))
    for what, name in models:
        try:
            status = verify(name, models_dir)
        except RakshaError as exc:
            problems.append(f"{what}: {exc}")
            continue
        if not status.ok:
            problems.append(f"{what}: {status.problem}")
    if not any(c.enabled for c in cfg.cameras):
        problems.append("cameras: no enabled camera")
    return problems


def _push_key(cfg: RunConfig, env: Mapping[str, str]) -> None:
    push = cfg.alerts.push
    if push is None:
        return
    from raksha.alerts.webpush import PushNotifier

    key = env.get(push.vapid_key_env, "")
    if not key:
        raise ConfigError(
            f"vapid_key_env: environment variable {push.vapid_key_env} is not set "
            "(make a key with `raksha push keygen`)"
        )
    PushNotifier(
        lambda _s: [],
        lambda _e: None,
        private_key=key,
        subject=push.subject,
        allowed_hosts=push.allowed_hosts,
    ).close()


def _device_tokens(cfg: RunConfig, env: Mapping[str, str]) -> object:
    from raksha.services.devices import DeviceTokens

    return DeviceTokens.from_config(cfg, env)


def _close_all(notifiers: Mapping[str, object]) -> None:
    for n in notifiers.values():
        close = getattr(n, "close", None)
        if callable(close):
            close()


@dataclass
class CameraParts:
    """What the camera pipelines of one process share: the expression model (batched or
    not), the store, the incident sink with its spool, the watchlist, shadow mode and each
    camera's station. `raksha run` builds one; each cluster host (`raksha.cluster`) builds
    its own and starts and stops cameras on it as they are assigned."""

    cfg: RunConfig
    models_dir: Path | None
    env: Mapping[str, str]
    secrets: Mapping[str, str]
    classifier: ExpressionClassifier
    store: IncidentStore
    sink: IncidentSink
    spool: Spool
    stations: Mapping[str, str]
    #: The shared batching service when `expression.batching` is on (start and stop it).
    batched: BatchedClassifier | None = None
    shadow: ShadowModels | None = None
    shadow_sink: ShadowSink | None = None
    watchlist: WatchlistShared | None = None

    def spooled_files(self) -> set[str]:
        """The evidence files of incidents waiting in the spool (kept by the sweep)."""
        return spooled_evidence(Path(self.spool.path))

    def pipeline(
        self, camera: CameraConfig, stopping: threading.Event, *, play_once: bool
    ) -> CameraPipeline:
        """A new pipeline for `camera` (not started); `stopping` ends it."""
        return camera_pipeline(
            self.cfg,
            camera,
            classifier=self.classifier,
            models_dir=self.models_dir,
            env=self.env,
            secrets=self.secrets,
            sink=self.sink,
            store=self.store,
            station_id=self.stations[camera.id],
            stopping=stopping,
            play_once=play_once,
            shadow=self.shadow,
            shadow_sink=self.shadow_sink,
            watchlist=self.watchlist,
        )


def camera_parts(
    cfg: RunConfig,
    store: IncidentStore,
    *,
    models_dir: Path | None,
    env: Mapping[str, str],
    on_stored: Callable[[StoredIncident], None] | None = None,
    spool_path: Path | None = None,
) -> CameraParts:
    """The shared parts of `cfg`'s camera pipelines in this process, over `store` (already
    configured). `spool_path` overrides where refused incidents wait (each cluster host has
    its own)."""
    secrets = load_site_secrets(cfg)
    use_provider(cfg.execution.provider)  # the detector's and expression model's sessions
    # Models: the detector is checked here and built per camera (it keeps per-size state);
    # the expression model (an onnxruntime session, thread-safe) is shared.
    build_detector(cfg.detector, models_dir)
    classifier = build_expression_classifier(cfg.expression, models_dir)
    model_file = getattr(classifier, "model_file", None)
    model_sha = file_sha256(Path(model_file)) if model_file is not None else ""
    # With `expression.batching` on, the cameras' faces are read in one shared service that
    # batches them (started with the cameras, stopped after them); off, each camera runs it.
    batching = cfg.expression.batching
    batched = (
        BatchedClassifier.around(
            classifier, max_batch=batching.max_batch, max_wait_ms=batching.max_wait_ms
        )
        if batching.enabled
        else None
    )
    router = Router.from_site(cfg)
    spool = Spool(
        spool_path or configured_spool(cfg),
        max_items=cfg.incidents.spool_max,
    )
    writer = EvidenceWriter.from_config(cfg.evidence, env)
    sink_args = (store, router, writer, cfg.hotspots, cfg.incidents, cfg.distress)
    sink_kw: dict[str, Any] = {
        "model_name": cfg.expression.model,
        "model_sha256": model_sha,
        "channels": list(store.workflow.station_channels),
        "on_stored": on_stored,
        "spool": spool,
        "live_units": live_units(store),
    }
    ev = cfg.evidence
    sink = (
        ClipIncidentSink(
            *sink_args,
            clip_writer=writer,
            pre_s=ev.clip_before_s,
            post_s=ev.clip_after_s,
            max_width=ev.clip_width,
            blur_expand=ev.blur_expand,
            **sink_kw,
        )
        if ev.clip_before_s + ev.clip_after_s > 0
        else IncidentSink(*sink_args, **sink_kw)
    )
    # The face watchlist: None (nothing loaded) without a `watchlist:` section.
    watchlist = watchlist_runtime(cfg, store.engine, models_dir, env)
    # Shadow mode: another model or thresholds scored beside the live ones, stored only.
    shadow = ShadowModels.load(cfg, models_dir, model_sha)
    shadow_sink = None if shadow is None else ShadowSink(store, sink, shadow)
    return CameraParts(
        cfg=cfg,
        models_dir=models_dir,
        env=env,
        secrets=secrets,
        classifier=classifier if batched is None else batched,
        store=store,
        sink=sink,
        spool=spool,
        stations=camera_stations(cfg, router),
        batched=batched,
        shadow=shadow,
        shadow_sink=shadow_sink,
        watchlist=watchlist,
    )


def build_runtime(
    cfg: RunConfig,
    *,
    models_dir: Path | None = None,
    exit_at_end: bool = False,
    env: Mapping[str, str] | None = None,
    on_stored: Callable[[StoredIncident], None] | None = None,
    local_cameras: bool = True,
) -> Runtime:
    """Every enabled camera's pipeline, the incident sink, the store and the alert
    dispatcher of `cfg`. Fails fast (a `RakshaError` naming the problem) on anything a
    camera would otherwise fail on later: models, secrets, alert channels, the database.

    With `local_cameras=False` (the driver of a cluster run) no camera runs here: the
    runtime keeps the store, the outbox dispatcher and the timers, and the cluster's hosts
    run the cameras."""
    env = os.environ if env is None else env
    models_dir = models_dir if models_dir is not None else cfg.models_dir
    problems = preflight(cfg, models_dir=models_dir, env=env, cameras=local_cameras)
    if problems:
        raise ConfigError("; ".join(problems))

    # Where incidents go: the store, the alert channels and their dispatcher.
    notifiers = build_notifiers(cfg.alerts, env, cfg.patrol_units)
    store = configure_store(IncidentStore.open(storage_url(cfg, env, load_site_secrets(cfg))), cfg)
    push = push_notifier(cfg, store, env)
    if push is not None:
        notifiers["push"] = push
    dispatcher = OutboxDispatcher(store, notifiers)
    # Deadlines live in the store; every process fires the passed ones, each once.
    timer = EscalationTimer(
        store, every_s=cfg.escalation.check_every_s, on_fired=lambda _: dispatcher.wake()
    )

    def stored(incident: StoredIncident) -> None:
        dispatcher.wake()  # a new alert is in the outbox
        if on_stored is not None:
            on_stored(incident)

    stopping = threading.Event()
    if not local_cameras:
        # A cluster's coordinator: no models, no sink, no orphan sweep (its hosts' spools
        # are on their own nodes); the outbox, the escalation timer and the retention purge.
        warn_spooled(cfg)
        record_disabled_cameras(
            store, [c for c in cfg.cameras if not c.enabled], camera_stations(cfg)
        )
        return Runtime(
            store=store,
            dispatcher=dispatcher,
            sink=None,
            pipelines=[],
            stopping=stopping,
            exit_at_end=exit_at_end,
            evidence_dir=cfg.evidence.dir,
            background=[timer, retention_timer(cfg, store, sweep_orphans=False)],
        )
    parts = camera_parts(cfg, store, models_dir=models_dir, env=env, on_stored=stored)
    # Evidence a crash left without its incident row goes (audited); the spool's stays.
    sweep_orphaned_evidence(store, cfg.evidence.dir, keep=parts.spooled_files())
    # Then on schedule (evidence.purge_every_s): the retention purge and the same sweep.
    retention = retention_timer(cfg, store, keep=parts.spooled_files)
    # Disabled cameras are listed, never read.
    record_disabled_cameras(store, [c for c in cfg.cameras if not c.enabled], parts.stations)
    pipelines = [
        parts.pipeline(cam, stopping, play_once=exit_at_end) for cam in cfg.cameras if cam.enabled
    ]
    batched = [] if parts.batched is None else [parts.batched]
    return Runtime(
        store=store,
        dispatcher=dispatcher,
        sink=parts.sink,
        pipelines=pipelines,
        stopping=stopping,
        exit_at_end=exit_at_end,
        evidence_dir=cfg.evidence.dir,
        background=[timer, retention, *batched],
    )


def camera_pipeline(
    cfg: RunConfig,
    camera: CameraConfig,
    *,
    classifier: ExpressionClassifier,
    models_dir: Path | None,
    env: Mapping[str, str],
    secrets: Mapping[str, str],
    sink: IncidentSink,
    store: IncidentStore,
    station_id: str,
    stopping: threading.Event,
    play_once: bool,
    shadow: ShadowModels | None = None,
    shadow_sink: ShadowSink | None = None,
    watchlist: WatchlistShared | None = None,
) -> CameraPipeline:
    """One camera's pipeline with its own settings (the site's, with the camera's
    overrides: `effective_camera_config`)."""
    settings = effective_camera_config(cfg, camera)
    analysis: AnalysisConfig = cfg.analysis().model_copy(
        update={"source": settings.source, "detector": settings.detector}
    )
    is_file = parse_target(camera.url).kind is SourceKind.FILE

    def open_source() -> FrameSource:
        url = resolve_camera_url(camera, env, secrets)  # the real URL: never logged
        loop = is_file and not play_once
        source = open_live_source(url, settings.source, camera.id, loop=loop)
        return live_feed(source, settings.source, is_file=is_file)

    def make_analyzer() -> FrameAnalyzer:
        detector = build_detector(settings.detector, models_dir)
        models = Models(detector, classifier, cfg.expression.model)
        scorer = None if shadow is None else ShadowScorer(shadow, camera.id)
        watcher = None if watchlist is None else watchlist.matcher(camera.id, station_id)
        return FrameAnalyzer(
            analysis, models, source_id=camera.id, shadow=scorer, watchlist=watcher
        )

    faults = (
        CameraFaultReporter(
            cfg.camera_health,
            store.engine,
            camera_id=camera.id,
            station_id=station_id,
            channels=camera_channels(cfg.alerts),
        )
        if cfg.camera_health.enabled
        else None
    )
    return CameraPipeline(
        camera,
        open_source=open_source,
        make_analyzer=make_analyzer,
        sink=sink,
        store=store,
        station_id=station_id,
        stopping=stopping,
        secrets=camera_secrets(camera, env, secrets),
        shadow_sink=shadow_sink,
        faults=faults,
    )


def camera_stations(cfg: RunConfig, router: Router | None = None) -> dict[str, str]:
    """Each camera's station, routed once from its hotspot."""
    router = router if router is not None else Router.from_site(cfg)
    stations = {}
    for cam in cfg.cameras:
        hotspot = cfg.hotspot(cam.hotspot)
        stations[cam.id] = router.route(hotspot.lat, hotspot.lon).station_id
    return stations


def warn_spooled(cfg: RunConfig) -> None:
    """A cluster's coordinator stores no spooled incidents: say so when an earlier
    single-process run left some in the configured spool."""
    path = configured_spool(cfg)
    if not path.is_file():
        return
    spool = Spool(path)
    try:
        waiting = len(spool.pending())
    finally:
        spool.close()
    if waiting:
        log.warning(
            "%d incident(s) from an earlier run without --cluster wait in the spool %s; a "
            "cluster's coordinator does not store them: run raksha run once without --cluster",
            waiting,
            path,
        )


def record_disabled_cameras(
    store: IncidentStore, cameras: Sequence[CameraConfig], stations: Mapping[str, str]
) -> None:
    for cam in cameras:
        store.set_camera_status(
            cam.id,
            False,
            None,
            "disabled",
            hotspot_id=cam.hotspot,
            station_id=stations[cam.id],
            display_url=cam.display_url,
            enabled=False,
        )


def build_dashboard(
    cfg: RunConfig,
    *,
    store: IncidentStore | None = None,
    settings: ApiSettings | None = None,
) -> FastAPI:
    """The dashboard (API and web pages) over `cfg`'s store."""
    from raksha.api.app import create_app

    return create_app(cfg, store=store, settings=settings)
