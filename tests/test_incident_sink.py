"""The incident sink keeps incidents the store refused and stores them when it comes back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from raksha.config import IncidentPolicy
from raksha.distress.config import DistressConfig
from raksha.domain import DistressEvent, DistressSample, FaceResult, Frame, FrameAnalysis
from raksha.geo.routing import Router
from raksha.incidents.evidence import EvidenceWriter
from raksha.pipeline.incident_sink import IncidentSink
from raksha.site.config import CameraConfig, HotspotConfig, StationConfig
from raksha.store import IncidentStore, StoreError
from raksha.store.repository import OpenResult
from raksha.store.tables import alerts


class FlakyStore(IncidentStore):
    """A real SQLite store whose first `failures` open_or_extend calls find it unreachable."""

    failures = 0

    def open_or_extend(self, *args: Any, **kwargs: Any) -> OpenResult:
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("cannot store incident: database is unreachable")
        return super().open_or_extend(*args, **kwargs)


def _frame_with_event(t: float, track_id: int = 1) -> tuple[Frame, FrameAnalysis]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    frame = Frame(
        image=image, t=t, index=int(t * 10), source_id="cam-1", captured_at=time.monotonic()
    )
    expr = {"fear": 0.9, "neutral": 0.1}
    face = FaceResult(
        track_id=track_id,
        box=(100.0, 60.0, 180.0, 160.0),
        score=0.95,
        expression=expr,
        distress=DistressSample(0.9, 0.8, True, 1.0),
    )
    event = DistressEvent(
        track_id=track_id,
        start_s=t - 1.0,
        end_s=None,
        peak_distress=0.8,
        peak_t=t,
        expression_at_peak=expr,
        source_id="cam-1",
        peak_absolute=0.3,
        peak_relative=0.8,
        baseline_at_peak=0.05,
    )
    return frame, FrameAnalysis(
        t=t, index=frame.index, source_id="cam-1", faces=(face,), opened=(event,)
    )


def test_incidents_survive_a_store_outage(tmp_path: Path) -> None:
    store = FlakyStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    clock = [100.0]
    stations = [
        StationConfig(id="a", lat=26.85, lon=80.94),
        StationConfig(id="b", lat=26.9, lon=81.0),
    ]
    hotspot = HotspotConfig(id="h", lat=26.851, lon=80.941)
    camera = CameraConfig(id="cam-1", hotspot="h", url="file:///x.mp4")
    sink = IncidentSink(
        store,
        Router(stations),
        EvidenceWriter(tmp_path / "ev"),
        [hotspot],
        IncidentPolicy(),
        DistressConfig(),
        model_name="m",
        model_sha256="0" * 64,
        channels=["store"],
        clock=lambda: clock[0],
    )
    store.failures = 2
    frame, analysis = _frame_with_event(5.0)
    sink.handle(camera, frame, analysis)  # store down: kept in memory
    assert sink.unsaved == 1 and store.list_incidents() == []

    empty = FrameAnalysis(t=5.2, index=52, source_id="cam-1", faces=())
    clock[0] += 0.5
    sink.handle(camera, frame, empty)  # too soon to retry
    assert store.failures == 1
    clock[0] += 3.0
    sink.handle(camera, frame, empty)  # retried; still down
    assert sink.unsaved == 1 and store.failures == 0
    clock[0] += 3.0
    sink.handle(camera, frame, empty)  # back: stored
    assert sink.unsaved == 0
    stored = store.list_incidents()
    assert len(stored) == 1 and stored[0].station_id == "a"
    assert stored[0].id == analysis_id(sink)
    # The parts of the peak reach the incident with it.
    assert (stored[0].peak_absolute, stored[0].peak_relative) == (0.3, 0.8)
    assert stored[0].baseline_at_peak == 0.05
    assert all(Path(e.path).is_file() for e in stored[0].evidence)
    # Its alert tells the station and the patrol unit the same, typed, with the parts.
    with store.engine.connect() as conn:
        (payload,) = conn.execute(select(alerts.c.payload)).scalars().all()
    assert payload["station_id"] == "a" and payload["route"]["station_id"] == "a"
    assert payload["route"]["method"] in ("jurisdiction", "nearest")
    assert (payload["peak_absolute"], payload["peak_relative"]) == (0.3, 0.8)
    assert "a human must look" in payload["note"]
    store.close()


def analysis_id(sink: IncidentSink) -> str:
    (incident_id,) = set(sink._open.values())
    return incident_id
