"""Two-person adjudication of watchlist matches (docs/watchlist.md).

    review = WatchlistReview(engine, audit, keys=lambda: keyring.load())
    review.pending(caller)                        # the pending alerts in the caller's scope
    seen = review.view(caller, alert_id)          # both thumbnails and the score; audited
    review.decide(caller, alert_id, "confirm")    # two different officers must confirm

A match is confirmed only when two different officers have each confirmed it; either one
rejecting it closes it as rejected. The same officer cannot decide an alert twice, and a
closed alert takes no decision (both Conflict, 409). Every listing, view and decision is in
the audit log with the officer's name (`watchlist.list`, `watchlist.view`,
`watchlist.decision`). A decision first locks the pending alert (`rows.claim_pending`), so
that two officers deciding at once are serialised on SQLite and PostgreSQL alike: the second
sees the first's decision, or 409 once the alert is closed. A rejected match's probe
thumbnail (a face that is not the listed person) is deleted with the rejection. Callers are
checked with `Rule.WATCHLIST` (supervisors of the alert's station and the control room); an
alert of another station is NotFound, exactly as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from raksha.audit.log import AuditLog
from raksha.auth.access import Denied, Rule, check_station, visible_stations
from raksha.errors import RakshaError
from raksha.incidents.evidence import decrypt_bytes
from raksha.incidents.model import utcnow
from raksha.services.errors import Conflict, NotFound
from raksha.services.incidents import Caller
from raksha.store import watchlist as rows
from raksha.store._db import db_errors

#: Confirmations by different officers that make a match confirmed.
CONFIRMATIONS_NEEDED = 2
DecisionKind = Literal["confirm", "reject"]


@dataclass(frozen=True, slots=True)
class AlertView:
    alert: rows.WatchlistAlert
    decisions: list[rows.Decision]
    #: The decrypted JPEGs (None: not stored, or the key is not available here).
    probe_jpeg: bytes | None = None
    enrolled_jpeg: bytes | None = None


class WatchlistReview:
    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        keys: Callable[[], Sequence[bytes]] = tuple,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self._keys = keys

    def _scoped(self, caller: Caller, alert: rows.WatchlistAlert | None, alert_id: str) -> None:
        if alert is None:
            raise NotFound(f"no watchlist alert {alert_id}")
        try:
            check_station(caller.user, Rule.WATCHLIST, alert.station_id)
        except Denied as exc:
            if exc.status == 404:
                raise NotFound(f"no watchlist alert {alert_id}") from None
            raise

    def pending(self, caller: Caller) -> list[rows.WatchlistAlert]:
        """The pending alerts in the caller's scope; audited as `watchlist.list`."""
        scope = visible_stations(caller.user, Rule.WATCHLIST)
        found = rows.alerts(
            self.engine, state="pending", station_ids=None if scope is None else sorted(scope)
        )
        self.audit.append(
            caller.name,
            "watchlist.list",
            target="watchlist_alerts",
            address=caller.address,
            details={
                "state": "pending",
                "stations": None if scope is None else sorted(scope),
                "alerts": [a.id for a in found],
            },
        )
        return found

    def pending_count(self, caller: Caller) -> int:
        """How many matches of the caller's stations wait for a decision. Not audited: it
        names nobody and shows no face (the menu polls it to tell officers a match waits)."""
        scope = visible_stations(caller.user, Rule.WATCHLIST)
        return rows.count_alerts(
            self.engine, state="pending", station_ids=None if scope is None else sorted(scope)
        )

    def confirmed_since(self, caller: Caller, since: datetime) -> list[AlertView]:
        """The caller's stations' matches confirmed by two officers since `since`, newest
        first, with their decisions and without faces; audited as `watchlist.list`."""
        scope = visible_stations(caller.user, Rule.WATCHLIST)
        found = [
            a
            for a in rows.alerts(
                self.engine,
                state="confirmed",
                station_ids=None if scope is None else sorted(scope),
            )
            if (a.closed_at or a.opened_at) >= since
        ]
        with db_errors("cannot read watchlist decisions"), self.engine.begin() as c:
            views = [AlertView(a, rows.decisions(c, a.id)) for a in found]
            self.audit.append_in(
                c,
                caller.name,
                "watchlist.list",
                target="watchlist_alerts",
                address=caller.address,
                details={
                    "state": "confirmed",
                    "since": since.isoformat(),
                    "stations": None if scope is None else sorted(scope),
                    "alerts": [a.id for a in found],
                },
            )
        return views

    def _decrypt(self, token: bytes | None) -> bytes | None:
        if token is None:
            return None
        try:
            keys = list(self._keys())
            return decrypt_bytes(token, keys) if keys else None
        except (RakshaError, ValueError):
            return None

    def view(self, caller: Caller, alert_id: str) -> AlertView:
        """The alert, its decisions and both thumbnails; audited as `watchlist.view`."""
        with db_errors("cannot read a watchlist alert"), self.engine.begin() as c:
            alert = rows.alert(c, alert_id)
            self._scoped(caller, alert, alert_id)
            assert alert is not None
            found = rows.decisions(c, alert_id)
            self.audit.append_in(
                c,
                caller.name,
                "watchlist.view",
                target=f"watchlist_alert:{alert_id}",
                station_id=alert.station_id,
                address=caller.address,
                details={"person": alert.person_id, "state": alert.state},
            )
        enrolled = rows.template_thumbnail(self.engine, alert.person_id)
        return AlertView(
            alert, found, self._decrypt(alert.probe_thumbnail_enc), self._decrypt(enrolled)
        )

    def decide(self, caller: Caller, alert_id: str, decision: DecisionKind) -> AlertView:
        """Record the caller's decision; the alert is confirmed once two different officers
        have confirmed it, rejected as soon as one rejects it."""
        if decision not in ("confirm", "reject"):
            raise Conflict(f"unknown decision {decision!r}")
        now = utcnow()
        with db_errors("cannot record a watchlist decision"), self.engine.begin() as c:
            # The lock first: everything read below stays as read until the commit.
            claimed = rows.claim_pending(c, alert_id)
            alert = rows.alert(c, alert_id)
            self._scoped(caller, alert, alert_id)
            assert alert is not None
            if not claimed or alert.state != "pending":
                raise Conflict(f"watchlist alert {alert_id} is {alert.state} already")
            before = rows.decisions(c, alert_id)
            if any(d.officer == caller.name for d in before):
                raise Conflict(
                    f"{caller.name} has decided watchlist alert {alert_id} already; "
                    "a second officer must decide"
                )
            try:
                rows.add_decision(c, rows.Decision(alert_id, caller.name, decision, now))
            except IntegrityError:
                raise Conflict(
                    f"{caller.name} has decided watchlist alert {alert_id} already; "
                    "a second officer must decide"
                ) from None
            confirmed_by = sorted(
                {d.officer for d in before if d.decision == "confirm"}
                | ({caller.name} if decision == "confirm" else set())
            )
            state = "pending"
            if decision == "reject":
                state = "rejected"
            elif len(confirmed_by) >= CONFIRMATIONS_NEEDED:
                state = "confirmed"
            if state != "pending" and not rows.set_alert_state(
                c, alert_id, state, now, drop_probe=state == "rejected"
            ):
                raise Conflict(f"watchlist alert {alert_id} was decided meanwhile")
            self.audit.append_in(
                c,
                caller.name,
                "watchlist.decision",
                target=f"watchlist_alert:{alert_id}",
                station_id=alert.station_id,
                address=caller.address,
                details={
                    "decision": decision,
                    "person": alert.person_id,
                    "confirmed_by": confirmed_by,
                    "state": state,
                },
                at=now,
            )
            after = rows.decisions(c, alert_id)
            alert = rows.alert(c, alert_id)
            assert alert is not None
        return AlertView(alert, after)
