"""Event clips: a few seconds of video around a distress decision, with every face but the
subject's blurred in every frame, encoded as H.264 in a fragmented MP4 (written in memory,
never as a plain file; plays in browsers and phones).

The frames come from a camera's in-memory ring buffer (`raksha.pipeline.clip_recorder`),
already scaled down, each with the face boxes the analysis found on it. A bystander's face is
blurred over the union of their boxes on the frame and its neighbours, so a face the
detector missed on one frame is still covered by where it was a frame before or after; the
subject's own box is kept (as in the still frame).

`pixelated_clip` is the view the dashboard plays by default: the whole picture coarsely
pixelated, enough to see what happens, not who it happens to.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from raksha.incidents.evidence import anonymize, blur_other_faces

U8 = npt.NDArray[np.uint8]
BoxT = tuple[float, float, float, float]

#: Fragmented MP4 (its index first): written to memory in one pass, streams in a browser.
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
#: The pixelated view: about this many cells across the picture's shorter side.
CLIP_CELLS = 24


class ClipError(ValueError):
    """A clip that cannot be made (no frames, an encoder failure) or read back."""


@dataclass(frozen=True, slots=True)
class ClipFrame:
    """One frame of a clip: the (scaled) BGR picture, its stream time and its faces as
    (track id, box in this picture's pixels)."""

    image: U8
    t: float
    faces: tuple[tuple[int, BoxT], ...] = ()


def _same_face(a: BoxT, b: BoxT) -> bool:
    """Whether box `b` is plausibly the face of box `a` a frame later (at a few frames a
    second): its centre within three quarters of a face width, its size within half to
    twice."""
    aw, bw = a[2] - a[0], b[2] - b[0]
    if aw <= 0 or bw <= 0 or not 0.5 <= bw / aw <= 2.0:
        return False
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    return bool(math.hypot(dx, dy) <= 0.75 * max(aw, bw))


def _subject_boxes(
    frames: Sequence[ClipFrame], subject_track: int, decided_t: float | None
) -> list[BoxT | None]:
    """The subject's box on each frame, or None where the subject is not trusted to be
    there: the track's box is followed outward from the decision's frame and kept only while
    it moves like one face (a tracker that swapped ids onto a passer-by does not unblur the
    passer-by)."""
    boxes: list[BoxT | None] = [
        next((box for track, box in f.faces if track == subject_track), None) for f in frames
    ]
    if decided_t is None:
        start = next((i for i, b in enumerate(boxes) if b is not None), 0)
    else:
        start = min(range(len(frames)), key=lambda i: abs(frames[i].t - decided_t))
    out: list[BoxT | None] = [None] * len(frames)
    for step in (1, -1):
        last = boxes[start]
        i = start
        while 0 <= i < len(frames):
            box = boxes[i]
            if box is not None and (last is None or _same_face(last, box)):
                out[i] = box
                last = box
            i += step
    return out


def blurred_frames(
    frames: Sequence[ClipFrame],
    subject_track: int,
    grow: float = 0.2,
    decided_t: float | None = None,
) -> list[U8]:
    """Each frame with every face but the subject's blurred (boxes of the frame and of its
    neighbours, grown by `grow` on each side); a box of the subject's track that jumps away
    from where the subject was is blurred too."""
    subject = _subject_boxes(frames, subject_track, decided_t)
    out = []
    for i, frame in enumerate(frames):
        lo, hi = max(0, i - 1), min(len(frames), i + 2)
        others = [
            box for j in range(lo, hi) for _track, box in frames[j].faces if box != subject[j]
        ]
        out.append(blur_other_faces(frame.image, subject[i], others, grow))
    return out


def _even(n: int) -> int:
    return max(2, n - n % 2)


def encode_mp4(images: Sequence[U8], times: Sequence[float]) -> bytes:
    """H.264 (yuv420p) in MP4 with the frames at their own times (`times`, seconds)."""
    import av

    if not images:
        raise ClipError("a clip needs at least one frame")
    h, w = images[0].shape[:2]
    w2, h2 = _even(w), _even(h)
    buf = io.BytesIO()
    base = Fraction(1, 1000)
    try:
        with av.open(buf, mode="w", format="mp4", options={"movflags": MOVFLAGS}) as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height = w2, h2
            stream.pix_fmt = "yuv420p"
            stream.time_base = base
            stream.codec_context.time_base = base
            stream.options = {"crf": "26", "preset": "veryfast"}
            # One thread: clips are encoded beside the cameras, not instead of them.
            stream.codec_context.thread_count = 1
            t0 = times[0]
            last = -1
            for image, t in zip(images, times, strict=True):
                pts = max(last + 1, round((t - t0) * 1000))
                last = pts
                frame = av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(image[:h2, :w2]), format="bgr24"
                )
                frame.pts = pts
                frame.time_base = base
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    except (av.error.FFmpegError, ValueError) as exc:
        raise ClipError(f"cannot encode the clip: {exc}") from None
    return buf.getvalue()


def decode_mp4(data: bytes) -> tuple[list[U8], list[float]]:
    """The frames (BGR) and their times (seconds) of an MP4 clip."""
    import av

    images: list[U8] = []
    times: list[float] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as src:
            for frame in src.decode(video=0):
                images.append(np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8))
                times.append(float(frame.time or 0.0))
    except (av.error.FFmpegError, ValueError) as exc:
        raise ClipError(f"the clip cannot be read: {exc}") from None
    if not images:
        raise ClipError("the clip holds no frame")
    return images, times


def pixelated_clip(data: bytes, cells: int = CLIP_CELLS) -> bytes:
    """The clip with every frame coarsely pixelated and smoothed (`cells` across its shorter
    side): movement and clothing stay visible, faces do not."""
    images, times = decode_mp4(data)
    return encode_mp4([anonymize(img, cells) for img in images], times)


def make_clip(
    frames: Sequence[ClipFrame],
    subject_track: int,
    grow: float = 0.2,
    decided_t: float | None = None,
) -> bytes:
    """The stored clip: bystanders blurred, H.264 in MP4."""
    if not frames:
        raise ClipError("a clip needs at least one frame")
    images = blurred_frames(frames, subject_track, grow, decided_t)
    return encode_mp4(images, [f.t for f in frames])
