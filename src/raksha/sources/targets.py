"""Parse a source string (path, file://, rtsp://, http(s)://, webcam:N) into what to open."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote, urlsplit

from raksha.errors import SourceError
from raksha.redact import mask_url

#: Schemes read from the network with FFmpeg; rtsp(s) streams are always live.
NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
LIVE_SCHEMES = frozenset({"rtsp", "rtsps"})

_WEBCAM_RE = re.compile(r"^webcam:(?://)?(?P<index>\d+)$", re.IGNORECASE)
_DEVICE_RE = re.compile(r"^/dev/video\d+$")


class SourceKind(Enum):
    FILE = "file"
    NETWORK = "network"
    WEBCAM = "webcam"


@dataclass(frozen=True, slots=True)
class SourceTarget:
    kind: SourceKind
    #: What FFmpeg opens: a file path, a URL, or a device path.
    location: str
    #: The source as given, with secrets masked; safe to log.
    display: str
    #: Lower-case URL scheme ("" for a plain path).
    scheme: str


def parse_target(source: str) -> SourceTarget:
    """Classify a source string; raises SourceError for an empty source or unknown scheme."""
    text = source.strip()
    display = mask_url(text)
    if not text:
        raise SourceError("empty video source: give a file path, a URL or webcam:N")
    webcam = _WEBCAM_RE.match(text)
    if webcam:
        device = f"/dev/video{int(webcam.group('index'))}"
        return SourceTarget(SourceKind.WEBCAM, device, display, "webcam")
    if _DEVICE_RE.match(text):
        return SourceTarget(SourceKind.WEBCAM, text, display, "webcam")
    if "://" not in text:
        # A plain path (including Windows "C:\\..." paths, which have no "://").
        return SourceTarget(SourceKind.FILE, text, display, "")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise SourceError(f"malformed video URL: {display}") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(f"file URL with a remote host is not supported: {display}")
        path = unquote(parts.path)
        return SourceTarget(SourceKind.FILE, path, path, "file")
    if scheme in NETWORK_SCHEMES:
        if not parts.hostname:
            raise SourceError(f"video URL has no host: {display}")
        return SourceTarget(SourceKind.NETWORK, text, display, scheme)
    raise SourceError(
        f"unsupported video source scheme {scheme + '://'!r} in {display}: "
        "use a file path, file://, rtsp://, rtsps://, http(s):// or webcam:N"
    )
