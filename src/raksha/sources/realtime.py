"""Live-camera behaviour for the multi-camera runtime.

`RealtimeSource` plays a file at its own pace, releasing each frame when its timestamp comes
due on the wall clock, so that a looped clip behaves like a camera (for demos and
benchmarks). `FrameBuffer` is a small bounded queue that drops its oldest frame, counting
every drop, when the consumer falls behind. `BufferedSource` puts the two sides together: a
thread of its own reads the stream into a FrameBuffer, so that slow analysis never holds up
the stream and latency stays bounded (old frames are dropped instead of queued).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from raksha.domain import Frame, SourceInfo
from raksha.sources.base import FrameSource, SourceHealth
from raksha.sources.config import SourceConfig

log = logging.getLogger(__name__)

#: A paced source this far behind its schedule re-anchors instead of catching up in a burst.
RESYNC_AFTER_S = 2.0


@dataclass(slots=True)
class PacingStats:
    #: Frames released.
    frames: int = 0
    #: Frames released later than one analysis interval after they came due.
    late: int = 0
    #: Largest delay seen between a frame coming due and its release, seconds.
    max_lag_s: float = 0.0
    #: Times the schedule was re-anchored after falling more than RESYNC_AFTER_S behind.
    resyncs: int = 0
    #: Analysis intervals given up by those re-anchorings: frames a live camera would have
    #: delivered meanwhile and that were never analysed (counted as dropped).
    skipped: int = 0


class RealtimeSource:
    """Releases the frames of `inner` no sooner than a live camera would deliver them.

    The first frame sets the schedule: frame `t` comes due at
    `start + start_delay_s + (t - t_first)` on `clock`. `read()` waits until then
    (interruptibly: `close()` from another thread ends the wait) and stamps the frame's
    `captured_at` with its due time, so latency measured from `captured_at` includes any
    time the reader spent behind schedule. A reader that falls more than RESYNC_AFTER_S
    behind re-anchors the schedule (a live stream would have moved on) and counts it.
    """

    def __init__(
        self,
        inner: FrameSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        start_delay_s: float = 0.0,
    ) -> None:
        self._inner = inner
        self._delay = max(0.0, start_delay_s)
        self._clock = clock
        self._stop = threading.Event()
        self._sleep: Callable[[float], object] = sleep or self._stop.wait
        self._anchor: float | None = None  # clock time at which t == 0
        self._last_t: float | None = None
        self.stats = PacingStats()

    @property
    def info(self) -> SourceInfo:
        return self._inner.info

    @property
    def inner(self) -> FrameSource:
        return self._inner

    def read(self) -> Frame | None:
        if self._stop.is_set():
            return None
        frame = self._inner.read()
        if frame is None or self._stop.is_set():
            return None
        if self._anchor is None:
            self._anchor = self._clock() + self._delay - frame.t
        due = self._anchor + frame.t
        wait = due - self._clock()
        if wait > 0:
            self._sleep(wait)
            if self._stop.is_set():
                return None
        lag = self._clock() - due
        step = frame.t - self._last_t if self._last_t is not None else 0.0
        self._last_t = frame.t
        self.stats.frames += 1
        self.stats.max_lag_s = max(self.stats.max_lag_s, lag)
        if step > 0 and lag > step:
            self.stats.late += 1
        if lag > RESYNC_AFTER_S:
            self._anchor += lag
            self.stats.resyncs += 1
            if step > 0:
                self.stats.skipped += int(lag / step)
            log.warning("source %s fell %.1f s behind real time", self.info.source_id, lag)
        return dataclasses.replace(frame, captured_at=due)

    def health(self) -> SourceHealth:
        inner = self._inner.health()
        return dataclasses.replace(
            inner, dropped=inner.dropped + self.stats.skipped, late=inner.late + self.stats.late
        )

    def close(self) -> None:
        self._stop.set()
        self._inner.close()


@dataclass(slots=True)
class BufferStats:
    #: Frames offered by the producer.
    put: int = 0
    #: Frames handed to the consumer.
    taken: int = 0
    #: Frames dropped (the oldest in the buffer) because the buffer was full.
    dropped: int = 0


class FrameBuffer:
    """A bounded FIFO between one producer and one consumer thread.

    By default `put` never blocks: when the buffer holds `capacity` frames, the oldest is
    dropped and counted (a live camera must not fall behind). With `lossless=True` (a file
    analysed as fast as it decodes) `put` waits for room instead, so nothing is dropped. `get`
    blocks until a frame arrives or the buffer is closed; after `close()` it hands out what is
    left, then None.
    """

    def __init__(self, capacity: int = 2, *, lossless: bool = False) -> None:
        if capacity < 1:
            raise ValueError("a frame buffer holds at least one frame")
        self.capacity = capacity
        self.lossless = lossless
        self.stats = BufferStats()
        self._items: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, frame: Frame) -> bool:
        """Queue `frame`; True when an older frame had to be dropped to make room."""
        with self._cond:
            if self.lossless:
                self._cond.wait_for(lambda: len(self._items) < self.capacity or self._closed)
            if self._closed:
                return False
            self.stats.put += 1
            dropped = len(self._items) >= self.capacity
            if dropped:
                self._items.popleft()
                self.stats.dropped += 1
            self._items.append(frame)
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float | None = None) -> Frame | None:
        """The oldest queued frame; None once closed and empty, or after `timeout` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if not self._items:
                return None
            self.stats.taken += 1
            frame = self._items.popleft()
            if self.lossless:
                self._cond.notify_all()  # a producer may be waiting for room
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class BufferedSource:
    """A FrameSource whose frames are read ahead by a thread of its own.

    The reader thread starts on the first `read()` and fills a FrameBuffer of `capacity`
    frames; when analysis falls behind, the oldest buffered frame is dropped and counted
    (`dropped`), or with `lossless=True` the reader waits for room (a file read ahead while
    the previous frame is analysed). The end of the stream, and an error raised by
    `inner.read()`, reach the consumer after the frames read before them. `read_cpu_s` is
    the CPU time the reader thread has used (decoding and colour conversion); `health()` is
    the source below's with this buffer's drops and reader CPU added.
    """

    def __init__(
        self,
        inner: FrameSource,
        capacity: int = 2,
        *,
        name: str = "",
        lossless: bool = False,
        nice: int = 0,
    ) -> None:
        self._inner = inner
        self._nice = nice
        self._buffer = FrameBuffer(capacity, lossless=lossless)
        self._name = name or f"read-{inner.info.source_id}"
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: CPU seconds used by the reader thread so far.
        self.read_cpu_s = 0.0

    @property
    def info(self) -> SourceInfo:
        return self._inner.info

    @property
    def inner(self) -> FrameSource:
        return self._inner

    @property
    def buffer(self) -> FrameBuffer:
        return self._buffer

    @property
    def dropped(self) -> int:
        """Frames dropped by the buffer, plus those the source below gave up (a real-time
        reader that fell far behind)."""
        return self.health().dropped

    def health(self) -> SourceHealth:
        """The source below's health, with this buffer's drops and reader CPU added."""
        inner = self._inner.health()
        return dataclasses.replace(
            inner,
            dropped=inner.dropped + self._buffer.stats.dropped,
            read_cpu_s=inner.read_cpu_s + self.read_cpu_s,
        )

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def read(self) -> Frame | None:
        self.start()
        frame = self._buffer.get()
        if frame is None and self._error is not None and not self._stop.is_set():
            raise self._error
        return frame

    def close(self) -> None:
        """Stop reading; safe from any thread (a blocked `read()` returns None)."""
        self._stop.set()
        self._inner.close()
        self._buffer.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        if self._nice:
            lower_thread_priority(self._nice)
        cpu0 = time.thread_time()
        try:
            while not self._stop.is_set():
                frame = self._inner.read()
                self.read_cpu_s = time.thread_time() - cpu0
                if frame is None:
                    break
                self._buffer.put(frame)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._error = exc
        finally:
            self.read_cpu_s = time.thread_time() - cpu0
            self._buffer.close()


def lower_thread_priority(by: int) -> bool:
    """Make the calling thread `by` nicer (at most 19), on Linux, where a nice value
    belongs to a thread; elsewhere it belongs to the whole process, which is left alone.
    Returns whether the priority was lowered."""
    if sys.platform != "linux" or by <= 0:
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
    except OSError as exc:  # a sandbox may refuse; the thread then keeps its priority
        log.debug("could not lower the read-ahead thread's priority: %s", exc)
        return False
    return True


def live_feed(source: FrameSource, cfg: SourceConfig, *, is_file: bool) -> FrameSource:
    """How the multi-camera runtime reads a camera.

    A live stream (or a file played in real time, `cfg.realtime_files`) is read ahead by a
    thread of its own into a drop-oldest buffer of `cfg.buffer_frames`; a file played flat
    out is read ahead losslessly (`read_ahead`), so that nothing is dropped.
    Real-time files start at a random point of their first analysis interval: independent
    cameras are not in step with each other, and files started together would be.
    """
    if is_file and not cfg.realtime_files:
        return read_ahead(source, cfg)
    if is_file:
        source = RealtimeSource(source, start_delay_s=random.uniform(0.0, 1.0 / cfg.fps))
    return BufferedSource(source, cfg.buffer_frames)


def read_ahead(source: FrameSource, cfg: SourceConfig) -> FrameSource:
    """A file analysed flat out, decoded `cfg.read_ahead_frames` ahead by a thread of its own
    (lossless: the reader waits for room); the source itself when that setting is 0."""
    if cfg.read_ahead_frames == 0:
        return source
    return BufferedSource(source, cfg.read_ahead_frames, lossless=True, nice=cfg.read_ahead_nice)
