"""Video sources: files, RTSP/HTTP streams and webcams, read at the analysis frame rate.

Heavy imports (PyAV) happen only when a source is opened.
"""

from raksha.redact import mask_url, redact
from raksha.sources.base import FrameSource
from raksha.sources.config import SourceConfig
from raksha.sources.factory import open_live_source, open_source
from raksha.sources.reconnect import ReconnectingSource

__all__ = [
    "FrameSource",
    "ReconnectingSource",
    "SourceConfig",
    "mask_url",
    "open_live_source",
    "open_source",
    "redact",
]
