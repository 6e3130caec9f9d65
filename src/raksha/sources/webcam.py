"""Local cameras (`webcam:N`, `/dev/videoN`), read through FFmpeg's video4linux2 input.

`PyAVSource` opens them; this module only knows the input format and checks the device, so
it imports nothing of the reader.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from raksha.errors import SourceError

#: FFmpeg input format for local cameras on Linux.
WEBCAM_FORMAT = "v4l2"


def require_device(device: str) -> None:
    """Raise SourceError unless `device` is a camera device this process can open."""
    if not sys.platform.startswith("linux"):
        raise SourceError(
            f"webcam {device}: local cameras are supported on Linux (video4linux2) only; "
            "on other systems stream the camera over RTSP"
        )
    path = Path(device)
    if not path.exists():
        raise SourceError(f"webcam not found: {device} (no such device)")
    if path.is_dir() or path.is_file():
        raise SourceError(f"webcam {device} is not a camera device")
    if not os.access(path, os.R_OK):
        raise SourceError(f"webcam {device}: permission denied (is the user in the video group?)")
