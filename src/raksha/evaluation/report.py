"""Presentation of an EvalResult: a rich table on the terminal and PNG plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from raksha.domain import EXPRESSION_CLASSES
from raksha.evaluation.metrics import EvalResult


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def print_report(result: EvalResult, console: Console) -> None:
    """The summary, per-class table, face-size robustness and distress operating point."""
    console.print(
        f"[bold]{result.model or 'model'}[/bold] on {result.dataset or 'dataset'}: "
        f"{result.n} faces with a majority label"
    )
    summary = Table(title="Summary", show_header=True)
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row("accuracy (8 classes)", _pct(result.accuracy))
    summary.add_row("accuracy (7 FER2013 classes)", _pct(result.accuracy_7))
    summary.add_row("macro F1", f"{result.macro_f1:.3f}")
    summary.add_row("ECE (top-1 calibration)", f"{result.ece:.3f}")
    for side, acc in result.by_face_size.items():
        summary.add_row(f"accuracy at {side} px faces", _pct(acc))
    console.print(summary)

    per = Table(title="Per class", show_header=True)
    for col in ("class", "precision", "recall", "F1", "n"):
        per.add_column(col, justify="left" if col == "class" else "right")
    for name, m in result.per_class.items():
        per.add_row(name, _pct(m.precision), _pct(m.recall), f"{m.f1:.3f}", str(m.n))
    console.print(per)

    op = Table(
        title=(
            f"Distress operating point (evidence >= {result.distress_threshold:g}; weights "
            + ", ".join(f"{k} {v:g}" for k, v in result.distress_weights.items())
            + ")"
        ),
        show_header=True,
    )
    op.add_column("faces")
    op.add_column("scored as distress", justify="right")
    op.add_row("neutral (false alarms)", _pct(result.neutral_as_distress))
    op.add_row("happiness (false alarms)", _pct(result.happy_as_distress))
    for name, r in result.distress_recall.items():
        op.add_row(f"{name} (recall)", _pct(r))
    console.print(op)


def write_plots(result: EvalResult, folder: Path) -> list[Path]:
    """``confusion.png`` (row-normalised, with counts) and ``reliability.png`` in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    cm = np.asarray(result.confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    k = len(EXPRESSION_CLASSES)
    ax.set_xticks(range(k), EXPRESSION_CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(k), EXPRESSION_CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("majority label")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    f"{int(cm[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_title(f"{result.model}: accuracy {100 * result.accuracy:.1f}% (n={result.n})")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the row")
    fig.tight_layout()
    confusion = folder / "confusion.png"
    fig.savefig(confusion, dpi=110)
    plt.close(fig)

    rel = result.reliability
    edges = np.asarray(rel.edges)
    centres = (edges[:-1] + edges[1:]) / 2
    acc = np.asarray(rel.accuracy, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ok = ~np.isnan(acc)
    ax.bar(
        centres[ok],
        acc[ok],
        width=np.diff(edges)[ok],
        edgecolor="black",
        alpha=0.7,
        label="accuracy in bin",
    )
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("top-class probability")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{result.model}: ECE {result.ece:.3f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    reliability = folder / "reliability.png"
    fig.savefig(reliability, dpi=110)
    plt.close(fig)
    return [confusion, reliability]
