"""Distillation: the teacher's PyTorch network is rebuilt exactly from its exported ONNX file, its
targets mix its probabilities with the votes, and `raksha train distill` writes a one-pass model
that the runtime loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from raksha.domain import EXPRESSION_CLASSES  # noqa: E402
from raksha.errors import ModelError  # noqa: E402
from raksha.ml.evaluation.datasets import FaceDataset, read_ferplus  # noqa: E402
from raksha.ml.training.distill import net_from_onnx, teacher_targets  # noqa: E402
from raksha.ml.training.export import export_onnx, write_card  # noqa: E402
from raksha.ml.training.loop import (  # noqa: E402
    TrainConfig,
    build_model,
    freeze_batchnorm,
    predict_probs,
)
from raksha.models import PACKAGED_DIR  # noqa: E402

TEACHER = PACKAGED_DIR / "raksha-fer-resnet.onnx"


@pytest.fixture(scope="module")
def faces(data_dir: Path) -> FaceDataset:
    return read_ferplus(data_dir / "ferplus-valid", keep="majority").subset(np.arange(64))


def _export(net: torch.nn.Module, path: Path, temperature: float, flip: bool) -> Path:
    export_onnx(net, path, temperature=temperature, flip_tta=flip)
    card = write_card(path, path.stem)
    doc = json.loads(card.read_text())
    doc["architecture"] = {"export": {"softmax_temperature": temperature, "mirror_averaging": flip}}
    card.write_text(json.dumps(doc))
    return path


@pytest.mark.slow
def test_the_shipped_teacher_is_rebuilt_exactly(faces: FaceDataset) -> None:
    rebuilt = net_from_onnx(TEACHER)
    assert rebuilt.widths == (32, 64, 128, 256) and rebuilt.blocks == (1, 1, 1)
    assert rebuilt.flip_tta and rebuilt.max_abs_diff <= 1e-4
    import onnxruntime as ort

    sess = ort.InferenceSession(str(TEACHER), providers=["CPUExecutionProvider"])
    x = faces.images.astype(np.float32)[:, None] / 127.5 - 1.0
    want = sess.run(None, {"input": x})[0]
    t = torch.from_numpy(x)
    with torch.no_grad():
        a = torch.softmax(rebuilt.net(t) / rebuilt.temperature, dim=1)
        b = torch.softmax(rebuilt.net(torch.flip(t, dims=[3])) / rebuilt.temperature, dim=1)
    np.testing.assert_allclose(((a + b) / 2).numpy(), want, atol=1e-4)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.slow
def test_other_architectures_and_trained_batchnorm_are_rebuilt(
    tmp_path: Path, faces: FaceDataset, flip: bool
) -> None:
    torch.manual_seed(3)
    net = build_model(TrainConfig(widths=(8, 16, 24, 32), blocks=(2, 0, 1))).eval()
    with torch.no_grad():  # non-trivial statistics, which the export folds into the convolutions
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    path = _export(net, tmp_path / "t.onnx", 1.5, flip)
    rebuilt = net_from_onnx(path)
    assert rebuilt.widths == (8, 16, 24, 32) and rebuilt.blocks == (2, 0, 1)
    assert rebuilt.temperature == 1.5 and rebuilt.flip_tta is flip
    np.testing.assert_allclose(
        predict_probs(rebuilt.net, faces.images), predict_probs(net, faces.images), atol=1e-4
    )


@pytest.mark.slow
def test_frozen_batchnorm_keeps_the_function_in_training_mode(faces: FaceDataset) -> None:
    rebuilt = net_from_onnx(TEACHER)
    net = rebuilt.net
    x = torch.from_numpy(faces.images[:32].astype(np.float32)[:, None] / 127.5 - 1.0)
    with torch.no_grad():
        before = net(x)
        net.train()
        freeze_batchnorm(net)
        net.drop.eval()  # dropout is the only other layer that differs in training
        after = net(x)
    torch.testing.assert_close(after, before, atol=1e-4, rtol=0)


def test_a_model_without_a_card_or_of_another_kind_is_refused(tmp_path: Path) -> None:
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(TEACHER.read_bytes())
    with pytest.raises(ModelError, match="no model card"):
        net_from_onnx(bare)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    junk.with_suffix(".json").write_text("{}")
    with pytest.raises(ModelError, match="cannot load teacher"):
        net_from_onnx(junk)


def test_teacher_targets_mix_teacher_and_votes(faces: FaceDataset) -> None:
    mixed, probs = teacher_targets(TEACHER, faces, 0.7)
    assert probs.shape == (len(faces), len(EXPRESSION_CLASSES))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(mixed.targets, 0.7 * probs + 0.3 * faces.targets, atol=1e-5)
    assert mixed.images is faces.images and (mixed.labels == faces.labels).all()
    only_votes, _ = teacher_targets(TEACHER, faces, 0.0)
    np.testing.assert_allclose(only_votes.targets, faces.targets, atol=1e-6)
    # the teacher agrees with the crowd on most of these faces
    assert float((probs.argmax(axis=1) == faces.labels).mean()) > 0.7


def _small_ferplus(src: Path, dst: Path, n: int) -> Path:
    """The first `n` faces of a FER+ folder (label.csv and their images), copied."""
    import shutil

    lines = (src / "label.csv").read_text(encoding="utf-8").splitlines()[:n]
    (dst / "images").mkdir(parents=True)
    for line in lines:
        name = line.split(",", 1)[0]
        shutil.copy(src / "images" / name, dst / "images" / name)
    (dst / "label.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst


@pytest.mark.slow
def test_train_distill_writes_a_one_pass_model_the_runtime_loads(
    data_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from raksha.cli import app
    from raksha.expression.config import ExpressionConfig
    from raksha.expression.factory import build_expression_classifier

    out = tmp_path / "run"
    small = _small_ferplus(data_dir / "ferplus-valid", tmp_path / "ferplus", 96)
    res = CliRunner().invoke(
        app,
        [
            "train",
            "distill",
            "--data",
            str(small),
            "--val",
            str(small),
            "--out",
            str(out),
            "--batch-size",
            "16",
            "--max-steps",
            "2",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--fp32",
            "--name",
            "tiny-onepass",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    card = json.loads((out / "tiny-onepass.json").read_text())
    assert card["architecture"]["export"]["mirror_averaging"] is False
    assert card["distilled_from"]["model"] == "raksha-fer-resnet"
    assert card["training"]["recipe"]["freeze_bn"] is True
    clf = build_expression_classifier(ExpressionConfig(model=str(out / "tiny-onepass.onnx")))
    probs = clf.predict_crops(list(read_ferplus(small).images[:4]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
