"""The login page, logout and the start page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from raksha.api.deps import Context, Principal, require
from raksha.api.login import (
    change_password,
    clear_session_cookie,
    login,
    logout,
    set_session_cookie,
)
from raksha.auth.access import Rule
from raksha.web.errors import safe_next
from raksha.web.i18n import gettext as _
from raksha.web.i18n import localize
from raksha.web.render import home_of, page

router = APIRouter(include_in_schema=False)


def _same_origin(request: Request) -> bool:
    """A login form posted from another site is refused (login CSRF)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


@router.get("/", response_class=RedirectResponse)
async def start(who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))]) -> Response:
    return RedirectResponse(home_of(who), status_code=303)


@router.get("/login")
async def login_page(
    request: Request,
    who: Annotated[Principal, Depends(require(Rule.PUBLIC))],
    next: str | None = None,
) -> Response:
    if who.user is not None:
        return RedirectResponse(safe_next(next) if next else home_of(who), status_code=303)
    return page(request, "login.html", None, title=_("Log in"), next=safe_next(next), error=None)


@router.post("/login")
async def login_submit(
    request: Request,
    ctx: Context,
    _who: Annotated[Principal, Depends(require(Rule.PUBLIC))],
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    otp: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    target = safe_next(next)
    if not _same_origin(request):
        return page(
            request,
            "login.html",
            None,
            status_code=403,
            title=_("Log in"),
            next=target,
            error=_("This login form was sent from another site."),
        )
    if not username.strip() or not password:
        return page(
            request,
            "login.html",
            None,
            status_code=400,
            title=_("Log in"),
            next=target,
            error=_("Enter your user name and password."),
            username=username,
        )
    try:
        user, new = await run_in_threadpool(login, ctx, request, username, password, otp or None)
    except HTTPException as exc:
        return page(
            request,
            "login.html",
            None,
            status_code=exc.status_code,
            title=_("Log in"),
            next=target,
            error=localize(exc.detail),
            username=username,
            headers=exc.headers,
        )
    if target == "/":
        target = home_of(Principal(user, new.session, ""))
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, new.token, ctx)
    return response


@router.post("/logout")
async def logout_submit(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))],
) -> Response:
    await run_in_threadpool(logout, ctx, who)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request, ctx)
    return response


@router.get("/account/password")
async def password_page(
    request: Request,
    who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))],
    done: bool = False,
) -> Response:
    return page(
        request, "password.html", who, title=_("Password"), who_name=who.name, error=None, done=done
    )


@router.post("/account/password")
async def password_submit(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))],
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    repeat_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """The form's change: the same checks as `POST /api/me/password`."""

    def again(status: int, error: str, headers: Mapping[str, str] | None = None) -> Response:
        return page(
            request,
            "password.html",
            who,
            status_code=status,
            title=_("Password"),
            who_name=who.name,
            error=error,
            done=False,
            headers=headers,
        )

    if new_password != repeat_password:
        return again(400, _("The two new passwords differ."))
    try:
        new = await run_in_threadpool(
            change_password, ctx, request, who, current_password, new_password
        )
    except HTTPException as exc:
        return again(exc.status_code, localize(exc.detail), exc.headers)
    response = RedirectResponse("/account/password?done=1", status_code=303)
    set_session_cookie(response, request, new.token, ctx)
    return response
