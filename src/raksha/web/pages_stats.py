"""Incident statistics on the dashboard (/stats): supervisors (their station) and the control
room (every station, or one) see the incidents of the last 7, 30 or 90 local days per day,
per station, per camera and by outcome, the false-alarm share with its 95 % interval, the
median time to acknowledge per day and camera vs SOS origins (`raksha.services.stats`);
the field precision of the same period (of the camera incidents officers judged, the share
that were real) per camera with the cameras to review, per station, hour of day and model
(`raksha.services.precision`); and, where shadow mode ran, its would-be events against the
live incidents per camera (`raksha.services.shadow`).

The charts are inline SVG drawn here (`raksha.web.svg_charts`), each with its numbers as a
table under a `<details>`. The days are those of the deployment's zone (the config's
`timezone:`), where every page shows its times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.auth.access import Rule
from raksha.services.precision import field_precision
from raksha.services.reports import report_stations
from raksha.services.shadow import shadow_report
from raksha.services.stats import Statistics, incident_statistics
from raksha.site.config import PrecisionConfig
from raksha.web import i18n, svg_charts
from raksha.web.i18n import N_
from raksha.web.i18n import gettext as _
from raksha.web.pages_reports import duration
from raksha.web.render import page, site_timezone

router = APIRouter(include_in_schema=False)

DAY_CHOICES = (7, 30, 90)
#: (key, label) of the outcomes, in chart order (the labels translated where shown).
OUTCOMES = (
    ("resolved", N_("Resolved")),
    ("dismissed", N_("Dismissed (false alarm)")),
    ("open", N_("Open")),
)
ORIGINS = (("camera", N_("Camera")), ("sos", "SOS"))


def short_day(label: str) -> str:
    """'22 Nov' from '2026-11-22' (in the page's language: '22 नव॰' in Hindi)."""
    return i18n.short_day(date.fromisoformat(label))


def share(value: float | None) -> str:
    """'37.5 %' (a no-break space before the sign), '—' for no value."""
    return "—" if value is None else f"{100.0 * value:.1f}\u00a0%"


def _ack_chart(stats: Statistics) -> Markup:
    medians = [d.ack_median_s for d in stats.days]
    longest = max((m for m in medians if m is not None), default=0.0)
    scale = 60.0 if longest >= 120.0 else 1.0
    axis: Callable[[float], str] = (
        (lambda v: f"{v:g} min") if scale == 60.0 else (lambda v: f"{v:g} s")
    )
    return svg_charts.line(
        [
            (d.day.isoformat(), None if d.ack_median_s is None else d.ack_median_s / scale)
            for d in stats.days
        ],
        chart_id="chart-ack",
        title=_("Median time to acknowledge per day"),
        tick=short_day,
        fmt=lambda v: duration(v * scale),
        axis_fmt=axis,
    )


def charts(stats: Statistics) -> dict[str, Markup]:
    """The page's charts, by name."""
    cameras = [(cam, float(o.total)) for cam, o in stats.cameras.items()]
    return {
        "days": svg_charts.columns(
            [(d.day.isoformat(), float(d.incidents)) for d in stats.days],
            chart_id="chart-days",
            title=_("Incidents per day"),
            tick=short_day,
        ),
        "stations": svg_charts.bars(
            [(s, float(o.total)) for s, o in stats.stations.items()],
            chart_id="chart-stations",
            title=_("Incidents per station"),
        ),
        "cameras": svg_charts.bars(
            cameras, chart_id="chart-cameras", title=_("Incidents raised per camera (top 10)")
        ),
        "outcomes": svg_charts.bars(
            [(_(label), float(getattr(stats.outcomes, key))) for key, label in OUTCOMES],
            chart_id="chart-outcomes",
            title=_("Incidents by outcome"),
        ),
        "ack": _ack_chart(stats),
        "origins": svg_charts.bars(
            [(_(label), float(stats.origins.get(key, 0))) for key, label in ORIGINS],
            chart_id="chart-origins",
            title=_("Incidents by origin"),
        ),
    }


@router.get("/stats")
def stats_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_EXPORT))],
    days: Annotated[int, Query()] = 7,
    station: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    if days not in DAY_CHOICES:
        raise HTTPException(
            422,
            _("days must be one of %(choices)s") % {"choices": ", ".join(map(str, DAY_CHOICES))},
        )
    tz = site_timezone(request)
    with service_errors():
        stats = incident_statistics(
            who.caller,
            ctx.store,
            days=days,
            station=station or None,
            tz=tz,
            known_stations=ctx.station_ids,
            audit=ctx.audit,
        )
        precision = field_precision(
            who.caller,
            ctx.store,
            settings=ctx.config.precision if ctx.config is not None else PrecisionConfig(),
            days=days,
            station=station or None,
            tz=tz,
            known_stations=ctx.station_ids,
            audit=ctx.audit,
        )
        shadow = shadow_report(
            ctx.store,
            since=precision.since,
            until=precision.until,
            stations=report_stations(who.caller, station or None, ctx.station_ids),
        )
    return page(
        request,
        "stats.html",
        who,
        title=_("Statistics"),
        stats=stats,
        precision=precision,
        shadow=shadow,
        charts=charts(stats),
        day_choices=DAY_CHOICES,
        outcomes=OUTCOMES,
        origins=ORIGINS,
        duration=duration,
        share=share,
        short_day=short_day,
    )
