"""Training: a few steps on real FER+ faces make the loss fall, checkpoints resume, the ONNX
export matches PyTorch and runs through Raksha's own expression runtime."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from raksha.domain import EXPRESSION_CLASSES  # noqa: E402
from raksha.expression.config import ExpressionConfig  # noqa: E402
from raksha.expression.onnx_classifier import OnnxExpressionClassifier  # noqa: E402
from raksha.expression.spec import ExpressionSpec  # noqa: E402
from raksha.ml.evaluation.datasets import FaceDataset, read_ferplus  # noqa: E402
from raksha.ml.training.augment import AugmentConfig, augment_batch  # noqa: E402
from raksha.ml.training.export import export_onnx, write_card  # noqa: E402
from raksha.ml.training.loop import (  # noqa: E402
    TrainConfig,
    build_model,
    class_weights,
    load_checkpoint_model,
    predict_probs,
    soft_cross_entropy,
    train,
)

TINY = {"widths": (8, 16, 16, 32), "blocks": (1, 1, 1), "threads": 1}
NO_AUG = AugmentConfig(
    flip=0.0,
    scale=(1.0, 1.0),
    shift=0.0,
    rotate_deg=0.0,
    brightness=0.0,
    contrast=(1.0, 1.0),
    blur_p=0.0,
    noise_p=0.0,
    jpeg_p=0.0,
    downscale_p=0.0,
    erase_p=0.0,
)


@pytest.fixture(scope="module")
def faces(data_dir: Path) -> FaceDataset:
    data = read_ferplus(data_dir / "ferplus-valid")
    return data.subset(np.arange(96))


def test_soft_cross_entropy_and_class_weights_by_hand() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    target = torch.tensor([[0.5, 0.5, 0.0]])
    expected = -(0.5 * np.log(0.5) + 0.5 * np.log(0.25))
    assert float(soft_cross_entropy(logits, target)) == pytest.approx(expected, rel=1e-6)
    w = torch.tensor([2.0, 0.0, 1.0])
    assert float(soft_cross_entropy(logits, target, w)) == pytest.approx(expected, rel=1e-6)
    targets = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    cw = class_weights(targets, power=0.5, cap=10.0).numpy()
    assert cw[1] / cw[0] == pytest.approx(3**0.5, rel=1e-5)  # rarer class weighs more
    assert float((cw * np.array([0.75, 0.25])).sum()) == pytest.approx(1.0)  # mean weight 1


def test_augmentation_keeps_shape_and_range(faces: FaceDataset) -> None:
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    x = augment_batch(faces.images[:32], AugmentConfig(), rng, g)
    assert x.shape == (32, 1, 48, 48) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    plain = augment_batch(faces.images[:4], NO_AUG, rng, g)
    np.testing.assert_allclose(plain[:, 0].numpy() * 255, faces.images[:4], atol=1e-3)
    assert not np.allclose(x[:4].numpy(), plain.numpy())


@pytest.mark.slow
def test_a_few_steps_make_the_loss_fall_and_resume_continues(
    faces: FaceDataset, tmp_path: Path
) -> None:
    cfg = TrainConfig(
        epochs=6,
        batch_size=32,
        lr=1e-2,
        warmup_epochs=0.5,
        bf16=False,
        augment=NO_AUG,
        dropout=0.0,
        **TINY,
    )  # type: ignore[arg-type]
    out = train(faces, faces, tmp_path, cfg, report=lambda _: None)
    losses = [h["train_loss"] for h in out["history"]]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0], losses
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    assert json.loads((tmp_path / "history.json").read_text())[-1]["epoch"] == 6

    resumed = train(
        faces, None, tmp_path, replace(cfg, epochs=7), resume=True, report=lambda _: None
    )
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4, 5, 6, 7]


def test_onnx_export_matches_pytorch_and_runs_in_the_runtime(
    faces: FaceDataset, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    net = build_model(TrainConfig(**TINY)).eval()  # type: ignore[arg-type]
    with torch.no_grad():  # non-trivial batch-norm statistics, so that export must carry them
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "tiny.onnx"
    assert export_onnx(net, path) <= 1e-4
    card = write_card(path, "tiny", {"training": {"note": "test"}})
    spec = ExpressionSpec.from_card(card)
    assert spec.classes == EXPRESSION_CLASSES and spec.input.size == 48
    runtime = OnnxExpressionClassifier(spec, path, ExpressionConfig(model=str(path)))
    got = runtime.predict_crops(list(faces.images[:20]))
    want = predict_probs(net, faces.images[:20])
    np.testing.assert_allclose(got, want, atol=1e-4)
    # and a checkpoint round trip gives the same network
    ckpt = {"model": net.state_dict(), "config": asdict(TrainConfig(**TINY)), "epoch": 1}  # type: ignore[arg-type]
    torch.save(ckpt, tmp_path / "b.pt")
    again, _ = load_checkpoint_model(tmp_path / "b.pt")
    np.testing.assert_allclose(predict_probs(again, faces.images[:5]), want[:5], atol=1e-6)


def test_export_with_temperature_and_mirror_averaging(faces: FaceDataset, tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = build_model(TrainConfig(**TINY)).eval()  # type: ignore[arg-type]
    path = tmp_path / "tta.onnx"
    assert export_onnx(net, path, temperature=2.0, flip_tta=True) <= 1e-4
    write_card(path, "tta")
    runtime = OnnxExpressionClassifier(
        ExpressionSpec.from_card(path.with_suffix(".json")), path, ExpressionConfig()
    )
    crops = faces.images[:8]
    got = runtime.predict_crops(list(crops))
    x = torch.from_numpy(crops).float().unsqueeze(1) / 127.5 - 1.0
    with torch.no_grad():
        a = torch.softmax(net(x) / 2.0, dim=1)
        b = torch.softmax(net(torch.flip(x, dims=[3])) / 2.0, dim=1)
    np.testing.assert_allclose(got, ((a + b) / 2).numpy(), atol=1e-4)
    # mirroring the input leaves a mirror-averaged model's output unchanged
    np.testing.assert_allclose(runtime.predict_crops(list(crops[:, :, ::-1])), got, atol=1e-4)


def test_resume_without_a_checkpoint_is_an_error(data_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from raksha.cli import app

    res = CliRunner().invoke(
        app,
        [
            "train",
            "expression",
            "--data",
            str(data_dir / "ferplus-valid"),
            "--out",
            str(tmp_path / "run"),
            "--resume",
        ],
    )
    assert res.exit_code != 0
    assert "no checkpoint to resume from" in str(res.exception)
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


@pytest.mark.slow
def test_train_with_extra_sets_uses_only_their_train_and_tune_splits(
    data_dir: Path, tmp_path: Path
) -> None:
    """`train expression --init --extra`: the extra set's train split is trained on, its tune
    split joins validation, its test performers are never read, and the card says so."""
    from typer.testing import CliRunner

    from raksha.cli import app
    from raksha.ml.evaluation.datasets import read_dataset
    from raksha.ml.evaluation.runner import split_filter

    extra = data_dir / "taiwan-tcce-performers"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "expression",
            "--data",
            str(data_dir / "ferplus-valid"),
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--limit",
            "64",
            "--batch-size",
            "64",
            "--threads",
            "1",
            "--init",
            "raksha-fer-resnet",
            "--extra",
            str(extra),
            "--extra-repeat",
            "1",
            "--logit-adjust",
            "0.5",
            "--no-flip-tta",
            "--name",
            "tiny-xd",
        ],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    card = json.loads((tmp_path / "run" / "tiny-xd.json").read_text())
    got = card["data"]["extra"][extra.name]
    test = read_dataset(extra, "labels", rows=split_filter(extra.name, "test"), size=48)
    assert got["train_faces"] + got["tune_faces"] + len(test) == 1232
    assert got["train_faces"] > 0 and got["tune_faces"] > 0
    assert card["data"]["init"] == "raksha-fer-resnet"
    assert card["training"]["recipe"]["logit_adjust"] == 0.5
    assert card["training"]["recipe"]["class_weight_power"] == 0.0
    assert card["architecture"]["widths"] == [32, 64, 128, 256]  # the init model's
