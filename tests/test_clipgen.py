"""The benchmark clip generator: what its sidecars say is what its frames show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import RakshaError
from raksha.ml.evaluation.clip_labels import ClipLabels, SidecarError, read_sidecar
from raksha.ml.evaluation.clipgen import CYCLE, MadeClip, make_clips, resolve_background
from raksha.ml.evaluation.datasets import FaceDataset, read_dataset

SET = "taiwan-tcce-performers"


@pytest.fixture(scope="module")
def faces(data_dir: Path) -> FaceDataset:
    return read_dataset(data_dir / SET, "labels", color=True, size=None)


@pytest.fixture(scope="module")
def clips(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[MadeClip]:
    """The first three clips of the test split (distress, calm peak, long calm), seed 3."""
    out = tmp_path_factory.mktemp("clips")
    data = data_dir / SET
    return make_clips(data, out, count=3, seed=3, background=resolve_background(data, "auto"))


def _decode(path: Path) -> tuple[list[npt.NDArray[np.uint8]], list[float]]:
    import av

    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="bgr24") for f in frames], [float(f.time) for f in frames]


def _pattern(image: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_]) -> npt.NDArray[Any]:
    """Zero-mean, unit-length grey values inside the mask (blind to brightness and gain)."""
    import cv2

    grey = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    v = grey.astype(np.float64)[mask]
    v -= v.mean()
    return v / (np.linalg.norm(v) + 1e-9)


@pytest.mark.slow
def test_clips_come_in_the_cycle_and_from_the_test_split(
    clips: list[MadeClip], faces: FaceDataset
) -> None:
    from raksha.ml.evaluation.splits import KNOWN_RULES, assign_splits

    split = assign_splits(faces.columns, KNOWN_RULES[SET])
    test_performers = {
        p for p, s in zip(faces.columns["performer"], split, strict=True) if s == "test"
    }
    assert [c.plan.kind for c in clips] == list(CYCLE[:3])
    for clip in clips:
        assert clip.labels.performer in test_performers
        assert 24 <= clip.labels.face_px <= 200
        shown = {h["image"] for h in clip.labels.generator["holds"]}  # type: ignore[index]
        rows = [faces.names.index(name) for name in shown]
        assert {faces.columns["performer"][r] for r in rows} == {clip.labels.performer}
    kinds = [[s.kind for s in c.labels.segments] for c in clips]
    assert kinds[0] == ["calm", "distress", "calm"]
    assert kinds[0][1] == "distress" and clips[0].labels.segments[1].expression in {
        "fear",
        "sadness",
    }
    assert kinds[1][0] == kinds[1][2] == "calm" and clips[1].labels.segments[1].expression in {
        "happiness",
        "surprise",
    }
    assert "distress" not in kinds[2] and 30 <= clips[2].labels.duration_s <= 70


@pytest.mark.slow
def test_each_clip_decodes_to_its_frame_count_and_duration(clips: list[MadeClip]) -> None:
    for clip in clips:
        labels = read_sidecar(clip.path.with_suffix(".json"))
        assert labels == clip.labels
        frames, times = _decode(clip.path)
        n = round(labels.duration_s * labels.fps)
        assert len(frames) == n == len(labels.face_boxes or ())
        assert frames[0].shape == (360, 640, 3)
        assert times == pytest.approx([k / labels.fps for k in range(n)], abs=1e-6)


@pytest.mark.slow
def test_every_frame_shows_the_expression_its_segment_names(
    clips: list[MadeClip], faces: FaceDataset
) -> None:
    """Each decoded frame (outside crossfades) is matched to the most alike of all of the
    performer's photos; that photo's label must be the expression of the sidecar segment
    that holds the frame. The frames just before and after each crossfade pin every
    segment boundary to within the fade."""
    import cv2

    from raksha.ml.evaluation.clip_render import elliptical_mask, motion_blurred

    for clip in clips:
        labels = clip.labels
        gen = labels.generator or {}
        side, blur = int(gen["face_side_px"]), gen["degradations"]
        mask = elliptical_mask(side) > 0.99
        rows = [i for i, p in enumerate(faces.columns["performer"]) if p == labels.performer]
        photos = {}
        for r in rows:
            small = cv2.resize(faces.images[r], (side, side), interpolation=cv2.INTER_AREA)
            smeared = motion_blurred(
                small.astype(np.float32), blur["motion_blur_px"], blur["motion_blur_deg"]
            )
            photos[r] = _pattern(smeared, mask)
        fade = round(float(gen["fade_s"]) * labels.fps)
        starts = [round(s.start_s * labels.fps) for s in labels.segments[1:]]
        starts += [round(h["start_s"] * labels.fps) for h in gen["holds"][1:]]
        frames, _ = _decode(clip.path)
        checked = 0
        for k, frame in enumerate(frames):
            if any(s <= k < s + fade for s in starts):
                continue
            x1, y1, x2, y2 = (labels.face_boxes or ())[k]
            seen = _pattern(frame[y1:y2, x1:x2].astype(np.float32), mask)
            best = max(photos, key=lambda r: float(seen @ photos[r]))
            shown = EXPRESSION_CLASSES[int(faces.labels[best])]
            assert shown == labels.segment_at(k / labels.fps).expression, (clip.path.name, k)
            checked += 1
        assert checked > 0.8 * len(frames)


def test_make_clips_refuses_an_unknown_split_and_a_folder_with_clips(
    tmp_path: Path, data_dir: Path
) -> None:
    with pytest.raises(RakshaError, match="--split must be one of"):
        make_clips(data_dir / SET, tmp_path / "new", split="val", count=1)
    (tmp_path / "old.mp4").write_bytes(b"")
    with pytest.raises(RakshaError, match="already holds clips"):
        make_clips(data_dir / SET, tmp_path, count=1)


def _sidecar(**change: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "clip": "a.mp4",
        "fps": 10,
        "duration_s": 6.0,
        "performer": "02",
        "face_px": 60,
        "segments": [
            {"start_s": 0.0, "end_s": 2.0, "kind": "calm", "expression": "neutral"},
            {"start_s": 2.0, "end_s": 5.0, "kind": "distress", "expression": "fear"},
            {"start_s": 5.0, "end_s": 6.0, "kind": "other", "expression": "surprise"},
        ],
    }
    doc.update(change)
    return doc


def test_a_good_sidecar_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(_sidecar()))
    labels = read_sidecar(path)
    assert isinstance(labels, ClipLabels)
    assert [s.start_s for s in labels.distress()] == [2.0]
    assert labels.segment_at(1.99).expression == "neutral"
    assert labels.segment_at(2.0).expression == "fear"
    assert labels.segment_at(7.0).expression == "surprise"
    assert labels.box_at(1.0) is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "is not valid JSON (line 1"),
        (json.dumps(_sidecar(segments=[])), "segments"),
        (json.dumps({k: v for k, v in _sidecar().items() if k != "fps"}), "fps: Field required"),
        (json.dumps(_sidecar(duration_s=7.0)), "segments end at 6.0 s, the clip at 7.0 s"),
        (
            json.dumps(
                _sidecar(
                    segments=[{"start_s": 0, "end_s": 6, "kind": "calm", "expression": "fear"}]
                )
            ),
            "makes a 'distress' segment, not 'calm'",
        ),
        (json.dumps(_sidecar(face_boxes=[[0, 0, 10, 10]])), "1 face boxes for 60 frames"),
    ],
)
def test_a_bad_sidecar_is_one_error_naming_the_file(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SidecarError) as caught:
        read_sidecar(path)
    message = str(caught.value)
    assert str(path) in message and needle in message and "\n" not in message
