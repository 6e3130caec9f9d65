"""Decoding I and P frames only (`source.skip_b_frames`) on a real H.264 clip with B-frames:
fewer frames decoded, the same analysed rate, and B-frames back when I/P frames are too few."""

from __future__ import annotations

from pathlib import Path

from raksha.sources.config import SourceConfig
from raksha.sources.pyav_source import PyAVSource

#: 1920x1080 at 25 fps, 105 frames: 1 I, 26 P, 78 B; I/P frames at most 0.16 s apart.
STREET = "facenet-pytorch__video.mp4"


def _read_all(path: Path, **cfg: object) -> tuple[list[float], PyAVSource]:
    src = PyAVSource(str(path), SourceConfig.model_validate(cfg))
    times = []
    while (frame := src.read()) is not None:
        times.append(frame.t)
    src.close()
    return times, src


def test_i_and_p_frames_suffice_for_five_analysed_frames_a_second(videos_dir: Path) -> None:
    clip = videos_dir / STREET
    every, full = _read_all(clip, fps=5.0, skip_nonref_frames=True)
    fewer, skipping = _read_all(clip, fps=5.0, skip_nonref_frames=True, skip_b_frames=True)
    assert full.stats.decoded == 53  # reference frames (I, P and referenced B)
    assert skipping.stats.decoded == 27  # I and P only
    assert not skipping.stats.b_frames_back
    assert len(fewer) == len(every) == 21
    # Each analysed frame is due every 0.2 s and comes at most one I/P gap (0.16 s) late.
    for i, t in enumerate(fewer):
        assert 0.2 * i - 1e-6 <= t <= 0.2 * i + 0.16 + 1e-6


def test_b_frames_come_back_when_i_and_p_frames_are_too_far_apart(videos_dir: Path) -> None:
    clip = videos_dir / STREET
    every, _ = _read_all(clip, fps=10.0)
    times, src = _read_all(clip, fps=10.0, skip_b_frames=True)
    assert src.stats.b_frames_back
    assert src.stats.decoded > 27
    # at most the analysed frame where the gap was seen is lost
    assert len(times) >= len(every) - 1
