"""Jinja2 rendering of the pages: one environment, autoescaped, with the page's common context.

page(request, "incidents.html", who, title="Incidents", rows=...)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Undefined
from markupsafe import Markup

from raksha.api.deps import Principal
from raksha.auth.roles import Role
from raksha.web import i18n
from raksha.web.i18n import N_
from raksha.web.i18n import gettext as _

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
TEMPLATES.env.autoescape = True
# `{% trans %}` and `_()`: the callables read the request's language (a context variable), so
# the shared environment is installed once and never changed per request.
TEMPLATES.env.add_extension("jinja2.ext.i18n")
TEMPLATES.env.policies["ext.i18n.trimmed"] = True
TEMPLATES.env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext, npgettext=i18n.npgettext
)

STAFF = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.CONTROL_ROOM})
MAP_ROLES = STAFF | {Role.ADMIN}

# The labels below are English messages, translated where they are shown (`|tr` in the
# templates, `_()` in the code).
STATE_LABELS = {
    "NEW": N_("New"),
    "ACKNOWLEDGED": N_("Acknowledged"),
    "CONFIRMED": N_("Confirmed"),
    "DISPATCHED": N_("Dispatched"),
    "RESOLVED": N_("Resolved"),
    "DISMISSED": N_("Dismissed"),
}
ACTION_LABELS = {
    "acknowledge": N_("Acknowledge"),
    "confirm": N_("Confirm"),
    "dispatch": N_("Dispatch"),
    "dismiss": N_("Dismiss (false alarm)"),
    "resolve": N_("Resolve"),
    "escalate": N_("Escalate"),
    "on_scene": N_("On scene"),
}
#: What the running deadline waits for ("acknowledge within 0:42").
DEADLINE_LABELS = {
    "acknowledge": N_("acknowledge"),
    "dispatch": N_("dispatch"),
    "unit_ack": N_("unit to acknowledge"),
}
UNIT_STATUS_LABELS = {
    "available": N_("available"),
    "dispatched": N_("dispatched"),
    "on_scene": N_("on scene"),
    "off_duty": N_("off duty"),
}
ROLE_LABELS = {
    Role.OPERATOR: N_("operator"),
    Role.SUPERVISOR: N_("supervisor"),
    Role.CONTROL_ROOM: N_("control room"),
    Role.AUDITOR: N_("auditor"),
    Role.ADMIN: N_("admin"),
}
#: The canonical expression classes (raksha.domain.types.EXPRESSION_CLASSES), as shown.
EXPRESSION_LABELS = {
    "neutral": N_("neutral"),
    "happiness": N_("happiness"),
    "surprise": N_("surprise"),
    "sadness": N_("sadness"),
    "anger": N_("anger"),
    "disgust": N_("disgust"),
    "fear": N_("fear"),
    "contempt": N_("contempt"),
}
#: How an incident was routed to its station ("polygon": older records of "jurisdiction").
ROUTE_METHODS = {
    "jurisdiction": N_("by jurisdiction"),
    "polygon": N_("by jurisdiction"),
    "nearest": N_("by nearest"),
}
#: An alert's delivery on one channel.
DELIVERY_LABELS = {"pending": N_("pending"), "delivered": N_("delivered"), "failed": N_("failed")}
#: Where a unit's distance is measured from, in the dispatch list.
UNIT_WHERE = {"live": N_("live"), "base": N_("base")}
CAMERA_STATUS_LABELS = {
    "online": N_("online"),
    "offline": N_("offline"),
    "unknown": N_("unknown"),
    "disabled": N_("disabled"),
}
#: A camera's own alert (raksha.pipeline.camera_health.FaultKind), on the map's camera table.
CAMERA_ALERT_LABELS = {
    "video_loss": N_("video lost"),
    "frozen": N_("picture frozen"),
    "covered": N_("lens covered or out of focus"),
    "moved": N_("camera moved"),
    "reconnect": N_("reconnects failing"),
}
#: Templates whose pages follow the live events (and alert the officer on a new incident).
LIVE_TEMPLATES = frozenset({"incidents.html", "incident.html", "map.html"})

#: Why an officer dismissed an incident (raksha.incidents.model.DismissReason), in the
#: order the dismiss form offers them; "unspecified" is a dismissal from before reasons.
DISMISS_REASON_LABELS = {
    "no_distress": N_("A person, but not in distress"),
    "not_a_person": N_("Not a person (poster, reflection)"),
    "duplicate": N_("Duplicate of another incident"),
    "other": N_("Other reason"),
    "unspecified": N_("reason not recorded"),
}

EVIDENCE_LABELS = {
    "face": N_("Face crop"),
    "frame_blurred": N_("Whole frame (bystanders blurred)"),
    "clip": N_("Clip around the decision (bystanders blurred)"),
}


def history_label(action: str) -> str:
    """An action of an incident's history as recorded (`acknowledge`, `unit_ack`): the code
    itself in English, which the history has always shown, a label in other languages."""
    labels = {
        "acknowledge": i18n.pgettext("history", "acknowledge"),
        "confirm": i18n.pgettext("history", "confirm"),
        "dispatch": i18n.pgettext("history", "dispatch"),
        "dismiss": i18n.pgettext("history", "dismiss"),
        "resolve": i18n.pgettext("history", "resolve"),
        "escalate": i18n.pgettext("history", "escalate"),
        "on_scene": i18n.pgettext("history", "on_scene"),
        "unit_ack": i18n.pgettext("history", "unit_ack"),
        "sos_join": i18n.pgettext("history", "sos_join"),
        "sos_cancel": i18n.pgettext("history", "sos_cancel"),
        "reassign": i18n.pgettext("history", "reassign"),
    }
    return labels.get(action, action)


DEVANAGARI = re.compile("[\u0900-\u097f]")


def lang_attr(text: object) -> Markup:
    """` lang="en"` for a message of another layer (a service's refusal) that reaches a page
    in another language untranslated: the browser and a screen reader then read it as the
    English it is."""
    if i18n.current() == i18n.SOURCE or not text or DEVANAGARI.search(str(text)):
        return Markup("")
    return Markup(f' lang="{i18n.SOURCE}"')


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
    label = _(DEADLINE_LABELS[kind]) if kind in DEADLINE_LABELS else kind or _("deadline")
    left = (at - (now or datetime.now(UTC))).total_seconds()
    if left >= 0:
        return _("%(what)s within %(time)s") % {"what": label, "time": clock(left)}
    return _("%(what)s overdue %(time)s") % {"what": label, "time": clock(-left)}


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
TEMPLATES.env.globals["CAMERA_STATUS_LABELS"] = CAMERA_STATUS_LABELS
TEMPLATES.env.globals["CAMERA_ALERT_LABELS"] = CAMERA_ALERT_LABELS
TEMPLATES.env.globals["ROUTE_METHODS"] = ROUTE_METHODS
TEMPLATES.env.globals["DELIVERY_LABELS"] = DELIVERY_LABELS
TEMPLATES.env.globals["DISMISS_REASON_LABELS"] = DISMISS_REASON_LABELS
TEMPLATES.env.globals["ROLE_LABELS"] = {r.value: label for r, label in ROLE_LABELS.items()}
#: A message known only when the page runs (a label from the tables above): translated, and
#: never read as a format string.
TEMPLATES.env.filters["tr"] = i18n.gettext
TEMPLATES.env.filters["history_label"] = history_label
TEMPLATES.env.globals["lang_attr"] = lang_attr


def nav(who: Principal | None) -> list[tuple[str, str]]:
    if who is None or who.user is None:
        return []
    role = who.user.role
    items: list[tuple[str, str]] = []
    if role in STAFF:
        items.append(("/incidents", _("Incidents")))
    if role in MAP_ROLES:
        items.append(("/map", _("Map")))
    if role in (Role.SUPERVISOR, Role.CONTROL_ROOM):
        items.append(("/reports", _("Response times")))
        items.append(("/stats", _("Statistics")))
    if role is Role.AUDITOR:
        items.append(("/audit", _("Audit log")))
    if role is Role.ADMIN:
        items.append(("/users", _("Users")))
    return items


def _watchlist_nav(request: Request, who: Principal | None) -> list[tuple[str, str]]:
    """The watchlist page, for supervisors and the control room where one is configured."""
    site = getattr(request.app.state, "raksha_site", None)
    if who is None or who.user is None or not getattr(site, "watchlist", False):
        return []
    if who.user.role not in (Role.SUPERVISOR, Role.CONTROL_ROOM):
        return []
    return [("/watchlist", _("Watchlist"))]


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
    # The language: the middleware has made it current; set here too for an app without it.
    with i18n.using(i18n.language_of(request)) as lang:
        here = back_to(request, status_code)
        base: dict[str, Any] = {
            "user": user,
            "csrf_token": who.csrf_token if who is not None else None,
            "nav": nav(who) + _watchlist_nav(request, who),
            "path": request.url.path,
            "here": here,
            "lang": lang,
            "languages": list(i18n.LANGUAGES.items()),
            "script_i18n": i18n.script_catalogue(lang),
            "server_now": datetime.now(UTC).isoformat(),
            "tz": site_timezone(request),
            "live_events": user is not None and user.role in STAFF and template in LIVE_TEMPLATES,
            "push_key": _push_key(request) if user is not None and user.role in STAFF else None,
        }
        base.update(context)
        response = TEMPLATES.TemplateResponse(request, template, base, status_code=status_code)
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Cookie, Accept-Language"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = content_policy(request)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def back_to(request: Request, status_code: int = 200) -> str:
    """Where the language switch returns to: this page when a GET showed it, else the page the
    browser came from on this site (a form's page), else the start page. An error page never
    repeats its own address (an incident id of another station stays off the page)."""
    if request.method == "GET" and status_code < 400:
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ref = urlsplit(request.headers.get("referer", ""))
    if ref.netloc == request.url.netloc and ref.path.startswith("/"):
        return ref.path + (f"?{ref.query}" if ref.query else "")
    return "/"


def site_timezone(request: Request) -> str:
    """The deployment's time zone (the config's `timezone:`), where the pages show times."""
    site = getattr(request.app.state, "raksha_site", None)
    return str(getattr(site, "timezone", None) or "UTC")


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
