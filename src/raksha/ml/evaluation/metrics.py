"""Metrics of an expression classifier on majority-labelled faces.

Definitions (all on faces with a majority label):

* ``accuracy``: share of faces whose argmax class is the majority label (8 classes).
* ``accuracy_7``: the same on the faces not labelled contempt, with the argmax taken over the
  seven classes FER2013 models share (contempt's column ignored), so FER+ and FER2013 models
  compare fairly.
* per class: precision = tp / predicted, recall = tp / n, F1 their harmonic mean (0 when
  undefined); ``macro_f1`` averages F1 over the classes that occur as a label or a prediction.
* ``ece``: expected calibration error of the top probability over ``bins`` equal-width bins.
* distress: a face is *scored as distress* when its per-frame evidence
  ``clip(sum_k weight_k * p_k, 0, 1)`` (the distress scorer's evidence) is >= the policy's
  ``enter_threshold``, i.e. the face alone would push a fully smoothed score over the line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.domain import EXPRESSION_CLASSES

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: The classes shared with FER2013 models (FER+ minus contempt).
SHARED_7: tuple[str, ...] = tuple(c for c in EXPRESSION_CLASSES if c != "contempt")
#: Classes whose recall at the distress operating point is reported.
DISTRESS_CLASSES: tuple[str, ...] = ("fear", "sadness", "anger")


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    n: int


@dataclass(frozen=True, slots=True)
class Reliability:
    """Per-bin mean confidence, accuracy and count of the top prediction."""

    edges: list[float]
    confidence: list[float]
    accuracy: list[float]
    count: list[int]


@dataclass(slots=True)
class EvalResult:
    n: int
    accuracy: float
    accuracy_7: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]  # rows: true class, columns: predicted (EXPRESSION_CLASSES order)
    ece: float
    reliability: Reliability
    neutral_as_distress: float
    happy_as_distress: float
    distress_recall: dict[str, float]
    distress_weights: dict[str, float]
    distress_threshold: float
    by_face_size: dict[str, float] = field(default_factory=dict)
    model: str = ""
    dataset: str = ""
    model_classes: list[str] = field(default_factory=list)
    #: Cross-population additions (raksha.ml.evaluation.breakdown and the runner): pooled
    #: distress recall, intervals, groups, operating curve, detection counts. Merged into
    #: the JSON document after the keys above.
    extra: dict[str, Any] = field(default_factory=dict)
    #: The canonical probabilities and labels of the faces measured (for plots; not in JSON).
    probs8: F32 | None = None
    labels: I64 | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (the keys the issue names first, then the extras); values
        that are undefined (no faces of that class) are null."""
        doc: dict[str, Any] = _finite({**self._document(), **self.extra})
        return doc

    def _document(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "accuracy_7": self.accuracy_7,
            "macro_f1": self.macro_f1,
            "per_class": {
                c: {"precision": m.precision, "recall": m.recall, "f1": m.f1, "n": m.n}
                for c, m in self.per_class.items()
            },
            "neutral_as_distress": self.neutral_as_distress,
            "happy_as_distress": self.happy_as_distress,
            "by_face_size": dict(self.by_face_size),
            "ece": self.ece,
            "distress": {
                "weights": dict(self.distress_weights),
                "enter_threshold": self.distress_threshold,
                "rule": "evidence = clip(sum weight*prob, 0, 1) >= enter_threshold",
                "recall": dict(self.distress_recall),
            },
            "confusion": {"classes": list(EXPRESSION_CLASSES), "matrix": self.confusion},
            "reliability": {
                "edges": self.reliability.edges,
                "confidence": self.reliability.confidence,
                "accuracy": self.reliability.accuracy,
                "count": self.reliability.count,
            },
            "model": self.model,
            "model_classes": self.model_classes,
            "dataset": self.dataset,
        }


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def to_canonical(probs: npt.ArrayLike, labels: tuple[str, ...] | list[str]) -> F32:
    """(N, K) probabilities over ``labels`` -> (N, 8) over EXPRESSION_CLASSES (absent = 0)."""
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(f"probs must be (N, {len(labels)}), got {p.shape}")
    out = np.zeros((p.shape[0], len(EXPRESSION_CLASSES)), dtype=np.float32)
    for j, name in enumerate(labels):
        out[:, EXPRESSION_CLASSES.index(name)] = p[:, j]
    return out


def confusion_matrix(labels: I64, pred: I64, k: int = len(EXPRESSION_CLASSES)) -> I64:
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_class_metrics(cm: I64) -> dict[str, ClassMetrics]:
    out: dict[str, ClassMetrics] = {}
    for k, name in enumerate(EXPRESSION_CLASSES):
        tp = int(cm[k, k])
        n = int(cm[k].sum())
        predicted = int(cm[:, k].sum())
        p = tp / predicted if predicted else 0.0
        r = tp / n if n else 0.0
        f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
        out[name] = ClassMetrics(p, r, f1, n)
    return out


def macro_f1(cm: I64, per_class: Mapping[str, ClassMetrics]) -> float:
    present = [
        m.f1 for k, m in enumerate(per_class.values()) if cm[k].sum() > 0 or cm[:, k].sum() > 0
    ]
    return float(np.mean(present)) if present else 0.0


def accuracy_7(probs8: F32, labels: I64) -> float:
    """Accuracy over the seven FER2013 classes (contempt faces left out, its column ignored)."""
    keep = labels != EXPRESSION_CLASSES.index("contempt")
    if not keep.any():
        return 0.0
    cols = np.array([EXPRESSION_CLASSES.index(c) for c in SHARED_7])
    pred = cols[probs8[keep][:, cols].argmax(axis=1)]
    return float((pred == labels[keep]).mean())


def reliability(probs8: F32, labels: I64, bins: int = 15) -> tuple[float, Reliability]:
    """Expected calibration error and the reliability diagram data of the top prediction."""
    conf = probs8.max(axis=1).astype(np.float64)
    correct = (probs8.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    mean_conf: list[float] = []
    mean_acc: list[float] = []
    counts: list[int] = []
    for b in range(bins):
        sel = which == b
        c = int(sel.sum())
        counts.append(c)
        if c:
            mc, ma = float(conf[sel].mean()), float(correct[sel].mean())
            ece += c / len(conf) * abs(mc - ma)
        else:
            mc, ma = float("nan"), float("nan")
        mean_conf.append(mc)
        mean_acc.append(ma)
    return float(ece), Reliability([float(e) for e in edges], mean_conf, mean_acc, counts)


def distress_scored(
    probs8: F32, weights: Mapping[str, float], threshold: float
) -> npt.NDArray[np.bool_]:
    """Faces whose per-frame distress evidence reaches ``threshold``."""
    from raksha.distress.evidence import distress_evidence

    return np.asarray(distress_evidence(probs8, EXPRESSION_CLASSES, weights) >= threshold)


def _share(mask: npt.NDArray[np.bool_], labels: I64, name: str) -> float:
    sel = labels == EXPRESSION_CLASSES.index(name)
    return float(mask[sel].mean()) if sel.any() else float("nan")


def evaluate_probs(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    model_labels: tuple[str, ...] | list[str] = EXPRESSION_CLASSES,
    *,
    weights: Mapping[str, float] | None = None,
    threshold: float | None = None,
    bins: int = 15,
) -> EvalResult:
    """All metrics of one set of predictions. ``labels`` holds indices into EXPRESSION_CLASSES;
    faces labelled -1 (no majority) are left out. ``weights``/``threshold`` default to the
    distress policy's defaults."""
    from raksha.distress.config import DistressConfig

    policy = DistressConfig()
    w = dict(policy.weights if weights is None else weights)
    thr = policy.enter_threshold if threshold is None else float(threshold)
    lab = np.asarray(labels, dtype=np.int64)
    p8 = to_canonical(probs, tuple(model_labels))
    keep = lab >= 0
    lab, p8 = lab[keep], p8[keep]
    pred = p8.argmax(axis=1).astype(np.int64)
    cm = confusion_matrix(lab, pred)
    per = per_class_metrics(cm)
    ece, rel = reliability(p8, lab, bins)
    scored = distress_scored(p8, w, thr)
    return EvalResult(
        n=len(lab),
        accuracy=float((pred == lab).mean()) if len(lab) else 0.0,
        accuracy_7=accuracy_7(p8, lab),
        macro_f1=macro_f1(cm, per),
        per_class=per,
        confusion=cm.tolist(),
        ece=ece,
        reliability=rel,
        neutral_as_distress=_share(scored, lab, "neutral"),
        happy_as_distress=_share(scored, lab, "happiness"),
        distress_recall={c: _share(scored, lab, c) for c in DISTRESS_CLASSES},
        distress_weights=w,
        distress_threshold=thr,
        model_classes=list(model_labels),
        probs8=p8,
        labels=lab,
    )


def accuracy_of(
    probs: npt.ArrayLike, labels: npt.ArrayLike, model_labels: tuple[str, ...]
) -> float:
    """8-class accuracy only (faces labelled -1 left out)."""
    lab = np.asarray(labels, dtype=np.int64)
    p8 = to_canonical(probs, model_labels)
    keep = lab >= 0
    if not keep.any():
        return 0.0
    return float((p8[keep].argmax(axis=1) == lab[keep]).mean())
