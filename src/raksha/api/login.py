"""Login and logout as functions the API routes and the web pages share.

new = login(ctx, request, username, password)     # HTTPException 401 / 429 on refusal
set_session_cookie(response, request, new.token, ctx)
logout(ctx, request, principal); clear_session_cookie(response, request, ctx)
"""

from __future__ import annotations

from fastapi import HTTPException, Request, Response

from raksha.api.context import ApiContext
from raksha.api.deps import Principal, client_address, cookies_secure, session_cookie_name
from raksha.auth.errors import AuthError
from raksha.auth.passwords import HashingBusy
from raksha.auth.sessions import NewSession
from raksha.auth.users import User
from raksha.errors import RakshaError


def set_session_cookie(response: Response, request: Request, token: str, ctx: ApiContext) -> None:
    response.set_cookie(
        session_cookie_name(request, ctx),
        token,
        max_age=int(ctx.settings.session_absolute_s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=cookies_secure(request, ctx),
    )


def clear_session_cookie(response: Response, request: Request, ctx: ApiContext) -> None:
    response.delete_cookie(
        session_cookie_name(request, ctx),
        path="/",
        httponly=True,
        samesite="strict",
        secure=cookies_secure(request, ctx),
    )


def login(
    ctx: ApiContext, request: Request, username: str, password: str, otp: str | None = None
) -> tuple[User, NewSession]:
    """Check the credentials (rate-limited, audited) and start a session.

    Raises HTTPException 429 (throttled, with Retry-After) or 401 (wrong name or password or
    disabled account; the reply does not say which).
    """
    address = client_address(request)
    name = username.strip()[:64]
    attempt = ctx.limiter.begin(name, address)  # counted now, before the slow hash
    if isinstance(attempt, tuple):
        kind, wait = attempt
        ctx.metrics.logins.labels("throttled").inc()
        key = name.lower() if kind == "account" else address
        earlier = ctx.limiter.should_audit_refusal(kind, key)
        if earlier is not None:  # one entry a minute per account or address, with a count
            ctx.audit.append(
                name or "-",
                "login.throttled",
                address=address,
                details={"by": kind, "retry_after_s": wait, "refused_since_last_entry": earlier},
            )
        raise HTTPException(
            429,
            f"too many failed logins for this {kind}; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    try:
        user = ctx.users.authenticate(name, password)
    except HashingBusy as exc:
        ctx.limiter.cancel(name, address, attempt)  # never checked: not a failed guess
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    except RakshaError:
        ctx.limiter.cancel(name, address, attempt)
        raise
    if user is None:
        ctx.metrics.logins.labels("failure").inc()
        ctx.audit.append(name or "-", "login.failure", address=address)
        raise HTTPException(401, "wrong user name or password")
    if user.role.value in ctx.settings.totp_roles:
        _second_factor(ctx, user, address, otp)  # raises; the attempt stays counted
    ctx.limiter.succeeded(name, address, attempt)
    new = ctx.sessions.create(user.id, address=address)
    ctx.metrics.logins.labels("success").inc()
    ctx.audit.append(
        user.username,
        "login.success",
        station_id=user.station_id,
        address=address,
        details={"role": user.role.value},
    )
    return user, new


def _second_factor(ctx: ApiContext, user: User, address: str, otp: str | None) -> None:
    """A role that needs a second factor: refuse without a fresh, right code."""
    if not user.totp_enrolled:
        ctx.audit.append(
            user.username, "login.refused", address=address, details={"why": "no second factor"}
        )
        raise HTTPException(
            403,
            f"a {user.role.value} account needs a second factor; ask an admin to run "
            f"`raksha users totp {user.username}` and add it to your authenticator app",
        )
    if not otp:
        raise HTTPException(401, "enter the 6-digit code from your authenticator app")
    if not ctx.users.check_totp(user.id, otp.strip()):
        ctx.metrics.logins.labels("failure").inc()
        ctx.audit.append(
            user.username, "login.failure", address=address, details={"factor": "code"}
        )
        raise HTTPException(401, "wrong or already used code")


def change_password(
    ctx: ApiContext, request: Request, who: Principal, current: str, new: str
) -> NewSession:
    """Change the caller's own password: the current one is checked (throttled like a
    login), the new one must pass the policy (HTTPException 400 naming the rule), every
    session of the user ends and a new one starts for this browser. Audited."""
    if who.user is None:
        raise HTTPException(401, "log in first")
    name, address = who.user.username, client_address(request)
    attempt = ctx.limiter.begin(name, address)
    if isinstance(attempt, tuple):
        kind, wait = attempt
        raise HTTPException(
            429,
            f"too many failed attempts for this {kind}; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    try:
        ok = ctx.users.authenticate(name, current) is not None
    except HashingBusy as exc:
        ctx.limiter.cancel(name, address, attempt)
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    if not ok:
        ctx.audit.append(name, "user.password_change_refused", address=address)
        raise HTTPException(401, "the current password is wrong")
    ctx.limiter.succeeded(name, address, attempt)
    try:
        ctx.users.set_password(name, new)
    except AuthError as exc:
        raise HTTPException(400, str(exc)) from None
    ended = ctx.sessions.end_all_for(who.user.id)
    session = ctx.sessions.create(who.user.id, address=address)
    ctx.audit.append(
        name,
        "user.password_changed",
        target=f"user:{name}",
        station_id=who.user.station_id,
        address=address,
        details={"sessions_ended": ended},
    )
    return session


def logout(ctx: ApiContext, who: Principal) -> None:
    if who.session is not None:
        ctx.sessions.end(who.session.token_hash, is_hash=True)
    ctx.audit.append(who.name, "logout", address=who.address)
