"""Expression models on real faces: built-in FER2013 specs, model cards, crops, batching."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from raksha.domain import EXPRESSION_CLASSES, FaceDetections
from raksha.errors import ModelError
from raksha.expression import (
    ExpressionConfig,
    ExpressionSpec,
    build_expression_classifier,
    builtin_spec,
)
from raksha.expression.onnx_classifier import OnnxExpressionClassifier, softmax
from raksha.expression.preprocess import crop_faces, crop_matrix
from raksha.expression.spec import CropSpec
from raksha.models import PACKAGED_DIR, discover_cards

FER_MODELS = ["fer-mini-xception", "fer-big-xception"]
#: Canonical order without contempt, which the FER2013 models lack.
FER_LABELS = tuple(c for c in EXPRESSION_CLASSES if c != "contempt")


def _detect(models_dir: Path, image: npt.NDArray[np.uint8]) -> FaceDetections:
    """Faces found by YuNet through OpenCV directly, threshold 0.8 (as in the MANIFEST)."""
    h, w = image.shape[:2]
    det = cv2.FaceDetectorYN.create(
        str(models_dir / "face_detection_yunet_2023mar.onnx"), "", (w, h), 0.8, 0.3, 5000
    )
    det.setInputSize((w, h))
    _, rows = det.detect(image)
    if rows is None:
        return FaceDetections.empty()
    boxes = np.c_[rows[:, 0], rows[:, 1], rows[:, 0] + rows[:, 2], rows[:, 1] + rows[:, 3]]
    return FaceDetections(
        boxes=boxes.astype(np.float32),
        scores=rows[:, 14].astype(np.float32),
        landmarks=rows[:, 4:14].reshape(-1, 5, 2).astype(np.float32),
    )


@pytest.fixture(scope="module")
def photos(
    models_dir: Path, faces_dir: Path
) -> dict[str, tuple[npt.NDArray[np.uint8], FaceDetections]]:
    out = {}
    for name in ("astronaut.jpg", "women_4faces_smiling.jpg", "group_selfie_6faces.jpg"):
        img = cv2.imread(str(faces_dir / name))
        assert img is not None, name
        out[name] = (img, _detect(models_dir, img))
    assert [len(f) for _, f in out.values()] == [1, 4, 6]
    return out


@pytest.fixture(scope="module")
def classifiers(models_dir: Path) -> dict[str, OnnxExpressionClassifier]:
    return {
        m: build_expression_classifier(ExpressionConfig(model=m), models_dir) for m in FER_MODELS
    }


@pytest.fixture(scope="module")
def ferplus(data_dir: Path) -> tuple[list[npt.NDArray[np.uint8]], list[str]]:
    """The first 200 FER+ validation images that have a majority label."""
    root = data_dir / "ferplus-valid"
    with (root / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label_majority"]][:200]
    images = []
    for r in rows:
        img = cv2.imread(str(root / r["file"]), cv2.IMREAD_GRAYSCALE)
        assert img is not None and img.shape == (48, 48)
        images.append(img)
    return images, [r["label_majority"] for r in rows]


def _assert_distributions(probs: npt.NDArray[np.float32], k: int) -> None:
    assert probs.dtype == np.float32 and probs.ndim == 2 and probs.shape[1] == k
    assert np.all(np.isfinite(probs)) and np.all(probs >= 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("model", FER_MODELS)
def test_smiling_faces_are_happiness(model: str, classifiers: dict, photos: dict) -> None:
    clf = classifiers[model]
    assert clf.labels == FER_LABELS
    for name in ("astronaut.jpg", "women_4faces_smiling.jpg"):
        img, faces = photos[name]
        scores = clf.classify(img, faces)
        assert scores.labels == FER_LABELS
        assert scores.top() == ["happiness"] * len(faces), (name, scores.as_dicts())


@pytest.mark.parametrize("model", FER_MODELS)
def test_rows_are_distributions(model: str, classifiers: dict, photos: dict) -> None:
    for img, faces in photos.values():
        _assert_distributions(classifiers[model].classify(img, faces).probs, len(FER_LABELS))


def test_batched_equals_one_by_one(models_dir: Path, photos: dict) -> None:
    img, faces = photos["group_selfie_6faces.jpg"]
    whole = build_expression_classifier(ExpressionConfig(batch_size=64), models_dir)
    chunked = build_expression_classifier(ExpressionConfig(batch_size=4), models_dir)
    batched = whole.classify(img, faces).probs
    single = np.concatenate([whole.classify(img, faces[i : i + 1]).probs for i in range(6)])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(chunked.classify(img, faces).probs, single, atol=1e-5)


def test_zero_faces_give_empty_rows(classifiers: dict, photos: dict) -> None:
    img, _ = photos["astronaut.jpg"]
    for clf in classifiers.values():
        scores = clf.classify(img, FaceDetections.empty())
        assert scores.probs.shape == (0, 7) and scores.labels == FER_LABELS
        assert clf.predict_crops([]).shape == (0, 7)


@pytest.mark.parametrize("model", FER_MODELS)
def test_predict_crops_on_ferplus(model: str, classifiers: dict, ferplus: tuple) -> None:
    clf = classifiers[model]
    images, labels = ferplus
    probs = clf.predict_crops(images)
    _assert_distributions(probs, 7)
    assert probs.shape[0] == len(images)
    # The MANIFEST measured ~0.68 over all 3,191; a wrong normalisation or column order
    # would be near chance (~0.15-0.35).
    acc = np.mean([clf.labels[i] == y for i, y in zip(probs.argmax(1), labels, strict=True)])
    assert acc > 0.6, acc
    # Grey and BGR copies of the same crops give the same answer.
    bgr = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in images[:8]]
    np.testing.assert_allclose(clf.predict_crops(bgr), probs[:8], atol=1e-6)


def test_predict_crops_on_face_crops_equals_classify(classifiers: dict, photos: dict) -> None:
    clf = classifiers["fer-mini-xception"]
    img, faces = photos["women_4faces_smiling.jpg"]
    crops = crop_faces(img, faces, clf.spec.crop, clf.spec.input.size)
    assert all(c.shape == (64, 64, 3) for c in crops)
    np.testing.assert_allclose(clf.predict_crops(crops), clf.classify(img, faces).probs, atol=1e-6)


# --- model cards -----------------------------------------------------------------------------


def _card_for(tmp_path: Path, models_dir: Path, **changes: object) -> Path:
    """A copy of the mini model in tmp_path with a model card written from the built-in spec."""
    spec = builtin_spec("fer-mini-xception")
    assert spec is not None
    onnx = tmp_path / "my-fer.onnx"
    shutil.copy(models_dir / spec.file, onnx)
    card = json.loads(spec.model_dump_json())
    card.update(name="my-fer", file=onnx.name, training={"epochs": 3}, metrics={"acc": 0.68})
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(card.get(key), dict):
            card[key] = {**card[key], **value}
        else:
            card[key] = value
    onnx.with_suffix(".json").write_text(json.dumps(card), encoding="utf-8")
    return onnx


def test_card_spec_gives_same_output_as_builtin(
    tmp_path: Path, models_dir: Path, classifiers: dict, photos: dict
) -> None:
    onnx = _card_for(tmp_path, models_dir)
    spec = ExpressionSpec.from_card(onnx.with_suffix(".json"))
    assert spec.model_extra == {"training": {"epochs": 3}, "metrics": {"acc": 0.68}}
    from_card = build_expression_classifier(ExpressionConfig(model=str(onnx)), None)
    builtin = classifiers["fer-mini-xception"]
    assert from_card.labels == builtin.labels
    for img, faces in photos.values():
        np.testing.assert_allclose(
            from_card.classify(img, faces).probs, builtin.classify(img, faces).probs, atol=1e-6
        )


def test_logits_output_gets_softmax(
    tmp_path: Path, models_dir: Path, classifiers: dict, photos: dict
) -> None:
    onnx = _card_for(tmp_path, models_dir, output={"kind": "logits"})
    clf = build_expression_classifier(ExpressionConfig(model=str(onnx)), None)
    img, faces = photos["group_selfie_6faces.jpg"]
    got = clf.classify(img, faces).probs
    _assert_distributions(got, 7)
    probs = classifiers["fer-mini-xception"].classify(img, faces).probs
    np.testing.assert_allclose(got, softmax(probs), atol=1e-6)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"classes": ["angry", *FER_LABELS[1:]]}, "classes"),
        ({"sha256": "0" * 64}, "sha256"),
        ({"input": {"name": "pixels"}}, "no input named 'pixels'"),
        ({"input": {"size": 48}}, "does not fit"),
        ({"input": {"mean": 0.5}}, "input.mean"),
        ({"output": {"name": "scores"}}, "no output named 'scores'"),
        ({"classes": list(FER_LABELS[:6])}, "6 classes"),
    ],
)
def test_bad_cards_are_one_line_model_errors(
    tmp_path: Path, models_dir: Path, changes: dict, needle: str
) -> None:
    onnx = _card_for(tmp_path, models_dir, **changes)
    with pytest.raises(ModelError) as err:
        build_expression_classifier(ExpressionConfig(model=str(onnx)), None)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_card_and_wrong_task(tmp_path: Path, models_dir: Path) -> None:
    onnx = tmp_path / "lonely.onnx"
    shutil.copy(models_dir / "fer_mini_xception_fer2013.onnx", onnx)
    with pytest.raises(ModelError, match="no model card"):
        build_expression_classifier(ExpressionConfig(model=str(onnx)), None)
    with pytest.raises(ModelError, match="not found"):
        build_expression_classifier(ExpressionConfig(model=str(tmp_path / "nope.onnx")), None)
    with pytest.raises(ModelError, match="not an expression model"):
        build_expression_classifier(ExpressionConfig(model="yunet-s"), models_dir)


def test_packaged_models_run(models_dir: Path, photos: dict) -> None:
    cards = [e for e in discover_cards(PACKAGED_DIR) if e.task == "expression"]
    if not cards:
        pytest.skip("no expression model is shipped in raksha/assets/models yet")
    img, faces = photos["women_4faces_smiling.jpg"]
    for entry in cards:
        clf = build_expression_classifier(ExpressionConfig(model=entry.name), models_dir)
        _assert_distributions(clf.classify(img, faces).probs, len(clf.labels))


# --- crops ------------------------------------------------------------------------------------


def test_aligned_matrix_levels_the_eyes() -> None:
    box = np.array([100.0, 50.0, 200.0, 170.0])
    angle = np.deg2rad(30.0)
    centre = np.array([150.0, 110.0])
    offsets = np.array([[-30, -20], [30, -20], [0, 5], [-20, 30], [20, 30]], dtype=np.float64)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = centre + offsets @ rot.T
    m = crop_matrix(box, landmarks, CropSpec(method="aligned", scale=1.2), 64)
    eyes = landmarks[:2] @ m[:, :2].T + m[:, 2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-3  # level
    assert eyes[0, 0] < eyes[1, 0]  # not flipped
    np.testing.assert_allclose(np.hypot(*(eyes[1] - eyes[0])), 60 * 64 / 144, rtol=1e-5)
    # The box method is a plain square: centre to the middle, 1.2*max(w,h) to 64 px.
    mb = crop_matrix(box, landmarks, CropSpec(method="box", scale=1.2), 64)
    np.testing.assert_allclose(mb @ np.array([150.0, 110.0, 1.0]), [32.0, 32.0], atol=1e-4)
    np.testing.assert_allclose(mb[:, :2], np.eye(2) * 64 / 144, atol=1e-6)


def test_aligned_crop_undoes_head_roll(photos: dict) -> None:
    """Roll the photo 30 degrees about the face centre, carry the landmarks along exactly
    (YuNet's own landmarks drift towards an upright face at large roll), and the aligned crop
    comes out as it does from the upright photo; the plain box crop does not."""
    img, faces = photos["astronaut.jpg"]
    cx, cy = (float(v) for v in faces.boxes[0].reshape(2, 2).mean(axis=0))
    rot = cv2.getRotationMatrix2D((cx, cy), 30.0, 1.0)
    tilted = cv2.warpAffine(img, rot, img.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    moved = faces.landmarks @ rot[:, :2].T.astype(np.float32) + rot[:, 2].astype(np.float32)
    tilted_faces = FaceDetections(faces.boxes, faces.scores, moved.astype(np.float32))
    aligned, box = CropSpec(method="aligned"), CropSpec(method="box")

    def grey(image: npt.NDArray[np.uint8], f: FaceDetections, c: CropSpec) -> np.ndarray:
        (crop,) = crop_faces(image, f, c, 64)
        return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)

    upright = grey(img, faces, aligned)
    diff_aligned = np.abs(grey(tilted, tilted_faces, aligned) - upright).mean()
    diff_box = np.abs(grey(tilted, tilted_faces, box) - upright).mean()
    assert diff_aligned < 4.0 and diff_box > 4 * diff_aligned, (diff_aligned, diff_box)
