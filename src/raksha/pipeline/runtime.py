"""The multi-camera runtime behind `raksha run`: camera pipelines (one thread each), one
alert dispatcher thread, one camera-status thread, one store; started, waited on and stopped
here. `raksha.app.build_runtime` builds it from a config.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from raksha.alerts.dispatcher import OutboxDispatcher
from raksha.errors import RakshaError
from raksha.pipeline.camera import CameraPipeline
from raksha.pipeline.incident_sink import IncidentSink
from raksha.pipeline.memory import fix_mmap_threshold
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)


class Background(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...


class Runtime:
    """Runs its camera pipelines until stopped (with `exit_at_end`, until files end)."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        dispatcher: OutboxDispatcher,
        sink: IncidentSink | None,
        pipelines: Sequence[CameraPipeline],
        stopping: threading.Event,
        exit_at_end: bool = False,
        evidence_dir: Path = Path("evidence"),
        background: Sequence[Background] = (),
        dispatch_every_s: float = 1.0,
    ) -> None:
        #: Started with the cameras, stopped before the store closes (the escalation timer,
        #: the MQTT intake).
        self.background = list(background)
        self.store = store
        self.dispatcher = dispatcher
        self.sink = sink
        self.pipelines = list(pipelines)
        self.stopping = stopping
        self.exit_at_end = exit_at_end
        self.evidence_dir = evidence_dir
        #: Seconds between outbox rounds when nothing wakes the dispatcher (a cluster's hosts
        #: cannot wake it: they store incidents in another process).
        self.dispatch_every_s = dispatch_every_s
        #: When set, `wait` ends when it says so (a cluster run: its cameras are elsewhere).
        self.done: Callable[[], bool] | None = None
        self._dispatch_thread: threading.Thread | None = None
        self._status_thread: threading.Thread | None = None

    def start(self) -> None:
        # Frame-sized buffers back to the OS when freed: resident memory stays flat.
        fix_mmap_threshold()
        # Incidents an earlier run left in the spool go first, in order. (No sink: a
        # cluster's coordinator, whose hosts store their own.)
        if self.sink is not None and self.sink.load_spooled():
            self.sink.retry_unsaved(force=True)
        self._dispatch_thread = threading.Thread(
            target=self.dispatcher.run_forever,
            args=(self.stopping, self.dispatch_every_s),
            name="dispatcher",
            daemon=True,
        )
        self._dispatch_thread.start()
        for b in self.background:
            b.start()
        for w in self.pipelines:
            w.start()
        self._status_thread = threading.Thread(
            target=self._watch_status, name="camera-status", daemon=True
        )
        self._status_thread.start()

    def _watch_status(self, every_s: float = 0.5) -> None:
        """Record cameras that are down while their reads block in reconnect backoff."""
        while not self.stopping.wait(every_s):
            for w in self.pipelines:
                w.poll_status()

    def files_done(self) -> bool:
        files = [w for w in self.pipelines if w.is_file]
        return all(not w.is_alive() for w in files)

    def wait(self, poll_s: float = 0.2, tick: Callable[[], None] | None = None) -> None:
        """Block until stopped; with exit_at_end, until every file camera has ended."""
        while not self.stopping.is_set():
            if self._finished():
                break
            if tick is not None:
                tick()
            time.sleep(poll_s)

    def _finished(self) -> bool:
        if self.done is not None:
            return self.done()
        if self.exit_at_end:
            return self.files_done()
        return not any(w.is_alive() for w in self.pipelines)

    def stop(self, drain_s: float = 10.0, store_wait_s: float = 30.0) -> None:
        """Stop cameras, then give pending alerts up to `drain_s` to go out. Anything not
        delivered stays in the outbox for the next run."""
        self.stopping.set()
        for w in self.pipelines:
            w.stop()
        for w in self.pipelines:
            if w.ident is not None:  # started (stop() may follow a failed or skipped start)
                w.join(timeout=15)
        if self._dispatch_thread is not None:
            self._dispatch_thread.join(timeout=5)
        if self._status_thread is not None:
            self._status_thread.join(timeout=5)
        for b in self.background:
            try:
                b.stop()
            except Exception:  # one service's failure must not cost the others' shutdown
                log.exception("%s did not stop cleanly", type(b).__name__)
        if self.sink is not None:
            flush_incidents(self.sink, self.evidence_dir, store_wait_s)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            try:
                stats = self.dispatcher.run_once()
            except RakshaError as exc:  # the store is down: the outbox keeps them for later
                log.warning("alerts not drained at shutdown: %s", exc)
                break
            if stats.attempted == 0:
                break
            if stats.failed:
                time.sleep(0.5)
        self.dispatcher.close()
        if self.sink is not None and self.sink.spool is not None:
            self.sink.spool.close()
        self.store.close()


def flush_incidents(sink: IncidentSink, evidence_dir: Path, store_wait_s: float = 30.0) -> None:
    """At shutdown, once the cameras have stopped: store every incident the store refused
    (retrying for up to `store_wait_s`), finish the last event clips, and say what is left
    and where it waits."""
    deadline = time.monotonic() + store_wait_s
    while sink.retry_unsaved(force=True) and time.monotonic() < deadline:
        time.sleep(1.0)
    sink.close()  # the last event clips, onto stored incidents
    waiting, in_memory = sink.unsaved, sink.unsaved_in_memory_only
    if waiting - in_memory:
        log.error(
            "%d incident(s) not stored yet (store unreachable); they wait in the spool %s "
            "and are stored on the next start",
            waiting - in_memory,
            sink.spool.path if sink.spool is not None else "-",
        )
    if in_memory:
        log.critical(
            "%d incident(s) could not be stored nor spooled and are lost with this process; "
            "their evidence is on disk under %s",
            in_memory,
            evidence_dir,
        )
