"""The watchlist page (`Rule.WATCHLIST`: supervisors of the alert's station and the control
room; others 404): the pending matches, each with the camera's face beside the enrolled face,
the score and the confirm and reject buttons. Showing a match is a view of it, audited like
the API's (`watchlist.view`); two different officers must confirm a match
(`raksha.services.watchlist_review`)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from raksha.api.deps import Context, Principal, require
from raksha.api.routes_watchlist import AlertId, review_service
from raksha.auth.access import Rule
from raksha.services.errors import ServiceError
from raksha.services.watchlist_review import CONFIRMATIONS_NEEDED, AlertView
from raksha.web.i18n import gettext as _
from raksha.web.render import page

router = APIRouter(include_in_schema=False)

Who = Annotated[Principal, Depends(require(Rule.WATCHLIST))]

#: Hours a confirmed match stays listed on the page (for the control room to act on).
CONFIRMED_SHOWN_H = 24


def _data_url(jpeg: bytes | None) -> str | None:
    if jpeg is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _card(v: AlertView, me: str) -> dict[str, object]:
    confirmed = sorted({d.officer for d in v.decisions if d.decision == "confirm"})
    return {
        "id": v.alert.id,
        "person_id": v.alert.person_id,
        "camera_id": v.alert.camera_id,
        "station_id": v.alert.station_id,
        "opened_at": v.alert.opened_at.isoformat(),
        "score": v.alert.score,
        "probe": _data_url(v.probe_jpeg),
        "enrolled": _data_url(v.enrolled_jpeg),
        "confirmed_by": confirmed,
        "decided": any(d.officer == me for d in v.decisions),
    }


def _page(
    request: Request, ctx: Context, who: Principal, error: str | None = None, status: int = 200
) -> Response:
    review = review_service(ctx)
    caller = who.caller
    cards = [_card(review.view(caller, a.id), caller.name) for a in review.pending(caller)]
    since = datetime.now(UTC) - timedelta(hours=CONFIRMED_SHOWN_H)
    confirmed = [
        {
            "id": v.alert.id,
            "person_id": v.alert.person_id,
            "camera_id": v.alert.camera_id,
            "station_id": v.alert.station_id,
            "opened_at": v.alert.opened_at.isoformat(),
            "closed_at": (v.alert.closed_at or v.alert.opened_at).isoformat(),
            "confirmed_by": sorted({d.officer for d in v.decisions if d.decision == "confirm"}),
        }
        for v in review.confirmed_since(caller, since)
    ]
    return page(
        request,
        "watchlist.html",
        who,
        status_code=status,
        title=_("Watchlist matches"),
        cards=cards,
        confirmed=confirmed,
        confirmed_hours=CONFIRMED_SHOWN_H,
        needed=CONFIRMATIONS_NEEDED,
        error=error,
    )


@router.get("/watchlist")
def watchlist_page(request: Request, ctx: Context, who: Who) -> Response:
    return _page(request, ctx, who)


@router.post("/watchlist/{alert_id}/decide")
def watchlist_decide(
    request: Request,
    alert_id: AlertId,
    ctx: Context,
    who: Who,
    decision: Annotated[Literal["confirm", "reject"], Form()],
) -> Response:
    try:
        review_service(ctx).decide(who.caller, alert_id, decision)
    except ServiceError as exc:
        if exc.status == 404:
            return _page(request, ctx, who, _("No such match."), 404)
        if exc.status == 409:
            return _page(
                request,
                ctx,
                who,
                _(
                    "You have decided this match already, or it is closed: another officer "
                    "must decide."
                ),
                409,
            )
        raise
    return RedirectResponse("/watchlist", status_code=303)
