"""Shadow mode: a second expression model and/or other distress thresholds scored beside the
live ones on the same faces, to learn on the deployment's own footage what they would have
raised. Their events are stored (`raksha.store.shadow`) and nothing else: no alert, no
incident, nothing in the outbox.

    shadow = ShadowModels.load(cfg, models_dir)            # once per process
    analyzer = FrameAnalyzer(cfg.analysis(), models, camera.id,
                             shadow=ShadowScorer(shadow, camera.id))
    sink = ShadowSink(store, live_sink, shadow)            # beside the IncidentSink

The shadow scorer runs after the live one on each frame, on the same located faces, their
sharpness, and the live classifier's readings (thresholds only) or the shadow classifier's
readings of the same face crops. It keeps its own per-track state, so the live results are
exactly those without it. Without `shadow:` none of this exists: the live path only asks
`analyzer.shadow is None` once per frame.

`ShadowSink` writes each shadow event when it opens and its end and peak when it closes,
with the live incident of the same track when the live side has one (open at that moment,
or found by the track's person key at the close). A failure there is logged, never raised
into the camera's loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from raksha.config import RunConfig
from raksha.distress.config import DistressConfig
from raksha.distress.scorer import DistressScorer
from raksha.domain import DistressEvent
from raksha.errors import RakshaError
from raksha.expression.base import ExpressionClassifier
from raksha.incidents.model import new_id
from raksha.site.config import CameraConfig
from raksha.store import shadow as shadow_rows
from raksha.store.repository import IncidentStore

if TYPE_CHECKING:
    from raksha.pipeline.analyzer import FaceReadings, Located
    from raksha.pipeline.incident_sink import IncidentSink

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShadowModels:
    """The shadow's stateless parts, shared by every camera."""

    #: None: the live classifier's readings are scored (only the thresholds differ).
    classifier: ExpressionClassifier | None
    distress: DistressConfig
    model_name: str
    model_sha256: str

    @staticmethod
    def load(cfg: RunConfig, models_dir: Path | None, live_sha256: str) -> ShadowModels | None:
        """The shadow of `cfg` (None when `shadow:` is absent); its model is loaded once."""
        shadow = cfg.shadow
        if shadow is None:
            return None
        distress = shadow.scorer_config(cfg.distress)
        if shadow.model is None or shadow.model == cfg.expression.model:
            return ShadowModels(None, distress, cfg.expression.model, live_sha256)
        from raksha.expression.factory import build_expression_classifier
        from raksha.models import file_sha256

        classifier = build_expression_classifier(
            cfg.expression.model_copy(update={"model": shadow.model}), models_dir
        )
        model_file = getattr(classifier, "model_file", None)
        sha = file_sha256(Path(model_file)) if model_file is not None else ""
        return ShadowModels(classifier, distress, shadow.model, sha)


@dataclass(frozen=True, slots=True)
class ShadowFrame:
    """The shadow's events that opened or closed on one frame."""

    t: float
    opened: tuple[DistressEvent, ...] = ()
    closed: tuple[DistressEvent, ...] = ()


class ShadowScorer:
    """The shadow's per-stream state: its own distress scorer (one per camera)."""

    def __init__(self, models: ShadowModels, source_id: str = "video") -> None:
        self.models = models
        self.scorer = DistressScorer(models.distress, source_id=source_id)
        self._last_t = 0.0

    def update(self, located: Located, readings: FaceReadings) -> ShadowFrame:
        """Score the frame's faces as the shadow reads them."""
        frame, faces = located.frame, located.faces
        scores = readings.scores
        if self.models.classifier is not None:
            scores = self.models.classifier.classify(frame.image, faces)
        _samples, opened, closed = self.scorer.update(
            frame.t, located.track_ids, scores.probs, scores.labels, faces, readings.sharpness
        )
        self._last_t = frame.t
        return ShadowFrame(frame.t, tuple(opened), tuple(closed))

    def finish(self) -> list[DistressEvent]:
        return self.scorer.finish(self._last_t)


class ShadowSink:
    """Stores the shadow's events; shares nothing with the alerting path but lookups."""

    def __init__(self, store: IncidentStore, live: IncidentSink, models: ShadowModels) -> None:
        self.store = store
        self.live = live
        self.model_name = models.model_name
        self.model_sha256 = models.model_sha256
        self.thresholds = models.distress.model_dump(mode="json")
        self._lock = threading.Lock()
        #: (camera_id, track_id) -> (shadow event id, live incident id) of the open events.
        self._open: dict[tuple[str, int], tuple[str, str | None]] = {}
        #: Shadow events stored (opened) by this process.
        self.stored = 0

    def handle(self, camera: CameraConfig, shadow: ShadowFrame) -> None:
        """Store the events opened on this frame; record the end of those that closed."""
        try:
            for event in shadow.opened:
                self._opened(camera, event)
            self.finish(camera, shadow.closed)
        except Exception:  # the shadow must never stop the live camera
            log.exception("camera %s: shadow event not recorded", camera.id)

    def finish(self, camera: CameraConfig, events: Sequence[DistressEvent]) -> None:
        for event in events:
            try:
                self._closed(camera, event)
            except RakshaError as exc:
                log.warning("camera %s: end of a shadow event not recorded: %s", camera.id, exc)

    def _opened(self, camera: CameraConfig, event: DistressEvent) -> None:
        live_id = self.live.open_incident_of(camera.id, event.track_id)
        event_id = new_id()
        row = shadow_rows.ShadowEvent(
            id=event_id,
            camera_id=camera.id,
            hotspot_id=camera.hotspot,
            station_id=self.live.route_for(camera).station_id,
            opened_at=datetime.now(UTC),
            track_id=event.track_id,
            person_key=self.live.person_key(camera.id, event.track_id),
            event_start_s=event.start_s,
            event_end_s=None,
            peak_distress=float(min(1.0, max(0.0, event.peak_distress))),
            model_name=self.model_name,
            model_sha256=self.model_sha256,
            thresholds=self.thresholds,
            live_incident_id=live_id,
        )
        try:
            shadow_rows.insert_event(self.store.engine, row)
        except RakshaError as exc:
            log.warning("camera %s: shadow event not stored: %s", camera.id, exc)
            return
        with self._lock:
            self._open[(camera.id, event.track_id)] = (event_id, live_id)
            self.stored += 1

    def _closed(self, camera: CameraConfig, event: DistressEvent) -> None:
        with self._lock:
            entry = self._open.pop((camera.id, event.track_id), None)
        if entry is None:
            return
        event_id, live_id = entry
        if live_id is None:  # the live side may have raised one meanwhile
            live_id = self.live.open_incident_of(camera.id, event.track_id)
        shadow_rows.close_event(
            self.store.engine,
            event_id,
            event_end_s=event.end_s,
            peak_distress=float(min(1.0, max(0.0, event.peak_distress))),
            live_incident_id=live_id,
            person_key=self.live.person_key(camera.id, event.track_id),
        )
