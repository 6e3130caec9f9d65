"""Presentation of the event-level benchmark: rich tables and the operating-curve PNG."""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from raksha.ml.evaluation.event_metrics import EventMetrics
from raksha.ml.evaluation.events import EventBenchmark
from raksha.ml.evaluation.report import pyplot

#: What the product aims for (docs/events.md).
TARGET_RECALL = 0.90
TARGET_FALSE_ALARMS_PER_HOUR = 1.0
TARGET_MEDIAN_TIME_TO_ALERT_S = 3.0


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def _num(x: float, unit: str = "", digits: int = 2) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}{unit}"


def _met(ok: bool | None) -> str:
    return "-" if ok is None else "[green]yes[/green]" if ok else "[red]no[/red]"


def _meets(x: float, target: float, at_least: bool) -> bool | None:
    if math.isnan(x):
        return None
    return x >= target if at_least else x <= target


def print_event_report(bench: EventBenchmark, console: Console) -> None:
    """The summary against the targets, the breakdowns, false alarms and the curve."""
    m = bench.metrics
    labelled = [r for r in bench.runs if r.input.labels is not None]
    calm = len(bench.runs) - len(labelled)
    hours = sum(r.duration_s for r in bench.runs) / 3600
    cfg = bench.configured.cfg
    console.print(
        f"[bold]{bench.expression_model}[/bold]: {len(labelled)} labelled clips"
        + (f" + {calm} calm videos" if calm else "")
        + f", {60 * hours:.1f} min of video, {m.distress_segments} distress segments; "
        f"enter {cfg.enter_threshold:g} / exit {cfg.exit_threshold:g}"
        + (f"; alerts up to {bench.late_s:g} s late count" if bench.late_s else "")
        + f" ({bench.wall_s:.0f} s)"
    )
    if bench.skipped:
        console.print(f"left out (no sidecar): {', '.join(p.name for p in bench.skipped)}")

    summary = Table(title="Event-level results", show_header=True)
    for col in ("metric", "value", "target", "met"):
        summary.add_column(col, justify="left" if col == "metric" else "right")
    lo, hi = m.recall_interval95()
    summary.add_row(
        "event recall",
        f"{_pct(m.recall)} ({m.detected}/{m.distress_segments}; 95% CI {_pct(lo)}-{_pct(hi)})",
        f">= {_pct(TARGET_RECALL)}",
        _met(_meets(m.recall, TARGET_RECALL, True)),
    )
    summary.add_row(
        "false alarms per camera-hour",
        f"{_num(m.false_alarms_per_hour)} ({m.false_alarms} in {m.non_distress_h:.2f} h; "
        f"95% upper bound {_num(m.false_alarms_per_hour_upper95, digits=1)})",
        f"<= {TARGET_FALSE_ALARMS_PER_HOUR:g}",
        _met(_meets(m.false_alarms_per_hour, TARGET_FALSE_ALARMS_PER_HOUR, False)),
    )
    p50 = m.time_to_alert(50)
    summary.add_row(
        "median time to alert",
        _num(p50, " s"),
        f"<= {TARGET_MEDIAN_TIME_TO_ALERT_S:g} s",
        _met(_meets(p50, TARGET_MEDIAN_TIME_TO_ALERT_S, False)),
    )
    summary.add_row("p95 time to alert", _num(m.time_to_alert(95), " s"), "", "")
    summary.add_row("duplicate alerts (same segment)", str(m.duplicates), "", "")
    console.print(summary)

    parts = Table(title="Recall by distress expression and face size", show_header=True)
    for col in ("segments", "recall", "detected / n", "median time to alert"):
        parts.add_column(col, justify="left" if col == "segments" else "right")
    for prefix, groups in (("", bench.by_expression()), ("face ", bench.by_face_px())):
        for name, g in groups.items():
            suffix = " px" if prefix else ""
            parts.add_row(f"{prefix}{name}{suffix}", *_recall_cells(g))
    console.print(parts)

    alarms = bench.false_alarms()
    if alarms:
        fa = Table(title="False alarms", show_header=True)
        for col in ("clip", "opened at", "track", "where"):
            fa.add_column(col)
        for a in alarms[:20]:
            fa.add_row(a["clip"], f"{a['t']:.1f} s", str(a["track_id"]), a["where"])
        if len(alarms) > 20:
            fa.add_row(f"... {len(alarms) - 20} more", "", "", "")
        console.print(fa)

    curve = Table(title="Operating curve (replayed; same analysis pass)", show_header=True)
    for col in ("enter", "exit", "recall", "false alarms / h", "median TTA", "p95 TTA"):
        curve.add_column(col, justify="right")
    for s in bench.curve:
        c = s.metrics
        mark = " *" if s is bench.configured else ""
        curve.add_row(
            f"{s.cfg.enter_threshold:.2f}{mark}",
            f"{s.cfg.exit_threshold:.2f}",
            _pct(c.recall),
            f"{_num(c.false_alarms_per_hour)} ({c.false_alarms})",
            _num(c.time_to_alert(50), " s"),
            _num(c.time_to_alert(95), " s"),
        )
    console.print(curve)


def _recall_cells(m: EventMetrics) -> tuple[str, str, str]:
    return (
        _pct(m.recall),
        f"{m.detected}/{m.distress_segments}",
        _num(m.time_to_alert(50), " s"),
    )


def write_curve(bench: EventBenchmark, path: Path) -> Path:
    """Recall against false alarms per hour, one point per entry threshold, as a PNG."""
    plt = pyplot()
    xs = [s.metrics.false_alarms_per_hour for s in bench.curve]
    ys = [100 * s.metrics.recall for s in bench.curve]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.fill_between(
        [0, TARGET_FALSE_ALARMS_PER_HOUR],
        100 * TARGET_RECALL,
        100,
        color="green",
        alpha=0.15,
        label="target",
    )
    ax.plot(xs, ys, "o-", color="tab:blue")
    # Thresholds that land on the same point share one label ("0.55-0.65").
    places: dict[tuple[float, float], list[float]] = {}
    for s, x, y in zip(bench.curve, xs, ys, strict=True):
        places.setdefault((x, y), []).append(s.cfg.enter_threshold)
    for (x, y), ts in places.items():
        text = f"{ts[0]:.2f}" if len(ts) == 1 else f"{min(ts):.2f}-{max(ts):.2f}"
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    live = bench.configured.metrics
    ax.plot(
        [live.false_alarms_per_hour],
        [100 * live.recall],
        "o",
        color="tab:red",
        markersize=9,
        label=f"configured ({bench.configured.cfg.enter_threshold:g})",
    )
    finite = [x for x in xs if not math.isnan(x)]
    ax.set_xlim(0, max([2 * TARGET_FALSE_ALARMS_PER_HOUR, *finite]) * 1.1)
    ax.set_ylim(0, 102)
    ax.set_xlabel("false alarms per camera-hour (non-distress video)")
    ax.set_ylabel("event recall (%)")
    m = bench.metrics
    ax.set_title(
        f"{bench.expression_model}: {m.distress_segments} distress segments, "
        f"{m.non_distress_h:.2f} h without distress"
    )
    ax.legend(loc="lower right", title="points: entry threshold")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
