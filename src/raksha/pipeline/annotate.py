"""Draws analysis results onto frames and writes them as an H.264 video."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt

from raksha.domain import FrameAnalysis
from raksha.errors import RakshaError

_GREEN = (80, 200, 80)
_AMBER = (0, 170, 255)
_RED = (40, 40, 230)


def _colour(score: float, active: bool) -> tuple[int, int, int]:
    if active:
        return _RED
    return _AMBER if score >= 0.35 else _GREEN


def draw(image: npt.NDArray[np.uint8], analysis: FrameAnalysis) -> npt.NDArray[np.uint8]:
    """A copy of `image` with a box, id, top expression and a distress bar for each face."""
    out = image.copy()
    scale = max(0.9, min(out.shape[:2]) / 540)
    thick = max(1, round(2 * scale))
    for face in analysis.faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        colour = _colour(face.distress.score, face.distress.active)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        top = max(face.expression, key=lambda k: face.expression[k]) if face.expression else "?"
        label = f"#{face.track_id} {top} {face.expression.get(top, 0.0):.2f}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, thick)
        ty = max(th + 4, y1 - 4)
        cv2.rectangle(out, (x1, ty - th - 4), (x1 + tw + 4, ty + 2), (0, 0, 0), -1)
        cv2.putText(
            out,
            label,
            (x1 + 2, ty - 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * scale,
            colour,
            thick,
            cv2.LINE_AA,
        )
        # Distress bar under the box: outline = full scale, fill = smoothed score.
        bar_h = max(4, round(6 * scale))
        by = min(out.shape[0] - bar_h - 1, y2 + 3)
        cv2.rectangle(out, (x1, by), (x2, by + bar_h), (255, 255, 255), 1)
        fill = x1 + round((x2 - x1) * min(1.0, max(0.0, face.distress.score)))
        if fill > x1:
            cv2.rectangle(out, (x1, by), (fill, by + bar_h), colour, -1)
    # The time and face count on a dark plate: readable on bright footage too.
    label = f"t={analysis.t:.2f}s  faces={len(analysis.faces)}"
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, thick)
    ty = round(20 * scale)
    pad = max(3, round(4 * scale))
    cv2.rectangle(out, (8 - pad, ty - th - pad), (8 + tw + pad, ty + base + pad), (0, 0, 0), -1)
    cv2.putText(
        out,
        label,
        (8, ty),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5 * scale,
        (255, 255, 255),
        thick,
        cv2.LINE_AA,
    )
    return out


class AnnotatedWriter:
    """Writes BGR frames to an H.264 MP4 at a fixed rate (the analysis rate)."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import av

        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(path), mode="w")
        except (OSError, av.FFmpegError) as exc:
            raise RakshaError(f"cannot write annotated video {path}: {exc}") from None
        rate = Fraction(fps).limit_denominator(1000)
        self._stream = self._container.add_stream("libx264", rate=rate)
        # H.264 with 4:2:0 chroma needs even dimensions.
        self._w, self._h = width - width % 2, height - height % 2
        self._stream.width, self._stream.height = self._w, self._h
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "23", "preset": "veryfast"}
        # One swscale context for the whole video (the encoder would set one up per frame).
        self._to_yuv = av.video.reformatter.VideoReformatter()

    def write(self, image: npt.NDArray[np.uint8]) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(image[: self._h, : self._w]), format="bgr24"
        )
        frame = self._to_yuv.reformat(frame, format="yuv420p")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> AnnotatedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
