"""FastAPI dependencies: the context, the logged-in user and `require(rule)`.

Every route (API and web) declares its access rule by depending on `require(Rule.X)`:

    @router.get("/api/incidents")
    def list_incidents(who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))]): ...

`require` resolves the session cookie, checks the rule (raksha.auth.access), and on
state-changing methods (POST, PUT, PATCH, DELETE) the session's CSRF token, sent in the
`X-CSRF-Token` header or a `csrf_token` form field.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from raksha.api.context import ApiContext
from raksha.api.settings import COOKIE_SESSION, COOKIE_SESSION_SECURE, FORM_CSRF, HEADER_CSRF
from raksha.auth.access import POLICIES, Denied, Rule, check
from raksha.auth.sessions import Session
from raksha.auth.users import User
from raksha.services.devices import Device
from raksha.services.errors import ServiceError
from raksha.services.incidents import Caller
from raksha.store.errors import StoreError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user with a session (None for the metrics token)."""

    user: User | None
    session: Session | None
    address: str

    @property
    def name(self) -> str:
        return self.user.username if self.user is not None else "metrics-token"

    @property
    def csrf_token(self) -> str | None:
        return self.session.csrf_token if self.session is not None else None

    @property
    def caller(self) -> Caller:
        """The caller as the services know them (a logged-in user)."""
        if self.user is None:
            raise HTTPException(401, "log in first")
        return Caller(self.user, self.address)


def get_context(request: Request) -> ApiContext:
    ctx = getattr(request.app.state, "raksha", None)
    if not isinstance(ctx, ApiContext):  # pragma: no cover - create_app always sets it
        raise HTTPException(503, "the dashboard is not initialised")
    return ctx


Context = Annotated[ApiContext, Depends(get_context)]


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def denied(exc: Denied) -> HTTPException:
    headers = {"WWW-Authenticate": "Cookie"} if exc.status == 401 else None
    return HTTPException(exc.status, exc.detail, headers=headers)


@contextmanager
def service_errors() -> Iterator[None]:
    """A service's refusal as the HTTP error it stands for (API routes and web pages)."""
    try:
        yield
    except Denied as exc:
        raise denied(exc) from None
    except ServiceError as exc:
        raise HTTPException(exc.status, exc.detail) from None


def _session_user(ctx: ApiContext, token: str | None) -> tuple[User, Session] | None:
    if not token:
        return None
    session = ctx.sessions.touch(token)
    if session is None:
        return None
    user = ctx.users.get_by_id(session.user_id)
    if user is None or user.disabled:
        ctx.sessions.end(session.token_hash, is_hash=True)
        return None
    return user, session


def cookies_secure(request: Request, ctx: ApiContext) -> bool:
    """Whether cookies are Secure: as configured, else when the request came over https."""
    if ctx.settings.secure_cookies is not None:
        return ctx.settings.secure_cookies
    return request.url.scheme == "https"


def session_cookie_name(request: Request, ctx: ApiContext) -> str:
    """`__Host-raksha_session` when cookies are Secure, `raksha_session` on plain http (a
    browser refuses a `__Host-` cookie that is not Secure)."""
    return COOKIE_SESSION_SECURE if cookies_secure(request, ctx) else COOKIE_SESSION


async def current_principal(request: Request) -> Principal | None:
    """The logged-in user of this request, or None (no cookie, expired, disabled)."""
    if getattr(request.state, "raksha_principal_known", False):
        cached: Principal | None = request.state.raksha_principal
        return cached
    ctx = get_context(request)
    token = request.cookies.get(session_cookie_name(request, ctx))
    found = await run_in_threadpool(_session_user, ctx, token)
    who = None if found is None else Principal(found[0], found[1], client_address(request))
    request.state.raksha_principal = who
    request.state.raksha_principal_known = True
    return who


async def _presented_csrf(request: Request) -> str | None:
    header = request.headers.get(HEADER_CSRF)
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        try:
            form = await request.form()
        except ClientDisconnect:  # the body was refused (too large) or the client left
            return None
        value = form.get(FORM_CSRF)
        return value if isinstance(value, str) else None
    return None


def _metrics_token_ok(ctx: ApiContext, request: Request) -> bool:
    env = ctx.settings.metrics_token_env
    expected = os.environ.get(env) if env else None
    auth = request.headers.get("authorization", "")
    if not expected or not auth.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(auth[7:].strip().encode(), expected.encode())


def require(rule: Rule) -> Callable[[Request], Awaitable[Principal]]:
    """The dependency that enforces `rule` and returns the caller."""

    async def dependency(request: Request) -> Principal:
        try:
            policy = POLICIES[rule]
            if not policy.needs_login:
                who = await current_principal(request)
                return who or Principal(None, None, client_address(request))
            if rule is Rule.METRICS and _metrics_token_ok(get_context(request), request):
                return Principal(None, None, client_address(request))
            who = await current_principal(request)
            check(who.user if who is not None else None, rule)
            assert who is not None and who.session is not None
            if request.method not in SAFE_METHODS:
                presented = await _presented_csrf(request)
                if not who.session.csrf_ok(presented):
                    raise Denied(403, f"missing or wrong CSRF token (send {HEADER_CSRF})")
            return who
        except Denied as exc:
            raise denied(exc) from None
        except HTTPException:
            raise
        except StoreError:  # the database is down: deny, and say why
            raise HTTPException(503, "database unavailable; access denied") from None
        except Exception:  # an error while deciding denies
            raise HTTPException(403, "access denied") from None

    dependency.raksha_rule = rule  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{rule.value}"
    return dependency


def rule_of(dependency: Any) -> Rule | None:
    rule = getattr(dependency, "raksha_rule", None)
    return rule if isinstance(rule, Rule) else None


def require_device() -> Callable[[Request], Awaitable[Device]]:
    """The dependency for device routes: a known device token (`Authorization: Bearer …`)
    or 401; the service then checks that the token is the addressed unit's or sender's."""

    async def dependency(request: Request) -> Device:
        ctx = get_context(request)
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        device = ctx.devices.identify(token) if ctx.devices is not None else None
        if device is None:
            raise HTTPException(
                401,
                "a device token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return device

    dependency.raksha_rule = Rule.DEVICE  # type: ignore[attr-defined]
    dependency.__name__ = "require_device"
    return dependency
