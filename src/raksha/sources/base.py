"""The FrameSource seam."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from raksha.domain import Frame, SourceInfo


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How a source is doing, as a camera's status row and the run's table show it."""

    #: False while a live stream is down (reconnecting).
    online: bool = True
    #: Why it is down (masked, one line), or the last error it recovered from.
    last_error: str | None = None
    #: Frames never analysed because analysis fell behind (dropped from a buffer, or given
    #: up by a real-time reader that fell far behind).
    dropped: int = 0
    #: Frames a real-time file reader released later than one analysis interval.
    late: int = 0
    #: CPU seconds of a read-ahead thread (decoding and colour conversion).
    read_cpu_s: float = 0.0
    #: Reconnect attempts that failed in a row (0 while connected, or for a file).
    failures: int = 0


class FrameSource(Protocol):
    """Yields analysed frames, in order, at the configured analysis rate."""

    @property
    def info(self) -> SourceInfo: ...

    def read(self) -> Frame | None:
        """The next analysed frame, or None when the stream has ended."""
        ...

    def health(self) -> SourceHealth:
        """Up or down, why, and what was dropped: safe to call from any thread."""
        ...

    def close(self) -> None: ...
