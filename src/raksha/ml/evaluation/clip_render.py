"""Pixels of a generated benchmark clip: background, a face blended in through a soft
elliptical mask, camera degradations, and the H.264 file.

Nothing here decides what a clip shows (that is `raksha.ml.evaluation.clipgen`); this module is
told, frame by frame, which face image(s) to show where, and how the camera spoils them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.errors import RakshaError

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

WIDTH, HEIGHT = 640, 360
#: The background video is read at most this many frames (street clips are a few seconds).
_MAX_BACKGROUND_FRAMES = 400


def _u8(image: object) -> U8:
    return np.asarray(image, dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Degradations:
    """How one clip's camera spoils the picture (0 / None / 1.0 = not at all)."""

    #: Gaussian defocus of the whole frame (sigma, px).
    blur_sigma: float = 0.0
    #: Each frame JPEG-compressed at this quality before the video encoder sees it.
    jpeg_quality: int | None = None
    #: Gaussian sensor noise (sigma, grey levels).
    noise_sigma: float = 0.0
    #: Brightness gain at the start and at the end of the clip (linear in between).
    gain_start: float = 1.0
    gain_end: float = 1.0
    #: Motion blur of the face: a line kernel this long (px) at this angle (degrees).
    motion_blur_px: int = 0
    motion_blur_deg: float = 0.0


@dataclass(frozen=True, slots=True)
class BackgroundView:
    """Which part of the background a clip shows: the video from ``start`` (played forwards
    and backwards), zoomed by ``zoom`` about (``cx``, ``cy``) in [0, 1], maybe mirrored."""

    start: int = 0
    zoom: float = 1.0
    cx: float = 0.5
    cy: float = 0.5
    mirror: bool = False


class Background:
    """Backdrop frames, 640x360 BGR: a street video's frames, or a plain gradient."""

    def __init__(self, frames: list[U8]) -> None:
        if not frames:
            raise ValueError("a background needs at least one frame")
        self.frames = frames

    @staticmethod
    def from_video(path: Path) -> Background:
        """The frames of ``path`` scaled to 640x360 (the first few hundred)."""
        import av
        import cv2

        frames: list[U8] = []
        try:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    image = frame.to_ndarray(format="bgr24")
                    frames.append(
                        _u8(cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
                    )
                    if len(frames) >= _MAX_BACKGROUND_FRAMES:
                        break
        except (av.error.FFmpegError, OSError) as err:
            raise RakshaError(f"cannot read background video {path}: {err}") from None
        if not frames:
            raise RakshaError(f"background video {path} has no frames")
        return Background(frames)

    @staticmethod
    def gradient(seed: int) -> Background:
        """One still frame: a smooth two-colour gradient with a little texture."""
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
        angle = rng.uniform(0, math.pi)
        ramp = (np.cos(angle) * x / WIDTH + np.sin(angle) * y / HEIGHT + 1.0) / 2.0
        a, b = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
        image = a[None, None, :] * (1 - ramp[..., None]) + b[None, None, :] * ramp[..., None]
        image += rng.normal(0.0, 5.0, image.shape)
        return Background([np.clip(image, 0, 255).astype(np.uint8)])

    def frame(self, index: int, view: BackgroundView) -> U8:
        """Frame ``index`` of a clip: the video runs forwards then backwards, for ever."""
        import cv2

        n = len(self.frames)
        k = (view.start + index) % max(1, 2 * n - 2) if n > 1 else 0
        image = self.frames[k if k < n else 2 * n - 2 - k]
        if view.zoom > 1.0:
            w, h = round(WIDTH / view.zoom), round(HEIGHT / view.zoom)
            x = round(view.cx * (WIDTH - w))
            y = round(view.cy * (HEIGHT - h))
            image = _u8(
                cv2.resize(
                    image[y : y + h, x : x + w], (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR
                )
            )
        return image[:, ::-1] if view.mirror else image


def elliptical_mask(side: int) -> F32:
    """(side, side) weights in [0, 1]: 1 inside an ellipse that holds the head, falling
    smoothly to 0 over a feather about a tenth of the side, 0 in the square's corners."""
    c = (side - 1) / 2.0
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    # Normalised distance from the centre: 1 on the ellipse (a little narrower than tall).
    r = np.sqrt(((x - c) / (0.44 * side)) ** 2 + ((y - c) / (0.5 * side)) ** 2)
    feather = 0.2
    mask = np.clip((1.0 - r) / feather + 1.0, 0.0, 1.0)
    smooth: F32 = (mask * mask * (3 - 2 * mask)).astype(np.float32)  # smoothstep: no edge
    return smooth


def motion_blurred(face: F32, length: int, degrees: float) -> F32:
    """``face`` smeared along a line ``length`` px long at ``degrees`` (no-op below 2 px)."""
    import cv2

    if length < 2:
        return face
    kernel = np.zeros((length, length), np.float32)
    c = (length - 1) / 2.0
    dx, dy = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    for s in np.linspace(-c, c, 2 * length):
        kernel[round(c + s * dy), round(c + s * dx)] = 1.0
    kernel /= kernel.sum()
    out = cv2.filter2D(face, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.float32)


def composite(background: U8, face: F32, mask: F32, x: int, y: int) -> U8:
    """``background`` with ``face`` (float BGR, the mask's size) blended in at (x, y)."""
    out = background.copy()
    side = mask.shape[0]
    region = out[y : y + side, x : x + side].astype(np.float32)
    a = mask[..., None]
    out[y : y + side, x : x + side] = np.clip(face * a + region * (1 - a) + 0.5, 0, 255).astype(
        np.uint8
    )
    return out


def degrade(image: U8, d: Degradations, progress: float, noise_seed: int) -> U8:
    """The camera's view of ``image`` at ``progress`` (0 at the clip's start, 1 at its end):
    defocus, lighting, sensor noise (drawn from ``noise_seed``), then JPEG."""
    import cv2

    out = image
    gain = d.gain_start + (d.gain_end - d.gain_start) * progress
    if d.blur_sigma > 0:
        out = _u8(cv2.GaussianBlur(out, (0, 0), d.blur_sigma))
    if abs(gain - 1.0) > 1e-3:
        out = _u8(cv2.convertScaleAbs(out, alpha=gain))
    if d.noise_sigma > 0:
        noise = np.empty(out.shape, np.int16)
        cv2.setRNGSeed(noise_seed)
        cv2.randn(noise, np.zeros(3), np.full(3, d.noise_sigma))
        out = np.clip(out.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    if d.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, d.jpeg_quality])
        if ok:
            out = _u8(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    return out


def write_mp4(path: Path, frames: Iterable[U8], fps: int) -> int:
    """Encode BGR frames (640x360) as H.264 (yuv420p), frame k at k / fps s; returns the count."""
    import av

    count = 0
    try:
        with av.open(str(path), "w") as container:
            stream: Any = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.time_base = Fraction(1, fps)
            stream.options = {"crf": "20", "preset": "superfast"}
            for image in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
                frame.pts = count
                count += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except (av.error.FFmpegError, OSError) as err:
        raise RakshaError(f"cannot write clip {path}: {err}") from None
    return count
