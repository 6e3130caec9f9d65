"""Short H.264 clips assembled from real FER+ face crops, for whole-pipeline tests.

A clip shows one "subject" face at a fixed place on a textured background, one segment after
another (e.g. neutral -> fear -> neutral). Each segment shows one real 48x48 FER+ validation
crop (../shared/data/ferplus-valid), upscaled to about 160 px.

The crops are chosen by running the project's own default detector and expression model on
the composed frame: YuNet must find exactly one face, and the classifier must give the segment
the expression it stands for with a wide margin. These clips test the mechanics of incidents
(routing, evidence, alerts, storage), not model accuracy, so selecting images by the model's
own output is deliberate: the selection follows the default model if it changes.

    clip = build_distress_clip(tmp_dir, data_dir, models_dir)  # neutral -> fear -> neutral
    clip = build_calm_clip(tmp_dir, data_dir, models_dir)      # neutral -> happy -> neutral
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

WIDTH, HEIGHT = 640, 480
FPS = 10
FACE_PX = 160
#: Top-left corner of the face crop in the frame (a little left of and above the centre).
FACE_AT = (200, 120)

Image = npt.NDArray[np.uint8]
Probs = dict[str, float]


@dataclass(frozen=True)
class Segment:
    label: str  # what the segment shows: "neutral", "fear", "happiness", "nobody"
    seconds: float
    image: Path | None  # the FER+ crop shown throughout the segment; None: no face


@dataclass(frozen=True)
class SyntheticClip:
    path: Path
    fps: int
    segments: tuple[Segment, ...]
    #: Where the face crop sits in every frame (x1, y1, x2, y2).
    face_box: tuple[int, int, int, int]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.segments)

    def window(self, index: int) -> tuple[float, float]:
        """Start and end (seconds) of segment `index`."""
        start = sum(s.seconds for s in self.segments[:index])
        return start, start + self.segments[index].seconds


def _background(seed: int = 7) -> Image:
    """A smooth, deterministic colour gradient with mild texture: a wall, not a flat card."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    b = 90 + 60 * x / WIDTH
    g = 110 + 40 * y / HEIGHT
    r = 140 - 30 * (x + y) / (WIDTH + HEIGHT)
    img = np.stack([b, g, r], axis=-1) + rng.normal(0, 4, (HEIGHT, WIDTH, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


_BACKGROUND: Image | None = None


def compose_frame(face_file: Path | None) -> Image:
    """The BGR frame showing the crop `face_file` at FACE_AT, upscaled to FACE_PX (None:
    the empty background)."""
    import cv2

    global _BACKGROUND
    if _BACKGROUND is None:
        _BACKGROUND = _background()
    if face_file is None:
        return _BACKGROUND.copy()
    gray = cv2.imread(str(face_file), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise FileNotFoundError(f"cannot read face image {face_file}")
    face = cv2.resize(gray, (FACE_PX, FACE_PX), interpolation=cv2.INTER_CUBIC)
    frame = _BACKGROUND.copy()
    x, y = FACE_AT
    frame[y : y + FACE_PX, x : x + FACE_PX] = face[:, :, None]
    return frame


class FaceJudge:
    """The default detector and expression model, and the default distress weights."""

    def __init__(self, models_dir: Path) -> None:
        from raksha.detect.config import YuNetConfig
        from raksha.detect.factory import build_detector
        from raksha.distress.config import DistressConfig
        from raksha.expression.config import ExpressionConfig
        from raksha.expression.factory import build_expression_classifier

        self.detector = build_detector(YuNetConfig(), models_dir)
        self.classifier = build_expression_classifier(ExpressionConfig(), models_dir)
        self.weights = DistressConfig().weights

    def judge(self, frame: Image) -> Probs | None:
        """The expression probabilities of the one face in `frame` (None unless exactly one)."""
        faces = self.detector.detect(frame)
        if len(faces) != 1:
            return None
        return self.classifier.classify(frame, faces).as_dicts()[0]

    def evidence(self, probs: Probs) -> float:
        """Per-frame distress evidence, as the default scorer weighs it (before gating)."""
        return min(1.0, sum(w * probs.get(k, 0.0) for k, w in self.weights.items()))


def is_fear(judge: FaceJudge, p: Probs) -> bool:
    return p.get("fear", 0.0) >= 0.7 and judge.evidence(p) >= 0.8


def is_neutral(judge: FaceJudge, p: Probs) -> bool:
    return p.get("neutral", 0.0) >= 0.7 and judge.evidence(p) <= 0.12


def is_happy(judge: FaceJudge, p: Probs) -> bool:
    return p.get("happiness", 0.0) >= 0.85 and judge.evidence(p) <= 0.08


Accept = Callable[[FaceJudge, Probs], bool]

#: FER+ label of a segment without a face.
NOBODY = "nobody"


def pick_faces(
    data_dir: Path,
    judge: FaceJudge,
    majority_label: str,
    accept: Accept,
    count: int = 1,
    max_tries: int = 400,
) -> list[Path]:
    """The first `count` FER+ validation crops labelled `majority_label` by the crowd that, on
    the composed frame, give exactly one detected face that `accept` approves."""
    root = data_dir / "ferplus-valid"
    with (root / "labels.csv").open(newline="") as fh:
        files = [r["file"] for r in csv.DictReader(fh) if r["label_majority"] == majority_label]
    chosen: list[Path] = []
    for name in files[:max_tries]:
        path = root / name
        probs = judge.judge(compose_frame(path))
        if probs is not None and accept(judge, probs):
            chosen.append(path)
            if len(chosen) == count:
                return chosen
    raise AssertionError(
        f"only {len(chosen)} of {count} FER+ '{majority_label}' crops pass the selection with "
        "the default models; the synthetic clip cannot be built"
    )


def write_clip(path: Path, segments: Sequence[Segment], fps: int = FPS) -> SyntheticClip:
    """Encode the segments as an H.264 (libx264, yuv420p) MP4 at `fps`."""
    import av

    frames = [(compose_frame(s.image), round(s.seconds * fps)) for s in segments]
    rng = np.random.default_rng(11)
    with av.open(str(path), "w") as out:
        stream: Any = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"crf": "18", "preset": "veryfast", "tune": "stillimage"}
        pts = 0
        for image, n in frames:
            for _ in range(n):
                # A little sensor noise so consecutive frames are not byte-identical.
                noisy = np.clip(image.astype(np.int16) + rng.integers(-2, 3, image.shape), 0, 255)
                vf = av.VideoFrame.from_ndarray(noisy.astype(np.uint8), format="bgr24")
                vf.pts = pts
                pts += 1
                for packet in stream.encode(vf):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    x, y = FACE_AT
    return SyntheticClip(path, fps, tuple(segments), (x, y, x + FACE_PX, y + FACE_PX))


def check_clip(clip: SyntheticClip, judge: FaceJudge, accepts: Sequence[Accept]) -> None:
    """Decode the middle frame of every segment and check that it still passes its selection
    after H.264 compression."""
    import av

    wanted = {
        round(((a + b) / 2) * clip.fps): i
        for i, (a, b) in enumerate(map(clip.window, range(len(clip.segments))))
    }
    seen: set[int] = set()
    with av.open(str(clip.path)) as container:
        for n, vf in enumerate(container.decode(video=0)):
            if n in wanted:
                i = wanted[n]
                image = vf.to_ndarray(format="bgr24")
                seg = clip.segments[i]
                if seg.image is None:
                    assert len(judge.detector.detect(image)) == 0, f"{clip.path.name}: a face"
                    seen.add(i)
                    continue
                probs = judge.judge(image)
                assert probs is not None and accepts[i](judge, probs), (
                    f"{clip.path.name}: segment {i} ({seg.label}, {seg.image.name}) no longer "
                    f"passes after encoding: {probs}"
                )
                seen.add(i)
    assert seen == set(range(len(clip.segments))), f"{clip.path.name}: frames missing"


def build_clip(
    out_dir: Path,
    name: str,
    data_dir: Path,
    judge: FaceJudge,
    plan: Sequence[tuple[str, str, float, Accept]],
) -> SyntheticClip:
    """`plan`: (segment label, FER+ majority label, seconds, acceptance test) per segment.
    Segments with the same FER+ label show the same crop (the same person)."""
    picked: dict[str, Path | None] = {NOBODY: None}
    for _, majority, _, accept in plan:
        if majority not in picked:
            picked[majority] = pick_faces(data_dir, judge, majority, accept)[0]
    segments = [Segment(label, secs, picked[majority]) for label, majority, secs, _ in plan]
    clip = write_clip(out_dir / name, segments)
    check_clip(clip, judge, [accept for *_, accept in plan])
    return clip


def build_distress_clip(out_dir: Path, data_dir: Path, judge: FaceJudge) -> SyntheticClip:
    """10 s: neutral (3 s) -> sustained fear (4 s) -> neutral (3 s)."""
    return build_clip(
        out_dir,
        "distress.mp4",
        data_dir,
        judge,
        [
            ("neutral", "neutral", 3.0, is_neutral),
            ("fear", "fear", 4.0, is_fear),
            ("neutral", "neutral", 3.0, is_neutral),
        ],
    )


def build_look_away_clip(out_dir: Path, data_dir: Path, judge: FaceJudge) -> SyntheticClip:
    """13.5 s: neutral (2 s) -> fear (3 s) -> nobody (3 s: longer than the tracker keeps a
    lost face) -> the same fear face again (3 s) -> neutral (2.5 s). Two distress events of
    the same person at the same place, which should make one incident."""
    return build_clip(
        out_dir,
        "look-away.mp4",
        data_dir,
        judge,
        [
            ("neutral", "neutral", 2.0, is_neutral),
            ("fear", "fear", 3.0, is_fear),
            (NOBODY, NOBODY, 3.0, is_neutral),
            ("fear again", "fear", 3.0, is_fear),
            ("neutral", "neutral", 2.5, is_neutral),
        ],
    )


def build_calm_clip(out_dir: Path, data_dir: Path, judge: FaceJudge) -> SyntheticClip:
    """10 s: neutral (3 s) -> happy (4 s) -> neutral (3 s); no distress anywhere."""
    return build_clip(
        out_dir,
        "calm.mp4",
        data_dir,
        judge,
        [
            ("neutral", "neutral", 3.0, is_neutral),
            ("happiness", "happiness", 4.0, is_happy),
            ("neutral", "neutral", 3.0, is_neutral),
        ],
    )
