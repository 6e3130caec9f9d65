"""`raksha eval expression --report DIR`: one self-contained folder with an HTML page that holds
every table and plot of an evaluation (per dataset: summary with intervals, per class,
confusion, reliability, per-group bars, the distress operating curve). The page links only to
the PNG files beside it: no scripts, no fonts, nothing fetched from anywhere."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from raksha.ml.evaluation.metrics import EvalResult
from raksha.ml.evaluation.report import pyplot, save_figure, write_plots

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #1c1c1c; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; }
th, td { border: 1px solid #bbb; padding: .25rem .55rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
img { max-width: 48%; margin: .3rem .5% .8rem 0; border: 1px solid #ddd; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: .5rem .8rem; }
"""


def _pct(x: Any) -> str:
    if not isinstance(x, int | float) or math.isnan(float(x)):
        return "–"
    return f"{100 * float(x):.1f} %"


def _ci(pair: Any) -> str:
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return ""
    return f" ({100 * pair[0]:.1f}–{100 * pair[1]:.1f})"


def _table(caption: str, head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><caption>{html.escape(caption)}</caption><tr>{cells}</tr>{body}</table>"


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "dataset"


def _group_plot(result: EvalResult, folder: Path) -> Path | None:
    groups: dict[str, dict[str, Any]] = result.extra.get("groups") or {}
    if not groups:
        return None
    import numpy as np

    plt = pyplot()

    names = list(groups)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 3), 4.5))
    for offset, key, label in (
        (-0.2, "distress", "distress recall (fear + sadness)"),
        (0.2, "neutral_as_distress", "neutral scored as distress"),
    ):
        vals = [groups[n].get(key) for n in names]
        heights = [v if isinstance(v, float) else 0.0 for v in vals]
        lo_hi = [groups[n].get("intervals", {}).get(key) for n in names]
        err = np.array(
            [
                [h - p[0], p[1] - h] if isinstance(p, list) else [0.0, 0.0]
                for h, p in zip(heights, lo_hi, strict=True)
            ]
        ).T
        ax.bar(x + offset, heights, width=0.4, label=label, yerr=err, capsize=3)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of faces")
    ax.set_title(f"{result.extra.get('group_by')}: 95 % intervals by subject")
    ax.legend(loc="upper right")
    return save_figure(fig, folder / "groups.png")


def _curve_plot(result: EvalResult, folder: Path) -> Path | None:
    curve: list[dict[str, Any]] = result.extra.get("operating_curve") or []
    if not curve:
        return None
    plt = pyplot()
    fa = [p["neutral_as_distress"] for p in curve]
    rec = [p["distress"] for p in curve]
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    ax.plot(fa, rec, "o-", ms=3)
    for p in curve[::2]:  # every other threshold, so the labels do not overlap
        ax.annotate(f"{p['threshold']:.2f}", (p["neutral_as_distress"], p["distress"]))
    now = result.distress_threshold
    ax.plot(
        [result.neutral_as_distress],
        [result.extra.get("distress_recall_pooled") or 0.0],
        "r*",
        ms=12,
        label=f"policy now (enter {now:g})",
    )
    ax.set_xlabel("neutral faces scored as distress")
    ax.set_ylabel("fear + sadness faces scored as distress")
    ax.set_xlim(0, max(0.1, max(x for x in fa if isinstance(x, float) and x == x) * 1.05))
    ax.set_ylim(0, 1)
    ax.set_title("Distress operating curve over the enter threshold")
    ax.legend(loc="lower right")
    return save_figure(fig, folder / "operating_curve.png")


def _dataset_section(result: EvalResult, folder: Path, own_folder: bool) -> str:
    name = Path(result.dataset).name or result.dataset
    sub = folder / _slug(name) if own_folder else folder
    plots = [*write_plots(result, sub)]
    for extra_plot in (_group_plot(result, sub), _curve_plot(result, sub)):
        if extra_plot is not None:
            plots.append(extra_plot)
    iv = result.extra.get("intervals", {})
    summary = [
        ["faces measured", str(result.n)],
        ["images listed", str(result.extra.get("n_images", result.n))],
        ["no face found (--detect)", str(result.extra.get("no_face", 0))],
        ["split", str(result.extra.get("split", "all"))],
        ["accuracy (8 classes)", _pct(result.accuracy) + _ci(iv.get("accuracy"))],
        ["macro F1", f"{result.macro_f1:.3f}"],
        [
            "distress recall, fear + sadness",
            _pct(result.extra.get("distress_recall_pooled")) + _ci(iv.get("distress")),
        ],
        *[
            [f"{c} scored as distress", _pct(v) + _ci(iv.get(f"distress_{c}"))]
            for c, v in result.distress_recall.items()
        ],
        [
            "neutral scored as distress",
            _pct(result.neutral_as_distress) + _ci(iv.get("neutral_as_distress")),
        ],
        [
            "happy scored as distress",
            _pct(result.happy_as_distress) + _ci(iv.get("happy_as_distress")),
        ],
        ["calibration error (ECE)", f"{result.ece:.3f}"],
        *[[f"accuracy at {s} px", _pct(a)] for s, a in result.by_face_size.items()],
    ]
    parts = [
        f"<h2>{html.escape(name)}</h2>",
        _table(
            f"Summary ({result.extra.get('interval_method', '')})", ["metric", "value"], summary
        ),
        _table(
            "Per class",
            ["class", "precision", "recall", "F1", "n"],
            [
                [c, _pct(m.precision), _pct(m.recall), f"{m.f1:.3f}", str(m.n)]
                for c, m in result.per_class.items()
            ],
        ),
    ]
    groups: dict[str, dict[str, Any]] = result.extra.get("groups") or {}
    if groups:
        parts.append(
            _table(
                f"By {result.extra.get('group_by')}",
                ["group", "n", "accuracy", "distress recall", "neutral as distress"],
                [
                    [
                        value,
                        str(g["n"]),
                        _pct(g.get("accuracy")) + _ci(g["intervals"].get("accuracy")),
                        _pct(g.get("distress")) + _ci(g["intervals"].get("distress")),
                        _pct(g.get("neutral_as_distress"))
                        + _ci(g["intervals"].get("neutral_as_distress")),
                    ]
                    for value, g in groups.items()
                ],
            )
        )
    alt = result.extra.get("alt_labels")
    if alt:
        parts.append(
            _table(
                f"Against the second label {alt['column']} ({alt['n']} faces)",
                ["class", "recall", "scored as distress"],
                [
                    [c, _pct(r), _pct(alt["distress_by_class"].get(c))]
                    for c, r in alt["recall"].items()
                ],
            )
        )
    curve = result.extra.get("operating_curve") or []
    if curve:
        parts.append(
            _table(
                "Operating curve (per face, current weights)",
                ["enter threshold", "neutral", "happy", "fear + sadness", "fear", "sadness"],
                [
                    [
                        f"{p['threshold']:.2f}",
                        _pct(p["neutral_as_distress"]),
                        _pct(p["happy_as_distress"]),
                        _pct(p["distress"]),
                        _pct(p.get("fear")),
                        _pct(p.get("sadness")),
                    ]
                    for p in curve
                ],
            )
        )
    parts += [
        f'<img src="{html.escape(p.relative_to(folder).as_posix())}" alt="{html.escape(p.stem)}">'
        for p in plots
    ]
    return "\n".join(parts)


def write_html_report(results: list[EvalResult], folder: Path) -> Path:
    """Write ``folder/index.html`` and its PNGs; returns the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    first = results[0]
    weights = ", ".join(f"{k} {v:g}" for k, v in first.distress_weights.items())
    head = (
        f"<h1>Expression model {html.escape(first.model or '')}: measured accuracy</h1>"
        f"<p>Datasets: {html.escape(', '.join(Path(r.dataset).name for r in results))}. "
        f"A face is <em>scored as distress</em> when clip(sum weight × probability, 0, 1) "
        f"reaches {first.distress_threshold:g} (weights {html.escape(weights)}). "
        "Intervals are 95 % bootstrap intervals resampled by subject where subjects are "
        "known.</p>"
        '<p class="note">What these figures do not show: an expression is not a feeling, and a '
        "face that looks afraid or sad is not evidence of harassment or of a crime. These are "
        "shares of still faces with posed or movie labels; a street camera sees other faces, "
        "angles and light. Every alert is reviewed by a person before anyone is sent.</p>"
    )
    # One dataset: its plots beside the page; several: a folder of plots each.
    body = "\n".join(_dataset_section(r, folder, len(results) > 1) for r in results)
    page = folder / "index.html"
    page.write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Raksha: expression model accuracy</title><style>{_STYLE}</style></head>"
        f"<body>{head}\n{body}</body></html>\n",
        encoding="utf-8",
    )
    return page
