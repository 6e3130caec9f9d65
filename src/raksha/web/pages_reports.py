"""Response times on the dashboard: supervisors (their station) and the control room (every
station) see how fast incidents were acknowledged, dispatched and reached, per station and
per unit, over the last days (`raksha.services.reports`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.auth.access import Rule
from raksha.services.reports import response_times
from raksha.web.i18n import N_
from raksha.web.i18n import gettext as _
from raksha.web.render import page

router = APIRouter(include_in_schema=False)

#: (attribute, column heading) of the station table; the headings are translated where shown.
STATION_COLUMNS = (
    ("acknowledge", N_("to acknowledge")),
    ("dispatch", N_("to dispatch")),
    ("unit_ack", N_("unit acknowledges")),
    ("travel", N_("travel")),
    ("on_scene", N_("to on scene")),
)
UNIT_COLUMNS = (
    ("unit_ack", N_("acknowledges")),
    ("travel", N_("travel")),
    ("on_scene", N_("to on scene")),
)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


@router.get("/reports")
def reports_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_EXPORT))],
    days: Annotated[int, Query(ge=1, le=366)] = 7,
) -> Response:
    since = datetime.now(UTC) - timedelta(days=days)
    with service_errors():
        report = response_times(
            who.caller,
            ctx.store,
            since,
            None,
            None,
            known_stations=ctx.station_ids,
            audit=ctx.audit,
        )
    return page(
        request,
        "reports.html",
        who,
        title=_("Response times"),
        report=report,
        days=days,
        station_columns=STATION_COLUMNS,
        unit_columns=UNIT_COLUMNS,
        duration=duration,
    )
