"""Web Push: the server's VAPID key and a logged-in user's browser subscriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.schemas import OkOut
from raksha.auth.access import Rule
from raksha.services.errors import NotFound
from raksha.services.push import PushService

router = APIRouter(tags=["push"])


class PushKeyOut(BaseModel):
    public_key: str = Field(description="The VAPID application server key (base64url).")


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p256dh: str = Field(min_length=80, max_length=100)
    auth: str = Field(min_length=16, max_length=32)


class SubscriptionIn(BaseModel):
    """What `PushManager.subscribe()` returns, as `subscription.toJSON()`."""

    model_config = ConfigDict(extra="ignore")
    endpoint: str = Field(min_length=10, max_length=2000)
    keys: SubscriptionKeys


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str | None = Field(None, max_length=2000)


def _push(ctx: Context) -> PushService:
    if ctx.push is None:
        raise NotFound("web push is not configured on this server")
    return ctx.push


@router.get("/api/push/key", response_model=PushKeyOut)
def push_key(
    ctx: Context, _who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))]
) -> PushKeyOut:
    """The key to subscribe with (404 when web push is not configured)."""
    with service_errors():
        return PushKeyOut(public_key=_push(ctx).public_key())


@router.post("/api/push/subscriptions", response_model=OkOut, status_code=201)
def subscribe(
    body: SubscriptionIn,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
) -> OkOut:
    """Tell this browser about new and escalated incidents of the caller's stations."""
    with service_errors():
        _push(ctx).subscribe(who.caller, body.endpoint, body.keys.p256dh, body.keys.auth)
    return OkOut()


@router.post("/api/push/subscriptions/delete", response_model=OkOut)
def unsubscribe(
    body: UnsubscribeIn,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))],
) -> OkOut:
    """Stop notifying this browser (`endpoint`), or all of the caller's (no endpoint)."""
    with service_errors():
        _push(ctx).unsubscribe(who.caller, body.endpoint)
    return OkOut()
