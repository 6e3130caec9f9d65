"""Pick the backend for a source string: files and streams via PyAV, webcams via v4l2."""

from __future__ import annotations

import time
from collections.abc import Callable

from raksha.errors import SourceError
from raksha.sources.base import FrameSource
from raksha.sources.config import SourceConfig
from raksha.sources.reconnect import ReconnectingSource, tcp_probe
from raksha.sources.targets import SourceKind, parse_target


def open_source(
    url: str, cfg: SourceConfig, source_id: str = "video", *, loop: bool = False
) -> FrameSource:
    """Open a file path, file://, rtsp://, rtsps://, http(s):// URL, `webcam:N` or /dev/videoN.

    Raises SourceError (one line, password masked) when the source cannot be opened.
    `loop=True` replays a file forever (to simulate a live camera).
    """
    target = parse_target(url)
    if loop and target.kind is not SourceKind.FILE:
        raise SourceError(f"loop applies to video files only, not {target.display}")
    # Webcams too: PyAVSource checks the device and opens it with the v4l2 input.
    from raksha.sources.pyav_source import PyAVSource

    return PyAVSource(url, cfg, source_id, loop=loop)


def open_live_source(
    url: str,
    cfg: SourceConfig,
    source_id: str = "camera",
    *,
    loop: bool = False,
    sleep: Callable[[float], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FrameSource:
    """Open a camera that should stay up: streams and webcams are wrapped in a
    ReconnectingSource (which connects on the first `read()`); files open at once, since a
    missing or broken file will not heal by waiting. A bad scheme fails here, not later."""
    target = parse_target(url)
    if target.kind is SourceKind.FILE:
        return open_source(url, cfg, source_id, loop=loop)
    if loop:
        raise SourceError(f"loop applies to video files only, not {target.display}")
    return ReconnectingSource(
        lambda: open_source(url, cfg, source_id),
        cfg,
        source_id,
        display_url=target.display,
        sleep=sleep,
        clock=clock,
        probe=tcp_probe(url),
    )
