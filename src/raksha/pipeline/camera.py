"""One camera's pipeline in `raksha run`: read, analyse, hand events to the incident sink,
and keep the camera's status row current. A thread of its own per camera.

Its dependencies are explicit (built by `raksha.app.build_runtime`): a function that opens
the camera's source (secrets are resolved there, inside the thread, so a slow camera never
delays the others), a function that makes its analyzer, the incident sink, the store for
its status row and the run's stop event. It knows nothing of the runtime that holds it.

A dead, slow or bad camera never stops the others: the pipeline catches its own errors,
records them in the camera's status row, and live streams reconnect with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from raksha.errors import RakshaError
from raksha.incidents.model import CameraHealth
from raksha.pipeline.analyzer import FrameAnalyzer
from raksha.pipeline.camera_faults import CameraFaultReporter
from raksha.pipeline.camera_health import U8
from raksha.pipeline.incident_sink import IncidentSink
from raksha.pipeline.shadow import ShadowSink
from raksha.site.config import CameraConfig
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


class CameraPipeline(threading.Thread):
    """Reads one camera, analyses its frames and hands events to the incident sink."""

    def __init__(
        self,
        camera: CameraConfig,
        *,
        open_source: Callable[[], FrameSource],
        make_analyzer: Callable[[], FrameAnalyzer],
        sink: IncidentSink,
        store: IncidentStore,
        station_id: str,
        stopping: threading.Event,
        secrets: Sequence[str] = (),
        shadow_sink: ShadowSink | None = None,
        faults: CameraFaultReporter | None = None,
    ) -> None:
        super().__init__(name=f"camera-{camera.id}", daemon=True)
        self.camera = camera
        self.stats = CameraStats(camera.id)
        self._open_source = open_source
        #: Makes this camera's analyzer (its own detector, with the camera's settings).
        self.make_analyzer = make_analyzer
        self._sink = sink
        #: Where the shadow's events go (shadow mode on), after the live sink's turn.
        self._shadow_sink = shadow_sink
        #: The camera's own faults (video loss, frozen, covered, moved): camera alerts.
        self._faults = faults
        self._store = store
        self._station_id = station_id
        self._stopping = stopping
        #: Secret strings of this camera, scrubbed from the errors its status row records.
        self._secrets = list(secrets)
        self._source: FrameSource | None = None
        self._last_status = 0.0
        #: (monotonic time, frames analysed) at the last health report.
        self._health_mark = (time.monotonic(), 0)
        #: The highest face distress score since the last health report.
        self._peak_distress: float | None = None
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
            self._store.set_camera_status(
                self.camera.id,
                online,
                datetime.now(UTC) if online else None,
                error,
                hotspot_id=self.camera.hotspot,
                station_id=self._station_id,
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
        peak, self._peak_distress = self._peak_distress, None
        return CameraHealth(
            analysed_fps=round((frames - frames_then) / (now - then), 2),
            frames_dropped=self.stats.dropped,
            p95_latency_ms=self.stats.p95_latency_ms(),
            max_distress=None if peak is None else round(peak, 4),
        )

    def poll_status(self) -> None:
        """Record a live camera that is down while its read blocks in reconnect backoff
        (the pipeline itself only reports between frames)."""
        src = self._source
        if src is None or self.stats.ended or self._stopping.is_set():
            return  # (on shutdown the pipeline records the final state itself)
        health = src.health()
        if self._faults is not None and not self.is_file:
            self._faults.poll(online=health.online, failures=health.failures)
        if health.online:
            return
        if health.last_error and health.last_error != self.stats.last_error:
            self.stats.errors += 1
            self._status(False, health.last_error)

    def stop(self) -> None:
        src = self._source
        if src is not None:
            src.close()

    def run(self) -> None:
        cam = self.camera
        try:
            self._source = self._open_source()
            analyzer = self.make_analyzer()
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
                self._sink.finish(cam, analyzer.finish())
            except RakshaError as exc:
                log.error("camera %s: cannot close its events: %s", cam.id, exc)
            if self._shadow_sink is not None:
                self._shadow_sink.finish(cam, analyzer.finish_shadow())
            self._source.close()

    def _loop(self, source: FrameSource, analyzer: FrameAnalyzer) -> None:
        cam = self.camera
        cpu0 = time.thread_time()
        while not self._stopping.is_set():
            try:
                frame = source.read()
            except RakshaError as exc:
                self.stats.errors += 1
                log.error("camera %s: %s", cam.id, exc)
                self._gave_up()
                self._status(False, str(exc), force=True)
                return
            health = source.health()
            if frame is None:
                if self._stopping.is_set():
                    break
                self._gave_up()
                self._status(False, "stream ended" if self.is_file else "stream lost", force=True)
                return
            # Camera health sees every frame read, before analysis: an analyser bug or a
            # store hiccup is no "no video".
            self._health_frame(frame.image, frame.t)
            try:
                analysis = analyzer.analyze(frame)
                self.stats.frame_latency_s.append(time.monotonic() - frame.captured_at)
                self._count(source, analyzer, analysis.timings)
                self.stats.frames += 1
                self.stats.faces += len(analysis.faces)
                for face in analysis.faces:
                    score = float(face.distress.score)
                    if self._peak_distress is None or score > self._peak_distress:
                        self._peak_distress = score
                self.stats.events += len(analysis.opened)
                self._sink.handle(cam, frame, analysis)
                if self._shadow_sink is not None and analyzer.shadow_frame is not None:
                    self._shadow_sink.handle(cam, analyzer.shadow_frame)
            except RakshaError as exc:  # e.g. the store is briefly unreachable
                self.stats.errors += 1
                log.error("camera %s: %s", cam.id, exc)
            except Exception:  # one bad frame (a bug, a full disk) must not end the camera
                self.stats.errors += 1
                log.exception("camera %s: frame %d failed", cam.id, frame.index)
            self._status(health.online, None if health.online else health.last_error)
            self.stats.analyse_cpu_s = time.thread_time() - cpu0
        # Shut down: never leave the camera recorded as online; keep the reason a camera
        # that was down was down for.
        down_for = self.stats.last_error if not self.stats.online else None
        if down_for in (None, "connecting") and not self.stats.online:
            # Down but not yet polled (a short run): the source knows why.
            down_for = source.health().last_error
        self._status(False, down_for if down_for not in (None, "connecting") else "stopped", True)

    def _health_frame(self, image: U8, t: float) -> None:
        if self._faults is None:
            return
        try:
            self._faults.frame(image, t)
        except Exception:  # a health-check bug must not stop the camera
            log.exception("camera %s: camera health check failed", self.camera.id)

    def _gave_up(self) -> None:
        """A live camera's thread ends without being stopped: nothing polls it any more, so
        its video loss (and reconnect) alerts are raised now and stay open."""
        if self._faults is None or self.is_file or self._stopping.is_set():
            return
        try:
            self._faults.gave_up()
        except Exception:
            log.exception("camera %s: cannot raise its camera alerts", self.camera.id)

    def _count(
        self, source: FrameSource, analyzer: FrameAnalyzer, timings: Mapping[str, float]
    ) -> None:
        stats = self.stats
        stats.detect_skipped = analyzer.motion.skipped if analyzer.motion is not None else 0
        for stage, seconds in timings.items():
            stats.stage_s[stage] = stats.stage_s.get(stage, 0.0) + seconds
        health = source.health()
        stats.dropped = health.dropped
        stats.read_cpu_s = health.read_cpu_s
        stats.late = health.late
