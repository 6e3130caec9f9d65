"""What a camera host tells the coordinator: its cameras and its process, plain data that
crosses process boundaries (Ray pickles it)."""

from __future__ import annotations

import resource
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CameraReport:
    """One camera on a host, as the coordinator sees it."""

    camera_id: str
    #: Its thread is alive (reading, analysing or reconnecting).
    running: bool
    #: A file camera played to its end, or a camera that could not be opened.
    ended: bool
    online: bool
    frames: int
    faces: int
    events: int
    errors: int
    dropped: int
    p95_latency_ms: float | None
    last_error: str | None
    #: Wall-clock time (epoch seconds) this host started the camera.
    started_at: float


@dataclass(frozen=True, slots=True)
class HostReport:
    host_id: str
    pid: int
    cameras: tuple[CameraReport, ...]
    #: CPU seconds of the host's process so far (all its threads).
    cpu_s: float
    #: Seconds since the host was made.
    up_s: float
    #: Peak resident memory of the process, bytes.
    max_rss_bytes: int
    #: Incidents the store refused that wait in this host's spool or memory.
    incidents_waiting: int
    #: Milliseconds from distress decision to incident stored, the latest incidents.
    stored_ms: tuple[float, ...] = ()
    #: The generation of the last assignment the host applied (older ones are ignored).
    generation: int = 0


def process_cpu_s() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
