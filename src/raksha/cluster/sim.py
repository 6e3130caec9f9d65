"""A simulated camera host for the scheduler-only city simulation (`benchmarks/city.py
--scheduler-only`): it takes assignments and reports its cameras running at a nominal frame
rate, decoding nothing, so placement and failover of 1,000 cameras can be measured on one
small machine with the real coordinator and real Ray actors."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

from raksha.cluster.reports import CameraReport, HostReport, max_rss_bytes, process_cpu_s


class SimulatedHost:
    def __init__(self, host_id: str, fps: float = 5.0) -> None:
        self.host_id = host_id
        self.fps = fps
        self._made = time.monotonic()
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._generation = 0

    def assign(self, camera_ids: Sequence[str], generation: int = 0) -> list[str]:
        now = time.time()
        with self._lock:
            if generation >= self._generation:
                self._generation = generation
                self._started = {c: self._started.get(c, now) for c in camera_ids}
            return sorted(self._started)

    def report(self) -> HostReport:
        now = time.time()
        with self._lock:
            started = dict(self._started)
        cameras = tuple(
            CameraReport(
                camera_id=c,
                running=True,
                ended=False,
                online=True,
                # At least one frame once started, as a real camera's first analysed frame.
                frames=1 + int((now - t) * self.fps),
                faces=0,
                events=0,
                errors=0,
                dropped=0,
                p95_latency_ms=None,
                last_error=None,
                started_at=t,
            )
            for c, t in sorted(started.items())
        )
        return HostReport(
            host_id=self.host_id,
            pid=os.getpid(),
            cameras=cameras,
            cpu_s=process_cpu_s(),
            up_s=time.monotonic() - self._made,
            max_rss_bytes=max_rss_bytes(),
            incidents_waiting=0,
            generation=self._generation,
        )

    def stop(self) -> HostReport:
        return self.report()
