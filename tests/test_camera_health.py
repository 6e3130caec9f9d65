"""Cameras that report their own failures: the detectors on synthetic frames
(`raksha.pipeline.camera_health`), their rows, outbox alerts and audit entries
(`raksha.pipeline.camera_faults`, `raksha.store.camera_alerts`), the alert formats, and one
real `raksha run` of a clip with a frozen segment made here with PyAV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy import Engine, select

from raksha.alerts.base import DeliveryError, alert_document
from raksha.alerts.factory import camera_channels
from raksha.alerts.formats import render
from raksha.alerts.mqtt import MqttNotifier
from raksha.audit.log import AuditLog
from raksha.domain.types import Frame
from raksha.errors import RakshaError, SourceError
from raksha.pipeline.analyzer import FrameAnalyzer
from raksha.pipeline.camera import CameraPipeline
from raksha.pipeline.camera_faults import CameraFaultReporter
from raksha.pipeline.camera_health import (
    CameraHealthMonitor,
    Change,
    Cleared,
    FaultKind,
    Raised,
    pixelated_jpeg,
)
from raksha.pipeline.incident_sink import IncidentSink
from raksha.services.retention import drop_old_camera_snapshots
from raksha.site.config import AlertsConfig, CameraConfig, CameraHealthConfig
from raksha.sources.base import FrameSource, SourceHealth
from raksha.store import camera_alerts as rows
from raksha.store import migrate
from raksha.store.outbox import SqlOutbox
from raksha.store.repository import IncidentStore
from raksha.store.tables import alert_deliveries, alerts, camera_alerts

FPS = 5.0
CFG = CameraHealthConfig(
    video_loss_s=10,
    frozen_s=10,
    covered_s=10,
    moved_s=10,
    reference_s=10,
    reconnect_failures=3,
    clear_s=5,
)


def scene(seed: int = 1, shape: tuple[int, int] = (360, 640)) -> np.ndarray:
    """A textured street-like picture: blocks of grey levels with edges, smoothed a little."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, size=(18, 32, 3), dtype=np.uint8)
    img = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.asarray(cv2.GaussianBlur(img, (5, 5), 1.0), dtype=np.uint8)


def live(base: np.ndarray, i: int) -> np.ndarray:
    """`base` with a moving bright square and sensor noise: a scene that changes a little."""
    rng = np.random.default_rng(1000 + i)
    img = base.astype(np.int16) + rng.integers(-6, 7, size=base.shape, dtype=np.int16)
    x = 40 + (i * 7) % (base.shape[1] - 80)
    img[100:160, x : x + 40] = 250
    return np.clip(img, 0, 255).astype(np.uint8)


def feed(
    mon: CameraHealthMonitor, frames: Iterator[np.ndarray] | list[np.ndarray], t0: float
) -> tuple[list[tuple[float, Change]], float]:
    """Observe `frames` at 5 fps from `t0`; the changes with their times, and the next t."""
    out: list[tuple[float, Change]] = []
    t = t0
    for img in frames:
        out += [(t, c) for c in mon.observe(img, t)]
        t += 1 / FPS
    return out, t


def seconds(n: float) -> int:
    return round(n * FPS)


def raised(changes: list[tuple[float, Change]], kind: FaultKind) -> list[float]:
    return [t for t, c in changes if isinstance(c, Raised) and c.kind is kind]


def cleared(changes: list[tuple[float, Change]], kind: FaultKind) -> list[float]:
    return [t for t, c in changes if isinstance(c, Cleared) and c.kind is kind]


# ---- detectors ---------------------------------------------------------------------------------


def test_live_scene_raises_nothing() -> None:
    mon = CameraHealthMonitor(CFG)
    base = scene()
    changes, _ = feed(mon, [live(base, i) for i in range(seconds(60))], 0.0)
    assert changes == []
    assert mon.last is not None and mon.last.correlation is not None
    assert mon.last.correlation > 0.9


def test_frozen_raises_after_n_seconds_and_clears_with_hysteresis() -> None:
    mon = CameraHealthMonitor(CFG)
    base = scene()
    warm, t = feed(mon, [live(base, i) for i in range(seconds(3))], 0.0)
    assert warm == []
    still = live(base, 99)
    # Frozen for 9.8 s: nothing yet.
    before, t_mid = feed(mon, [still] * seconds(9.8), t)
    assert before == []
    after, t = feed(mon, [still] * seconds(3), t_mid)
    [t_raise] = raised(after, FaultKind.FROZEN)
    assert t_mid <= t_raise <= t_mid + 0.6  # 10 s after the first repeated frame
    [(_, change)] = after
    assert isinstance(change, Raised) and change.held_s >= 10.0
    assert change.snapshot and change.snapshot[:2] == b"\xff\xd8"
    # Moving again: a brief flicker back to frozen does not clear early; 5 s of motion does.
    moving, t = feed(mon, [live(base, i) for i in range(seconds(3))], t)
    assert cleared(moving, FaultKind.FROZEN) == []
    flicker, t = feed(mon, [still] * 3, t)
    assert flicker == []
    back, _ = feed(mon, [live(base, i) for i in range(seconds(6))], t)
    [t_clear] = cleared(back, FaultKind.FROZEN)
    assert t_clear - t >= 5.0 - 1e-6
    assert mon.active == []


def test_covered_lens_raises_and_clears() -> None:
    mon = CameraHealthMonitor(CFG)
    base = scene()
    feed(mon, [live(base, i) for i in range(seconds(2))], 0.0)
    rng = np.random.default_rng(5)
    covered = [
        np.clip(20 + rng.integers(-2, 3, size=base.shape), 0, 255).astype(np.uint8)
        for _ in range(seconds(12))
    ]
    changes, t = feed(mon, covered, 2.0)
    [t_raise] = raised(changes, FaultKind.COVERED)
    assert 2.0 + 10.0 - 1e-6 <= t_raise < 2.0 + 10.5
    assert raised(changes, FaultKind.FROZEN) == []  # the noise still moves
    back, _ = feed(mon, [live(base, i) for i in range(seconds(6))], t)
    [t_clear] = cleared(back, FaultKind.COVERED)
    assert t_clear - t >= 5.0 - 1e-6


def test_defocused_lens_raises() -> None:
    mon = CameraHealthMonitor(CFG)
    base = scene()
    feed(mon, [live(base, i) for i in range(seconds(2))], 0.0)
    blurred = [cv2.GaussianBlur(live(base, i), (0, 0), 25) for i in range(seconds(11))]
    changes, _ = feed(mon, blurred, 2.0)
    assert raised(changes, FaultKind.COVERED)
    assert mon.last is not None and mon.last.std > CFG.covered_max_std  # not dark: blurred


def test_moved_camera_raises_and_relearns_on_acknowledgement() -> None:
    mon = CameraHealthMonitor(CFG)
    base, other = scene(1), scene(2)
    learnt, t = feed(mon, [live(base, i) for i in range(seconds(12))], 0.0)
    assert learnt == []
    assert mon.last is not None and mon.last.correlation is not None
    before, t_mid = feed(mon, [live(other, i) for i in range(seconds(9.8))], t)
    assert before == []
    after, t = feed(mon, [live(other, i) for i in range(seconds(1))], t_mid)
    assert raised(after, FaultKind.MOVED)
    # Acknowledged: the new scene is learnt over reference_s and the alert clears after it.
    mon.relearn()
    relearn, _ = feed(mon, [live(other, i) for i in range(seconds(16))], t)
    [t_clear] = cleared(relearn, FaultKind.MOVED)
    assert t_clear - t >= CFG.reference_s + CFG.clear_s - 0.5
    assert mon.active == []


def test_video_loss_raises_after_silence_and_clears() -> None:
    mon = CameraHealthMonitor(CFG)
    img = scene()
    changes: list[Change] = []
    now = 100.0
    mon.tick(now)
    for k in range(40):  # frames at 5 fps for 8 s
        now = 100.0 + k / FPS
        mon.seen(now)
        mon.observe(live(img, k), now)
        changes += mon.tick(now)
    last = now
    while now + 0.5 < last + 10.0:  # silent for 9.5 s
        now += 0.5
        changes += mon.tick(now)
    assert changes == []
    now = last + 10.0
    [change] = mon.tick(now)
    assert isinstance(change, Raised) and change.kind is FaultKind.VIDEO_LOSS
    assert change.held_s == pytest.approx(10.0)
    assert change.snapshot is None
    # Frames again: cleared only after clear_s of frames.
    back = now
    out: list[Change] = []
    while now < back + 6:
        now += 0.5
        mon.seen(now)
        out += [c for c in mon.tick(now)]
        if now < back + 5:
            assert out == []
    assert [type(c) for c in out] == [Cleared]


def test_video_loss_before_any_frame() -> None:
    mon = CameraHealthMonitor(CFG)
    assert mon.tick(0.0) == []
    assert mon.tick(9.5) == []
    [change] = mon.tick(10.0)
    assert isinstance(change, Raised) and change.kind is FaultKind.VIDEO_LOSS


def test_reconnect_failures() -> None:
    mon = CameraHealthMonitor(CFG.model_copy(update={"video_loss_s": 1000}))
    assert mon.tick(0.0, online=False, failures=2) == []
    [change] = mon.tick(1.0, online=False, failures=3)
    assert isinstance(change, Raised) and change.kind is FaultKind.RECONNECT
    assert mon.tick(2.0, online=True, failures=0) == []
    [gone] = mon.tick(7.0, online=True, failures=0)
    assert isinstance(gone, Cleared) and gone.kind is FaultKind.RECONNECT
    off = CameraHealthMonitor(CFG.model_copy(update={"reconnect_failures": 0}))
    assert off.tick(0.0, online=False, failures=50) == []


def test_disabled_raises_nothing() -> None:
    mon = CameraHealthMonitor(CFG.model_copy(update={"enabled": False}))
    flat = np.zeros((90, 160, 3), np.uint8)
    assert feed(mon, [flat] * seconds(30), 0.0)[0] == []
    assert mon.tick(1000.0, online=False, failures=99) == []


def test_snapshot_is_coarsely_pixelated() -> None:
    img = live(scene(3, (720, 1280)), 1)
    data = pixelated_jpeg(img)
    assert len(data) < 20_000
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert out.shape == (108, 192)
    # 8 blocks across, each 24 px: inside a block the picture is flat (JPEG noise aside).
    for x in range(0, 192, 24):
        block = out[:, x + 4 : x + 20].astype(np.int16)
        assert np.abs(np.diff(block, axis=1)).max() <= 16


# ---- store, outbox, audit ----------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = migrate(f"sqlite:///{tmp_path / 'raksha.db'}")
    yield eng
    eng.dispose()


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)

    def advance(self, s: float) -> None:
        self.mono += s
        self.wall += timedelta(seconds=s)


def test_reporter_stores_raise_and_clear_with_outbox_and_audit(engine: Engine) -> None:
    clock = Clock()
    channels = camera_channels(
        AlertsConfig.model_validate(
            {
                "webhook": {"url": "http://127.0.0.1:9/x", "secret_env": "X"},
                "mqtt": {"host": "127.0.0.1", "formats": ["raksha", "cap"]},
            }
        )
    )
    # Channels of their own: a receiver failing on camera alerts holds only them.
    assert channels == ("store", "webhook-camera", "mqtt-camera")
    rep = CameraFaultReporter(
        CFG,
        engine,
        camera_id="cam-1",
        station_id="station-b",
        channels=channels,
        clock=lambda: clock.mono,
        wall=lambda: clock.wall,
    )
    rep.poll()
    for _ in range(21):  # 10.5 s without a frame
        clock.advance(0.5)
        rep.poll(online=False, failures=1)
    [open_] = rows.open_alerts(engine, "cam-1")
    assert open_.kind == "video_loss" and open_.station_id == "station-b"
    assert open_.since == datetime(2026, 12, 6, 8, 0, tzinfo=UTC)  # the last sign of life
    assert not open_.has_snapshot
    # Frames again for 5 s: cleared.
    base = scene()
    for k in range(30):
        clock.advance(0.2)
        rep.frame(live(base, k), k / FPS)
        rep.poll()
    assert rows.open_alerts(engine) == []
    [hist] = rows.history(engine, "cam-1")
    assert hist.cleared_at is not None
    with engine.connect() as c:
        events = [
            (r.event, r.incident_id, r.payload)
            for r in c.execute(select(alerts).order_by(alerts.c.created_at))
        ]
        deliveries = c.execute(select(alert_deliveries.c.channel)).scalars().all()
        assert c.execute(select(camera_alerts.c.kind)).scalars().all() == ["video_loss"]
    assert [e for e, _, _ in events] == ["camera.fault", "camera.recovered"]
    assert all(i is None for _, i, _ in events)
    fault = events[0][2]
    assert fault["camera_id"] == "cam-1" and fault["kind"] == "video_loss"
    assert fault["audience"] == ["station", "control_room"]
    assert "url" not in json.dumps(fault).lower()
    assert sorted(deliveries) == ["mqtt-camera"] * 2 + ["webhook-camera"] * 2
    audit = [e.action for e in AuditLog(engine).entries()]
    assert audit[-2:] == ["camera.fault", "camera.recovered"]

    # The outbox hands them out; the raksha document names no incident, the topic is the
    # station's cameras topic, and the standard formats refuse them (permanently).
    [due, *_] = SqlOutbox(engine).due_deliveries("mqtt-camera", clock.wall + timedelta(1), 10)
    assert due.incident_id == ""
    doc = alert_document(due)
    assert doc["incident_id"] is None and doc["alert"]["event"] == "camera.fault"
    mq = MqttNotifier("127.0.0.1", 1883, topic_prefix="raksha")
    assert mq._topic(due) == "raksha/stations/station-b/cameras"
    with pytest.raises(DeliveryError) as err:
        render(due, "cap")
    assert err.value.permanent


def test_frozen_alert_keeps_a_snapshot_and_acknowledgement_relearns(engine: Engine) -> None:
    clock = Clock()
    rep = CameraFaultReporter(
        CFG,
        engine,
        camera_id="cam-2",
        station_id="station-a",
        channels=("store",),
        clock=lambda: clock.mono,
        wall=lambda: clock.wall,
    )
    base, other = scene(1), scene(2)
    t = 0.0
    for k in range(seconds(12)):
        rep.frame(live(base, k), t)
        t += 1 / FPS
    for k in range(seconds(11)):
        rep.frame(live(other, k), t)
        t += 1 / FPS
    [moved] = rows.open_alerts(engine, "cam-2")
    assert moved.kind == "moved" and moved.has_snapshot
    snap = rows.snapshot(engine, moved.id)
    assert snap is not None and snap[:2] == b"\xff\xd8"
    with engine.begin() as c:
        assert rows.acknowledge(c, moved.id, "officer-1", clock.wall)
        assert not rows.acknowledge(c, moved.id, "officer-1", clock.wall)
    clock.advance(20)
    rep.poll()
    assert rep.monitor.last is not None
    # The reference is being learnt again: no correlation until reference_s has passed.
    rep.frame(live(other, 1), t)
    assert rep.monitor.last.correlation is None


# ---- one real run: a clip with a frozen segment ------------------------------------------------


def frozen_clip(src: Path, out: Path) -> None:
    """4 s of the real clip, 5 s of its last frame repeated (a frozen encoder), 5 s more."""
    frames: list[np.ndarray] = []
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        step = max(1, round(float(stream.average_rate or 25) / 10))
        for i, fr in enumerate(c.decode(video=0)):
            if i % step == 0:
                frames.append(fr.to_ndarray(format="rgb24"))
            if len(frames) >= 90:
                break
    assert len(frames) >= 90
    seq = frames[:40] + [frames[39]] * 50 + frames[40:90]
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height = frames[0].shape[1] // 2 * 2, frames[0].shape[0] // 2 * 2
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "18"}
        s.time_base = Fraction(1, 10)
        for img in seq:
            vf = av.VideoFrame.from_ndarray(img[: s.height, : s.width], format="rgb24")
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_raksha_run_raises_and_clears_a_frozen_picture(
    tmp_path: Path, models_dir: Path, videos_dir: Path
) -> None:
    clip = tmp_path / "frozen.mp4"
    frozen_clip(videos_dir / "fer__woman2.mp4", clip)
    db = tmp_path / "raksha.db"
    doc: dict[str, Any] = {
        "stations": [{"id": "station-b", "name": "B", "lat": 26.846, "lon": 80.944}],
        "hotspots": [{"id": "h1", "name": "H1", "lat": 26.85, "lon": 80.94}],
        "cameras": [{"id": "cam-frozen", "hotspot": "h1", "url": str(clip), "fps": 5}],
        "storage": {"url": f"sqlite:///{db}"},
        "evidence": {"dir": str(tmp_path / "evidence")},
        "camera_health": {"frozen_s": 2.0, "clear_s": 1.0},
    }
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    env = dict(os.environ, RAKSHA_MODELS=str(models_dir))
    env.pop("RAKSHA_TEST_PG_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "raksha", "run", "--config", str(cfg), "--exit-at-end"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    eng = migrate(f"sqlite:///{db}")
    try:
        [alert] = rows.history(eng, "cam-frozen")
        assert alert.kind == "frozen" and alert.station_id == "station-b"
        assert alert.cleared_at is not None and alert.has_snapshot
        assert timedelta(seconds=2) <= alert.raised_at - alert.since < timedelta(seconds=3)
        with eng.connect() as c:
            events = c.execute(select(alerts.c.event).order_by(alerts.c.created_at))
            assert [e for e in events.scalars()] == ["camera.fault", "camera.recovered"]
    finally:
        eng.dispose()


def test_default_settings_raise_nothing_on_the_real_clips(videos_dir: Path) -> None:
    """The defaults on every sample clip at 5 fps, at full resolution (as the pipeline hands
    frames to the health check), each clip looped to 3 minutes (as `raksha run` replays a
    file camera): no camera alert. No clip found fails in CI (nothing checked is no pass)."""
    clips = [p for p in sorted(videos_dir.iterdir()) if p.suffix in (".mp4", ".mov")]
    if not clips:
        msg = f"no sample clip (.mp4, .mov) in {videos_dir}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    for path in clips:
        frames: list[tuple[float, np.ndarray]] = []
        nxt = 0.0
        with av.open(str(path)) as c:
            for fr in c.decode(video=0):
                t = float(fr.time or 0.0)
                if t >= nxt:
                    nxt = t + 1 / FPS
                    frames.append((t, fr.to_ndarray(format="bgr24")))
        mon = CameraHealthMonitor(CameraHealthConfig())
        duration = frames[-1][0] + 1 / FPS
        offset, out = 0.0, []
        while offset < 180.0:
            for t, img in frames:
                out += mon.observe(img, offset + t)
            offset += duration
        assert out == [], (path.name, out)


# ---- review fixes: noise is not frozen, cool-down, store reconciliation, wiring --------------


def noisy(base: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """`base` with Gaussian sensor noise of `sigma` grey levels (the same on each channel)."""
    noise = rng.standard_normal(base.shape[:2], dtype=np.float32) * np.float32(sigma)
    return np.clip(base + noise[:, :, None] + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_a_still_street_with_sensor_noise_is_not_frozen(sigma: float) -> None:
    """An empty street at 2 am, at 1080p as the pipeline hands it over (full resolution) and
    scaled down to 640x360: the sensor noise alone makes each frame differ, so no `frozen`;
    the same picture repeated exactly (a stuck decoder) is."""
    rng = np.random.default_rng(7)
    base = scene(4, (1080, 1920)).astype(np.float32)
    for size in (None, (640, 360)):
        mon = CameraHealthMonitor(CFG)
        frames = []
        for _ in range(seconds(14)):
            img = noisy(base, rng, sigma)
            frames.append(
                img if size is None else cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            )
        changes, t = feed(mon, frames, 0.0)
        assert raised(changes, FaultKind.FROZEN) == [], (sigma, size)
        repeats, _ = feed(mon, [frames[-1]] * seconds(11), t)
        assert len(raised(repeats, FaultKind.FROZEN)) == 1, (sigma, size)


def test_a_cleared_kind_is_not_raised_again_within_the_cool_down() -> None:
    cfg = CFG.model_copy(update={"cooldown_s": 60.0})
    mon = CameraHealthMonitor(cfg)
    base = scene()
    still = live(base, 99)
    t = 0.0
    up, t = feed(mon, [live(base, i) for i in range(3)] + [still] * seconds(11), t)
    assert len(raised(up, FaultKind.FROZEN)) == 1
    down, t = feed(mon, [live(base, i) for i in range(seconds(6))], t)
    assert len(cleared(down, FaultKind.FROZEN)) == 1
    t_clear = cleared(down, FaultKind.FROZEN)[0]
    again, t = feed(mon, [still] * seconds(20), t)  # frozen again, within the minute
    assert raised(again, FaultKind.FROZEN) == []
    late, t = feed(mon, [still] * seconds(40), t)
    [t_again] = raised(late, FaultKind.FROZEN)
    assert t_again - t_clear >= 60.0 - 1e-6


def reporter(engine: Engine, clock: Clock, camera: str = "cam-r") -> CameraFaultReporter:
    return CameraFaultReporter(
        CFG,
        engine,
        camera_id=camera,
        station_id="station-a",
        channels=("store",),
        clock=lambda: clock.mono,
        wall=lambda: clock.wall,
    )


def lose_video(rep: CameraFaultReporter, clock: Clock) -> None:
    rep.poll()
    for _ in range(21):
        clock.advance(0.5)
        rep.poll(online=False, failures=1)


def frames_again(rep: CameraFaultReporter, clock: Clock, n: int = 30) -> None:
    base = scene()
    for k in range(n):
        clock.advance(0.2)
        rep.frame(live(base, k), k / FPS)
        rep.poll()


def test_a_restart_clears_an_open_alert_whose_fault_is_gone(engine: Engine) -> None:
    clock = Clock()
    lose_video(reporter(engine, clock), clock)
    assert [a.kind for a in rows.open_alerts(engine, "cam-r")] == ["video_loss"]
    # Raksha restarts; the camera is fine again: the earlier run's alert is cleared.
    clock.advance(60)
    frames_again(reporter(engine, clock), clock)
    assert rows.open_alerts(engine, "cam-r") == []
    [hist] = rows.history(engine, "cam-r")
    assert hist.cleared_at is not None


def test_a_clear_the_store_missed_is_written_later(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    rep = reporter(engine, clock)
    lose_video(rep, clock)
    real_clear = rows.clear

    def down(*_: Any, **__: Any) -> Any:
        raise RakshaError("the store is unreachable")

    monkeypatch.setattr(rows, "clear", down)
    frames_again(rep, clock)  # cleared in memory; the write failed
    assert rep.monitor.active == []
    assert [a.kind for a in rows.open_alerts(engine, "cam-r")] == ["video_loss"]
    monkeypatch.setattr(rows, "clear", real_clear)
    frames_again(rep, clock, 2)
    assert rows.open_alerts(engine, "cam-r") == []


def test_raising_is_idempotent_and_clearing_closes_every_open_row(engine: Engine) -> None:
    def alert(i: int) -> rows.CameraAlert:
        at = datetime(2026, 12, 6, 8, i, tzinfo=UTC)
        return rows.CameraAlert(f"ca-{i}", "cam-i", "station-a", "frozen", at, at, "frozen")

    with engine.begin() as c:
        assert rows.raise_alert(c, alert(1), None, ("store",)) is not None
    with engine.begin() as c:
        assert rows.raise_alert(c, alert(2), None, ("store",)) is None
    assert [a.id for a in rows.open_alerts(engine, "cam-i")] == ["ca-1"]
    # Two open rows (from before the fix): one clear closes both.
    with engine.begin() as c:
        c.execute(
            camera_alerts.insert(),
            {
                "id": "ca-3",
                "camera_id": "cam-i",
                "station_id": "station-a",
                "kind": "frozen",
                "since": alert(3).since,
                "raised_at": alert(3).since,
                "message": "frozen",
                "snapshot": None,
                "cleared_at": None,
            },
        )
    with engine.begin() as c:
        done = rows.clear(c, "cam-i", "frozen", alert(9).since, ("store",))
    assert done is not None and done.id == "ca-1"
    assert rows.open_alerts(engine, "cam-i") == []


class FakeSource:
    def __init__(self, frames: int) -> None:
        self.left = frames
        self.index = 0

    def info(self) -> Any:
        return None

    def read(self) -> Frame | None:
        if self.left == 0:
            raise SourceError("rtsp: gave up after 3 reconnect attempts")
        self.left -= 1
        self.index += 1
        img = live(scene(), self.index)
        return Frame(img, self.index / FPS, self.index, "cam-p", time.monotonic())

    def health(self) -> SourceHealth:
        return SourceHealth(online=True)

    def close(self) -> None:
        pass


class BrokenAnalyzer:
    motion = None
    shadow_frame = None

    def analyze(self, frame: Frame) -> Any:
        raise RuntimeError("an analyser bug")

    def finish(self) -> list[Any]:
        return []

    def finish_shadow(self) -> list[Any]:
        return []


class Nothing:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def test_the_pipeline_feeds_health_before_analysis_and_raises_when_it_gives_up(
    engine: Engine,
) -> None:
    """Frames reach the health check even when analysis fails (no false "no video"); a live
    camera that gives up reconnecting ends with its video loss and reconnect alerts open."""
    seen: list[float] = []

    class Counting(CameraFaultReporter):
        def frame(self, image: np.ndarray, t: float) -> None:
            seen.append(t)
            super().frame(image, t)

    faults = Counting(CFG, engine, camera_id="cam-p", station_id="station-a", channels=("store",))
    cam = CameraConfig(id="cam-p", hotspot="h1", url="rtsp://10.0.0.9/stream")
    pipe = CameraPipeline(
        cam,
        open_source=lambda: cast(FrameSource, FakeSource(5)),
        make_analyzer=lambda: cast(FrameAnalyzer, BrokenAnalyzer()),
        sink=cast(IncidentSink, Nothing()),
        store=cast(IncidentStore, Nothing()),
        station_id="station-a",
        stopping=threading.Event(),
        faults=faults,
    )
    pipe.run()
    assert len(seen) == 5 and pipe.stats.errors >= 5
    kinds = sorted(a.kind for a in rows.open_alerts(engine, "cam-p"))
    assert kinds == ["reconnect", "video_loss"]


def test_the_clip_check_fails_in_ci_without_clips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no sample clip"):
        test_default_settings_raise_nothing_on_the_real_clips(tmp_path)


def test_moved_is_not_raised_by_a_day_night_switch_or_a_covered_lens() -> None:
    """Edges, not grey levels: a picture whose grey levels all change (here inverted, as an
    IR switch can turn dark clothes bright) is the same scene; a covered lens raises
    `covered`, never `moved` as well."""
    mon = CameraHealthMonitor(CFG)
    base = scene()
    warm, t = feed(mon, [live(base, i) for i in range(seconds(12))], 0.0)
    assert warm == []
    night, t = feed(mon, [255 - live(base, i) for i in range(seconds(15))], t)
    assert night == []
    flat = np.full_like(base, 40)
    covered, _ = feed(mon, [flat] * seconds(15), t)
    assert raised(covered, FaultKind.COVERED) and raised(covered, FaultKind.MOVED) == []


def test_cleared_alerts_snapshots_are_deleted_after_the_retention(engine: Engine) -> None:
    at = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    for i, kind in enumerate(("frozen", "covered")):
        alert = rows.CameraAlert(f"ca-{i}", "cam-s", "station-a", kind, at, at, kind)
        with engine.begin() as c:
            rows.raise_alert(c, alert, b"\xff\xd8 jpeg", ("store",))
    with engine.begin() as c:
        rows.clear(c, "cam-s", "frozen", at + timedelta(hours=1), ("store",))
    store = cast(IncidentStore, type("S", (), {"engine": engine})())
    cutoff = at + timedelta(days=30)
    assert drop_old_camera_snapshots(store, cutoff, 30) == 1
    assert rows.snapshot(engine, "ca-0") is None  # cleared and old: gone, the row stays
    assert rows.get(engine, "ca-0") is not None
    assert rows.snapshot(engine, "ca-1") is not None  # still open: kept
    assert drop_old_camera_snapshots(store, cutoff, 30) == 0
    [entry] = [e for e in AuditLog(engine).entries() if e.action == "camera.retention"]
    assert entry.details["snapshots_deleted"] == ["ca-0"]


def test_stream_times_that_stop_advancing_are_frozen() -> None:
    """The frames still differ, but their stream time is stuck (a stalled demuxer handing out
    the same timestamp): `frozen`, timed by the arrival (`seen`) clock."""
    mon = CameraHealthMonitor(CFG)
    base = scene()
    out: list[Change] = []
    for i in range(seconds(20)):
        mon.seen(100.0 + i / FPS)
        out += mon.observe(live(base, i), 3.0 if i >= seconds(3) else i / FPS)
    assert [c.kind for c in out] == [FaultKind.FROZEN]
