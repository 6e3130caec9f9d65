"""THE access rules of the dashboard, in one place.

Every route declares one `Rule` (through `raksha.api.deps.require`) and `raksha.services`
checks the station of what it returns; `create_app` refuses to start when a route has none.
A rule names the roles that may use the route and whether it is scoped to stations:

- a role not named by the rule gets 403 (e.g. an auditor asking for incidents);
- a station-scoped rule gives an operator or supervisor of station A a 404 for anything of
  station B (incidents, evidence, events, cameras), exactly as if it did not exist;
- any exception raised while deciding denies (403), never allows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from raksha.auth.roles import Role
from raksha.auth.users import User

log = logging.getLogger(__name__)

OP, SUP, CR, AUD, ADM = (
    Role.OPERATOR,
    Role.SUPERVISOR,
    Role.CONTROL_ROOM,
    Role.AUDITOR,
    Role.ADMIN,
)


class Rule(StrEnum):
    #: Open without login (only /healthz and the login itself).
    PUBLIC = "public"
    #: Any logged-in user (logout, who am I).
    LOGGED_IN = "logged_in"
    INCIDENTS_READ = "incidents_read"
    INCIDENTS_ACT = "incidents_act"
    INCIDENTS_EXPORT = "incidents_export"
    EVIDENCE_VIEW = "evidence_view"
    #: The unblurred original; checked inside the evidence route when `unblur` is asked for.
    EVIDENCE_UNBLUR = "evidence_unblur"
    #: Place or lift a legal hold on an incident's evidence (kept past its retention).
    EVIDENCE_HOLD = "evidence_hold"
    EVENTS = "events"
    CAMERAS_READ = "cameras_read"
    AUDIT_READ = "audit_read"
    USERS_ADMIN = "users_admin"
    #: Clear a throttled officer's failed logins (a supervisor for their own station).
    USERS_UNLOCK = "users_unlock"
    #: The face watchlist's matches: list, view and decide them (two officers confirm).
    #: Hidden: a role without it gets 404, as if the routes did not exist.
    WATCHLIST = "watchlist"
    #: Prometheus metrics: an admin, or the configured bearer token.
    METRICS = "metrics"
    #: A patrol unit's phone or tracker, or an SOS sender: no login, its device token
    #: (`raksha.api.deps.require_device`); the token opens its own unit only.
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class Policy:
    roles: frozenset[Role]
    #: True when an operator/supervisor may only reach their own station's things.
    station_scoped: bool = False
    #: True when a state-changing request needs the session's CSRF token.
    needs_login: bool = True
    #: True when a role outside `roles` gets 404 instead of 403 (the route stays unseen).
    hidden: bool = False


_ALL = frozenset(Role)
_STATION_STAFF = frozenset({OP, SUP, CR})

POLICIES: dict[Rule, Policy] = {
    Rule.PUBLIC: Policy(frozenset(), needs_login=False),
    Rule.LOGGED_IN: Policy(_ALL),
    Rule.INCIDENTS_READ: Policy(_STATION_STAFF, station_scoped=True),
    Rule.INCIDENTS_ACT: Policy(_STATION_STAFF, station_scoped=True),
    Rule.INCIDENTS_EXPORT: Policy(frozenset({SUP, CR}), station_scoped=True),
    Rule.EVIDENCE_VIEW: Policy(_STATION_STAFF, station_scoped=True),
    Rule.EVIDENCE_UNBLUR: Policy(frozenset({SUP, CR}), station_scoped=True),
    Rule.EVIDENCE_HOLD: Policy(frozenset({SUP, CR}), station_scoped=True),
    Rule.EVENTS: Policy(_STATION_STAFF, station_scoped=True),
    Rule.CAMERAS_READ: Policy(frozenset({OP, SUP, CR, ADM}), station_scoped=True),
    Rule.AUDIT_READ: Policy(frozenset({AUD})),
    Rule.USERS_ADMIN: Policy(frozenset({ADM})),
    Rule.USERS_UNLOCK: Policy(frozenset({SUP, CR, ADM}), station_scoped=True),
    Rule.WATCHLIST: Policy(frozenset({SUP, CR}), station_scoped=True, hidden=True),
    Rule.METRICS: Policy(frozenset({ADM})),
    Rule.DEVICE: Policy(frozenset(), needs_login=False),
}


class Denied(Exception):
    """Access refused: `status` is 403 (not allowed) or 404 (not in the caller's scope)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def station_scope(user: User) -> frozenset[str] | None:
    """The stations `user` may see: one for station-bound roles, None meaning all."""
    if user.role.station_bound:
        return frozenset({user.station_id}) if user.station_id else frozenset()
    return None


def _decide(user: User | None, rule: Rule, station_id: str | None, scoped_check: bool) -> None:
    policy = POLICIES[rule]
    if not policy.needs_login:
        return
    if user is None:
        raise Denied(401, "log in first")
    if user.disabled:
        raise Denied(401, "this account is disabled")
    if user.role not in policy.roles:
        if policy.hidden:
            raise Denied(404, "not found")
        raise Denied(403, f"a {user.role.value} may not do this")
    if scoped_check and policy.station_scoped:
        scope = station_scope(user)
        if scope is not None and (station_id is None or station_id not in scope):
            raise Denied(404, "not found")


def check(user: User | None, rule: Rule) -> None:
    """Raise Denied unless `user` may use a route with `rule` at all."""
    try:
        _decide(user, rule, None, scoped_check=False)
    except Denied:
        raise
    except Exception:
        log.exception("access check for %s failed; denying", rule.value)
        raise Denied(403, "access denied") from None


def check_station(user: User | None, rule: Rule, station_id: str | None) -> None:
    """Raise Denied unless `user` may use `rule` on something of `station_id` (404 when the
    thing belongs to a station outside the user's scope)."""
    try:
        _decide(user, rule, station_id, scoped_check=True)
    except Denied:
        raise
    except Exception:
        log.exception("station check for %s failed; denying", rule.value)
        raise Denied(403, "access denied") from None


def visible_stations(user: User, rule: Rule) -> frozenset[str] | None:
    """For list routes: the stations to filter on (None: all). Denies like `check`."""
    check(user, rule)
    try:
        return station_scope(user) if POLICIES[rule].station_scoped else None
    except Exception:
        log.exception("scope of %s failed; denying", rule.value)
        raise Denied(403, "access denied") from None
