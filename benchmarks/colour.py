"""Frame to BGR conversion: PyAV's own call against raksha.sources.colour.BgrConverter.

    python benchmarks/colour.py [--frames N] [CLIP ...]

For each clip (default: every clip in ../shared/data/videos), decodes the first N frames
(default 150) and converts each freshly decoded frame both ways, in alternating order, one
thread: PyAV's `to_ndarray(format="bgr24")` (swscale, a new context per frame; what Raksha
did before) and `BgrConverter` (swscale, one context for the stream). Prints the mean
milliseconds per frame; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import av

from raksha.sources.colour import BgrConverter

REPO = Path(__file__).resolve().parents[1]
VIDEOS = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared")) / "data" / "videos"


def time_clip(clip: Path, frames: int) -> tuple[str, int, float, float, int]:
    convert = BgrConverter()
    pyav_s = ours_s = 0.0
    n = 0
    size, matrix = "", 0
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            if n == 0:
                size, matrix = f"{frame.width}x{frame.height}", frame.colorspace
            for which in (0, 1) if n % 2 == 0 else (1, 0):
                t0 = time.perf_counter()
                if which == 0:
                    frame.to_ndarray(format="bgr24")
                    pyav_s += time.perf_counter() - t0
                else:
                    convert(frame)
                    ours_s += time.perf_counter() - t0
            n += 1
            if n == frames:
                break
    return size, matrix, 1000 * pyav_s / max(n, 1), 1000 * ours_s / max(n, 1), n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--frames", type=int, default=150)
    args = ap.parse_args(argv)
    clips = args.clips or sorted(VIDEOS.glob("*.mp4"))
    if not clips:
        print(f"no clips given and none found in {VIDEOS}", file=sys.stderr)
        return 2
    print(
        f"{'clip':42} {'size':>10} {'matrix':>6} {'frames':>6} "
        f"{'to_ndarray ms':>13} {'BgrConverter ms':>15}"
    )
    for clip in clips:
        size, matrix, pyav_ms, ours_ms, n = time_clip(clip, args.frames)
        print(f"{clip.name[:42]:42} {size:>10} {matrix:>6} {n:6d} {pyav_ms:13.2f} {ours_ms:15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
