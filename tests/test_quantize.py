"""int8 quantization of the expression model: `raksha train quantize` on real FER+ faces, and
the shipped int8 model against the float model it was made from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from raksha import models as registry
from raksha.expression import ExpressionConfig, build_expression_classifier
from raksha.ml.evaluation.datasets import FaceDataset, read_ferplus
from raksha.ml.training.quantize import quantize_expression_model, split_faces

FLOAT = "raksha-fer-resnet"
INT8 = "raksha-fer-resnet-int8"


@pytest.fixture(scope="module")
def valid_faces(data_dir: Path) -> FaceDataset:
    return read_ferplus(data_dir / "ferplus-valid").subset(np.arange(300))


def test_calibration_and_check_faces_are_disjoint(valid_faces: FaceDataset) -> None:
    cal, check = split_faces(valid_faces, 200, 200, seed=1)
    assert len(cal) == 200 and len(check) == 100
    cal_keys = {c.tobytes() for c in cal}
    assert not any(c.tobytes() in cal_keys for c in check)


@pytest.mark.slow
def test_quantize_writes_a_loadable_model_that_agrees_with_the_source(
    data_dir: Path, tmp_path: Path
) -> None:
    entry = registry.get_entry(FLOAT)
    assert entry.card is not None
    train = read_ferplus(data_dir / "ferplus-train", keep="usable").subset(np.arange(400))
    done = quantize_expression_model(
        registry.model_path(FLOAT),
        entry.card,
        train,
        tmp_path,
        "tiny-int8",
        calibration_faces=200,
        check_faces=200,
    )
    assert done.onnx == tmp_path / "tiny-int8.onnx" and done.calibration_faces == 200
    assert done.top1_agreement >= 0.95, done.top1_agreement
    assert done.onnx.stat().st_size < registry.model_path(FLOAT).stat().st_size / 2
    card = json.loads(done.card.read_text())
    assert card["name"] == "tiny-int8" and card["file"] == "tiny-int8.onnx"
    assert card["sha256"] == registry.file_sha256(done.onnx)
    assert card["quantization"]["source"] == FLOAT
    assert card["quantization"]["source_sha256"] == entry.sha256
    # Figures measured on the float model must not pass for the int8 model's.
    assert "metrics" not in card and "speed" not in card

    clf = build_expression_classifier(ExpressionConfig(model=str(done.onnx)))
    probs = clf.predict_crops(list(train.images[:50]))
    # The softmax stays in float: rows are true distributions, not rounded to 1/255.
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_shipped_int8_model_is_the_float_model_quantized(valid_faces: FaceDataset) -> None:
    int8 = registry.get_entry(INT8)
    assert int8.card is not None
    card = json.loads(int8.card.read_text())
    assert card["quantization"]["source_sha256"] == registry.get_entry(FLOAT).sha256
    assert card["metrics"]["accuracy"] >= 0.85
    assert ExpressionConfig().model == "raksha-fer-xd-int8"  # the default since 2026-12-06

    a = build_expression_classifier(ExpressionConfig(model=FLOAT)).predict_crops(
        list(valid_faces.images)
    )
    b = build_expression_classifier(ExpressionConfig(model=INT8)).predict_crops(
        list(valid_faces.images)
    )
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.97
    assert float(np.abs(a - b).mean()) < 0.01


ONEPASS = "raksha-fer-resnet-onepass-int8"


@pytest.mark.parametrize("name", [INT8, ONEPASS, "raksha-fer-xd-int8"])
@pytest.mark.slow
def test_shipped_int8_models_reach_their_card_accuracy_on_this_cpu(
    data_dir: Path, name: str
) -> None:
    """int8 arithmetic differs between CPUs (AVX-512 VNNI or not): the first int8 file lost
    1.5 points on an AVX2 CPU. The shipped files must give their card's accuracy here."""
    faces = read_ferplus(data_dir / "ferplus-valid", keep="majority")
    entry = registry.get_entry(name)
    assert entry.card is not None
    card = json.loads(entry.card.read_text())
    assert card["quantization"]["stem_convolutions"] == "float"
    clf = build_expression_classifier(ExpressionConfig(model=name))
    probs = clf.predict_crops(list(faces.images))
    acc = float((probs.argmax(1) == faces.labels).mean())
    assert abs(acc - card["metrics"]["accuracy"]) <= 0.005, (acc, card["metrics"]["accuracy"])
    # raksha-fer-xd-int8 gives up 0.8 points on FER+ (84.8 %) for faces unlike FER2013
    # (docs/expression-model.md); the FER+-only models keep the 85 % floor.
    assert acc >= (0.84 if name == "raksha-fer-xd-int8" else 0.85)


def test_the_stem_is_found_on_both_passes_of_a_mirror_averaging_graph() -> None:
    from raksha.ml.training.quantize import _stem_convs

    two_pass = _stem_convs(registry.model_path(FLOAT))
    assert len(two_pass) == 2  # the face and its mirror image
    import onnx

    graph = onnx.load(str(registry.model_path(FLOAT))).graph
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    weights = {n.name: alias.get(n.input[1], n.input[1]) for n in graph.node if n.op_type == "Conv"}
    first_conv = next(n.name for n in graph.node if n.op_type == "Conv")
    assert first_conv in two_pass
    # both are the stem: the same weights, the mirror pass reading them through an Identity
    assert len({weights[n] for n in two_pass}) == 1


LITE = "raksha-fer-lite-int8"


@pytest.mark.slow
def test_the_lite_model_reaches_its_card_accuracy_on_this_cpu(data_dir: Path) -> None:
    """The small option (widths 16-128, one pass): its card's accuracy, measured again here,
    well above the `fer` library's 68 % though under the default's 85 %."""
    faces = read_ferplus(data_dir / "ferplus-valid", keep="majority")
    entry = registry.get_entry(LITE)
    assert entry.card is not None
    card = json.loads(entry.card.read_text())
    assert card["quantization"]["stem_convolutions"] == "float"
    assert card["architecture"]["widths"] == [16, 32, 64, 128]
    assert card["architecture"]["export"]["mirror_averaging"] is False
    clf = build_expression_classifier(ExpressionConfig(model=LITE))
    assert not clf.skips_mirror
    probs = clf.predict_crops(list(faces.images))
    acc = float((probs.argmax(1) == faces.labels).mean())
    assert abs(acc - card["metrics"]["accuracy"]) <= 0.005, (acc, card["metrics"]["accuracy"])
    assert acc >= 0.78
