"""What event clips cost a camera: the ring buffer per analysed frame, its memory, and one
clip's blur + H.264 encode + encryption (on the clip thread, beside the cameras).

    python benchmarks/clips.py [--clip ../shared/data/videos/facenet-pytorch__video.mp4] \
        [--fps 5] [--before 5] [--after 5] [--width 640] [--repeats 5] [--json OUT]

Frames are decoded from a real clip (its own size; the street clips are 1080p or 720p); each
analysed frame is pushed with two face boxes, as the pipeline does. Reported: the push's
median and p95 ms (scale down + copy), the buffer's bytes at steady state, and the median
seconds to make and store one clip of `before + after` seconds at `fps` (CPU seconds of
that thread too). Nothing is asserted: the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from raksha.domain import DistressSample, FaceResult, Frame
from raksha.incidents.clip import make_clip
from raksha.incidents.evidence import EvidenceWriter, new_key
from raksha.pipeline.clip_recorder import ClipRecorder, PendingClip

REPO = Path(__file__).resolve().parents[1]
VIDEOS = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared")) / "data" / "videos"


def frames_of(path: Path, fps: float, limit: int) -> list[np.ndarray]:  # type: ignore[type-arg]
    import av

    out = []
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        step = max(1, round(float(stream.average_rate or 25) / fps))
        for i, frame in enumerate(src.decode(video=0)):
            if i % step == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if len(out) >= limit:
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=VIDEOS / "facenet-pytorch__video.mp4")
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--before", type=float, default=5.0)
    ap.add_argument("--after", type=float, default=5.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    n = round((args.before + args.after) * args.fps) + 1
    images = frames_of(args.clip, args.fps, n)
    h, w = images[0].shape[:2]
    sample = DistressSample(evidence=0.0, score=0.0, active=False, quality=1.0)
    faces = [
        FaceResult(1, (w * 0.55, h * 0.2, w * 0.65, h * 0.4), 0.9, {"neutral": 1.0}, sample),
        FaceResult(2, (w * 0.2, h * 0.25, w * 0.28, h * 0.4), 0.9, {"neutral": 1.0}, sample),
    ]
    done: list[PendingClip] = []
    rec = ClipRecorder(
        "bench", done.append, pre_s=args.before, post_s=args.after, max_width=args.width
    )
    push_ms = []
    t = 0.0

    def push(img: np.ndarray) -> None:  # type: ignore[type-arg]
        nonlocal t
        frame = Frame(img, t, round(t * args.fps), "bench", time.monotonic())
        t0 = time.perf_counter()
        rec.push(frame, faces)
        push_ms.append((time.perf_counter() - t0) * 1000)
        t += 1.0 / args.fps

    for _rep in range(args.repeats):
        for img in images:
            push(img)
    buffer_frames = rec.buffered
    buffer_bytes = sum(f.image.nbytes for f in rec._buffer)
    # A decision now: the clip takes the buffer and the next `after` seconds.
    rec.start("bench-incident", 1, t - 1.0 / args.fps)
    i = 0
    while not done:
        push(images[i % len(images)])
        i += 1
    clip = done[0]
    make_s, cpu_s, sizes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        writer = EvidenceWriter(Path(tmp), key=new_key())
        for i in range(args.repeats):
            w0, c0 = time.perf_counter(), time.thread_time()
            mp4 = make_clip(clip.frames, 1)
            ev = writer.store_clip(f"bench-{i}", mp4)
            make_s.append(time.perf_counter() - w0)
            cpu_s.append(time.thread_time() - c0)
            sizes.append(ev.bytes)
    result = {
        "clip": args.clip.name,
        "source_size": [w, h],
        "fps": args.fps,
        "before_s": args.before,
        "after_s": args.after,
        "width": args.width,
        "push_ms_median": round(statistics.median(push_ms), 3),
        "push_ms_p95": round(sorted(push_ms)[int(0.95 * (len(push_ms) - 1))], 3),
        "buffer_frames": buffer_frames,
        "buffer_mb": round(buffer_bytes / 1e6, 1),
        "clip_frames": len(clip.frames),
        "clip_make_store_s_median": round(statistics.median(make_s), 3),
        "clip_cpu_s_median": round(statistics.median(cpu_s), 3),
        "clip_kb_median": round(statistics.median(sizes) / 1000, 1),
        "cpu": platform.processor() or platform.machine(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
