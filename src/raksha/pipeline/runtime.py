"""The multi-camera runtime behind `raksha run`: one worker thread per camera, one alert
dispatcher thread, one store.

A dead, slow or bad camera never stops the others: each worker catches its own errors,
records them in the camera's status row, and live streams reconnect with backoff.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from raksha.alerts.base import Notifier
from raksha.alerts.dispatcher import OutboxDispatcher
from raksha.city.config import CameraConfig
from raksha.city.load import storage_url
from raksha.config import RunConfig
from raksha.detect.base import FaceDetector
from raksha.errors import ConfigError, RakshaError
from raksha.expression.base import ExpressionClassifier
from raksha.incidents.model import CameraHealth
from raksha.pipeline.analyzer import FrameAnalyzer, Models
from raksha.pipeline.incident_sink import IncidentSink, StoredIncident
from raksha.pipeline.memory import fix_mmap_threshold
from raksha.sources.base import FrameSource
from raksha.sources.targets import SourceKind, parse_target
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)

#: How often a healthy camera's `last_frame_at` is written to the store.
STATUS_EVERY_S = 5.0
#: Latest per-frame latencies kept per camera (a window, so memory stays flat).
LATENCY_WINDOW = 4096


@dataclass
class CameraStats:
    camera_id: str
    frames: int = 0
    faces: int = 0
    events: int = 0
    errors: int = 0
    online: bool = False
    ended: bool = False
    last_error: str | None = None
    #: Seconds from frame capture to its distress score, for the latest analysed frames.
    frame_latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    #: Frames dropped (oldest first) because analysis fell behind the camera.
    dropped: int = 0
    #: Frames a real-time file reader delivered later than one analysis interval.
    late: int = 0
    #: CPU seconds of this camera's reader thread (decoding, colour conversion) and of its
    #: analysis thread (detect, track, expression, distress, incident sink).
    read_cpu_s: float = 0.0
    analyse_cpu_s: float = 0.0
    #: Analysed frames on which motion gating skipped the detector.
    detect_skipped: int = 0
    #: Wall seconds per pipeline stage, summed over analysed frames.
    stage_s: dict[str, float] = field(default_factory=dict)

    def p95_latency_ms(self) -> float | None:
        """p95 of capture-to-score latency over the latency window (None: no frame yet)."""
        try:
            latency = sorted(self.frame_latency_s)
        except RuntimeError:  # appended to by the worker while another thread read it
            return None
        return round(1000 * latency[int(0.95 * (len(latency) - 1))], 1) if latency else None


def build_notifiers(cfg: RunConfig, env: Mapping[str, str]) -> dict[str, Notifier]:
    """One notifier per configured alert channel (the store itself is always a channel)."""
    notifiers: dict[str, Notifier] = {}
    if cfg.alerts.webhook is not None:
        from raksha.alerts.webhook import WebhookNotifier

        wh = cfg.alerts.webhook
        if not wh.secret_env:
            raise ConfigError(
                "alerts.webhook.secret_env: a signing secret is required; name the "
                "environment variable that holds it"
            )
        secret = env.get(wh.secret_env, "")
        if not secret:
            raise ConfigError(
                f"alerts.webhook.secret_env: environment variable {wh.secret_env} is not set"
            )
        notifiers["webhook"] = WebhookNotifier(wh.url, secret.encode(), wh.timeout_s)
    if cfg.alerts.mqtt is not None:
        from raksha.alerts.mqtt import MqttNotifier

        mq = cfg.alerts.mqtt
        user = env.get(mq.username_env, "") if mq.username_env else None
        password = env.get(mq.password_env, "") if mq.password_env else None
        notifiers["mqtt"] = MqttNotifier(
            mq.host,
            mq.port,
            mq.topic_prefix,
            mq.qos,
            mq.client_id,
            username=user or None,
            password=password or None,
        )
    return notifiers


class CameraWorker(threading.Thread):
    """Reads one camera, analyses its frames and hands events to the incident sink."""

    def __init__(
        self,
        runtime: Runtime,
        camera: CameraConfig,
        play_once: bool,
    ) -> None:
        super().__init__(name=f"camera-{camera.id}", daemon=True)
        self.rt = runtime
        self.camera = camera
        self.play_once = play_once
        self.stats = CameraStats(camera.id)
        self._source: FrameSource | None = None
        self._last_status = 0.0
        #: (monotonic time, frames analysed) at the last health report.
        self._health_mark = (time.monotonic(), 0)
        self._secrets: list[str] = []
        # Status is written by this thread (per frame) and by the runtime's status thread
        # (`poll_status`, while a reconnecting read blocks this thread).
        self._status_lock = threading.Lock()

    @property
    def is_file(self) -> bool:
        return parse_target(self.camera.url).kind is SourceKind.FILE

    def _status(self, online: bool, error: str | None = None, force: bool = False) -> None:
        with self._status_lock:
            self._write_status(online, error, force)

    def _write_status(self, online: bool, error: str | None, force: bool) -> None:
        now = time.monotonic()
        changed = online != self.stats.online or error != self.stats.last_error
        if not (force or changed or now - self._last_status >= STATUS_EVERY_S):
            return
        self.stats.online, self.stats.last_error = online, error
        self._last_status = now
        health = self._health(now)
        try:
            self.rt.store.set_camera_status(
                self.camera.id,
                online,
                datetime.now(UTC) if online else None,
                error,
                hotspot_id=self.camera.hotspot,
                station_id=self.rt.station_of(self.camera),
                display_url=self.camera.display_url,
                enabled=True,
                secrets=self._secrets,
                health=health,
            )
        except RakshaError as exc:
            log.warning("camera %s: cannot record status: %s", self.camera.id, exc)

    def _health(self, now: float) -> CameraHealth | None:
        """Analysed frames per second since the last report, frames dropped so far and the
        p95 capture-to-score latency of the latest frames."""
        then, frames_then = self._health_mark
        frames = self.stats.frames
        if now <= then:
            return None
        self._health_mark = (now, frames)
        return CameraHealth(
            analysed_fps=round((frames - frames_then) / (now - then), 2),
            frames_dropped=self.stats.dropped,
            p95_latency_ms=self.stats.p95_latency_ms(),
        )

    def poll_status(self) -> None:
        """Record a live camera that is down while its read blocks in reconnect backoff
        (the worker itself only reports between frames)."""
        src = self._source
        if src is None or self.stats.ended or self.rt.stopping.is_set():
            return  # (on shutdown the worker records the final state itself)
        if bool(getattr(src, "online", True)):
            return
        error = getattr(src, "last_error", None)
        if error and error != self.stats.last_error:
            self.stats.errors += 1
            self._status(False, str(error))

    def stop(self) -> None:
        src = self._source
        if src is not None:
            src.close()

    def run(self) -> None:
        from raksha.city.effective import effective_camera_config
        from raksha.city.secrets import camera_secrets, resolve_camera_url
        from raksha.sources.factory import open_live_source
        from raksha.sources.realtime import live_feed

        cam = self.camera
        try:
            self._secrets = camera_secrets(cam, self.rt.env, self.rt.secrets)
            url = resolve_camera_url(cam, self.rt.env, self.rt.secrets)
            src_cfg = effective_camera_config(self.rt.cfg, cam).source
            self._source = live_feed(
                open_live_source(url, src_cfg, cam.id, loop=self.is_file and not self.play_once),
                src_cfg,
                is_file=self.is_file,
            )
            analyzer = FrameAnalyzer(
                self.rt.analysis_cfg, self.rt.models_for_camera(cam), source_id=cam.id
            )
        except RakshaError as exc:
            self.stats.errors += 1
            self.stats.ended = True
            log.error("camera %s: %s", cam.id, exc)
            self._status(False, str(exc), force=True)
            return
        except Exception as exc:  # a bug must not end the thread unrecorded
            # Only the type: the message of a foreign exception may hold the camera URL.
            error = f"internal error ({type(exc).__name__}) while opening the camera"
            self.stats.errors += 1
            self.stats.ended = True
            log.error("camera %s: %s", cam.id, error)
            self._status(False, error, force=True)
            return
        if not self.is_file:  # known to the store (offline) before the first connection
            self._status(False, "connecting", force=True)
        try:
            self._loop(self._source, analyzer)
        finally:
            self.stats.ended = True
            try:
                self.rt.sink.finish(cam, analyzer.finish())
            except RakshaError as exc:
                log.error("camera %s: cannot close its events: %s", cam.id, exc)
            self._source.close()

    def _loop(self, source: FrameSource, analyzer: FrameAnalyzer) -> None:
        cam = self.camera
        cpu0 = time.thread_time()
        while not self.rt.stopping.is_set():
            try:
                frame = source.read()
            except RakshaError as exc:
                self.stats.errors += 1
                log.error("camera %s: %s", cam.id, exc)
                self._status(False, str(exc), force=True)
                return
            online = bool(getattr(source, "online", True))
            if frame is None:
                if self.rt.stopping.is_set():
                    break
                self._status(False, "stream ended" if self.is_file else "stream lost", force=True)
                return
            try:
                analysis = analyzer.analyze(frame)
                self.stats.frame_latency_s.append(time.monotonic() - frame.captured_at)
                self._count(source, analyzer, analysis.timings)
                self.stats.frames += 1
                self.stats.faces += len(analysis.faces)
                self.stats.events += len(analysis.opened)
                self.rt.sink.handle(cam, frame, analysis)
            except RakshaError as exc:  # e.g. the store is briefly unreachable
                self.stats.errors += 1
                log.error("camera %s: %s", cam.id, exc)
            except Exception:  # one bad frame (a bug, a full disk) must not end the camera
                self.stats.errors += 1
                log.exception("camera %s: frame %d failed", cam.id, frame.index)
            self._status(online, None if online else getattr(source, "last_error", None))
            self.stats.analyse_cpu_s = time.thread_time() - cpu0
        # Shut down: never leave the camera recorded as online; keep the reason a camera
        # that was down was down for.
        down_for = self.stats.last_error if not self.stats.online else None
        if down_for in (None, "connecting") and not self.stats.online:
            # Down but not yet polled (a short run): the source knows why.
            down_for = getattr(source, "last_error", None)
        self._status(False, down_for if down_for not in (None, "connecting") else "stopped", True)

    def _count(
        self, source: FrameSource, analyzer: FrameAnalyzer, timings: Mapping[str, float]
    ) -> None:
        stats = self.stats
        stats.detect_skipped = analyzer.motion.skipped if analyzer.motion is not None else 0
        for stage, seconds in timings.items():
            stats.stage_s[stage] = stats.stage_s.get(stage, 0.0) + seconds
        stats.dropped = int(getattr(source, "dropped", 0))
        stats.read_cpu_s = float(getattr(source, "read_cpu_s", 0.0))
        pacing = getattr(getattr(source, "inner", None), "stats", None)
        stats.late = int(getattr(pacing, "late", 0))


class Runtime:
    """Runs every enabled camera of a RunConfig until stopped (or until files end)."""

    def __init__(
        self,
        cfg: RunConfig,
        *,
        models_dir: Path | None = None,
        exit_at_end: bool = False,
        env: Mapping[str, str] | None = None,
        on_stored: Callable[[StoredIncident], None] | None = None,
    ) -> None:
        from raksha.city.effective import effective_camera_config
        from raksha.city.load import load_site_secrets
        from raksha.detect.factory import build_detector
        from raksha.expression.factory import build_expression_classifier
        from raksha.geo.routing import Router
        from raksha.incidents.evidence import EvidenceWriter
        from raksha.models import file_sha256

        self.cfg = cfg
        self.analysis_cfg = cfg.analysis()
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.exit_at_end = exit_at_end
        self.stopping = threading.Event()
        self.models_dir = models_dir if models_dir is not None else cfg.models_dir
        self.secrets = load_site_secrets(cfg)

        # Fail fast on everything a camera would otherwise fail on later.
        def make_detector(cam: CameraConfig | None = None) -> FaceDetector:
            det = cfg.detector if cam is None else effective_camera_config(cfg, cam).detector
            return build_detector(det, self.models_dir)

        self._build_detector = make_detector
        make_detector()
        self.classifier: ExpressionClassifier = build_expression_classifier(
            cfg.expression, self.models_dir
        )
        model_file = getattr(self.classifier, "model_file", None)
        model_sha = file_sha256(Path(model_file)) if model_file is not None else ""
        notifiers = build_notifiers(cfg, self.env)
        self.router = Router.from_site(cfg)
        self.store = IncidentStore.open(storage_url(cfg, self.env, self.secrets))
        self.dispatcher = OutboxDispatcher(self.store, notifiers)
        self.sink = IncidentSink(
            self.store,
            self.router,
            EvidenceWriter.from_config(cfg.evidence, self.env),
            cfg.hotspots,
            cfg.incidents,
            cfg.distress,
            model_name=cfg.expression.model,
            model_sha256=model_sha,
            channels=["store", *notifiers],
            on_stored=self._stored,
        )
        self._on_stored = on_stored
        self.workers = [
            CameraWorker(self, cam, play_once=exit_at_end) for cam in cfg.cameras if cam.enabled
        ]
        self._dispatch_thread: threading.Thread | None = None
        self._status_thread: threading.Thread | None = None
        self._stations = {
            cam.id: self.router.route(*self._latlon(cam)).station_id for cam in cfg.cameras
        }
        for cam in cfg.cameras:
            if not cam.enabled:
                self.store.set_camera_status(
                    cam.id,
                    False,
                    None,
                    "disabled",
                    hotspot_id=cam.hotspot,
                    station_id=self._stations[cam.id],
                    display_url=cam.display_url,
                    enabled=False,
                )

    def _latlon(self, cam: CameraConfig) -> tuple[float, float]:
        h = self.cfg.hotspot(cam.hotspot)
        return h.lat, h.lon

    def station_of(self, cam: CameraConfig) -> str:
        return self._stations[cam.id]

    def models_for_camera(self, cam: CameraConfig | None = None) -> Models:
        # The face detector keeps per-size state (and may have the camera's own smallest face
        # size), so each camera gets its own; the expression model (an onnxruntime session) is
        # shared and thread-safe.
        det = self._build_detector(cam)
        return Models(det, self.classifier, self.cfg.expression.model)

    def _stored(self, stored: StoredIncident) -> None:
        self.dispatcher.wake()
        if self._on_stored is not None:
            self._on_stored(stored)

    def start(self) -> None:
        # Frame-sized buffers back to the OS when freed: resident memory stays flat.
        fix_mmap_threshold()
        self._dispatch_thread = threading.Thread(
            target=self.dispatcher.run_forever,
            args=(self.stopping, 1.0),
            name="dispatcher",
            daemon=True,
        )
        self._dispatch_thread.start()
        for w in self.workers:
            w.start()
        self._status_thread = threading.Thread(
            target=self._watch_status, name="camera-status", daemon=True
        )
        self._status_thread.start()

    def _watch_status(self, every_s: float = 0.5) -> None:
        """Record cameras that are down while their reads block in reconnect backoff."""
        while not self.stopping.wait(every_s):
            for w in self.workers:
                w.poll_status()

    def files_done(self) -> bool:
        files = [w for w in self.workers if w.is_file]
        return all(not w.is_alive() for w in files)

    def wait(self, poll_s: float = 0.2, tick: Callable[[], None] | None = None) -> None:
        """Block until stopped; with exit_at_end, until every file camera has ended."""
        while not self.stopping.is_set():
            if self.exit_at_end and self.files_done():
                break
            if not self.exit_at_end and not any(w.is_alive() for w in self.workers):
                break
            if tick is not None:
                tick()
            time.sleep(poll_s)

    def stop(self, drain_s: float = 10.0, store_wait_s: float = 30.0) -> None:
        """Stop cameras, then give pending alerts up to `drain_s` to go out. Anything not
        delivered stays in the outbox for the next run."""
        self.stopping.set()
        for w in self.workers:
            w.stop()
        for w in self.workers:
            if w.ident is not None:  # started (stop() may follow a failed or skipped start)
                w.join(timeout=15)
        if self._dispatch_thread is not None:
            self._dispatch_thread.join(timeout=5)
        if self._status_thread is not None:
            self._status_thread.join(timeout=5)
        # Every incident must be stored before we exit: retry those the store refused.
        deadline = time.monotonic() + store_wait_s
        while self.sink.retry_unsaved(force=True) and time.monotonic() < deadline:
            time.sleep(1.0)
        if self.sink.unsaved:
            log.error(
                "%d incident(s) could not be stored (store unreachable); their evidence is "
                "on disk under %s",
                self.sink.unsaved,
                self.cfg.evidence.dir,
            )
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            stats = self.dispatcher.run_once()
            if stats.attempted == 0:
                break
            if stats.failed:
                time.sleep(0.5)
        self.dispatcher.close()
        self.store.close()
