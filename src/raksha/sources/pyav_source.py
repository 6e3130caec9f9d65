"""Read video with PyAV (FFmpeg): files, RTSP/HTTP streams and local cameras.

Every frame is decoded (codecs need that), but only frames due at the analysis rate are
converted to BGR arrays; `stats` counts both so callers and tests can see the difference.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error

from raksha.domain import Frame, SourceInfo
from raksha.errors import SourceError
from raksha.redact import redact
from raksha.sources.base import SourceHealth
from raksha.sources.colour import BgrConverter
from raksha.sources.config import SourceConfig
from raksha.sources.targets import LIVE_SCHEMES, SourceKind, parse_target
from raksha.sources.webcam import WEBCAM_FORMAT, require_device

log = logging.getLogger(__name__)

#: FFmpeg demuxers that read still images; such inputs are refused as "not a video".
_IMAGE_FORMATS = frozenset({"image2", "image2pipe"})
#: Slack when comparing a frame time with the next due time (absorbs float rounding).
_TOLERANCE_S = 1e-4
#: A jump back in time larger than this is a timestamp reset, not reordering.
_BACKWARD_JUMP_S = 1.0


@dataclass(slots=True)
class SourceStats:
    """Running counts for one source (across loop restarts)."""

    #: Frames decoded (every frame of the stream up to now).
    decoded: int = 0
    #: Frames selected for analysis and returned by `read()`.
    analysed: int = 0
    #: Frames converted to BGR arrays; equals `analysed` by construction.
    converted: int = 0
    #: Packets that failed to decode plus read errors that ended a file early.
    errors: int = 0
    #: Times a looping file was restarted from its beginning.
    restarts: int = 0
    #: With `skip_b_frames`: True once the I and P frames alone came too far apart for the
    #: analysis rate and B-frames were decoded again.
    b_frames_back: bool = False


def _reason(exc: BaseException, *urls: str) -> str:
    """A one-line, lower-case, secret-free description of an FFmpeg/OS error."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = " ".join(redact(str(text), *urls).split())
    return text[:1].lower() + text[1:]


class PyAVSource:
    """A FrameSource over anything FFmpeg can open: a file, an RTSP/HTTP URL or a camera.

    Frames are analysed at `cfg.fps` by stream time: a frame is returned when its timestamp
    reaches the next due time, which then advances by `1/cfg.fps` (every frame is returned
    when the stream's own rate is lower). `loop=True` replays a file forever with `t` and
    `index` still increasing, to stand in for a live camera.
    """

    def __init__(
        self,
        url_or_path: str,
        cfg: SourceConfig,
        source_id: str = "video",
        *,
        loop: bool = False,
    ) -> None:
        self._cfg = cfg
        self._source_id = source_id
        self._secret_urls = (url_or_path, url_or_path.strip())
        self._target = parse_target(url_or_path)
        if loop and self._target.kind is not SourceKind.FILE:
            raise SourceError(f"loop applies to video files only, not {self._target.display}")
        self._loop = loop
        self.stats = SourceStats()
        self._step = 1.0 / cfg.fps
        self._next_due = 0.0
        self._t_offset = 0.0
        self._last_t: float | None = None
        self._last_reason = ""
        self._closed = False
        self._reading = False
        self._released = False
        self._state_lock = threading.Lock()
        #: Decoding I and P frames only (`cfg.skip_b_frames`), until they come too sparsely.
        self._skip_b = cfg.skip_b_frames
        self._to_bgr = BgrConverter()
        self._last_decoded_t: float | None = None
        #: `source.hw_decode: auto` found no usable GPU decoding: the CPU from then on.
        self._hw_failed = False
        self._container, self._stream = self._open()
        self._origin: int | None = self._stream.start_time
        self._info = self._describe()
        rate = self._info.native_fps
        self._frame_period = 1.0 / rate if rate else self._step
        self._frames = self._decoded_frames()

    # -- FrameSource -------------------------------------------------------------------

    @property
    def info(self) -> SourceInfo:
        return self._info

    def health(self) -> SourceHealth:
        """A source that is open is up (a live stream's outages are `ReconnectingSource`'s)."""
        return SourceHealth()

    def read(self) -> Frame | None:
        """The next analysed frame, or None at the end of the stream (never for loop=True)."""
        with self._state_lock:
            if self._closed:
                return None
            self._reading = True
        try:
            return self._next_frame()
        except SourceError:
            if self._closed:  # closed from another thread while this read was blocked
                return None
            raise
        finally:
            with self._state_lock:
                self._reading = False
                if self._closed:
                    self._release()

    def close(self) -> None:
        """Close the stream. Safe from another thread: a read in progress finishes first
        (a blocked network read gives up within `read_timeout_s`)."""
        with self._state_lock:
            self._closed = True
            if not self._reading:
                self._release()

    def _next_frame(self) -> Frame | None:
        for av_frame in self._frames:
            captured_at = time.monotonic()
            index = self.stats.decoded
            self.stats.decoded += 1
            t = self._time_of(av_frame)
            if self._skip_b:
                self._check_b_skipping(t)
            if not self._is_due(t):
                if self._closed:
                    return None
                continue
            image = self._to_bgr(av_frame)
            self.stats.converted += 1
            self.stats.analysed += 1
            return Frame(
                image=image, t=t, index=index, source_id=self._source_id, captured_at=captured_at
            )
        self._finish()
        return None

    def _check_b_skipping(self, t: float) -> None:
        """Decode B-frames again if the frames decoded without them come further apart than
        the analysis interval (a stream with few P-frames): every analysed slot gets a frame."""
        last, self._last_decoded_t = self._last_decoded_t, t
        if last is None or t - last <= self._step + _TOLERANCE_S:
            return
        self._skip_b = False
        self.stats.b_frames_back = True
        self._stream.codec_context.skip_frame = (
            "NONREF" if self._cfg.skip_nonref_frames else "DEFAULT"
        )
        log.info(
            "video %s: I and P frames came %.2f s apart, more than the analysis interval; "
            "decoding B-frames again",
            self._target.display,
            t - last,
        )

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self._frames.close()
        self._container.close()

    def __enter__(self) -> PyAVSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PyAVSource({self._target.display!r}, source_id={self._source_id!r})"

    # -- opening -------------------------------------------------------------------------

    @property
    def _live(self) -> bool:
        return self._target.kind is not SourceKind.FILE

    def _open(self) -> tuple[Any, Any]:
        target = self._target
        options: dict[str, str] = {}
        kwargs: dict[str, Any] = {}
        if target.kind is SourceKind.FILE:
            self._check_file(Path(target.location))
        if target.kind is SourceKind.WEBCAM:
            require_device(target.location)
            kwargs["format"] = WEBCAM_FORMAT
        if target.scheme in LIVE_SCHEMES:
            options["rtsp_transport"] = "tcp"
        if self._live:
            kwargs["timeout"] = (self._cfg.open_timeout_s, self._cfg.read_timeout_s)
        hw = self._hw_accel()
        gpu_error: BaseException | None = None
        if hw is not None:
            try:
                container = av.open(
                    target.location, mode="r", options=options, hwaccel=hw, **kwargs
                )
            except (av.error.FFmpegError, OSError) as exc:
                gpu_error = exc  # the GPU's fault only if the CPU can open it (below)
            else:
                return self._with_stream(container)
        started = time.monotonic()
        try:
            container = av.open(target.location, mode="r", options=options, **kwargs)
        except (av.error.FFmpegError, OSError) as exc:
            # The camera itself (down, wrong password, bad file): said as without the GPU.
            timed_out = time.monotonic() - started >= 0.95 * self._cfg.open_timeout_s
            raise self._open_error(exc, timed_out=self._live and timed_out) from None
        if gpu_error is not None:
            reason = _reason(gpu_error, *self._secret_urls)
            if self._cfg.hw_decode == "cuda":
                container.close()
                raise SourceError(
                    f"source.hw_decode cuda: cannot decode {target.display} on the GPU "
                    f"({reason}); use hw_decode: auto to fall back to the CPU, or off"
                )
            log.warning("%s: no GPU decoding (%s); decoding on the CPU", target.display, reason)
            self._hw_failed = True
        return self._with_stream(container)

    def _with_stream(self, container: Any) -> tuple[Any, Any]:
        try:
            stream = self._video_stream(container)
        except BaseException:
            container.close()
            raise
        return container, stream

    def _hw_accel(self) -> Any:
        """The CUDA hwaccel of `source.hw_decode` (None: decode on the CPU). With `auto`, a
        source whose GPU decoding failed once stays on the CPU, also after reconnects."""
        mode = self._cfg.hw_decode
        if mode == "off" or self._hw_failed:
            return None
        from av.codec.hwaccel import HWAccel, hwdevices_available

        if "cuda" not in hwdevices_available():
            if mode == "cuda":
                raise SourceError(
                    "source.hw_decode cuda: this FFmpeg build has no CUDA decoding; "
                    "use hw_decode: auto or off"
                )
            self._hw_failed = True
            log.warning(
                "%s: FFmpeg has no CUDA decoding; decoding on the CPU", self._target.display
            )
            return None
        return HWAccel("cuda", allow_software_fallback=mode == "auto")

    def _check_file(self, path: Path) -> None:
        shown = self._target.display
        if not path.exists():
            raise SourceError(f"video file not found: {shown}")
        if path.is_dir():
            raise SourceError(f"not a video file (it is a folder): {shown}")
        if path.stat().st_size == 0:
            raise SourceError(f"not a video file (it is empty): {shown}")

    def _open_error(self, exc: BaseException, *, timed_out: bool = False) -> SourceError:
        target = self._target
        shown = target.display
        reason = _reason(exc, *self._secret_urls)
        if target.kind is SourceKind.FILE:
            if isinstance(exc, FileNotFoundError):
                return SourceError(f"video file not found: {shown}")
            if isinstance(exc, PermissionError):
                return SourceError(f"cannot read video file (permission denied): {shown}")
            if isinstance(exc, av.error.InvalidDataError):
                return SourceError(f"not a video file (unrecognised or corrupt data): {shown}")
            return SourceError(f"cannot open video file {shown}: {reason}")
        what = "webcam" if target.kind is SourceKind.WEBCAM else "stream"
        if timed_out or isinstance(exc, av.error.ExitError | TimeoutError):
            return SourceError(
                f"cannot open {what} {shown}: no answer within {self._cfg.open_timeout_s:g} s"
            )
        if isinstance(exc, ConnectionRefusedError):
            return SourceError(f"cannot connect to {what} {shown}: connection refused")
        if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
            return SourceError(f"access to {what} {shown} denied: check the user name and password")
        return SourceError(f"cannot open {what} {shown}: {reason}")

    def _video_stream(self, container: Any) -> Any:
        shown = self._target.display
        fmt = str(container.format.name)
        if fmt in _IMAGE_FORMATS or fmt.endswith("_pipe"):
            raise SourceError(f"not a video file (it is a still image): {shown}")
        if not container.streams.video:
            raise SourceError(f"no video stream in {shown}")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise SourceError(f"video stream of {shown} has no frame size (corrupt header?)")
        ctx.thread_type = "AUTO"
        ctx.thread_count = self._cfg.decode_threads
        if self._skip_b:
            ctx.skip_frame = "BIDIR"
        elif self._cfg.skip_nonref_frames:
            ctx.skip_frame = "NONREF"
        return stream

    def _describe(self) -> SourceInfo:
        stream = self._stream
        rate = stream.average_rate or stream.codec_context.framerate or stream.guessed_rate
        native_fps = float(rate) if rate else None
        is_live = self._live and (
            self._target.kind is SourceKind.WEBCAM
            or self._target.scheme in LIVE_SCHEMES
            or self._container.duration is None
        )
        frame_count: int | None = None
        if not is_live and not self._loop:
            frame_count = int(stream.frames) or None
            if frame_count is None and stream.duration and native_fps:
                frame_count = round(float(stream.duration * stream.time_base) * native_fps)
        return SourceInfo(
            source_id=self._source_id,
            display_url=self._target.display,
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            native_fps=native_fps,
            frame_count=frame_count,
            is_live=is_live,
        )

    # -- decoding ------------------------------------------------------------------------

    def _decoded_frames(self) -> Generator[Any, None, None]:
        """Every decoded av.VideoFrame; restarts the file at its end when looping."""
        while True:
            decoded_before = self.stats.decoded
            yield from self._decode_container()
            if not self._loop or self.stats.decoded == decoded_before:
                return
            self._restart()

    def _decode_container(self) -> Iterator[Any]:
        packets = self._container.demux(self._stream)
        while True:
            started = time.monotonic()
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError) as exc:
                stalled = time.monotonic() - started >= 0.95 * self._cfg.read_timeout_s
                self._read_failed(exc, stalled=stalled)
                return
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, OSError) as exc:
                self._decode_failed(exc)
                continue
            yield from frames

    def _read_failed(self, exc: BaseException, *, stalled: bool = False) -> None:
        shown = self._target.display
        self._last_reason = _reason(exc, *self._secret_urls)
        if self._live:
            if stalled or isinstance(exc, av.error.ExitError | TimeoutError):
                raise SourceError(
                    f"stream {shown} stalled: no data for {self._cfg.read_timeout_s:g} s"
                ) from None
            raise SourceError(f"stream {shown} failed: {self._last_reason}") from None
        self.stats.errors += 1
        log.warning(
            "video %s: read error after %d frames (%s); treating it as the end",
            shown,
            self.stats.decoded,
            self._last_reason,
        )

    def _decode_failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        self._last_reason = _reason(exc, *self._secret_urls)
        level = logging.WARNING if self.stats.errors == 1 else logging.DEBUG
        log.log(
            level,
            "video %s: cannot decode a packet after %d frames (%s); skipping it",
            self._target.display,
            self.stats.decoded,
            self._last_reason,
        )

    def _restart(self) -> None:
        """Reopen a looping file so that its frames follow on from the last one."""
        self._t_offset = (self._last_t if self._last_t is not None else self._t_offset) + (
            self._frame_period
        )
        self._container.close()
        self._container, self._stream = self._open()
        self._origin = self._stream.start_time
        self._last_t = None
        self.stats.restarts += 1

    def _finish(self) -> None:
        if self.stats.decoded == 0 and self.stats.errors > 0:
            raise SourceError(
                f"cannot decode any frame of {self._target.display}: {self._last_reason}"
            )
        if self.stats.errors:
            log.info(
                "video %s ended after %d frames with %d decode errors",
                self._target.display,
                self.stats.decoded,
                self.stats.errors,
            )

    # -- timing --------------------------------------------------------------------------

    def _time_of(self, av_frame: Any) -> float:
        """Seconds since the stream start, kept increasing across loops and resets."""
        pts = av_frame.pts
        if pts is None:
            t = self._t_offset if self._last_t is None else self._last_t + self._frame_period
        else:
            if self._origin is None:
                self._origin = int(pts)
            base = av_frame.time_base or self._stream.time_base
            t = self._t_offset + float((int(pts) - self._origin) * Fraction(base))
            if self._last_t is not None and t < self._last_t - _BACKWARD_JUMP_S:
                # The stream's clock was reset: carry on from the last time seen.
                self._t_offset += self._last_t + self._frame_period - t
                t = self._last_t + self._frame_period
        self._last_t = t
        return t

    def _is_due(self, t: float) -> bool:
        if t + _TOLERANCE_S < self._next_due:
            return False
        self._next_due += self._step
        if self._next_due <= t + _TOLERANCE_S:
            # Behind schedule (a gap, or a native rate below the analysis rate): re-anchor.
            self._next_due = t + self._step
        return True
