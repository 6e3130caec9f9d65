"""What a cross-population evaluation adds to the per-set metrics: the pooled distress recall,
bootstrap intervals resampled by subject, a breakdown by a per-image column (performer,
ethnicity, ...) and, where a set has a second opinion on its labels (observers' votes), the
recall against that label too.

Distress here follows the policy: a face is *scored as distress* when its per-frame evidence
reaches the enter threshold (``metrics.distress_scored``). The pooled distress recall is over
the faces labelled with a distress class of the policy, fear and sadness. Anger is reported on
its own and is not pooled: by policy an angry face alone is not a person in distress (it is as
often the aggressor), see docs/distress.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.domain import EXPRESSION_CLASSES
from raksha.ml.evaluation.bootstrap import DEFAULT_RESAMPLES, cluster_ids, share_interval
from raksha.ml.evaluation.datasets import FOLDER_ALIASES
from raksha.ml.evaluation.metrics import DISTRESS_CLASSES, distress_scored

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: The classes pooled into "distress recall" (the policy's distress classes).
POOLED_DISTRESS: tuple[str, ...] = ("fear", "sadness")


def _idx(name: str) -> int:
    return EXPRESSION_CLASSES.index(name)


def _share(hit: npt.NDArray[np.bool_], among: npt.NDArray[np.bool_]) -> float:
    return float(hit[among].mean()) if among.any() else float("nan")


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(frozen=True, slots=True)
class Shares:
    """The headline shares of one set of faces and their intervals."""

    n: int
    accuracy: float
    distress: float
    neutral_as_distress: float
    happy_as_distress: float
    distress_by_class: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    n_distress: int
    n_neutral: int

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": _none_if_nan(self.accuracy),
            "distress": _none_if_nan(self.distress),
            "neutral_as_distress": _none_if_nan(self.neutral_as_distress),
            "happy_as_distress": _none_if_nan(self.happy_as_distress),
            "distress_by_class": {k: _none_if_nan(v) for k, v in self.distress_by_class.items()},
            "n_distress_faces": self.n_distress,
            "n_neutral_faces": self.n_neutral,
            "intervals": {
                k: None if math.isnan(lo) else [lo, hi] for k, (lo, hi) in self.intervals.items()
            },
        }


def shares(
    probs8: F32,
    labels: I64,
    scored: npt.NDArray[np.bool_],
    clusters: I64,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Shares:
    """Accuracy, pooled and per-class distress recall, false alarms on neutral and happy
    faces, each with a 95 % interval resampled by ``clusters``."""
    keep = labels >= 0
    correct = (probs8.argmax(axis=1) == labels) & keep
    pooled = np.isin(labels, [_idx(c) for c in POOLED_DISTRESS])
    neutral = labels == _idx("neutral")
    happy = labels == _idx("happiness")
    parts: dict[str, tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]] = {
        "accuracy": (correct, keep),
        "distress": (scored, pooled),
        "neutral_as_distress": (scored, neutral),
        "happy_as_distress": (scored, happy),
    }
    for c in DISTRESS_CLASSES:
        parts[f"distress_{c}"] = (scored, labels == _idx(c))
    intervals = {
        k: share_interval(hit, among, clusters, resamples=resamples, seed=seed)
        for k, (hit, among) in parts.items()
    }
    return Shares(
        n=int(keep.sum()),
        accuracy=_share(correct, keep),
        distress=_share(scored, pooled),
        neutral_as_distress=_share(scored, neutral),
        happy_as_distress=_share(scored, happy),
        distress_by_class={c: _share(scored, labels == _idx(c)) for c in DISTRESS_CLASSES},
        intervals=intervals,
        n_distress=int(pooled.sum()),
        n_neutral=int(neutral.sum()),
    )


def _group_clusters(subjects: list[str] | None, n: int) -> I64:
    """Clusters within one group: by subject, unless the group holds a single subject (a
    group per performer), where resampling subjects says nothing and faces are resampled."""
    clusters = cluster_ids(subjects, n)
    if n and int(clusters.max()) == 0:
        return cluster_ids(None, n)
    return clusters


def labels_from_column(values: Sequence[str]) -> I64:
    """Class indices of a text column (expression names or aliases; anything else -1)."""
    out = np.full(len(values), -1, dtype=np.int64)
    for i, v in enumerate(values):
        cls = FOLDER_ALIASES.get(v.strip().lower())
        if cls is not None:
            out[i] = _idx(cls)
    return out


def breakdown(
    probs8: F32,
    labels: I64,
    columns: Mapping[str, Sequence[str]],
    weights: Mapping[str, float],
    threshold: float,
    *,
    subject: str | None = None,
    group_by: str | None = None,
    label_column: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """The cross-population part of one dataset's JSON document.

    ``subject`` names the column whose values are resampled as units (None: faces);
    ``group_by`` a column to break the shares down by (absent from the set: no groups);
    ``label_column`` a second label per face (e.g. the observers' majority) to measure the
    per-class and distress recall against as well."""
    scored = distress_scored(probs8, weights, threshold)
    subjects = columns.get(subject) if subject else None
    clusters = cluster_ids(subjects, len(labels))
    overall = shares(probs8, labels, scored, clusters, resamples=resamples, seed=seed)
    doc: dict[str, Any] = {
        "distress_recall_pooled": _none_if_nan(overall.distress),
        "distress_pooled_classes": list(POOLED_DISTRESS),
        "intervals": overall.to_json()["intervals"],
        "interval_method": (
            f"95 % percentile bootstrap, {resamples} resamples of "
            + (f"whole {subject} values" if subject else "faces")
        ),
        "subjects": {
            "column": subject,
            "count": int(clusters.max()) + 1 if len(clusters) else 0,
        },
        "group_by": group_by if group_by and group_by in columns else None,
        "groups": {},
    }
    if group_by and group_by in columns:
        values = list(columns[group_by])
        for value in sorted(set(values)):
            sel = np.asarray([v == value for v in values], dtype=bool)
            rows = np.flatnonzero(sel).tolist()
            g = shares(
                probs8[sel],
                labels[sel],
                scored[sel],
                _group_clusters([subjects[i] for i in rows] if subjects else None, len(rows)),
                resamples=resamples,
                seed=seed,
            )
            doc["groups"][value or "(blank)"] = g.to_json()
    if label_column and label_column in columns:
        alt = labels_from_column(columns[label_column])
        pred = probs8.argmax(axis=1)
        doc["alt_labels"] = {
            "column": label_column,
            "n": int((alt >= 0).sum()),
            "recall": {
                c: _none_if_nan(_share(pred == _idx(c), alt == _idx(c)))
                for c in EXPRESSION_CLASSES
                if (alt == _idx(c)).any()
            },
            "distress_by_class": {
                c: _none_if_nan(_share(scored, alt == _idx(c)))
                for c in DISTRESS_CLASSES
                if (alt == _idx(c)).any()
            },
            "agreement_with_label": _none_if_nan(_share(alt == labels, (alt >= 0) & (labels >= 0))),
        }
    return doc
