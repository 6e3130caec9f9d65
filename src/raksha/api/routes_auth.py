"""POST /api/login, POST /api/logout, GET /api/me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from raksha.api.deps import Context, Principal, require
from raksha.api.login import (
    change_password,
    clear_session_cookie,
    login,
    logout,
    set_session_cookie,
)
from raksha.api.schemas import LoginIn, LoginOut, MeOut, OkOut, PasswordIn, UserOut
from raksha.auth.access import Rule
from raksha.auth.users import User
from raksha.store.serialize import iso

router = APIRouter(tags=["session"])


def user_out(user: User) -> UserOut:
    return UserOut.model_validate(user.to_json())


@router.post(
    "/api/login",
    response_model=LoginOut,
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Throttled"}},
)
async def api_login(
    body: LoginIn,
    request: Request,
    response: Response,
    ctx: Context,
    _who: Annotated[Principal, Depends(require(Rule.PUBLIC))],
) -> LoginOut:
    """Start a session: sets an HttpOnly, SameSite=Strict cookie and returns the CSRF token."""
    user, new = await run_in_threadpool(login, ctx, request, body.username, body.password, body.otp)
    set_session_cookie(response, request, new.token, ctx)
    return LoginOut(
        user=user_out(user),
        csrf_token=new.session.csrf_token,
        expires_at=iso(new.session.expires_at) or "",
    )


@router.post("/api/logout", response_model=OkOut)
async def api_logout(
    request: Request,
    response: Response,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))],
) -> OkOut:
    """End the session on the server and clear the cookie."""
    await run_in_threadpool(logout, ctx, who)
    clear_session_cookie(response, request, ctx)
    return OkOut()


@router.post(
    "/api/me/password",
    response_model=LoginOut,
    responses={
        400: {"description": "The new password breaks the policy (the reply says which rule)"},
        401: {"description": "The current password is wrong"},
        429: {"description": "Throttled"},
    },
)
async def api_change_password(
    body: PasswordIn,
    request: Request,
    response: Response,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))],
) -> LoginOut:
    """Change your own password: every session of yours ends and this one is renewed (a new
    cookie and CSRF token in the reply)."""
    new = await run_in_threadpool(
        change_password, ctx, request, who, body.current_password, body.new_password
    )
    set_session_cookie(response, request, new.token, ctx)
    assert who.user is not None
    return LoginOut(
        user=user_out(who.user),
        csrf_token=new.session.csrf_token,
        expires_at=iso(new.session.expires_at) or "",
    )


@router.get("/api/me", response_model=MeOut)
async def api_me(who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))]) -> MeOut:
    """The logged-in user and the session's CSRF token."""
    assert who.user is not None
    return MeOut(user=user_out(who.user), csrf_token=who.csrf_token)
