"""Run an expression model (through the ONNX runtime) over a labelled dataset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from raksha.evaluation.datasets import DatasetFormat, FaceDataset, read_dataset
from raksha.evaluation.degrade import FACE_SIZES, down_up
from raksha.evaluation.metrics import EvalResult, accuracy_of, evaluate_probs
from raksha.expression.config import ExpressionConfig


class CropPredictor(Protocol):
    """What evaluation needs of a model (OnnxExpressionClassifier fits)."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    def predict_crops(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]: ...


def evaluate_dataset(
    classifier: CropPredictor,
    data: FaceDataset,
    *,
    face_sizes: tuple[int, ...] = FACE_SIZES,
    weights: dict[str, float] | None = None,
    threshold: float | None = None,
) -> EvalResult:
    """All metrics of ``classifier`` on ``data``, including accuracy on faces shrunk to each of
    ``face_sizes`` pixels and scaled back up."""
    labels = tuple(classifier.labels)
    crops = list(data.images)
    probs = classifier.predict_crops(crops)
    result = evaluate_probs(probs, data.labels, labels, weights=weights, threshold=threshold)
    for side in face_sizes:
        small = list(down_up(data.images, side))
        result.by_face_size[str(side)] = accuracy_of(
            classifier.predict_crops(small), data.labels, labels
        )
    return result


def evaluate_model(
    model: str | None,
    dataset: Path,
    *,
    fmt: DatasetFormat | None = None,
    models_dir: Path | None = None,
    limit: int | None = None,
    threads: int = 0,
) -> EvalResult:
    """Evaluate a registry model (or an .onnx with its card; None = the configured default) on a
    FER+-layout or folder-per-class dataset."""
    from raksha.expression.factory import build_expression_classifier

    cfg = (
        ExpressionConfig(threads=threads)
        if model is None
        else ExpressionConfig(model=model, threads=threads)
    )
    classifier = build_expression_classifier(cfg, models_dir)
    data = read_dataset(dataset, fmt, size=48)
    if limit is not None:
        data = data.subset(np.arange(min(limit, len(data))))
    result = evaluate_dataset(classifier, data)
    result.model = cfg.model
    result.dataset = str(dataset)
    return result
