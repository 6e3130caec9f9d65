"""Run an expression model (through the ONNX runtime) over labelled datasets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from raksha.domain import EXPRESSION_CLASSES
from raksha.expression.config import ExpressionConfig
from raksha.ml.evaluation.bootstrap import DEFAULT_RESAMPLES
from raksha.ml.evaluation.breakdown import POOLED_DISTRESS, breakdown
from raksha.ml.evaluation.datasets import (
    Cropper,
    DatasetError,
    DatasetFormat,
    FaceDataset,
    RowFilter,
    read_dataset,
)
from raksha.ml.evaluation.degrade import FACE_SIZES, down_up
from raksha.ml.evaluation.metrics import EvalResult, accuracy_of, distress_scored, evaluate_probs
from raksha.ml.evaluation.operating_point import sweep
from raksha.ml.evaluation.splits import SPLITS, assign_splits, rule_for, subject_column

#: Enter thresholds of the per-face operating curve in the report.
CURVE_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


class CropPredictor(Protocol):
    """What evaluation needs of a model (OnnxExpressionClassifier fits)."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    def predict_crops(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True, slots=True)
class EvalOptions:
    """How each dataset is read and broken down (the `raksha eval expression` options)."""

    fmt: DatasetFormat | None = None
    #: Find each face with the runtime detector and crop it as `raksha analyze` does.
    detect: bool = False
    #: "all", or one split by subject (raksha.ml.evaluation.splits).
    split: str = "all"
    group_by: str | None = None
    #: Column resampled as a unit for intervals (None: guessed from the set's columns).
    subject: str | None = None
    #: A second label column to measure recall against (observers' votes).
    label_column: str | None = None
    resamples: int = DEFAULT_RESAMPLES
    limit: int | None = None
    face_sizes: tuple[int, ...] = FACE_SIZES


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


def split_filter(name: str, split: str) -> RowFilter | None:
    """The rows of one split by subject of the dataset folder ``name`` (None for "all"),
    chosen from the per-image columns before any image is read, so that images without a
    face never move another subject to another split."""
    if split == "all":
        return None
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected all, {', '.join(SPLITS)}")

    def pick(columns: dict[str, tuple[str, ...]]) -> npt.NDArray[np.bool_]:
        rule = rule_for(name, columns)
        if rule is None:
            raise DatasetError(
                f"cannot take the {split} split of {name}: it names no subject (a performer, "
                "movie or person column) to split by"
            )
        return np.asarray(assign_splits(columns, rule) == split)

    return pick


def select_split(data: FaceDataset, name: str, split: str) -> FaceDataset:
    """The faces of one split of an already read dataset (all of them for "all")."""
    rows = split_filter(name, split)
    return data if rows is None else data.subset(rows(data.columns))


def load_eval_set(
    dataset: Path, opts: EvalOptions, cropper: Cropper | None, size: int = 48
) -> FaceDataset:
    """A dataset as evaluated: the split's rows, read (faces found and cropped with
    ``cropper``), limited."""
    rows = split_filter(Path(dataset).name, opts.split)
    data = read_dataset(dataset, opts.fmt, size=size, cropper=cropper, rows=rows)
    if opts.limit is not None:
        data = data.subset(np.arange(min(opts.limit, len(data))))
    if len(data) == 0:
        raise DatasetError(f"{dataset}: no faces to evaluate (split {opts.split})")
    return data


def _cross_population(
    result: EvalResult, data: FaceDataset, opts: EvalOptions, n_listed: int
) -> None:
    """Add the pooled distress recall, intervals, groups, operating curve and detection
    counts to ``result.extra``."""
    probs8, labels = result.probs8, result.labels
    assert probs8 is not None and labels is not None
    keep = data.labels >= 0
    columns = {k: tuple(v[i] for i in np.flatnonzero(keep)) for k, v in data.columns.items()}
    result.extra.update(
        breakdown(
            probs8,
            labels,
            columns,
            result.distress_weights,
            result.distress_threshold,
            subject=subject_column(columns, opts.subject),
            group_by=opts.group_by,
            label_column=opts.label_column,
            resamples=opts.resamples,
        )
    )
    pooled = np.isin(labels, [EXPRESSION_CLASSES.index(c) for c in POOLED_DISTRESS])
    curve = []
    points = sweep(probs8, labels, result.distress_weights, CURVE_THRESHOLDS)
    for t, point in zip(CURVE_THRESHOLDS, points, strict=True):
        scored = distress_scored(probs8, result.distress_weights, t)
        curve.append(
            {
                "threshold": t,
                "neutral_as_distress": point.neutral_as_distress,
                "happy_as_distress": point.happy_as_distress,
                "distress": float(scored[pooled].mean()) if pooled.any() else float("nan"),
                **point.recall,
            }
        )
    result.extra["operating_curve"] = curve
    result.extra["detect"] = opts.detect
    result.extra["split"] = opts.split
    result.extra["n_images"] = n_listed
    result.extra["no_face"] = len(data.no_face)


def evaluate_many(
    model: str | None,
    datasets: Sequence[Path],
    opts: EvalOptions = EvalOptions(),
    *,
    models_dir: Path | None = None,
    threads: int = 0,
) -> list[EvalResult]:
    """Evaluate a registry model (or an .onnx with its card; None = the configured default)
    on each dataset, with the cross-population breakdown."""
    from raksha.expression.factory import build_expression_classifier

    cfg = (
        ExpressionConfig(threads=threads)
        if model is None
        else ExpressionConfig(model=model, threads=threads)
    )
    classifier = build_expression_classifier(cfg, models_dir)
    cropper: Cropper | None = None
    if opts.detect:
        from raksha.ml.evaluation.detect_crop import build_detect_cropper

        cropper = build_detect_cropper(classifier.spec.crop, classifier.spec.input.size, models_dir)
    results: list[EvalResult] = []
    for dataset in datasets:
        data = load_eval_set(dataset, opts, cropper)
        result = evaluate_dataset(classifier, data, face_sizes=opts.face_sizes)
        result.model = cfg.model
        result.dataset = str(dataset)
        _cross_population(result, data, opts, len(data) + len(data.no_face))
        results.append(result)
    return results


def evaluate_model(
    model: str | None,
    dataset: Path,
    *,
    fmt: DatasetFormat | None = None,
    models_dir: Path | None = None,
    limit: int | None = None,
    threads: int = 0,
) -> EvalResult:
    """One dataset, read as it is (no detection, every face): the model card's figures."""
    (result,) = evaluate_many(
        model,
        [dataset],
        EvalOptions(fmt=fmt, limit=limit),
        models_dir=models_dir,
        threads=threads,
    )
    return result
