"""Shadow mode (raksha.pipeline.shadow, raksha.store.shadow, `raksha report shadow`, the
/stats page): a second scorer with other thresholds, or a second classifier, beside the live
one on the same faces.

- synthetic probabilities through `FrameAnalyzer.score`: the live samples and events are
  exactly the same with the shadow on and off, and the shadow opens what its thresholds (or
  its classifier's readings) open;
- the sink on a SQLite store: a shadow event is stored with the live incident of the same
  track, its end recorded, and nothing reaches incidents, alerts or the outbox;
- `raksha run --exit-at-end` over a real clip with `shadow:` on: shadow events stored and
  linked to the live incident, the alerts only the live incident's;
- the comparison per camera, in the report and on the statistics page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from dashboard_support import STATION_A, new_incident
from raksha.config import AnalysisConfig, RunConfig, ShadowConfig
from raksha.distress.config import DistressConfig
from raksha.domain import DistressEvent, ExpressionScores, FaceDetections, Frame
from raksha.pipeline.analyzer import FaceReadings, FrameAnalyzer, Located, Models
from raksha.pipeline.shadow import ShadowFrame, ShadowModels, ShadowScorer, ShadowSink
from raksha.site.config import CameraConfig
from raksha.store import IncidentStore
from raksha.store import shadow as shadow_rows
from raksha.store.tables import alert_deliveries, alerts, incidents, shadow_events

LABELS = ("neutral", "fear")
LIVE = DistressConfig(relative=False, enter_threshold=0.8, exit_threshold=0.35)
SHADOW = DistressConfig(relative=False, enter_threshold=0.5, exit_threshold=0.35)
FPS = 10


class NoModel:
    """Stands for the detector and the live classifier: `score` is fed directly."""

    labels = LABELS

    def detect(self, image: Any) -> FaceDetections:  # pragma: no cover - never called
        raise AssertionError("not used")

    def classify(self, image: Any, faces: FaceDetections) -> ExpressionScores:  # pragma: no cover
        raise AssertionError("not used")


class FixedClassifier:
    """A shadow classifier that reads every face as `fear`."""

    labels = LABELS

    def __init__(self, fear: float) -> None:
        self.fear = fear
        self.calls = 0

    def classify(self, image: Any, faces: FaceDetections) -> ExpressionScores:
        self.calls += 1
        n = len(faces)
        probs = np.tile(np.array([1 - self.fear, self.fear], np.float32), (n, 1))
        return ExpressionScores(probs.reshape(n, 2), LABELS)


def frames(fears: list[float], seconds: float) -> Iterator[tuple[Located, FaceReadings]]:
    """Two tracked faces (ids 1, 2), 100 px, sharp, whose `fear` is `fears[i]`."""
    n = len(fears)
    boxes = np.array([[10 + 150 * i, 10, 110 + 150 * i, 110] for i in range(n)], np.float32)
    faces = FaceDetections(boxes, np.full((n,), 0.95, np.float32), np.zeros((n, 5, 2), np.float32))
    image = np.zeros((240, 320, 3), np.uint8)
    probs = np.array([[1 - f, f] for f in fears], np.float32)
    for k in range(int(seconds * FPS)):
        t = k / FPS
        frame = Frame(image, t, k, "cam-x", 0.0)
        located = Located(frame, faces, np.arange(1, n + 1, dtype=np.int64), {})
        readings = FaceReadings(
            ExpressionScores(probs, LABELS), np.full((n,), 200.0, np.float32), 0.0, 0.0
        )
        yield located, readings


def analyzer(shadow: ShadowScorer | None) -> FrameAnalyzer:
    cfg = AnalysisConfig(distress=LIVE)
    models = Models(NoModel(), NoModel(), "live-model")  # type: ignore[arg-type]
    return FrameAnalyzer(cfg, models, source_id="cam-x", shadow=shadow)


def run(an: FrameAnalyzer, fears: list[float], seconds: float = 4.0) -> dict[str, Any]:
    samples, opened, closed, shadow_opened, shadow_closed = [], [], [], [], []
    for located, readings in frames(fears, seconds):
        out = an.score(located, readings)
        samples.append([(f.track_id, f.distress) for f in out.faces])
        opened += out.opened
        closed += out.closed
        if an.shadow_frame is not None:
            shadow_opened += an.shadow_frame.opened
            shadow_closed += an.shadow_frame.closed
    closed += an.finish()
    shadow_closed += an.finish_shadow()
    return {
        "samples": samples,
        "opened": opened,
        "closed": closed,
        "shadow_opened": shadow_opened,
        "shadow_closed": shadow_closed,
    }


# ---- the scorer beside the live one -----------------------------------------------------------


def test_the_live_results_are_the_same_with_the_shadow_on_and_off() -> None:
    fears = [0.95, 0.7]  # track 1 opens live and in shadow; track 2 only in shadow
    off = run(analyzer(None), fears)
    models = ShadowModels(None, SHADOW, "live-model", "a" * 64)
    on = run(analyzer(ShadowScorer(models, "cam-x")), fears)
    for key in ("samples", "opened", "closed"):
        assert on[key] == off[key], key
    assert [e.track_id for e in off["opened"]] == [1]
    assert off["shadow_opened"] == [] and off["shadow_closed"] == []
    assert sorted(e.track_id for e in on["shadow_opened"]) == [1, 2]
    assert sorted(e.track_id for e in on["shadow_closed"]) == [1, 2]


def test_a_shadow_classifier_reads_the_same_faces() -> None:
    classifier = FixedClassifier(fear=0.9)
    models = ShadowModels(classifier, LIVE, "other-model", "b" * 64)  # the live thresholds
    on = run(analyzer(ShadowScorer(models, "cam-x")), [0.1, 0.1])
    off = run(analyzer(None), [0.1, 0.1])
    assert on["opened"] == off["opened"] == []  # calm to the live model
    assert sorted(e.track_id for e in on["shadow_opened"]) == [1, 2]  # not to the shadow's
    assert classifier.calls == 4 * FPS
    assert on["samples"] == off["samples"]


def test_a_failing_shadow_never_costs_the_live_result() -> None:
    class Broken(FixedClassifier):
        def classify(self, image: Any, faces: FaceDetections) -> ExpressionScores:
            raise RuntimeError("shadow model crashed")

    models = ShadowModels(Broken(0.9), SHADOW, "broken", "")
    on = run(analyzer(ShadowScorer(models, "cam-x")), [0.95, 0.7])
    off = run(analyzer(None), [0.95, 0.7])
    assert on["opened"] == off["opened"] and on["samples"] == off["samples"]
    assert on["shadow_opened"] == []


def test_config() -> None:
    cfg = RunConfig.model_validate(
        {"shadow": {"model": "raksha-fer-resnet-int8", "distress": {"enter_threshold": 0.5}}}
    )
    assert cfg.shadow is not None
    assert cfg.shadow.scorer_config(cfg.distress).enter_threshold == 0.5
    assert cfg.shadow.scorer_config(cfg.distress).cooldown_s == cfg.distress.cooldown_s
    assert RunConfig().shadow is None
    with pytest.raises(ValueError, match="same model and thresholds"):
        RunConfig.model_validate({"shadow": {}})
    with pytest.raises(ValueError, match="exit_threshold must be below enter_threshold"):
        RunConfig.model_validate({"shadow": {"distress": {"enter_threshold": 0.2}}})
    with pytest.raises(ValueError, match=r"shadow\.distress: nope"):
        RunConfig.model_validate({"shadow": {"distress": {"nope": 1}}})
    assert ShadowConfig().model is None


# ---- the sink -----------------------------------------------------------------------------------


@dataclass
class Route:
    station_id: str


class LiveSide:
    """What the shadow sink asks the live IncidentSink: its open incidents and person keys."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, int], str] = {}

    def open_incident_of(self, camera_id: str, track_id: int) -> str | None:
        return self.open.get((camera_id, track_id))

    def person_key(self, camera_id: str, track_id: int) -> str:
        return f"{camera_id}:run1:{track_id}"

    def route_for(self, camera: CameraConfig) -> Route:
        return Route(STATION_A)


def _count(store: IncidentStore, table: Any) -> int:
    with store.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


def test_the_sink_stores_shadow_events_and_never_alerts(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'shadow.db'}")
    try:
        live = LiveSide()
        inc = new_incident(STATION_A)
        live_id = store.create_incident(inc, [], {"kind": "distress"}, ["store"])
        live.open[("cam-x", 1)] = live_id
        models = ShadowModels(None, SHADOW, "live-model", "a" * 64)
        sink = ShadowSink(store, live, models)  # type: ignore[arg-type]
        cam = CameraConfig(id="cam-x", hotspot="h", url="file.mp4")
        an = analyzer(ShadowScorer(models, "cam-x"))
        for located, readings in frames([0.95, 0.7], 4.0):
            an.score(located, readings)
            assert an.shadow_frame is not None
            sink.handle(cam, an.shadow_frame)
        # Track 2's live incident is raised only later (its person key finds it at the end).
        later = store.create_incident(
            _with_key(new_incident(STATION_A), live.person_key("cam-x", 2)),
            [],
            {"kind": "distress"},
            ["store"],
        )
        sink.finish(cam, an.finish_shadow())
        rows = {e.track_id: e for e in shadow_rows.events(store.engine)}
        assert sorted(rows) == [1, 2] and sink.stored == 2
        assert rows[1].live_incident_id == live_id and rows[2].live_incident_id == later
        for e in rows.values():
            assert e.station_id == STATION_A and e.model_name == "live-model"
            assert e.thresholds["enter_threshold"] == 0.5
            assert e.event_end_s is not None and e.event_start_s is not None
            assert e.person_key == live.person_key("cam-x", e.track_id)
        # Nothing of the shadow's is an incident, an alert or a delivery: the two live
        # incidents' alerts (one channel each) are all there is.
        assert _count(store, incidents) == 2
        with store.engine.connect() as c:
            alerted = set(c.execute(select(alerts.c.incident_id)).scalars())
            delivered = set(c.execute(select(alert_deliveries.c.alert_id)).scalars())
            alert_ids = set(c.execute(select(alerts.c.id)).scalars())
        assert alerted == {live_id, later} and delivered <= alert_ids
    finally:
        store.close()


def _with_key(inc: Any, key: str) -> Any:
    from dataclasses import replace

    return replace(inc, person_key=key)


def test_a_store_failure_is_logged_not_raised(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'gone.db'}")
    try:
        models = ShadowModels(None, SHADOW, "m", "")
        sink = ShadowSink(store, LiveSide(), models)  # type: ignore[arg-type]
        with store.engine.begin() as c:
            c.execute(shadow_events.delete())
            c.exec_driver_sql("DROP TABLE shadow_events")
        cam = CameraConfig(id="cam-x", hotspot="h", url="file.mp4")
        event = DistressEvent(1, 0.0, None, 0.9, 0.0, {"fear": 0.9})
        sink.handle(cam, ShadowFrame(0.0, opened=(event,)))  # logged, not raised
        sink.finish(cam, [event])
        assert sink.stored == 0
    finally:
        store.close()


# ---- the comparison ----------------------------------------------------------------------------


def _event(eid: str, camera: str, live: str | None, when: datetime) -> shadow_rows.ShadowEvent:
    return shadow_rows.ShadowEvent(
        id=eid,
        camera_id=camera,
        hotspot_id="h",
        station_id=STATION_A,
        opened_at=when,
        track_id=1,
        person_key=None,
        event_start_s=0.0,
        event_end_s=1.0,
        peak_distress=0.7,
        model_name="fer-b",
        model_sha256="b" * 64,
        thresholds={"enter_threshold": 0.5},
        live_incident_id=live,
    )


def test_the_comparison_per_camera(tmp_path: Path) -> None:
    from raksha.cli import app

    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    store = IncidentStore.open(url)
    now = datetime.now(UTC) - timedelta(minutes=5)
    ids = []
    for _ in range(3):
        inc = new_incident(STATION_A)  # camera cam-hazratganj
        ids.append(store.create_incident(inc, [], {"kind": "distress"}, ["store"]))
    store.apply_action(ids[0], "acknowledge", "op")
    store.apply_action(ids[0], "confirm", "op")
    store.apply_action(ids[1], "dismiss", "op", reason="no_distress")
    cam = "cam-hazratganj"
    for i, live in enumerate([ids[0], ids[0], ids[1], None, None]):
        shadow_rows.insert_event(store.engine, _event(f"s{i}", cam, live, now))
    shadow_rows.insert_event(store.engine, _event("old", cam, None, now - timedelta(days=90)))
    report = shadow_rows.shadow_comparison(
        store.engine, since=now - timedelta(days=1), until=now + timedelta(hours=1)
    )
    c = report.cameras[cam]
    assert (c.events, c.overlap, c.shadow_only) == (5, 3, 2)
    assert (c.overlap_judged, c.overlap_real) == (3, 2)
    assert (c.live, c.live_caught) == (3, 2) and c.models == {"fer-b"}
    store.close()

    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": url}}))
    r = CliRunner().invoke(app, ["report", "shadow", "--config", str(config), "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)["cameras"][cam]
    assert body["events"] == 5 and body["overlap_real"] == 2 and body["live_caught"] == 2
    r = CliRunner().invoke(app, ["report", "shadow", "--config", str(config)])
    assert r.exit_code == 0 and cam in r.output


# ---- a real run ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_over_a_real_clip_stores_shadow_events_and_alerts_only_the_live_ones(
    tmp_path: Path, models_dir: Path, data_dir: Path
) -> None:
    """`raksha run --exit-at-end` over a clip of a real face turning afraid, with a shadow
    scorer of lower thresholds and with the second expression model: the live incident and
    its alert as always; the shadow's events stored, linked to the live incident, never
    alerted."""
    from synthetic_video import FaceJudge, build_distress_clip
    from test_run_pipeline import camera, run_to_end, write_config

    (tmp_path / "clips").mkdir()
    clip = build_distress_clip(tmp_path / "clips", data_dir, FaceJudge(models_dir))
    db = f"sqlite:///{tmp_path / 'raksha.db'}"
    cfg = write_config(tmp_path / "raksha.yaml", [camera("cam-1", clip.path)], db)
    doc = yaml.safe_load(cfg.read_text())
    doc["shadow"] = {
        "model": "raksha-fer-resnet-int8",
        "distress": {"enter_threshold": 0.45, "exit_threshold": 0.3},
    }
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_to_end(cfg, models_dir)
    store = IncidentStore.open(db)
    try:
        live = store.list_incidents()
        assert len(live) == 1, [(i.camera_id, i.peak_distress) for i in live]
        shadow = shadow_rows.events(store.engine)
        assert shadow, "the shadow scorer opened no event on the distress clip"
        for e in shadow:
            assert e.model_name == "raksha-fer-resnet-int8" and len(e.model_sha256) == 64
            assert e.thresholds["enter_threshold"] == 0.45 and e.camera_id == "cam-1"
            assert e.event_end_s is not None
        assert {e.live_incident_id for e in shadow} == {live[0].id}
        with store.engine.connect() as c:
            alerted = list(c.execute(select(alerts.c.incident_id)).scalars())
        assert alerted == [live[0].id]
        assert live[0].model_name != "raksha-fer-resnet-int8"
    finally:
        store.close()
