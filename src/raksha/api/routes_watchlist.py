"""Watchlist matches for two-person adjudication (`Rule.WATCHLIST`: supervisors of the
alert's station and the control room; every other role gets 404, as if the routes did not
exist).

Thin adapters over `raksha.services.watchlist_review`: viewing an alert is audited with the
viewer's name; a match is confirmed only when two different officers have confirmed it, and
either may reject it; the same officer deciding twice is 409.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict

from raksha.api.context import ApiContext
from raksha.api.deps import Context, Principal, require, service_errors
from raksha.auth.access import Rule
from raksha.incidents.evidence import KeyRing
from raksha.services.watchlist_review import AlertView, WatchlistReview
from raksha.store.watchlist import WatchlistAlert

router = APIRouter(tags=["watchlist"])

AlertId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[0-9a-fA-F-]+$")]

RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such alert in your scope (or no access to the watchlist)"},
    409: {"description": "You decided this alert already, or it is closed"},
}


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["confirm", "reject"]


class DecisionOut(BaseModel):
    officer: str
    decision: str
    at: datetime


class AlertOut(BaseModel):
    id: str
    person_id: str
    camera_id: str
    station_id: str
    opened_at: datetime
    score: float
    state: str
    closed_at: datetime | None = None


class AlertList(BaseModel):
    alerts: list[AlertOut]


class AlertDetail(AlertOut):
    decisions: list[DecisionOut]
    #: Officers who confirmed it, and how many confirmations it needs in all.
    confirmations: int
    confirmations_needed: int
    #: Base64 JPEGs: the camera's face and the enrolled face (null: not available).
    probe_thumbnail_jpeg: str | None = None
    enrolled_thumbnail_jpeg: str | None = None


def _alert(a: WatchlistAlert) -> AlertOut:
    return AlertOut(
        id=a.id,
        person_id=a.person_id,
        camera_id=a.camera_id,
        station_id=a.station_id,
        opened_at=a.opened_at,
        score=a.score,
        state=a.state,
        closed_at=a.closed_at,
    )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def detail(v: AlertView) -> AlertDetail:
    from raksha.services.watchlist_review import CONFIRMATIONS_NEEDED

    return AlertDetail(
        **_alert(v.alert).model_dump(),
        decisions=[
            DecisionOut(officer=d.officer, decision=d.decision, at=d.at) for d in v.decisions
        ],
        confirmations=len({d.officer for d in v.decisions if d.decision == "confirm"}),
        confirmations_needed=CONFIRMATIONS_NEEDED,
        probe_thumbnail_jpeg=_b64(v.probe_jpeg),
        enrolled_thumbnail_jpeg=_b64(v.enrolled_jpeg),
    )


def review_service(ctx: ApiContext) -> WatchlistReview:
    ev = ctx.evidence

    def keys() -> tuple[bytes, ...]:
        return KeyRing(ev.key_env, ev.key_file).load() if ev.encrypt else ()

    return WatchlistReview(ctx.store.engine, ctx.audit, keys)


Who = Annotated[Principal, Depends(require(Rule.WATCHLIST))]


class PendingCount(BaseModel):
    #: Matches of your stations waiting for a decision.
    pending: int


@router.get("/api/watchlist/pending", response_model=PendingCount, responses=RESPONSES)
def pending_count(ctx: Context, who: Who) -> PendingCount:
    """How many watchlist matches of your stations wait for a decision (no names, no faces;
    the dashboard's menu polls it to tell you a match waits). Not audited."""
    with service_errors():
        return PendingCount(pending=review_service(ctx).pending_count(who.caller))


@router.get("/api/watchlist/alerts", response_model=AlertList, responses=RESPONSES)
def list_alerts(ctx: Context, who: Who) -> AlertList:
    """The pending watchlist matches of your stations, newest first."""
    with service_errors():
        found = review_service(ctx).pending(who.caller)
    return AlertList(alerts=[_alert(a) for a in found])


@router.get("/api/watchlist/alerts/{alert_id}", response_model=AlertDetail, responses=RESPONSES)
def view_alert(alert_id: AlertId, ctx: Context, who: Who) -> AlertDetail:
    """One match: the camera's face beside the enrolled face, the score and the decisions so
    far. Every view is audited (`watchlist.view`) with your name."""
    with service_errors():
        return detail(review_service(ctx).view(who.caller, alert_id))


@router.post(
    "/api/watchlist/alerts/{alert_id}/decision", response_model=AlertDetail, responses=RESPONSES
)
def decide_alert(alert_id: AlertId, body: DecisionIn, ctx: Context, who: Who) -> AlertDetail:
    """Confirm or reject a match. It is confirmed once two different officers have each
    confirmed it; one rejection closes it. Deciding twice is 409."""
    with service_errors():
        return detail(review_service(ctx).decide(who.caller, alert_id, body.decision))
