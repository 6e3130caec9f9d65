"""Record one camera's own faults: the `CameraHealthMonitor`'s changes become camera alert
rows, outbox alerts (`camera.fault`, `camera.recovered`) to the camera's station and the
control room, and audit entries, each change in one transaction.

`frame(image, t)` is called by the camera's pipeline thread for each frame read, `poll()`
by the run's status thread (every half second, even while a reconnecting read blocks the
pipeline). A store that is briefly unreachable is logged and never stops the camera.

The store is the truth for what is open: the reporter first loads the camera's open alerts
(an earlier run's) and seeds the monitor with them, so that an alert whose fault went away
while Raksha was down is cleared. Then, on every frame and poll, it reconciles the monitor's
active kinds with the stored ones: a raise or clear that could not be written (the store was
down) is retried until it is. Raising is idempotent (never a second open row for one camera
and kind), and clearing closes every open row of that camera and kind.
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
    MESSAGES,
    U8,
    CameraHealthMonitor,
    Change,
    FaultKind,
    Raised,
)
from raksha.site.config import CameraHealthConfig
from raksha.store import camera_alerts as rows
from raksha.store._db import db_errors

log = logging.getLogger(__name__)

#: At most one "cannot record" warning per camera this often while the store is down.
WARN_EVERY_S = 30.0
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
        #: The kinds open in the store (None: not yet loaded), the raises not yet written.
        self._stored: set[FaultKind] | None = None
        self._pending: dict[FaultKind, Raised] = {}
        self._sync_lock = threading.Lock()
        self._warned_at: float | None = None

    def frame(self, image: U8, t: float) -> None:
        """A frame read from the camera, `t` its stream time."""
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

    def gave_up(self) -> None:
        """The camera's thread ends because the camera stopped retrying: its video loss and
        reconnect alerts are raised now (nothing polls it afterwards) and stay open."""
        with self._lock:
            changes = self.monitor.give_up(self._clock())
        self._record(changes)

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
        with self._sync_lock:
            for change in changes:
                if isinstance(change, Raised):
                    self._pending[change.kind] = change
                else:
                    self._pending.pop(change.kind, None)
            wrote = self._sync()
        if wrote and self._on_alert is not None:
            self._on_alert()

    def _warn(self, what: str, exc: RakshaError) -> None:
        now = self._clock()
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("camera %s: %s (will retry): %s", self.camera_id, what, exc)

    def _sync(self) -> bool:
        """Bring the store's open alerts in line with the monitor's; True when it wrote."""
        if self._stored is None:
            try:
                found = rows.open_alerts(self.engine, self.camera_id)
            except RakshaError as exc:
                self._warn("cannot read its open camera alerts", exc)
                return False
            known = {k.value for k in FaultKind}
            stored = {FaultKind(a.kind) for a in found if a.kind in known}
            with self._lock:
                self.monitor.seed(stored)
            self._stored = stored
        with self._lock:
            wanted = set(self.monitor.active)
        wrote = False
        for kind in sorted(self._stored - wanted):
            try:
                self._clear(kind)
            except RakshaError as exc:
                self._warn("cannot clear a camera alert", exc)
                continue
            self._stored.discard(kind)
            wrote = True
        for kind in sorted(wanted - self._stored):
            change = self._pending.get(kind) or Raised(kind, 0.0, MESSAGES[kind])
            try:
                self._raise(change)
            except RakshaError as exc:
                self._warn("cannot record a camera alert", exc)
                continue
            self._stored.add(kind)
            wrote = True
        for kind in self._stored:
            self._pending.pop(kind, None)
        return wrote

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
            if rows.raise_alert(c, alert, change.snapshot, self.channels) is None:
                return  # already open (another writer, or an earlier try that committed)
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

    def _clear(self, kind: FaultKind) -> None:
        now = self._wall()
        with db_errors("cannot clear a camera alert"), self.engine.begin() as c:
            cleared = rows.clear(c, self.camera_id, kind.value, now, self.channels)
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
        log.info("camera %s: camera alert %s cleared", self.camera_id, kind.value)
