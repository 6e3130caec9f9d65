"""Presentation of an EvalResult: a rich table on the terminal and PNG plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import RakshaError
from raksha.ml.evaluation.metrics import EvalResult


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _ci(result: EvalResult, key: str) -> str:
    """'lo-hi %' of one interval in the result's extras, or '' when there is none."""
    pair = result.extra.get("intervals", {}).get(key)
    if not pair:
        return ""
    return f" [{100 * pair[0]:.1f}-{100 * pair[1]:.1f}]"


def _name(result: EvalResult) -> str:
    return Path(result.dataset).name or result.dataset


def print_side_by_side(results: list[EvalResult], console: Console) -> None:
    """Several datasets, one column each: the headline figures with their 95 % intervals,
    then each dataset's groups."""
    console.print(f"[bold]{results[0].model or 'model'}[/bold] on {len(results)} datasets")
    table = Table(title="Side by side (95 % intervals in brackets)", show_header=True)
    table.add_column("metric")
    for r in results:
        table.add_column(_name(r), justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("faces measured", [str(r.n) for r in results]),
        (
            "no face found (--detect)",
            [str(r.extra.get("no_face", 0)) if r.extra.get("detect") else "-" for r in results],
        ),
        ("accuracy (8 classes)", [_pct(r.accuracy) + _ci(r, "accuracy") for r in results]),
        ("macro F1", [f"{r.macro_f1:.3f}" for r in results]),
        (
            "distress recall, fear + sadness",
            [_pct(r.extra.get("distress_recall_pooled")) + _ci(r, "distress") for r in results],
        ),
    ]
    for c in ("fear", "sadness", "anger"):
        rows.append(
            (
                f"  {c} scored as distress",
                [_pct(r.distress_recall.get(c)) + _ci(r, f"distress_{c}") for r in results],
            )
        )
    rows += [
        (
            "neutral scored as distress",
            [_pct(r.neutral_as_distress) + _ci(r, "neutral_as_distress") for r in results],
        ),
        (
            "happy scored as distress",
            [_pct(r.happy_as_distress) + _ci(r, "happy_as_distress") for r in results],
        ),
    ]
    for c in ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"):
        rows.append(
            (
                f"recall {c}",
                [_pct(r.per_class[c].recall) if r.per_class[c].n else "-" for r in results],
            )
        )
    for label, values in rows:
        table.add_row(label, *values)
    console.print(table)
    for r in results:
        _print_groups(r, console)


def _print_groups(result: EvalResult, console: Console) -> None:
    groups = result.extra.get("groups") or {}
    if not groups:
        return
    table = Table(
        title=f"{_name(result)} by {result.extra.get('group_by')} (95 % intervals)",
        show_header=True,
    )
    for col in ("group", "n", "accuracy", "distress recall", "neutral as distress"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for value, g in groups.items():
        iv = g.get("intervals", {})

        def cell(key: str, g: dict[str, object] = g, iv: dict[str, object] = iv) -> str:
            x = g.get(key)
            pair = iv.get(key)
            ci = f" [{100 * pair[0]:.0f}-{100 * pair[1]:.0f}]" if isinstance(pair, list) else ""
            return _pct(x if isinstance(x, float) else None) + ci

        table.add_row(
            str(value),
            str(g["n"]),
            cell("accuracy"),
            cell("distress"),
            cell("neutral_as_distress"),
        )
    console.print(table)


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
        op.add_row(f"{name} (recall)", _pct(r) + _ci(result, f"distress_{name}"))
    if "distress_recall_pooled" in result.extra:
        op.add_row(
            "fear + sadness (pooled recall)",
            _pct(result.extra["distress_recall_pooled"]) + _ci(result, "distress"),
        )
    console.print(op)
    _print_groups(result, console)


def pyplot() -> Any:
    """`matplotlib.pyplot` on the file-only Agg backend, imported on first use.

    matplotlib is an optional dependency (the `report` extra); without it this raises a
    one-line RakshaError that says how to install it.
    """
    try:
        import matplotlib
    except ImportError:
        raise RakshaError(
            "matplotlib is not installed; the plots need the report extra: "
            "pip install 'raksha[report]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, write as PNG and close a matplotlib figure."""
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(result: EvalResult, folder: Path) -> list[Path]:
    """``confusion.png`` (row-normalised, with counts) and ``reliability.png`` in ``folder``."""
    plt = pyplot()

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
    confusion = save_figure(fig, folder / "confusion.png")

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
    reliability = save_figure(fig, folder / "reliability.png")
    return [confusion, reliability]
