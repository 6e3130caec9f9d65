"""User administration for admins (`/users`): the users with their role, station, state and
second factor; forms to add a user, disable or enable one, set a new password and change a
role or station. The forms post with the session's CSRF token; every change goes through
`raksha.services.users.UserAdmin`, which checks the rule and writes the audit entry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from raksha.api.context import ApiContext
from raksha.api.deps import Context, Principal, require, service_errors
from raksha.auth.access import Rule
from raksha.auth.roles import Role
from raksha.auth.users import User
from raksha.services.users import UserAdmin
from raksha.web.i18n import N_, localize
from raksha.web.i18n import gettext as _
from raksha.web.render import ROLE_LABELS, page

router = APIRouter(include_in_schema=False)

Username = Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")]
#: The confirmations shown after a change (`?done=...&user=...`).
DONE = {
    "added": N_("Added %(user)s."),
    "disabled": N_("Disabled %(user)s; their sessions have ended."),
    "enabled": N_("Enabled %(user)s."),
    "password": N_("New password set for %(user)s; their sessions have ended."),
    "role": N_("Changed the role of %(user)s; their sessions have ended."),
}
#: Refusals the page shows next to the forms (others become the error page).
SHOWN = (400, 404, 409, 422)


def _admin(ctx: ApiContext) -> UserAdmin:
    return UserAdmin(ctx.users, ctx.sessions, ctx.audit, known_stations=ctx.station_ids)


def _users_page(
    request: Request,
    ctx: ApiContext,
    who: Principal,
    *,
    status_code: int = 200,
    error: str | None = None,
    error_user: str | None = None,
    done: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    with service_errors():
        users: list[User] = _admin(ctx).list(who.caller)
    return page(
        request,
        "users.html",
        who,
        status_code=status_code,
        title=_("Users"),
        users=users,
        roles=[(r.value, ROLE_LABELS[r]) for r in Role],
        role_labels={r.value: ROLE_LABELS[r] for r in Role},
        stations=ctx.station_ids,
        me=who.user.id if who.user is not None else None,
        error=error,
        error_user=error_user,
        done=done,
        form=form or {},
    )


@router.get("/users")
def users_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))],
    done: str | None = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    message = _(DONE[done]) % {"user": user or _("the user")} if done in DONE else None
    return _users_page(request, ctx, who, done=message)


def _changed(
    request: Request,
    ctx: ApiContext,
    who: Principal,
    username: str,
    done: str,
    change: Callable[[], object],
    *,
    form: dict[str, str] | None = None,
) -> Response:
    """Run `change`; back to the list with its confirmation, or the list with the refusal."""
    try:
        with service_errors():
            change()
    except HTTPException as exc:
        if exc.status_code in SHOWN:
            return _users_page(
                request,
                ctx,
                who,
                status_code=exc.status_code,
                error=localize(exc.detail),
                error_user=username,
                form=form,
            )
        raise
    query = urlencode({"done": done, "user": username})
    return RedirectResponse(f"/users?{query}", status_code=303)


@router.post("/users")
def user_add(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))],
    username: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    station: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    repeat_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Add a user with an initial password (they change it after logging in)."""
    form = {"username": username, "role": role, "station": station}
    name = username.strip()
    if password != repeat_password:
        return _users_page(
            request,
            ctx,
            who,
            status_code=400,
            error=_("The two passwords differ."),
            error_user=name,
            form=form,
        )

    def add() -> User:
        return _admin(ctx).create(who.caller, name, role, password, station_id=station or None)

    return _changed(request, ctx, who, name, "added", add, form=form)


@router.post("/users/{username}/disable")
def user_disable(
    request: Request,
    username: Username,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))],
) -> Response:
    def disable() -> User:
        return _admin(ctx).set_disabled(who.caller, username, True)

    return _changed(request, ctx, who, username, "disabled", disable)


@router.post("/users/{username}/enable")
def user_enable(
    request: Request,
    username: Username,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))],
) -> Response:
    def enable() -> User:
        return _admin(ctx).set_disabled(who.caller, username, False)

    return _changed(request, ctx, who, username, "enabled", enable)


@router.post("/users/{username}/password")
def user_password(
    request: Request,
    username: Username,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))],
    new_password: Annotated[str, Form(max_length=1024)] = "",
    repeat_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Set a new password for a user (one who forgot theirs); their sessions end."""
    if new_password != repeat_password:
        return _users_page(
            request,
            ctx,
            who,
            status_code=400,
            error=_("The two passwords differ."),
            error_user=username,
        )

    def reset() -> User:
        return _admin(ctx).reset_password(who.caller, username, new_password)

    return _changed(request, ctx, who, username, "password", reset)


@router.post("/users/{username}/role")
def user_role(
    request: Request,
    username: Username,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))],
    role: Annotated[str, Form(max_length=32)] = "",
    station: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    def change() -> User:
        return _admin(ctx).change_role(who.caller, username, role, station_id=station or None)

    return _changed(request, ctx, who, username, "role", change)
