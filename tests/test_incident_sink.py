"""The incident sink keeps incidents the store refused and stores them when it comes back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from raksha.config import IncidentPolicy
from raksha.distress.config import DistressConfig
from raksha.domain import DistressEvent, DistressSample, FaceResult, Frame, FrameAnalysis
from raksha.geo.routing import Router
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import AlertPayload, NewIncident
from raksha.pipeline.incident_sink import IncidentSink
from raksha.pipeline.spool import Spool, SpoolFull
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


def _sink(store: IncidentStore, tmp_path: Path, spool: Spool) -> IncidentSink:
    return IncidentSink(
        store,
        Router([StationConfig(id="a", lat=26.85, lon=80.94)]),
        EvidenceWriter(tmp_path / "ev"),
        [HotspotConfig(id="h", lat=26.851, lon=80.941)],
        IncidentPolicy(),
        DistressConfig(),
        model_name="m",
        model_sha256="0" * 64,
        channels=["store", "webhook"],
        spool=spool,
    )


def test_a_crash_during_an_outage_loses_no_incident_and_stores_none_twice(
    tmp_path: Path,
) -> None:
    """The store is down when the incident is decided: it is written to the spool on disk.
    The process dies (nothing of it survives but files); the next run, with the store back,
    stores it once, with its alert; replaying again stores nothing more."""
    db = f"sqlite:///{tmp_path / 'r.db'}"
    spool_path = tmp_path / "spool.db"
    camera = CameraConfig(id="cam-1", hotspot="h", url="file:///x.mp4")
    down = FlakyStore.open(db)
    down.failures = 10**6
    first = _sink(down, tmp_path, Spool(spool_path))
    frame, analysis = _frame_with_event(5.0)
    first.handle(camera, frame, analysis)
    assert first.unsaved == 1 and down.list_incidents() == []
    assert len(Spool(spool_path)) == 1  # on disk, readable by another process
    # Its evidence folder says it waits, so no process's orphan sweep takes it meanwhile.
    from raksha.incidents.evidence import WAITING_MARK

    (row,) = Spool(spool_path).pending()
    folders = {Path(f["path"]).parent for f in row[1]["files"]}
    assert folders and all((d / WAITING_MARK).is_file() for d in folders)
    del first  # "kill -9": only the files remain
    down.close()

    store = IncidentStore.open(db)
    second = _sink(store, tmp_path, Spool(spool_path))
    assert second.load_spooled() == 1
    assert second.retry_unsaved(force=True) == 0
    (stored,) = store.list_incidents()
    assert stored.station_id == "a" and all(Path(e.path).is_file() for e in stored.evidence)
    assert len(store.deliveries(stored.id)) == 1  # its webhook alert, once
    assert len(Spool(spool_path)) == 0
    assert not any((d / WAITING_MARK).exists() for d in folders)  # stored: ordinary again
    assert second._open == {}  # an earlier run's track id means nothing to this run

    # A crash between the store's commit and the spool's delete: the replay finds it stored.
    again = Spool(spool_path)
    again.put(stored.id, _spooled_doc(second, stored.id, tmp_path, frame, analysis))
    third = _sink(store, tmp_path, Spool(spool_path))
    assert third.load_spooled() == 1 and third.retry_unsaved(force=True) == 0
    assert [i.id for i in store.list_incidents()] == [stored.id]
    assert len(store.deliveries(stored.id)) == 1
    store.close()


def _spooled_doc(
    sink: IncidentSink, incident_id: str, tmp_path: Path, frame: Frame, analysis: FrameAnalysis
) -> dict[str, Any]:
    """The spool row of an incident as the sink wrote it, for `incident_id`."""
    import dataclasses

    from raksha.pipeline.incident_sink import _Unsaved

    stored = sink.store.get_incident(incident_id)
    assert stored is not None
    event = analysis.opened[0]
    route = sink.route_for(CameraConfig(id="cam-1", hotspot="h", url="file:///x.mp4"))
    new = NewIncident(
        camera_id="cam-1",
        hotspot_id="h",
        station_id="a",
        peak_distress=event.peak_distress,
        expression_at_peak=dict(event.expression_at_peak),
        model_name="m",
        model_sha256="0" * 64,
        thresholds={},
        route=route,
        opened_at=stored.opened_at,
        id=incident_id,
    )
    item = _Unsaved(new, [], AlertPayload.of(new), "cam-1", 1, (140.0, 110.0, 80.0), 0.0, 0.0)
    return dataclasses.replace(item).to_json()


def test_the_spool_keeps_order_and_bounds() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "s.db", max_items=3)
        ids = [spool.put(f"i{n}", {"n": n}) for n in range(3)]
        with pytest.raises(SpoolFull):
            spool.put("i3", {"n": 3})
        assert [doc["n"] for _, doc in spool.pending()] == [0, 1, 2]
        spool.done(ids[1])
        assert [doc["n"] for _, doc in Spool(Path(tmp) / "s.db").pending()] == [0, 2]


def test_an_unreadable_spool_row_is_set_aside_not_a_failed_start(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    spool = Spool(tmp_path / "spool.db")
    spool.put("from-an-old-version", {"new": {"id": "x"}})  # missing every other field
    sink = _sink(store, tmp_path, Spool(tmp_path / "spool.db"))
    assert sink.load_spooled() == 0 and sink.unsaved == 0
    assert len(Spool(tmp_path / "spool.db")) == 0  # out of the queue, kept aside
    store.close()
