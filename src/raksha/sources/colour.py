"""Decoded video frames to BGR arrays, with one swscale context per stream.

PyAV's `VideoFrame.to_ndarray(format="bgr24")` sets up a new swscale context for every
frame it converts, which costs more than the conversion itself at camera sub-stream sizes.
`BgrConverter` keeps one `VideoReformatter` for the stream, so the context is set up once
(and again only when the frame size or format changes): the same pixels, bit for bit, at
a third of the cost for 640x360 frames (benchmarks/colour.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

U8 = npt.NDArray[np.uint8]


class BgrConverter:
    """Converts the frames of one stream to HxWx3 BGR uint8 arrays. Not thread-safe: one
    per stream, used by the thread that decodes it."""

    def __init__(self) -> None:
        self._reformatter = VideoReformatter()

    def __call__(self, frame: Any) -> U8:
        """`frame` (an `av.VideoFrame`) as BGR."""
        bgr = self._reformatter.reformat(frame, format="bgr24")
        return np.asarray(bgr.to_ndarray(), dtype=np.uint8)
