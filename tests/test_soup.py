"""`raksha train soup`: weight averages of fine-tuning runs, checked by hand, exported and run
through the runtime on real FER+ faces."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from raksha.errors import ModelError  # noqa: E402
from raksha.expression.config import ExpressionConfig  # noqa: E402
from raksha.expression.onnx_classifier import OnnxExpressionClassifier  # noqa: E402
from raksha.expression.spec import ExpressionSpec  # noqa: E402
from raksha.ml.evaluation.datasets import FaceDataset, read_ferplus  # noqa: E402
from raksha.ml.training.loop import (  # noqa: E402
    TrainConfig,
    build_model,
    load_checkpoint_model,
)
from raksha.ml.training.soup import average_states, make_soup  # noqa: E402

TINY = {"widths": (8, 16, 16, 32), "blocks": (1, 1, 1), "threads": 1}


@pytest.fixture(scope="module")
def faces(data_dir: Path) -> FaceDataset:
    return read_ferplus(data_dir / "ferplus-valid").subset(np.arange(32))


def _run(folder: Path, seed: int, widths: tuple[int, ...] = TINY["widths"]) -> torch.nn.Module:  # type: ignore[assignment]
    """A run folder whose best.pt holds a random tiny network (as training writes it)."""
    torch.manual_seed(seed)
    cfg = TrainConfig(**{**TINY, "widths": widths, "seed": seed})  # type: ignore[arg-type]
    net = build_model(cfg).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that averaging must carry them
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    folder.mkdir(parents=True)
    torch.save(
        {"model": net.state_dict(), "config": asdict(cfg), "epoch": 3, "val_accuracy": 0.5},
        folder / "best.pt",
    )
    return net


def test_weighted_average_by_hand() -> None:
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(7)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(9)}
    got = average_states([a, b], [0.25, 0.75])
    torch.testing.assert_close(got["w"], torch.tensor([2.5, 5.0]))
    assert int(got["n"]) == 7  # integer buffers (BatchNorm's batch counter) from the first
    with pytest.raises(ValueError, match="sum to 1"):
        average_states([a, b], [0.5, 0.6])
    with pytest.raises(ModelError, match="layer w"):
        average_states([a, {"w": torch.zeros(3), "n": torch.tensor(1)}], [0.5, 0.5])
    with pytest.raises(ModelError, match="other layers"):
        average_states([a, {"v": torch.zeros(2), "n": torch.tensor(1)}], [0.5, 0.5])


def test_soup_is_the_mean_and_alpha_mixes_with_the_base(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", 1)
    b = _run(tmp_path / "b", 2)
    base = _run(tmp_path / "base", 3)
    card = make_soup([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    net, _ = load_checkpoint_model(tmp_path / "soup" / "best.pt")
    for k, v in net.state_dict().items():
        if torch.is_floating_point(v):
            torch.testing.assert_close(v, (a.state_dict()[k] + b.state_dict()[k]) / 2)
    assert [m["run"] for m in card["members"]] == ["a", "b"] and card["alpha"] == 1.0
    assert card["base"] is None

    make_soup([tmp_path / "a"], tmp_path / "wise", base=base, base_name="base", alpha=0.3)
    net, _ = load_checkpoint_model(tmp_path / "wise" / "best.pt")
    sd_a, sd_base = a.state_dict(), base.state_dict()
    for k, v in net.state_dict().items():
        if torch.is_floating_point(v):
            torch.testing.assert_close(v, 0.3 * sd_a[k] + 0.7 * sd_base[k])

    make_soup([tmp_path / "a"], tmp_path / "zero", base=base, base_name="base", alpha=0.0)
    net, _ = load_checkpoint_model(tmp_path / "zero" / "best.pt")
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, sd_base[k])


def test_soup_refuses_what_cannot_be_averaged(tmp_path: Path) -> None:
    _run(tmp_path / "a", 1)
    _run(tmp_path / "wide", 2, widths=(8, 16, 32, 32))
    with pytest.raises(ModelError, match="widths/blocks"):
        make_soup([tmp_path / "a", tmp_path / "wide"], tmp_path / "x")
    with pytest.raises(ModelError, match="no checkpoint"):
        make_soup([tmp_path / "a", tmp_path / "missing"], tmp_path / "x")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        make_soup([tmp_path / "junk"], tmp_path / "x")
    with pytest.raises(ModelError, match="give --base"):
        make_soup([tmp_path / "a"], tmp_path / "x", alpha=0.5)


def test_soup_command_exports_a_model_the_runtime_runs(
    data_dir: Path, faces: FaceDataset, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from raksha.cli import app

    a = _run(tmp_path / "a", 1)
    b = _run(tmp_path / "b", 2)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "train", "soup", "--run", str(tmp_path / "a"), "--run", str(tmp_path / "b"),
            "--out", str(tmp_path / "soup"), "--val", str(data_dir / "ferplus-valid"),
            "--name", "tiny-soup",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, (res.output, res.exception)
    onnx = tmp_path / "soup" / "tiny-soup.onnx"
    card = json.loads(onnx.with_suffix(".json").read_text())
    assert [m["run"] for m in card["soup"]["members"]] == ["a", "b"]
    assert card["architecture"]["export"]["mirror_averaging"] is True
    temperature = card["architecture"]["export"]["softmax_temperature"]
    runtime = OnnxExpressionClassifier(
        ExpressionSpec.from_card(onnx.with_suffix(".json")), onnx, ExpressionConfig()
    )
    got = runtime.predict_crops(list(faces.images[:8]))
    # the runtime's answer is the averaged network's, mirror-averaged, at the fitted temperature
    mean = build_model(TrainConfig(**TINY)).eval()  # type: ignore[arg-type]
    mean.load_state_dict(average_states([a.state_dict(), b.state_dict()], [0.5, 0.5]))
    x = torch.from_numpy(faces.images[:8]).float().unsqueeze(1) / 127.5 - 1.0
    with torch.no_grad():
        want = 0.5 * (
            torch.softmax(mean(x) / temperature, 1)
            + torch.softmax(mean(torch.flip(x, dims=[3])) / temperature, 1)
        )
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4)

    bad = runner.invoke(
        app, ["train", "soup", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code != 0 and "no checkpoint at" in str(bad.exception)
    bad = runner.invoke(
        app,
        ["train", "soup", "--run", str(tmp_path / "a"), "--out", str(tmp_path / "x"),
         "--alpha", "0.5"],
    )  # fmt: skip
    assert bad.exit_code != 0 and "give --base" in str(bad.exception)
    assert not (tmp_path / "x").exists()  # refused before anything was written
