"""Admin: GET /api/users, POST /api/users, POST /api/users/{username}/disable; and
POST /api/users/{username}/unlock for a supervisor of the officer's station."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path

from raksha.api.deps import Context, Principal, denied, require
from raksha.api.routes_auth import user_out
from raksha.api.schemas import UserIn, UserList, UserOut
from raksha.auth.access import Denied, Rule, check_station
from raksha.auth.errors import AuthError

router = APIRouter(tags=["users"])

Username = Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")]


@router.get("/api/users", response_model=UserList)
def list_users(
    ctx: Context, _who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))]
) -> UserList:
    return UserList(users=[user_out(u) for u in ctx.users.list()])


@router.post("/api/users", response_model=UserOut, status_code=201)
def add_user(
    body: UserIn, ctx: Context, who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))]
) -> UserOut:
    """Create a user (audited; the password is never logged)."""
    try:
        user = ctx.users.add(
            body.username,
            body.role,
            body.password,
            station_id=body.station_id,
            known_stations=ctx.station_ids or None,
        )
    except AuthError as exc:
        raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from None
    ctx.audit.append(
        who.name,
        "user.add",
        target=f"user:{user.username}",
        station_id=user.station_id,
        address=who.address,
        details={"role": user.role.value},
    )
    return user_out(user)


@router.post("/api/users/{username}/disable", response_model=UserOut)
def disable_user(
    username: Username, ctx: Context, who: Annotated[Principal, Depends(require(Rule.USERS_ADMIN))]
) -> UserOut:
    """Disable a user and end their sessions at once."""
    try:
        user = ctx.users.set_disabled(username, True)
    except AuthError as exc:
        raise HTTPException(404, str(exc)) from None
    ended = ctx.sessions.end_all_for(user.id)
    ctx.audit.append(
        who.name,
        "user.disable",
        target=f"user:{user.username}",
        address=who.address,
        details={"sessions_ended": ended},
    )
    return user_out(user)


@router.post("/api/users/{username}/unlock", response_model=UserOut)
def unlock_user(
    username: Username,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.USERS_UNLOCK))],
) -> UserOut:
    """Clear an officer's failed logins (they were slowed or refused after someone guessed
    at their account); a supervisor for their own station, the control room or an admin."""
    user = ctx.users.get(username)
    try:
        check_station(who.user, Rule.USERS_UNLOCK, user.station_id if user is not None else None)
    except Denied as exc:
        raise denied(exc) from None
    if user is None:
        raise HTTPException(404, "not found")
    cleared = ctx.limiter.unlock(user.username)
    ctx.audit.append(
        who.name,
        "user.unlocked",
        target=f"user:{user.username}",
        station_id=user.station_id,
        address=who.address,
        details={"failures_cleared": cleared},
    )
    return user_out(user)
