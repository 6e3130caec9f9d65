"""Keep a live stream going: reopen it with exponential backoff and jitter when it fails or
stalls."""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import threading
import time
from collections.abc import Callable

from raksha.backoff import Backoff
from raksha.domain import Frame, SourceInfo
from raksha.errors import SourceError
from raksha.redact import mask_url, redact
from raksha.sources.base import FrameSource, SourceHealth
from raksha.sources.config import SourceConfig

log = logging.getLogger(__name__)

SourceFactory = Callable[[], FrameSource]


#: The default of `source.reconnect_jitter`: reconnect waits are drawn from
#: [1 - jitter, 1] of their nominal length, so that cameras that lost their streams together
#: (a switch, a recorder restart) do not all knock again at the same instant; see
#: `raksha.backoff.Backoff`.
RECONNECT_JITTER = 0.1


def reconnect_backoff(cfg: SourceConfig, jitter: float | None = None) -> Backoff:
    """Wait before reconnect attempt n (1-based): initial * factor**(n-1), capped at max,
    less up to `jitter` of it (None: `cfg.reconnect_jitter`)."""
    j = cfg.reconnect_jitter if jitter is None else jitter
    return Backoff(cfg.reconnect_initial_s, cfg.reconnect_factor, cfg.reconnect_max_s, j)


class ReconnectingSource:
    """A FrameSource over a live stream that survives drops, stalls and restarts.

    `factory()` opens the underlying source (raising SourceError when it cannot). When opening
    fails, or a live stream raises SourceError or ends, the stream is reopened after a wait of
    `reconnect_initial_s`, growing by `reconnect_factor` up to `reconnect_max_s`, each wait
    shortened by a random fraction of up to `source.reconnect_jitter` (`reconnect_backoff`;
    the `jitter` argument overrides it); the wait resets
    once a frame arrives. With `cfg.reconnect_attempts = N`, `read()` gives up (raises
    SourceError) when N reconnect attempts in a row have failed; None means retry forever.
    Frames keep increasing `t` and `index` across reconnects; `t` advances by the outage.

    A source that is not live (a file) is passed through: its end and its errors are final.
    `sleep`, `clock` and `rng` (the jitter's draws) are injectable for tests; by default
    `close()` from another thread interrupts a backoff wait.
    """

    def __init__(
        self,
        factory: SourceFactory,
        cfg: SourceConfig,
        source_id: str,
        *,
        display_url: str = "",
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: float | None = None,
        rng: random.Random | None = None,
        probe: Callable[[], str | None] | None = None,
    ) -> None:
        self._factory = factory
        #: A cheap "is the camera there at all" check tried before each reopening: None when
        #: it answers, else why not.
        self._probe = probe
        self._cfg = cfg
        self._source_id = source_id
        self._display = mask_url(display_url) if display_url else source_id
        self._stop = threading.Event()
        self._sleep: Callable[[float], object] = sleep or self._stop.wait
        self._clock = clock
        self._backoff = reconnect_backoff(cfg, jitter)
        self._rng = rng
        #: The wait before the next attempt, drawn when it was scheduled (and logged).
        self._next_wait = 0.0
        self._inner: FrameSource | None = None
        self._info = SourceInfo(
            source_id=source_id,
            display_url=self._display,
            width=0,
            height=0,
            native_fps=None,
            frame_count=None,
            is_live=True,
        )
        #: True while frames are arriving from an open stream.
        self.online = False
        #: `clock()` when the last frame arrived, or None before the first.
        self.last_frame_at: float | None = None
        #: Successful reopenings after the stream was lost or failed to open.
        self.reconnects = 0
        #: Failed attempts in a row (opening failed, or the stream died before a frame).
        self.failures = 0
        #: The last error, masked and on one line; None before any.
        self.last_error: str | None = None
        #: Every backoff wait so far, in seconds (for status pages and tests).
        self.waits: list[float] = []
        self._retries = 0
        self._need_wait = False
        self._had_connection = False
        self._fresh = True
        self._frames_from_inner = 0
        self._last_t: float | None = None
        self._last_index = -1
        self._t_shift = 0.0
        self._index_shift = 0
        self._closed = False
        self._reading = False
        self._state_lock = threading.Lock()

    @property
    def info(self) -> SourceInfo:
        return self._info

    @property
    def source_id(self) -> str:
        return self._source_id

    def health(self) -> SourceHealth:
        return SourceHealth(online=self.online, last_error=self.last_error, failures=self.failures)

    def read(self) -> Frame | None:
        """The next frame; waits and reconnects as needed. None once closed (or a file ends)."""
        with self._state_lock:
            if self._closed:
                return None
            self._reading = True
        try:
            return self._next_frame()
        finally:
            with self._state_lock:
                self._reading = False
                if self._closed:
                    self._drop_inner()

    def close(self) -> None:
        """Stop; safe from another thread (it ends a backoff wait at once, and a read in
        progress closes the stream when it returns)."""
        with self._state_lock:
            self._closed = True
            self._stop.set()
            self.online = False
            if not self._reading:
                self._drop_inner()

    def _next_frame(self) -> Frame | None:
        while not self._closed:
            inner = self._inner or self._connect()
            if inner is None:
                return None
            try:
                frame = inner.read()
            except (SourceError, OSError) as exc:
                if not inner.info.is_live:
                    raise
                self._lost(redact(str(exc)))
                continue
            if frame is None:
                if not inner.info.is_live:
                    return None
                self._lost("the stream ended")
                continue
            return self._stamp(frame)
        return None

    # -- connection ----------------------------------------------------------------------

    def _connect(self) -> FrameSource | None:
        while not self._closed:
            if self._need_wait:
                self._retries += 1
                wait = self._next_wait
                self.waits.append(wait)
                self._sleep(wait)
                if self._closed:
                    return None
            unreachable = self._probe() if self._probe is not None and self._retries > 0 else None
            if unreachable is not None:
                # Still unreachable: a cheap connect said so, not a full open's timeout, so
                # attempts can come often and a camera is back within seconds of its stream.
                self._failed(f"cannot reach {self._display}: {unreachable}", "unreachable")
                continue
            try:
                inner = self._factory()
            except SourceError as exc:
                self._failed(redact(str(exc)), "cannot open")
                continue
            if self._closed:
                inner.close()
                return None
            if self._had_connection:
                self.reconnects += 1
                log.info(
                    "source %s (%s): reconnected after %d attempt(s)",
                    self._source_id,
                    self._display,
                    self._retries,
                )
            self._had_connection = True
            self._inner = inner
            self._info = dataclasses.replace(inner.info, display_url=self._display)
            self._fresh = True
            self._frames_from_inner = 0
            return inner
        return None

    def _lost(self, reason: str) -> None:
        """The open stream failed or ended: drop it and schedule a reconnect."""
        had_frames = self._frames_from_inner > 0
        self._drop_inner()
        self.online = False
        if had_frames:
            self.last_error = reason
            log.warning(
                "source %s (%s) lost: %s; reconnecting in %.1f s",
                self._source_id,
                self._display,
                reason,
                self._schedule_wait(),
            )
        else:
            self._failed(reason, "failed before its first frame")

    def _failed(self, reason: str, what: str) -> None:
        self.failures += 1
        self.online = False
        self.last_error = reason
        limit = self._cfg.reconnect_attempts
        if limit is not None and self._retries >= limit:
            self._closed = True
            raise SourceError(
                f"source {self._source_id} ({self._display}): giving up after "
                f"{self._retries} reconnect attempt(s): {reason}"
            )
        log.warning(
            "source %s (%s) %s: %s; retrying in %.1f s",
            self._source_id,
            self._display,
            what,
            reason,
            self._schedule_wait(),
        )

    def _schedule_wait(self) -> float:
        """Draw the wait before the next attempt (`_retries + 1`) and ask `_connect` for it."""
        self._need_wait = True
        self._next_wait = self._backoff.delay(self._retries + 1, self._rng)
        return self._next_wait

    def _drop_inner(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            try:
                inner.close()
            except Exception as exc:  # closing a broken stream must not stop the reconnect
                log.debug("source %s: error while closing: %s", self._source_id, redact(str(exc)))

    # -- frames --------------------------------------------------------------------------

    def _stamp(self, frame: Frame) -> Frame:
        """Shift t and index so that they keep increasing across reconnects."""
        now = self._clock()
        if self._fresh:
            self._fresh = False
            if self._last_t is not None and self.last_frame_at is not None:
                outage = max(now - self.last_frame_at, 1e-3)
                self._t_shift = self._last_t + outage - frame.t
                self._index_shift = self._last_index + 1 - frame.index
        self._frames_from_inner += 1
        self._retries = 0
        self._need_wait = False
        self.failures = 0
        self.online = True
        self.last_frame_at = now
        if self._t_shift or self._index_shift:
            frame = dataclasses.replace(
                frame, t=frame.t + self._t_shift, index=frame.index + self._index_shift
            )
        self._last_t = frame.t
        self._last_index = frame.index
        return frame


def tcp_probe(url: str, timeout_s: float = 1.0) -> Callable[[], str | None] | None:
    """A check that a TCP connection to the URL's host and port opens within `timeout_s`:
    it returns None when it does, else the reason ("connection refused", "timed out"). None
    for a URL without a network host (a webcam)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    port = port or _DEFAULT_PORTS.get(parts.scheme.lower())
    if port is None:
        return None
    address = (host, port)

    def probe() -> str | None:
        try:
            socket.create_connection(address, timeout=timeout_s).close()
        except TimeoutError:
            return f"no TCP connection within {timeout_s:g} s"
        except ConnectionRefusedError:
            return "connection refused"
        except OSError as exc:
            return exc.strerror or type(exc).__name__
        return None

    return probe


_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}
