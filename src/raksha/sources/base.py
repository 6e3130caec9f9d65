"""The FrameSource seam."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from raksha.domain import Frame, SourceInfo


@runtime_checkable
class FrameSource(Protocol):
    """Yields analysed frames, in order, at the configured analysis rate."""

    @property
    def info(self) -> SourceInfo: ...

    def read(self) -> Frame | None:
        """The next analysed frame, or None when the stream has ended."""
        ...

    def close(self) -> None: ...
