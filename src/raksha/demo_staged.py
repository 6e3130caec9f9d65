"""A staged demo clip: one labelled face going neutral -> fear -> neutral.

None of the shared sample clips shows real distress, so `raksha demo` would show no incident
at all with the default (conservative) settings. When the labelled FER+ faces are at hand
(`ferplus-valid` beside the sample clips, or RAKSHA_FERPLUS), the demo assembles one clip from
them: a crowd-labelled neutral face for 3 s, a crowd-labelled fearful face for 5 s, neutral
again for 3 s, upscaled on a plain background. It is labelled as staged wherever it appears.
The faces are chosen by their crowd label, then kept only if the default detector finds
exactly one face and the default expression model agrees with the label, so the clip shows
the mechanics (event, incident, routing, evidence), not the model's accuracy.
"""

from __future__ import annotations

import csv
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.errors import RakshaError

Image = npt.NDArray[np.uint8]
WIDTH, HEIGHT, FPS, FACE_PX = 640, 480, 10, 160
FACE_AT = (240, 120)
SEGMENTS: tuple[tuple[str | None, float], ...] = (
    ("neutral", 3.0),
    ("fear", 5.0),
    ("neutral", 3.0),
)
NAME = "staged-neutral-fear-neutral.mp4"
#: For looping (benchmarks): the face then leaves for longer than the tracker keeps a lost
#: track, so every loop is a new person and a new distress event.
LOOP_SEGMENTS: tuple[tuple[str | None, float], ...] = (
    ("neutral", 3.0),
    ("fear", 5.0),
    ("neutral", 2.0),
    (None, 3.0),
)
LOOP_NAME = "staged-loop-neutral-fear-neutral-gone.mp4"


def find_ferplus(assets: Path | None) -> Path | None:
    candidates = []
    if os.environ.get("RAKSHA_FERPLUS"):
        candidates.append(Path(os.environ["RAKSHA_FERPLUS"]))
    if assets is not None:
        candidates.append(assets.parent / "ferplus-valid")
    candidates.append(Path("../shared/data/ferplus-valid"))
    return next((c for c in candidates if (c / "labels.csv").is_file()), None)


def _frame(face: Image | None) -> Image:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    bg = np.stack([100 + 50 * x / WIDTH, 115 + 35 * y / HEIGHT, 135 - 25 * x / WIDTH], axis=-1)
    frame = bg.astype(np.uint8)
    if face is not None:
        fx, fy = FACE_AT
        frame[fy : fy + FACE_PX, fx : fx + FACE_PX] = face[:, :, None]
    return frame


def _pick(root: Path, label: str, models_dir: Path | None, tries: int = 300) -> Image:
    import cv2

    from raksha.detect.config import YuNetConfig
    from raksha.detect.factory import build_detector
    from raksha.expression.config import ExpressionConfig
    from raksha.expression.factory import build_expression_classifier

    detector = build_detector(YuNetConfig(), models_dir)
    classifier = build_expression_classifier(ExpressionConfig(), models_dir)
    with (root / "labels.csv").open(newline="") as fh:
        names = [r["file"] for r in csv.DictReader(fh) if r.get("label_majority") == label]
    for name in names[:tries]:
        gray = cv2.imread(str(root / name), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            continue
        face = np.asarray(
            cv2.resize(gray, (FACE_PX, FACE_PX), interpolation=cv2.INTER_CUBIC), dtype=np.uint8
        )
        frame = _frame(face)
        faces = detector.detect(frame)
        if len(faces) != 1:
            continue
        probs = classifier.classify(frame, faces).as_dicts()[0]
        if probs.get(label, 0.0) >= 0.8:
            return face
    raise RakshaError(f"no usable '{label}' face among the first {tries} in {root}")


def build_staged_clip(
    ferplus: Path,
    out_dir: Path,
    models_dir: Path | None,
    *,
    segments: tuple[tuple[str | None, float], ...] = SEGMENTS,
    name: str = NAME,
) -> Path:
    """Write the staged clip into `out_dir` (once; reused afterwards) and return its path.
    `segments` are (crowd label, seconds); a label of None shows the background alone."""
    import av

    path = out_dir / name
    if path.is_file():
        return path
    labels = {label for label, _ in segments if label is not None}
    faces: dict[str | None, Image | None] = {None: None}
    faces.update({label: _pick(ferplus, label, models_dir) for label in sorted(labels)})
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream: Any = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"crf": "18", "preset": "veryfast"}
        pts = 0
        for label, seconds in segments:
            image = _frame(faces[label])
            for _ in range(round(seconds * FPS)):
                vf = av.VideoFrame.from_ndarray(image, format="bgr24")
                vf.pts = pts
                pts += 1
                for packet in stream.encode(vf):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path
