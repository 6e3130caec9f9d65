"""Legal holds: a supervisor or the control room keeps an incident's evidence for a case.

    holds = HoldService(store, audit)
    hold = holds.place(caller, incident_id, case_number="FIR 112/2026", reason="court order")
    holds.lift(caller, incident_id, hold.id, reason="case closed")

A held incident's evidence is never purged (`raksha.services.retention`), whatever its age.
Placing needs a case number and a reason, lifting a reason; each commits with its audit
entry (`evidence.hold_placed`, `evidence.hold_lifted`: who, the case and the reason) or not
at all. Callers are checked like every incident action (`Rule.EVIDENCE_HOLD`: supervisors of
the incident's station and the control room; another station's incident is NotFound). The
`*_local` methods are the command line's: whoever runs it holds the database already, and
names themselves (`--by`).

A hold is recorded even when the evidence is gone already (a court may want the record of
it kept): `evidence_left` says how many of the incident's evidence files are still on disk,
and when the retention purge deleted the others (its `evidence.purged` entry), for the API's
answer and the incident page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from raksha.audit.log import AuditLog
from raksha.auth.access import Rule
from raksha.errors import N_, Message
from raksha.incidents.model import Incident, utcnow
from raksha.services.errors import Conflict, Invalid, NotFound
from raksha.services.incidents import Caller
from raksha.services.scope import scoped_incident
from raksha.store import holds as rows
from raksha.store.errors import IncidentNotFound
from raksha.store.holds import HoldAlreadyLifted, HoldNotFound, LegalHold
from raksha.store.repository import IncidentStore

CASE_MAX = 128
REASON_MIN = 3
REASON_MAX = 2000


@dataclass(frozen=True, slots=True)
class EvidenceLeft:
    """How much of an incident's evidence a hold can still keep."""

    #: Evidence files the incident recorded, and how many of them are still on disk.
    recorded: int
    present: int
    #: When the retention purge deleted evidence of it (its latest `evidence.purged`).
    purged_at: datetime | None = None

    @property
    def message(self) -> Message:
        if self.recorded == 0:
            return Message(N_("The incident has no evidence files; the hold keeps its record."))
        if self.present == 0 and self.purged_at is not None:
            return Message(
                N_(
                    "0 files: evidence already deleted on %(date)s by retention. The hold "
                    "keeps the record and its hashes."
                ),
                date=f"{self.purged_at:%Y-%m-%d}",
            )
        if self.present == 0:
            return Message(
                N_(
                    "0 files: the evidence is no longer on disk. The hold keeps the record "
                    "and its hashes."
                )
            )
        return Message(
            N_("Evidence files still on disk: %(present)d of %(recorded)d."),
            present=self.present,
            recorded=self.recorded,
        )


def _on_disk(path: str) -> bool:
    try:
        return Path(path).is_file()
    except OSError:
        return False


def _case_number(value: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise Invalid(Message(N_("A legal hold needs a case number.")))
    if len(text) > CASE_MAX:
        raise Invalid(
            Message(N_("The case number is longer than %(most)d characters."), most=CASE_MAX)
        )
    return text


def _reason(value: str) -> str:
    text = value.strip()
    if len(text) < REASON_MIN or len(text) > REASON_MAX:
        raise Invalid(
            Message(
                N_("Give a reason of %(least)d to %(most)d characters."),
                least=REASON_MIN,
                most=REASON_MAX,
            )
        )
    return text


class HoldService:
    def __init__(
        self,
        store: IncidentStore,
        audit: AuditLog,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.audit = audit
        self._clock = clock

    # ---- for a logged-in caller -------------------------------------------------------------

    def _scoped(self, caller: Caller, incident_id: str) -> Incident:
        return scoped_incident(self.store, self.audit, caller, incident_id, Rule.EVIDENCE_HOLD)

    def evidence_left(self, caller: Caller, incident_id: str) -> EvidenceLeft:
        """How many of the incident's evidence files are still on disk (what a hold keeps)."""
        return self._left(self._scoped(caller, incident_id))

    def of_incident(self, caller: Caller, incident_id: str) -> list[LegalHold]:
        """The incident's holds, in force and lifted, oldest first."""
        self._scoped(caller, incident_id)
        return rows.of_incident(self.store.engine, incident_id)

    def place(
        self, caller: Caller, incident_id: str, *, case_number: str, reason: str
    ) -> LegalHold:
        incident = self._scoped(caller, incident_id)
        return self._place(
            incident, caller.name, case_number, reason, address=caller.address, via=None
        )

    def lift(self, caller: Caller, incident_id: str, hold_id: int, *, reason: str) -> LegalHold:
        incident = self._scoped(caller, incident_id)
        return self._lift(incident, caller.name, hold_id, reason, address=caller.address, via=None)

    # ---- for the command line ---------------------------------------------------------------

    def _incident(self, incident_id: str) -> Incident:
        incident = self.store.get_incident(incident_id)
        if incident is None:
            raise NotFound(Message(N_("No incident %(incident)s."), incident=incident_id))
        return incident

    def place_local(
        self, actor: str, incident_id: str, *, case_number: str, reason: str, via: str
    ) -> LegalHold:
        return self._place(
            self._incident(incident_id), actor, case_number, reason, address=None, via=via
        )

    def lift_local(
        self,
        actor: str,
        incident_id: str,
        *,
        reason: str,
        via: str,
        case_number: str | None = None,
    ) -> list[LegalHold]:
        """Lift the incident's holds in force (only those of `case_number` when given)."""
        incident = self._incident(incident_id)
        text = _reason(reason)
        wanted = None if case_number is None else _case_number(case_number)
        active = [
            h
            for h in rows.of_incident(self.store.engine, incident_id, active_only=True)
            if wanted is None or h.case_number == wanted
        ]
        if not active:
            raise Conflict(
                Message(
                    N_("Incident %(incident)s has no legal hold in force."), incident=incident_id
                )
            )
        return [self._lift(incident, actor, h.id, text, address=None, via=via) for h in active]

    def evidence_left_local(self, incident_id: str) -> EvidenceLeft:
        return self._left(self._incident(incident_id))

    def in_force(self) -> list[LegalHold]:
        """Every hold in force (the command line's list)."""
        return rows.in_force(self.store.engine)

    # ---- both -------------------------------------------------------------------------------

    def _left(self, incident: Incident) -> EvidenceLeft:
        present = sum(_on_disk(ev.path) for ev in incident.evidence)
        purged = self.audit.entries(
            action="evidence.purged", target=incident.id, newest_first=True, limit=1
        )
        return EvidenceLeft(len(incident.evidence), present, purged[0].at if purged else None)

    def _auditor(
        self, incident: Incident, actor: str, action: str, address: str | None, via: str | None
    ) -> Callable[[Connection, LegalHold], None]:
        def audit_it(conn: Connection, hold: LegalHold) -> None:
            details: dict[str, Any] = {
                "hold_id": hold.id,
                "case_number": hold.case_number,
                "reason": hold.lift_reason if action == "evidence.hold_lifted" else hold.reason,
            }
            if action == "evidence.hold_lifted":
                details["placed_by"] = hold.placed_by
            if via is not None:
                details["via"] = via
            self.audit.append_in(
                conn,
                actor,
                action,
                target=f"incident:{incident.id}",
                station_id=incident.station_id,
                address=address,
                details=details,
            )

        return audit_it

    def _place(
        self,
        incident: Incident,
        actor: str,
        case_number: str,
        reason: str,
        *,
        address: str | None,
        via: str | None,
    ) -> LegalHold:
        case, text = _case_number(case_number), _reason(reason)
        current = rows.of_incident(self.store.engine, incident.id, active_only=True)
        if any(h.case_number == case for h in current):
            raise Conflict(
                Message(
                    N_("Incident %(incident)s is already held for case %(case)s."),
                    incident=incident.id[:8],
                    case=case,
                )
            )
        try:
            return rows.place(
                self.store.engine,
                incident.id,
                case_number=case,
                reason=text,
                by=actor,
                at=self._clock(),
                with_it=self._auditor(incident, actor, "evidence.hold_placed", address, via),
            )
        except IncidentNotFound:
            raise NotFound("not found") from None

    def _lift(
        self,
        incident: Incident,
        actor: str,
        hold_id: int,
        reason: str,
        *,
        address: str | None,
        via: str | None,
    ) -> LegalHold:
        text = _reason(reason)
        try:
            return rows.lift(
                self.store.engine,
                incident.id,
                hold_id,
                by=actor,
                reason=text,
                at=self._clock(),
                with_it=self._auditor(incident, actor, "evidence.hold_lifted", address, via),
            )
        except (IncidentNotFound, HoldNotFound):
            raise NotFound(Message(N_("No such legal hold."))) from None
        except HoldAlreadyLifted:
            raise Conflict(Message(N_("This legal hold was lifted already."))) from None
