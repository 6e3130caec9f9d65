"""A camera host: the cameras one cluster node runs, started and stopped as the coordinator
assigns them, on the same parts as `raksha run` (`raksha.app.camera_parts`): one expression
model (batched when configured), one incident sink with its own spool, one store connection.

Plain Python (no ray): the Ray actor in `ray_hosts` wraps it, and tests drive it directly.
Its methods are safe to call from several threads at once (a Ray actor with concurrency).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from raksha.app import camera_parts, preflight
from raksha.cluster.reports import CameraReport, HostReport, max_rss_bytes, process_cpu_s
from raksha.config import RunConfig
from raksha.errors import ConfigError
from raksha.pipeline.camera import CameraPipeline
from raksha.pipeline.memory import fix_mmap_threshold
from raksha.pipeline.runtime import flush_incidents
from raksha.services.deployment import configure_store
from raksha.services.retention_timer import spool_path
from raksha.site.load import load_site_secrets, storage_url
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)

#: Seconds a stopped camera's thread is given to end before the host goes on without it.
JOIN_S = 15.0


def host_spool(cfg: RunConfig, host_id: str) -> Path:
    """Each host's own incident spool beside the configured one: a host started again on the
    same node stores what its predecessor left."""
    base = spool_path(cfg)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in host_id)
    return base.with_name(f"{base.stem}-{safe}{base.suffix}")


class CameraHost:
    """Runs the cameras it is assigned until stopped."""

    def __init__(
        self,
        cfg: RunConfig,
        *,
        host_id: str,
        models_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        exit_at_end: bool = False,
    ) -> None:
        env = os.environ if env is None else env
        models_dir = models_dir if models_dir is not None else cfg.models_dir
        problems = preflight(cfg, models_dir=models_dir, env=env)
        if problems:
            raise ConfigError(f"camera host {host_id}: " + "; ".join(problems))
        self.host_id = host_id
        self.cfg = cfg
        self.exit_at_end = exit_at_end
        self._made = time.monotonic()
        fix_mmap_threshold()
        store = IncidentStore.open(storage_url(cfg, env, load_site_secrets(cfg)))
        self.store = configure_store(store, cfg)
        self.parts = camera_parts(
            cfg, self.store, models_dir=models_dir, env=env, spool_path=host_spool(cfg, host_id)
        )
        # What an earlier host on this node left unstored goes first, in order: loaded now,
        # stored by a thread of its own (a long backlog must not keep the host from being
        # ready), and by the cameras' own retries.
        if self.parts.sink.load_spooled():
            threading.Thread(
                target=self.parts.sink.retry_unsaved,
                kwargs={"force": True},
                name="host-spool",
                daemon=True,
            ).start()
        if self.parts.batched is not None:
            self.parts.batched.start()
        self._cameras = {c.id: c for c in cfg.cameras if c.enabled}
        self._lock = threading.Lock()
        self._running: dict[str, tuple[CameraPipeline, threading.Event, float]] = {}
        #: Pipelines an assignment stopped; `stop` waits for them too.
        self._leaving: list[CameraPipeline] = []
        #: The newest assignment applied: calls may arrive out of order (a Ray actor serves
        #: several at once), and an older one must not undo a newer one.
        self._generation = 0
        self._stopped = threading.Event()
        self._status = threading.Thread(target=self._watch_status, name="host-status", daemon=True)
        self._status.start()

    # ---- what the coordinator calls -------------------------------------------------------

    def assign(self, camera_ids: Sequence[str], generation: int = 0) -> list[str]:
        """Run exactly `camera_ids`: start the new ones, stop the others. Unknown or disabled
        ids are refused (ConfigError) before anything changes; an assignment older than one
        already applied (`generation`) changes nothing. Returns what runs now."""
        wanted = list(dict.fromkeys(camera_ids))
        unknown = [c for c in wanted if c not in self._cameras]
        if unknown:
            raise ConfigError(
                f"camera host {self.host_id}: no enabled camera {', '.join(sorted(unknown))}"
            )
        with self._lock:
            if self._stopped.is_set():
                raise ConfigError(f"camera host {self.host_id} is stopped")
            if generation < self._generation:
                return sorted(self._running)
            self._generation = generation
            going = [c for c in self._running if c not in wanted]
            stopped = [self._running.pop(c) for c in going]
            self._leaving.extend(p for p, _, _ in stopped)
            # The cameras that go are told to stop first, whatever happens to the new ones
            # (a camera that cannot start must not leave the others running here too).
            for pipeline, stopping, _ in stopped:
                stopping.set()
                pipeline.stop()
            for cam_id in wanted:
                if cam_id in self._running:
                    continue
                stopping = threading.Event()
                pipeline = self.parts.pipeline(
                    self._cameras[cam_id], stopping, play_once=self.exit_at_end
                )
                pipeline.start()
                self._running[cam_id] = (pipeline, stopping, time.time())
                log.info("camera host %s: camera %s started", self.host_id, cam_id)
            running = sorted(self._running)
        for pipeline, _, _ in stopped:
            pipeline.join(timeout=JOIN_S)
            log.info("camera host %s: camera %s stopped", self.host_id, pipeline.camera.id)
        with self._lock:
            self._leaving = [p for p in self._leaving if p.is_alive()]
        return running

    def report(self) -> HostReport:
        with self._lock:
            running = list(self._running.items())
        cameras = []
        for cam_id, (pipeline, _, started) in sorted(running):
            s = pipeline.stats
            cameras.append(
                CameraReport(
                    camera_id=cam_id,
                    running=pipeline.is_alive(),
                    ended=s.ended and not pipeline.is_alive(),
                    online=s.online,
                    frames=s.frames,
                    faces=s.faces,
                    events=s.events,
                    errors=s.errors,
                    dropped=s.dropped,
                    p95_latency_ms=s.p95_latency_ms(),
                    last_error=s.last_error,
                    started_at=started,
                )
            )
        return HostReport(
            host_id=self.host_id,
            pid=os.getpid(),
            cameras=tuple(cameras),
            cpu_s=process_cpu_s(),
            up_s=time.monotonic() - self._made,
            max_rss_bytes=max_rss_bytes(),
            incidents_waiting=self.parts.sink.unsaved,
            stored_ms=tuple(
                round(1000 * (stored - decided), 1)
                for _, _, decided, stored in list(self.parts.sink.latencies)[-256:]
            ),
            generation=self._generation,
        )

    def stop(self, store_wait_s: float = 30.0) -> HostReport:
        """Stop every camera, store what waits, close; the last report. Safe to call twice."""
        with self._lock:
            if self._stopped.is_set():
                return self.report()
            self._stopped.set()
        last = self.report()
        with self._lock:
            running = list(self._running.values())
            leaving = list(self._leaving)
        for pipeline, stopping, _ in running:
            stopping.set()
            pipeline.stop()
        for pipeline in leaving:  # (told to stop when they left; said again, harmlessly)
            pipeline.stop()
        for pipeline in [p for p, _, _ in running] + leaving:
            pipeline.join(timeout=JOIN_S)
        self._status.join(timeout=5)
        if self.parts.batched is not None:
            self.parts.batched.stop()
        flush_incidents(self.parts.sink, self.cfg.evidence.dir, store_wait_s)
        self.parts.spool.close()
        self.store.close()
        return last

    # ---- internals ------------------------------------------------------------------------

    def _watch_status(self, every_s: float = 0.5) -> None:
        """Record cameras that are down while their reads block in reconnect backoff."""
        while not self._stopped.wait(every_s):
            with self._lock:
                pipelines = [p for p, _, _ in self._running.values()]
            for p in pipelines:
                try:
                    p.poll_status()
                except Exception:  # one camera's status must not end the others'
                    log.exception("camera %s: status poll failed", p.camera.id)
