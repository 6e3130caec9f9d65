"""Small server-rendered SVG charts: no script, no external host, nothing but markup.

    bars([("cam-1", 12), ("cam-2", 3)], chart_id="cams", title="Incidents per camera")
    columns([("2026-11-22", 4), ...], chart_id="days", title="Incidents per day", tick=short)
    line([("2026-11-22", 95.0), ("2026-11-23", None)], chart_id="ack", title="…", fmt=secs)

Each function returns the `<svg>` as `Markup` for a template. Every label and title is
escaped here. The charts are 360 units wide with that many pixels as their natural width,
so their text stays legible on a 390 px phone (CSS may shrink them, never widen them). They
draw in `currentColor` and take their colours from CSS custom properties when the page sets
them (`--chart-bar`, `--chart-line`, `--chart-grid`), so they follow a dark theme. Each has
a `<title>` and a `<desc>` (role img), and each bar or point a `<title>` with its value; the
page still gives the numbers as a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

from raksha.web.i18n import gettext as _

__all__ = ["WIDTH", "bars", "columns", "line", "nice_ticks"]

WIDTH = 360
FONT = 12
#: Room for the y axis labels on the left, the x labels below.
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 26
PLOT_HEIGHT = 150
#: A horizontal bar's row: its label above, the bar under it.
ROW = 36
LABEL_CHARS = 44


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _f(x: float) -> str:
    """A coordinate, short."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _clip(label: str, chars: int = LABEL_CHARS) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "…"


def nice_ticks(top: float, most: int = 4) -> list[float]:
    """Round tick values from 0 to at least `top` (at most about `most` steps)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / most
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1 and float(top).is_integer():
        step = 1.0
    count = math.ceil(top / step - 1e-9)
    return [i * step for i in range(count + 1)]


def _open(chart_id: str, kind: str, height: int, title: str, desc: str) -> list[str]:
    cid = _e(chart_id)
    return [
        f'<svg class="chart chart-{kind}" id="{cid}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="{cid}-t {cid}-d" '
        f'font-size="{FONT}" fill="currentColor" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{cid}-t">{_e(title)}</title>',
        f'<desc id="{cid}-d">{_e(desc)}</desc>',
    ]


def _y_axis(ticks: list[float], y_of: Callable[[float], float], fmt: Callable[[float], str]) -> str:
    out = []
    for t in ticks:
        y = _f(y_of(t))
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" '
            'stroke="currentColor" stroke-opacity="0.2"/>'
            f'<text class="tick" x="{LEFT - 4}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{_e(fmt(t))}</text>'
        )
    return "".join(out)


def _tick_indices(n: int, most: int = 6) -> set[int]:
    """Which of n x positions get a label: the last one and every k-th before it."""
    if n == 0:
        return set()
    step = max(1, math.ceil(n / most))
    return {i for i in range(n) if (n - 1 - i) % step == 0}


def _x_labels(
    labels: Sequence[str], x_of: Callable[[int], float], tick: Callable[[str], str]
) -> str:
    y = TOP + PLOT_HEIGHT + 16
    out = []
    for i in sorted(_tick_indices(len(labels))):
        x = _f(x_of(i))
        out.append(f'<text class="tick" x="{x}" y="{y}" text-anchor="middle">')
        out.append(f"{_e(tick(labels[i]))}</text>")
    return "".join(out)


def columns(
    points: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    tick: Callable[[str], str] = str,
    fmt: Callable[[float], str] = _num,
    unit: str = "",
) -> Markup:
    """A vertical bar per point (e.g. per day), labelled under some of them by `tick(label)`."""
    height = TOP + PLOT_HEIGHT + BOTTOM
    values = [max(0.0, float(v)) for _, v in points]
    ticks = nice_ticks(max(values, default=0.0))
    top = ticks[-1]
    n = max(1, len(points))
    slot = (WIDTH - LEFT - RIGHT) / n
    gap = min(2.0, slot * 0.2)

    def y_of(v: float) -> float:
        return TOP + PLOT_HEIGHT * (1.0 - v / top)

    def x_mid(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    desc = _("%(n)d bars, highest %(top)s") % {
        "n": len(points),
        "top": f"{fmt(max(values, default=0.0))}{unit}",
    }
    out = _open(chart_id, "columns", height, title, desc)
    out.append(_y_axis(ticks, y_of, fmt))
    for i, ((label, _value), v) in enumerate(zip(points, values, strict=True)):
        y = y_of(v)
        out.append(
            f'<rect class="bar" x="{_f(LEFT + slot * i + gap / 2)}" y="{_f(y)}" '
            f'width="{_f(slot - gap)}" height="{_f(TOP + PLOT_HEIGHT - y)}">'
            f"<title>{_e(label)}: {_e(fmt(v))}{_e(unit)}</title></rect>"
        )
    out.append(_x_labels([p[0] for p in points], x_mid, tick))
    out.append("</svg>")
    return Markup("".join(out))


def bars(
    items: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    fmt: Callable[[float], str] = _num,
    unit: str = "",
) -> Markup:
    """A horizontal bar per item, its label above it and its value at its end."""
    height = max(1, len(items)) * ROW + 4
    values = [max(0.0, float(v)) for _, v in items]
    top = max(values, default=0.0) or 1.0
    room = WIDTH - 4 - 44  # the value's text after the longest bar
    desc = "; ".join(
        f"{label}: {fmt(v)}{unit}" for (label, _value), v in zip(items, values, strict=True)
    )
    out = _open(chart_id, "bars", height, title, desc or _("no data"))
    for i, ((label, _value), v) in enumerate(zip(items, values, strict=True)):
        y = i * ROW
        w = room * v / top
        out.append(f'<text class="label" x="2" y="{y + 13}">{_e(_clip(label))}</text>')
        out.append(
            f'<rect class="bar" x="2" y="{y + 18}" width="{_f(max(w, 1.0))}" height="14">'
            f"<title>{_e(label)}: {_e(fmt(v))}{_e(unit)}</title></rect>"
        )
        out.append(
            f'<text class="value" x="{_f(w + 6)}" y="{y + 29}">{_e(fmt(v))}{_e(unit)}</text>'
        )
    if not items:
        out.append(f'<text class="label" x="2" y="{ROW // 2}">{_e(_("no data"))}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def line(
    points: Sequence[tuple[str, float | None]],
    *,
    chart_id: str,
    title: str,
    tick: Callable[[str], str] = str,
    fmt: Callable[[float], str] = _num,
    axis_fmt: Callable[[float], str] | None = None,
) -> Markup:
    """A line through the points that have a value (a gap where one has none), a dot on each."""
    height = TOP + PLOT_HEIGHT + BOTTOM
    present = [float(v) for _, v in points if v is not None]
    ticks = nice_ticks(max(present, default=0.0))
    top = ticks[-1]
    n = len(points)
    slot = (WIDTH - LEFT - RIGHT) / max(1, n)

    def y_of(v: float) -> float:
        return TOP + PLOT_HEIGHT * (1.0 - max(0.0, v) / top)

    def x_of(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    desc = (
        _("%(k)d of %(n)d points have a value, from %(low)s to %(high)s")
        % {"k": len(present), "n": n, "low": fmt(min(present)), "high": fmt(max(present))}
        if present
        else _("%(k)d of %(n)d points have a value") % {"k": 0, "n": n}
    )
    out = _open(chart_id, "line", height, title, desc)
    out.append(_y_axis(ticks, y_of, axis_fmt or fmt))
    runs: list[list[str]] = [[]]
    for i, (_label, v) in enumerate(points):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{_f(x_of(i))},{_f(y_of(float(v)))}")
    for run in runs:
        if len(run) > 1:
            out.append(
                f'<polyline class="line" points="{" ".join(run)}" fill="none" '
                'stroke="currentColor" stroke-width="2" stroke-linejoin="round"/>'
            )
    for i, (label, v) in enumerate(points):
        if v is not None:
            out.append(
                f'<circle class="dot" cx="{_f(x_of(i))}" cy="{_f(y_of(float(v)))}" r="3">'
                f"<title>{_e(label)}: {_e(fmt(float(v)))}</title></circle>"
            )
    out.append(_x_labels([p[0] for p in points], x_of, tick))
    out.append("</svg>")
    return Markup("".join(out))
