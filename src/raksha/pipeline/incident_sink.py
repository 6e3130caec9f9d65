"""Turns distress events into stored incidents: route, evidence, then the store.

Called from camera workers (one thread per camera); all state here is guarded by a lock.
Persist first: the store decides in one transaction whether the event continues an open
incident (`IncidentStore.open_or_extend`, the rule in `raksha.incidents.merge`) or opens a
new one with its evidence hashes, its alert and one delivery row per alert channel; the
merge therefore survives a restart and holds across processes. Delivery happens later from
the outbox. The only state kept here is which incident each open track's event went into
(to record the event's end) and the incidents waiting for an unreachable store.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from raksha.config import IncidentPolicy
from raksha.distress.config import DistressConfig
from raksha.domain import DistressEvent, Frame, FrameAnalysis
from raksha.errors import RakshaError
from raksha.geo.routing import Route, Router, UnitRoute
from raksha.incidents.evidence import EvidenceStore, mark_waiting, unmark_waiting
from raksha.incidents.merge import MergeRule
from raksha.incidents.model import AlertPayload, EvidenceFile, EvidenceKind, NewIncident
from raksha.pipeline.spool import Spool
from raksha.site.config import CameraConfig, HotspotConfig
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Unsaved:
    """An incident whose evidence is written but which the store has not accepted yet."""

    new: NewIncident
    files: list[EvidenceFile]
    payload: AlertPayload
    camera_id: str
    track_id: int
    face: tuple[float, float, float]
    captured_at: float
    decided: float
    #: Its row in the spool once written there.
    spool_id: int | None = None
    #: Decided by an earlier run (replayed from the spool after a restart): its track id
    #: means nothing to this run's tracker.
    earlier_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "new": self.new.to_json(),
            "files": [
                {
                    "kind": f.kind.value,
                    "path": f.path,
                    "sha256": f.sha256,
                    "bytes": f.bytes,
                    "content_sha256": f.content_sha256,
                }
                for f in self.files
            ],
            "camera_id": self.camera_id,
            "track_id": self.track_id,
            "face": list(self.face),
        }

    @staticmethod
    def from_json(d: dict[str, Any], spool_id: int) -> _Unsaved:
        new = NewIncident.from_json(d["new"])
        files = [
            EvidenceFile(
                EvidenceKind(f["kind"]),
                str(f["path"]),
                str(f["sha256"]),
                int(f["bytes"]),
                f.get("content_sha256"),
            )
            for f in d["files"]
        ]
        cx, cy, w = (float(v) for v in d["face"])
        return _Unsaved(
            new,
            files,
            AlertPayload.of(new),
            str(d["camera_id"]),
            int(d["track_id"]),
            (cx, cy, w),
            float("nan"),
            float("nan"),
            spool_id=spool_id,
            earlier_run=True,
        )


#: Seconds between attempts to store incidents kept in memory while the store is down.
RETRY_EVERY_S = 2.0


@dataclass(frozen=True, slots=True)
class StoredIncident:
    incident_id: str
    camera_id: str
    station_id: str
    merged: bool


class IncidentSink:
    def __init__(
        self,
        store: IncidentStore,
        router: Router,
        evidence: EvidenceStore,
        hotspots: Sequence[HotspotConfig],
        policy: IncidentPolicy,
        distress: DistressConfig,
        model_name: str,
        model_sha256: str,
        channels: Sequence[str],
        *,
        on_stored: Callable[[StoredIncident], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        spool: Spool | None = None,
        live_units: Callable[[float, float], tuple[UnitRoute, ...]] | None = None,
    ) -> None:
        self.store = store
        #: The nearest available patrol units now (live positions); None: the configured
        #: bases in the route.
        self.live_units = live_units
        self.router = router
        self.evidence = evidence
        self.hotspots = {h.id: h for h in hotspots}
        self.policy = policy
        self.thresholds = distress.model_dump(mode="json")
        self.model_name = model_name
        self.model_sha256 = model_sha256
        self.channels = list(channels)
        self.on_stored = on_stored
        self._clock = clock
        self._lock = threading.Lock()
        self.merge_rule = MergeRule(policy.merge_window_s, policy.merge_distance_faces)
        #: Tells this process's tracks apart from another's (and from before a restart) in
        #: person keys: the same track id elsewhere is not the same person.
        self._run = uuid.uuid4().hex[:8]
        self._routes: dict[str, Route] = {}
        #: (camera_id, track_id) -> incident id of the event now open.
        self._open: dict[tuple[str, int], str] = {}
        self._unsaved: list[_Unsaved] = []
        #: One replay of the backlog at a time (camera threads all call `retry_unsaved`).
        self._retrying = threading.Lock()
        #: Where refused incidents are kept durably (None: in memory only, lost on a crash).
        self.spool = spool
        self._last_retry = float("-inf")
        #: (camera_id, frame capture time, event decided time, stored time) for benchmarks.
        self.latencies: deque[tuple[str, float, float, float]] = deque(maxlen=4096)

    def route_for(self, camera: CameraConfig) -> Route:
        with self._lock:
            route = self._routes.get(camera.id)
            if route is None:
                h = self.hotspots[camera.hotspot]
                route = self.router.route(h.lat, h.lon)
                self._routes[camera.id] = route
            return route

    def handle(self, camera: CameraConfig, frame: Frame, analysis: FrameAnalysis) -> None:
        """Store incidents for the events opened on this frame; extend them as they go on."""
        decided = self._clock()
        if self._unsaved:
            self.retry_unsaved()
        for event in analysis.opened:
            self._opened(camera, frame, analysis, event, decided)
        for event in analysis.closed:
            self._closed(camera, event)

    def finish(self, camera: CameraConfig, events: Sequence[DistressEvent]) -> None:
        for event in events:
            self._closed(camera, event)

    def close(self, timeout_s: float = 30.0) -> None:
        """Finish work still in flight at shutdown (nothing here; the clip sink encodes its
        last clips)."""

    def person_key(self, camera_id: str, track_id: int) -> str:
        """The key this run gives the person of a track at a camera (`incidents.person_key`)."""
        return f"{camera_id}:{self._run}:{track_id}"

    def open_incident_of(self, camera_id: str, track_id: int) -> str | None:
        """The incident of the track's event open now, if the live side raised one."""
        with self._lock:
            return self._open.get((camera_id, track_id))

    # ---- internals ------------------------------------------------------------------------

    def _opened(
        self,
        camera: CameraConfig,
        frame: Frame,
        analysis: FrameAnalysis,
        event: DistressEvent,
        decided: float,
    ) -> None:
        subject = next((f for f in analysis.faces if f.track_id == event.track_id), None)
        if subject is None:  # the scorer only opens events for faces on this frame
            log.warning("camera %s: event for track %s without its face", camera.id, event.track_id)
            return
        x1, y1, x2, y2 = subject.box
        face = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1)
        others = [f.box for f in analysis.faces if f is not subject]
        seen_at = datetime.now(UTC)
        route = self.route_for(camera)
        hotspot = self.hotspots[camera.hotspot]
        if self.live_units is not None:
            try:
                route = replace(route, patrol_units=self.live_units(hotspot.lat, hotspot.lon))
            except RakshaError as exc:  # the configured bases stand in
                log.warning("camera %s: live patrol units unavailable: %s", camera.id, exc)
        new = NewIncident(
            camera_id=camera.id,
            hotspot_id=camera.hotspot,
            station_id=route.station_id,
            peak_distress=float(min(1.0, max(0.0, event.peak_distress))),
            expression_at_peak=dict(event.expression_at_peak),
            model_name=self.model_name,
            model_sha256=self.model_sha256,
            thresholds=self.thresholds,
            route=route,
            track_id=event.track_id,
            source_id=camera.id,
            event_start_s=event.start_s,
            person_key=self.person_key(camera.id, event.track_id),
            opened_at=seen_at,
            peak_absolute=event.peak_absolute,
            peak_relative=event.peak_relative,
            baseline_at_peak=event.baseline_at_peak,
            lat=hotspot.lat,
            lon=hotspot.lon,
            place=hotspot.name or hotspot.id,
        )
        files = self._capture(new.id, camera, frame, subject.box, others)
        payload = AlertPayload.of(new)
        self._persist(
            _Unsaved(
                new, files, payload, camera.id, event.track_id, face, frame.captured_at, decided
            )
        )

    def _persist(self, item: _Unsaved) -> bool:
        """Store one new event's incident; while older ones wait (an outage), it joins the
        end of the queue, so events are stored in the order they happened."""
        with self._lock:
            behind = bool(self._unsaved)
        if behind:
            self._keep(item)
            self.retry_unsaved(force=True)
            return False
        return self._store(item)

    def _store(self, item: _Unsaved) -> bool:
        """Store one incident; when the store is unreachable keep it (spool and memory) and
        retry on later frames, so an outage of the database loses no incident (its evidence
        is already on disk)."""
        try:
            result = self.store.open_or_extend(
                item.new,
                item.files,
                item.payload.to_json(),
                self.channels,
                rule=self.merge_rule,
                face=item.face,
            )
        except RakshaError as exc:
            self._keep(item)
            log.error(
                "camera %s: incident %s not stored yet (%s); will retry",
                item.camera_id,
                item.new.id,
                exc,
            )
            return False
        stored = self._clock()
        if not result.evidence_used and item.files:
            try:
                self.evidence.discard(item.files)
            except OSError as exc:
                log.warning("camera %s: cannot remove unused evidence: %s", item.camera_id, exc)
        if item.spool_id is not None and self.spool is not None:
            try:
                self.spool.done(item.spool_id)  # (a replay of it would store nothing twice)
            except RakshaError as exc:
                log.error("incident spool: %s", exc)
            unmark_waiting([f.path for f in item.files])
        with self._lock:
            if item in self._unsaved:
                self._unsaved.remove(item)
            if not item.earlier_run:
                self._open[(item.camera_id, item.track_id)] = result.incident_id
            if not result.merged:
                self.latencies.append((item.camera_id, item.captured_at, item.decided, stored))
        station = item.new.station_id
        if result.merged:
            log.info("camera %s: event merged into incident %s", item.camera_id, result.incident_id)
        else:
            log.info(
                "camera %s: incident %s for station %s", item.camera_id, result.incident_id, station
            )
        self._notify(StoredIncident(result.incident_id, item.camera_id, station, result.merged))
        return True

    def _keep(self, item: _Unsaved) -> None:
        """Keep a refused incident until the store takes it: in the spool on disk when there
        is one (it survives a crash), and in order in memory."""
        if self.spool is not None and item.spool_id is None:
            try:
                item.spool_id = self.spool.put(item.new.id, item.to_json())
                mark_waiting([f.path for f in item.files], item.new.id)
            except RakshaError as exc:
                log.critical(
                    "camera %s: incident %s kept in memory only: %s",
                    item.camera_id,
                    item.new.id,
                    exc,
                )
        with self._lock:
            if item not in self._unsaved:
                self._unsaved.append(item)
                self._last_retry = self._clock()

    def load_spooled(self) -> int:
        """Take up the incidents an earlier run left in the spool (it crashed or stopped
        while the store was down); they are stored, in order, by the next retry."""
        if self.spool is None:
            return 0
        items = []
        for row_id, doc in self.spool.pending():
            try:
                items.append(_Unsaved.from_json(doc, row_id))
            except (KeyError, TypeError, ValueError) as exc:
                # Written by another version or damaged: kept aside, never a failed start.
                self.spool.set_aside(row_id)
                log.critical(
                    "incident spool row %d cannot be read (%s: %s); set aside in %s",
                    row_id,
                    type(exc).__name__,
                    exc,
                    self.spool.path,
                )
        with self._lock:
            known = {u.spool_id for u in self._unsaved}
            fresh = [i for i in items if i.spool_id not in known]
            self._unsaved[:0] = fresh
            self._last_retry = float("-inf")
        if fresh:
            log.warning("%d incident(s) from an earlier run waiting in the spool", len(fresh))
        return len(fresh)

    @property
    def unsaved_in_memory_only(self) -> int:
        """Waiting incidents the spool does not hold (it was full or failed)."""
        with self._lock:
            return sum(1 for u in self._unsaved if u.spool_id is None)

    @property
    def unsaved(self) -> int:
        """Incidents waiting for the store to come back."""
        with self._lock:
            return len(self._unsaved)

    def retry_unsaved(self, *, force: bool = False) -> int:
        """Try again to store incidents kept waiting, oldest first; returns how many are still
        waiting. One replay at a time: another thread's call returns at once."""
        if not self._retrying.acquire(blocking=False):
            return self.unsaved
        try:
            now = self._clock()
            with self._lock:
                if not self._unsaved or (not force and now - self._last_retry < RETRY_EVERY_S):
                    return len(self._unsaved)
                self._last_retry = now
                waiting = list(self._unsaved)
            for item in waiting:
                if not self._store(item):
                    break  # still down: try the rest later
            return self.unsaved
        finally:
            self._retrying.release()

    def _capture(
        self,
        incident_id: str,
        camera: CameraConfig,
        frame: Frame,
        box: tuple[float, float, float, float],
        others: list[tuple[float, float, float, float]],
    ) -> list[EvidenceFile]:
        """Write the evidence; on failure (disk full, folder not writable) log it and go on
        without: the incident and its alert matter more than its pictures."""
        try:
            return self.evidence.capture(incident_id, frame.image, box, others)
        except (OSError, ValueError) as exc:
            log.error(
                "camera %s: incident %s stored WITHOUT evidence: %s: %s",
                camera.id,
                incident_id,
                type(exc).__name__,
                exc,
            )
            return []

    def _closed(self, camera: CameraConfig, event: DistressEvent) -> None:
        with self._lock:
            incident_id = self._open.pop((camera.id, event.track_id), None)
        if incident_id is None:
            return
        try:
            self._extend_closed(incident_id, event)
        except RakshaError as exc:  # the store is down: the incident stands, its end is lost
            log.error(
                "camera %s: end of the event of incident %s not recorded: %s",
                camera.id,
                incident_id,
                exc,
            )

    def _extend_closed(self, incident_id: str, event: DistressEvent) -> None:
        self.store.extend_incident(
            incident_id,
            peak_distress=event.peak_distress,
            expression_at_peak=event.expression_at_peak,
            seen_at=datetime.now(UTC),
            event_end_s=event.end_s,
            peak_absolute=event.peak_absolute,
            peak_relative=event.peak_relative,
            baseline_at_peak=event.baseline_at_peak,
        )

    def _notify(self, stored: StoredIncident) -> None:
        if self.on_stored is not None:
            try:
                self.on_stored(stored)
            except Exception:  # a display callback must never stop the pipeline
                log.exception("incident callback failed")
