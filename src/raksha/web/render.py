"""Jinja2 rendering of the pages: one environment, autoescaped, with the page's common context.

page(request, "incidents.html", who, title="Incidents", rows=...)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Undefined

from raksha.api.deps import Principal
from raksha.auth.roles import Role

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
TEMPLATES.env.autoescape = True

STAFF = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.CONTROL_ROOM})
MAP_ROLES = STAFF | {Role.ADMIN}

STATE_LABELS = {
    "NEW": "New",
    "ACKNOWLEDGED": "Acknowledged",
    "CONFIRMED": "Confirmed",
    "DISPATCHED": "Dispatched",
    "RESOLVED": "Resolved",
    "DISMISSED": "Dismissed",
}
ACTION_LABELS = {
    "acknowledge": "Acknowledge",
    "confirm": "Confirm",
    "dispatch": "Dispatch",
    "dismiss": "Dismiss (false alarm)",
    "resolve": "Resolve",
    "escalate": "Escalate",
    "on_scene": "On scene",
}
#: What the running deadline waits for ("acknowledge within 0:42").
DEADLINE_LABELS = {
    "acknowledge": "acknowledge",
    "dispatch": "dispatch",
    "unit_ack": "unit to acknowledge",
}
UNIT_STATUS_LABELS = {
    "available": "available",
    "dispatched": "dispatched",
    "on_scene": "on scene",
    "off_duty": "off duty",
}
#: Templates whose pages follow the live events (and alert the officer on a new incident).
LIVE_TEMPLATES = frozenset({"incidents.html", "incident.html", "map.html"})

EVIDENCE_LABELS = {"face": "Face crop", "frame_blurred": "Whole frame (bystanders blurred)"}


def detail(value: Any) -> str:
    """An audit detail value as short text (lists joined)."""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def when(value: str | datetime | None) -> str:
    """'2026-11-22 08:01:02 UTC' from an ISO time (the page's script shows local time)."""
    if value is None or value == "" or isinstance(value, Undefined):
        return "—"
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def pct(value: float | None) -> str:
    if value is None or isinstance(value, Undefined):
        return "—"
    return f"{100.0 * float(value):.0f}%"


def metres(value: float | int | None) -> str:
    if value is None or isinstance(value, Undefined):
        return "—"
    v = float(value)
    return f"{v / 1000.0:.1f} km" if v >= 1000.0 else f"{v:.0f} m"


def _instant(value: str | datetime | None) -> datetime | None:
    if value is None or value == "" or isinstance(value, Undefined):
        return None
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def clock(seconds: float) -> str:
    """'0:42', '12:05', '1:02:03' (whole seconds, rounded down); the script writes the same."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def countdown(
    deadline_at: str | datetime | None, kind: str | None, now: datetime | None = None
) -> str:
    """'acknowledge within 0:42' before the deadline, 'acknowledge overdue 0:13' after it;
    '' when no deadline runs. The page's script keeps it ticking."""
    at = _instant(deadline_at)
    if at is None:
        return ""
    label = DEADLINE_LABELS.get(kind or "", kind or "deadline")
    left = (at - (now or datetime.now(UTC))).total_seconds()
    return f"{label} within {clock(left)}" if left >= 0 else f"{label} overdue {clock(-left)}"


def overdue(deadline_at: str | datetime | None, now: datetime | None = None) -> bool:
    at = _instant(deadline_at)
    return at is not None and at < (now or datetime.now(UTC))


def age(since: str | datetime | None, now: datetime | None = None) -> str:
    """How long ago `since` was, as a clock ('4:12')."""
    at = _instant(since)
    return "—" if at is None else clock(((now or datetime.now(UTC)) - at).total_seconds())


TEMPLATES.env.filters["when"] = when
TEMPLATES.env.filters["pct"] = pct
TEMPLATES.env.filters["metres"] = metres
TEMPLATES.env.globals["STATE_LABELS"] = STATE_LABELS
TEMPLATES.env.globals["ACTION_LABELS"] = ACTION_LABELS
TEMPLATES.env.globals["EVIDENCE_LABELS"] = EVIDENCE_LABELS
TEMPLATES.env.filters["detail"] = detail
TEMPLATES.env.filters["age"] = age
TEMPLATES.env.filters["overdue"] = overdue
TEMPLATES.env.globals["countdown"] = countdown
TEMPLATES.env.globals["DEADLINE_LABELS"] = DEADLINE_LABELS
TEMPLATES.env.globals["UNIT_STATUS_LABELS"] = UNIT_STATUS_LABELS


def nav(who: Principal | None) -> list[tuple[str, str]]:
    if who is None or who.user is None:
        return []
    role = who.user.role
    items: list[tuple[str, str]] = []
    if role in STAFF:
        items.append(("/incidents", "Incidents"))
    if role in MAP_ROLES:
        items.append(("/map", "Map"))
    if role in (Role.SUPERVISOR, Role.CONTROL_ROOM):
        items.append(("/reports", "Response times"))
        items.append(("/stats", "Statistics"))
    if role is Role.AUDITOR:
        items.append(("/audit", "Audit log"))
    if role is Role.ADMIN:
        items.append(("/users", "Users"))
    return items


def home_of(who: Principal) -> str:
    role = who.user.role if who.user is not None else None
    if role in STAFF:
        return "/incidents"
    if role is Role.AUDITOR:
        return "/audit"
    if role is Role.ADMIN:
        return "/map"
    return "/login"


def page(
    request: Request,
    template: str,
    who: Principal | None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    user = who.user if who is not None else None
    base: dict[str, Any] = {
        "user": user,
        "csrf_token": who.csrf_token if who is not None else None,
        "nav": nav(who),
        "path": request.url.path,
        "server_now": datetime.now(UTC).isoformat(),
        "live_events": user is not None and user.role in STAFF and template in LIVE_TEMPLATES,
        "push_key": _push_key(request) if user is not None and user.role in STAFF else None,
    }
    base.update(context)
    response = TEMPLATES.TemplateResponse(request, template, base, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = content_policy(request)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _push_key(request: Request) -> str | None:
    """The server's Web Push key when push is configured (the page then subscribes)."""
    ctx = getattr(request.app.state, "raksha", None)
    push = getattr(ctx, "push", None)
    try:
        return None if push is None else str(push.public_key())
    except Exception:  # not configured
        return None


def content_policy(request: Request) -> str:
    """Scripts, styles and connections from this site only; images also from the tile server
    when one is configured."""
    web = getattr(request.app.state, "raksha_web", None)
    origin = getattr(web, "tile_origin", None)
    img = "'self' data:" + (f" {origin}" if origin else "")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    )
