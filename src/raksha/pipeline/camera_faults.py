"""Record one camera's own faults: the `CameraHealthMonitor`'s changes become camera alert
rows, outbox alerts (`camera.fault`, `camera.recovered`) to the camera's station and the
control room, and audit entries, each change in one transaction.

`frame(image, t)` is called by the camera's pipeline thread for each analysed frame, `poll()`
by the run's status thread (every half second, even while a reconnecting read blocks the
pipeline). A store that is briefly unreachable is logged and never stops the camera.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from raksha.audit.log import AuditLog
from raksha.errors import RakshaError
from raksha.incidents.model import new_id, utcnow
from raksha.pipeline.camera_health import (
    U8,
    CameraHealthMonitor,
    Change,
    Cleared,
    FaultKind,
    Raised,
)
from raksha.site.config import CameraHealthConfig
from raksha.store import camera_alerts as rows
from raksha.store._db import db_errors

log = logging.getLogger(__name__)

#: How often an acknowledged "moved" alert is looked for (its scene is then learnt again).
ACK_CHECK_S = 10.0


class CameraFaultReporter:
    def __init__(
        self,
        cfg: CameraHealthConfig,
        engine: Engine,
        *,
        camera_id: str,
        station_id: str,
        channels: Sequence[str],
        on_alert: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.monitor = CameraHealthMonitor(cfg)
        self.engine = engine
        self.audit = AuditLog(engine)
        self.camera_id = camera_id
        self.station_id = station_id
        self.channels = tuple(channels)
        self._on_alert = on_alert
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._ack_checked = 0.0
        self._relearnt_for: str | None = None

    def frame(self, image: U8, t: float) -> None:
        """An analysed frame, `t` its stream time."""
        with self._lock:
            self.monitor.seen(self._clock())
            changes = self.monitor.observe(image, t)
        self._record(changes)

    def poll(self, *, online: bool = True, failures: int = 0) -> None:
        now = self._clock()
        with self._lock:
            changes = self.monitor.tick(now, online=online, failures=failures)
        self._record(changes)
        if FaultKind.MOVED in self.monitor.active and now - self._ack_checked >= ACK_CHECK_S:
            self._ack_checked = now
            self._relearn_if_acknowledged()

    def _relearn_if_acknowledged(self) -> None:
        try:
            acked = rows.acknowledged_open(self.engine, self.camera_id, FaultKind.MOVED.value)
        except RakshaError as exc:
            log.warning("camera %s: cannot read its alerts: %s", self.camera_id, exc)
            return
        if acked is not None and acked != self._relearnt_for:
            self._relearnt_for = acked
            with self._lock:
                self.monitor.relearn()
            log.info("camera %s: scene reference relearnt (alert acknowledged)", self.camera_id)

    def _record(self, changes: list[Change]) -> None:
        for change in changes:
            try:
                if isinstance(change, Raised):
                    self._raise(change)
                elif isinstance(change, Cleared):
                    self._clear(change)
            except RakshaError as exc:
                log.warning("camera %s: cannot record a camera alert: %s", self.camera_id, exc)
        if changes and self._on_alert is not None:
            self._on_alert()

    def _raise(self, change: Raised) -> None:
        now = self._wall()
        alert = rows.CameraAlert(
            id=new_id(),
            camera_id=self.camera_id,
            station_id=self.station_id,
            kind=change.kind.value,
            since=now - timedelta(seconds=change.held_s),
            raised_at=now,
            message=change.message,
        )
        with db_errors("cannot store a camera alert"), self.engine.begin() as c:
            rows.raise_alert(c, alert, change.snapshot, self.channels)
            AuditLog.append_in(
                c,
                "system",
                rows.FAULT_EVENT,
                target=f"camera:{self.camera_id}",
                station_id=self.station_id,
                details={"kind": alert.kind, "camera_alert": alert.id},
                at=now,
            )
        log.warning("camera %s: camera alert %s: %s", self.camera_id, alert.kind, alert.message)

    def _clear(self, change: Cleared) -> None:
        now = self._wall()
        with db_errors("cannot clear a camera alert"), self.engine.begin() as c:
            cleared = rows.clear(c, self.camera_id, change.kind.value, now, self.channels)
            if cleared is None:
                return
            AuditLog.append_in(
                c,
                "system",
                rows.RECOVERED_EVENT,
                target=f"camera:{self.camera_id}",
                station_id=self.station_id,
                details={"kind": cleared.kind, "camera_alert": cleared.id},
                at=now,
            )
        log.info("camera %s: camera alert %s cleared", self.camera_id, change.kind.value)
