"""Incidents for a caller: list what they may see, view one, act on one, read its evidence.

    service = IncidentService(store, audit, EvidenceWriter(cfg.evidence.dir, key_env=...))
    rows = service.list_visible(caller, states=[IncidentState.NEW])
    detail = service.view(caller, incident_id)
    outcome = service.act(caller, incident_id, "acknowledge", note="on my way")

Every method checks the caller's station scope (another station's incident is `NotFound`,
exactly as one that does not exist) and writes the audit entry the access needs:

* `act` writes the action and its audit entry in **one transaction**: if the audit entry
  cannot be written, the action does not happen. A refused action is audited on its own.
* `view` and `evidence` append one entry per access (evidence: with the file's hash, and
  for the original the reason given).
* `list_visible` is audited **per caller and filter at most once per `list_audit_every_s`**
  (default 5 minutes), with the number of refreshes since the last entry: a list shows no
  evidence, and a dashboard that refreshes on every event would otherwise make every
  officer's page wait on the one audit head row (benchmarks/list_refresh.py measures it).
  `list_audit_every_s=0` audits every list.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from raksha.audit.log import AuditLog
from raksha.auth.access import Denied, Rule, check_station, visible_stations
from raksha.auth.users import User
from raksha.errors import message_of
from raksha.incidents.clip import ClipError, pixelated_clip
from raksha.incidents.evidence import (
    EvidenceIntegrityError,
    EvidenceKeyError,
    EvidenceMissing,
    EvidenceStore,
)
from raksha.incidents.evidence_view import blurred_view, job_picture
from raksha.incidents.lifecycle import (
    IllegalTransition,
    InvalidActor,
    InvalidReason,
    require_reason,
)
from raksha.incidents.model import (
    Action,
    ActionRecord,
    EvidenceKind,
    Incident,
    IncidentState,
)
from raksha.services.errors import BadRequest, Conflict, Gone, Invalid, NotFound, Unavailable
from raksha.store.errors import (
    ConcurrentUpdate,
    IncidentNotFound,
    UnitUnavailable,
    UnknownUnit,
)
from raksha.store.outbox import DeliveryStatus
from raksha.store.repository import IncidentStore

#: Default seconds between two audit entries of the same caller's same list.
LIST_AUDIT_EVERY_S = 300.0
#: Pixelated clip views kept in memory (a few hundred kB each).
CLIP_CACHE = 4


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks, as the services know them: a logged-in user and their address."""

    user: User
    address: str | None = None

    @property
    def name(self) -> str:
        return self.user.username


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: Incident
    actions: list[ActionRecord]
    deliveries: list[DeliveryStatus]


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    record: ActionRecord
    incident: Incident
    actions: list[ActionRecord]


@dataclass(frozen=True, slots=True)
class EvidenceImage:
    data: bytes
    #: "subject" (as stored: bystanders blurred), "blurred" (the subject too) or "original".
    view: str
    kind: EvidenceKind


class IncidentService:
    def __init__(
        self,
        store: IncidentStore,
        audit: AuditLog,
        evidence: EvidenceStore,
        *,
        list_audit_every_s: float = LIST_AUDIT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.evidence_store = evidence
        self.list_audit_every_s = list_audit_every_s
        self._clock = clock
        #: Called after an action commits (the live-event hub's poke).
        self.on_change = on_change
        self._lock = threading.Lock()
        self._clip_lock = threading.Lock()
        self._clip_cache: OrderedDict[str, bytes] = OrderedDict()
        #: (caller, filter) -> (time of its last audit entry, lists since then).
        self._listed: dict[tuple[str, str], tuple[float, int]] = {}

    # ---- reading ----------------------------------------------------------------------------

    def _scoped(self, caller: Caller, incident_id: str, rule: Rule) -> Incident:
        incident = self.store.get_incident(incident_id)
        try:
            check_station(caller.user, rule, incident.station_id if incident is not None else None)
        except Denied as exc:
            if exc.status == 404:  # another station's: the same reply as a missing one
                # The caller learns nothing; the log records the attempt.
                self.audit.append(
                    caller.name,
                    "incident.denied",
                    target=f"incident:{incident_id}",
                    station_id=caller.user.station_id,
                    address=caller.address,
                    details={
                        "rule": rule.value,
                        "why": "no such incident" if incident is None else "another station",
                        "incident_station": None if incident is None else incident.station_id,
                    },
                )
                raise NotFound("not found") from None
            raise
        if incident is None:
            raise NotFound("not found")
        return incident

    def list_visible(
        self,
        caller: Caller,
        *,
        states: Sequence[IncidentState] | None = None,
        station: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
        rule: Rule = Rule.INCIDENTS_READ,
        audit_action: str = "incident.list",
        camera: str | None = None,
        min_score: float | None = None,
    ) -> list[Incident]:
        """Incidents in the caller's scope, newest first (`Denied` outside it); `camera` and
        `min_score` (the peak distress score, 0 to 1) narrow them further."""
        scope = visible_stations(caller.user, rule)
        if station is not None:
            check_station(caller.user, rule, station)
        for t in (since, until):
            if t is not None and t.tzinfo is None:
                raise Invalid("since/until need a time zone (e.g. 2026-11-22T08:00:00Z)")
        if min_score is not None and not 0.0 <= min_score <= 1.0:
            raise Invalid("min_score is a peak score from 0 to 1")
        stations = [station] if station is not None else (None if scope is None else sorted(scope))
        rows = self.store.list_incidents(
            station_ids=stations,
            states=states,
            since=since,
            until=until,
            limit=limit,
            camera_id=camera,
            min_peak_distress=min_score,
        )
        details: dict[str, Any] = {
            "count": len(rows),
            "states": [s.value for s in states] if states else None,
            "station": station,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        }
        if camera is not None:
            details["camera"] = camera
        if min_score is not None:
            details["min_score"] = min_score
        if audit_action != "incident.list":  # an export is audited every time
            self.audit.append(
                caller.name,
                audit_action,
                station_id=caller.user.station_id,
                address=caller.address,
                details=details,
            )
            return rows
        refreshes = self._due_list_audit(caller, details)
        if refreshes is not None:
            self.audit.append(
                caller.name,
                "incident.list",
                station_id=caller.user.station_id,
                address=caller.address,
                details={**details, "refreshes_since_last_entry": refreshes},
            )
        return rows

    def _due_list_audit(self, caller: Caller, details: dict[str, Any]) -> int | None:
        """None when this list is covered by a recent entry; else the refreshes it covers."""
        # A list of another period is another entry: only refreshes of the same view coalesce.
        key = (
            caller.name,
            f"{details['states']}|{details['station']}|{details['since']}|{details['until']}"
            f"|{details.get('camera')}|{details.get('min_score')}",
        )
        now = self._clock()
        with self._lock:
            last, skipped = self._listed.get(key, (float("-inf"), 0))
            if now - last < self.list_audit_every_s:
                self._listed[key] = (last, skipped + 1)
                return None
            self._listed[key] = (now, 0)
            return skipped

    def view(self, caller: Caller, incident_id: str) -> IncidentDetail:
        """One incident with its history and delivery state; audited as a view."""
        incident = self._scoped(caller, incident_id, Rule.INCIDENTS_READ)
        detail = IncidentDetail(
            incident, self.store.actions(incident_id), self.store.deliveries(incident_id)
        )
        self.audit.append(
            caller.name,
            "incident.view",
            target=f"incident:{incident_id}",
            station_id=incident.station_id,
            address=caller.address,
        )
        return detail

    # ---- acting -----------------------------------------------------------------------------

    def act(
        self,
        caller: Caller,
        incident_id: str,
        action: Action | str,
        *,
        note: str | None = None,
        unit_id: str | None = None,
        expected_version: int | None = None,
        reason: str | None = None,
    ) -> ActionOutcome:
        """Apply a lifecycle action as the caller; it commits with its audit entry or not
        at all. Refusals (illegal in this state, changed meanwhile) are audited and raised
        as `Conflict`, `BadRequest` or `NotFound`. A dismissal needs its `reason` (one of
        `DismissReason`); no other action takes one (`BadRequest`)."""
        incident = self._scoped(caller, incident_id, Rule.INCIDENTS_ACT)
        target = f"incident:{incident_id}"

        def audit_it(conn: Connection, rec: ActionRecord) -> None:
            self.audit.append_in(
                conn,
                caller.name,
                "incident.action",
                target=target,
                station_id=incident.station_id,
                address=caller.address,
                details={
                    "action": rec.action.value,
                    "from": rec.from_state.value,
                    "to": rec.to_state.value,
                    "note": rec.note,
                    "unit_id": rec.unit_id,
                    **({"reason": rec.reason.value} if rec.reason is not None else {}),
                },
            )

        job_extra = None
        if str(action) == Action.DISPATCH.value:
            job_extra = {"picture_jpeg_b64": self._job_picture(incident)}
        try:
            require_reason(action, reason)
            rec = self.store.apply_action(
                incident_id,
                action,
                caller.name,
                note,
                unit_id,
                expected_version=expected_version,
                with_it=audit_it,
                job_extra=job_extra,
                reason=reason,
            )
        except (
            IllegalTransition,
            ConcurrentUpdate,
            InvalidActor,
            InvalidReason,
            IncidentNotFound,
            UnknownUnit,
            UnitUnavailable,
        ) as exc:
            self.audit.append(
                caller.name,
                "incident.action_refused",
                target=target,
                station_id=incident.station_id,
                address=caller.address,
                details={"action": str(action), "error": str(exc)},
            )
            if isinstance(exc, IncidentNotFound):
                raise NotFound(message_of(exc)) from None
            if isinstance(exc, InvalidActor | InvalidReason | UnknownUnit):
                raise BadRequest(message_of(exc)) from None
            raise Conflict(message_of(exc)) from None
        if self.on_change is not None:
            self.on_change()
        fresh = self.store.get_incident(incident_id)
        if fresh is None:  # pragma: no cover - incidents are never deleted while acted on
            raise NotFound("not found")
        return ActionOutcome(rec, fresh, self.store.actions(incident_id))

    # ---- evidence ---------------------------------------------------------------------------

    def evidence(
        self,
        caller: Caller,
        incident_id: str,
        n: int,
        *,
        unblur: bool,
        reason: str | None,
        masked: bool = False,
    ) -> EvidenceImage:
        """Evidence file `n` (1-based) after its integrity check, audited every time.

        The officers of the incident's station (and the control room) see what was stored:
        the subject's face and the frame with every other face already blurred at capture
        (bystanders are never stored unblurred), without stating a reason: they decide what
        to do about this person. `masked` gives the view with the subject pixelated too (a
        screen others can see). `unblur` (a supervisor or the control room, with a reason)
        is kept for the record: it returns the same stored file, audited with the reason.
        Every outcome is audited (a refused unblur, a missing or tampered file, a view)."""
        incident = self._scoped(caller, incident_id, Rule.EVIDENCE_VIEW)
        if n > len(incident.evidence):
            raise NotFound("no such evidence")
        ev = incident.evidence[n - 1]
        target = f"incident:{incident_id}/evidence:{n}"

        def audit(action: str, details: dict[str, Any] | None = None) -> None:
            self.audit.append(
                caller.name,
                action,
                target=target,
                station_id=incident.station_id,
                address=caller.address,
                details=details,
            )

        if unblur:
            try:
                check_station(caller.user, Rule.EVIDENCE_UNBLUR, incident.station_id)
            except Exception:
                audit("evidence.unblur_refused", {"reason": reason})
                raise
            if reason is None or len(reason.strip()) < 3:
                raise Invalid("unblurring needs a reason (at least 3 characters)")
        view = "original" if unblur else ("blurred" if masked else "subject")
        if ev.kind is EvidenceKind.CLIP and not unblur:
            view = "blurred"  # a clip plays pixelated unless unmasked with a reason
        try:
            data = self.evidence_store.read(ev)
            if view == "blurred" and ev.kind is EvidenceKind.CLIP:
                data = self._pixelated(ev.sha256, data)
            elif view == "blurred":
                data = blurred_view(data, ev.kind, self._face_crop(incident, ev.kind))
        except EvidenceMissing as exc:
            audit("evidence.missing")
            raise Gone(message_of(exc)) from None
        except EvidenceIntegrityError as exc:
            audit("evidence.integrity_failure", {"error": str(exc)})
            raise Conflict(message_of(exc)) from None
        except EvidenceKeyError as exc:
            raise Unavailable(message_of(exc)) from None
        except ClipError as exc:  # the hash matched: a clip we stored but cannot read back
            audit("evidence.integrity_failure", {"error": str(exc)})
            raise Conflict(str(exc)) from None
        details: dict[str, Any] = {"kind": ev.kind.value, "sha256": ev.sha256, "view": view}
        if unblur:
            details["reason"] = (reason or "").strip()
        audit("evidence.unblur" if unblur else "evidence.view", details)
        return EvidenceImage(data, view, ev.kind)

    def _pixelated(self, sha256: str, data: bytes) -> bytes:
        """A clip's pixelated view, kept for the last few clips played: a browser asks for a
        video in several ranges, and each would otherwise decode and encode it again."""
        cache = self._clip_cache
        with self._clip_lock:
            if sha256 in cache:
                cache.move_to_end(sha256)
                return cache[sha256]
        out = pixelated_clip(data)
        with self._clip_lock:
            cache[sha256] = out
            while len(cache) > CLIP_CACHE:
                cache.popitem(last=False)
        return out

    def _job_picture(self, incident: Incident) -> str | None:
        """The pixelated scene for the unit's job card (None: no frame, or unreadable)."""
        frame = next((f for f in incident.evidence if f.kind is EvidenceKind.FRAME_BLURRED), None)
        if frame is None:
            return None
        try:
            return base64.b64encode(job_picture(self.evidence_store.read(frame))).decode("ascii")
        except (EvidenceMissing, EvidenceIntegrityError, EvidenceKeyError):
            return None

    def _face_crop(self, incident: Incident, kind: EvidenceKind) -> bytes | None:
        """The subject's face crop, to find the subject in the blurred frame view."""
        if kind is not EvidenceKind.FRAME_BLURRED:
            return None
        face = next((f for f in incident.evidence if f.kind is EvidenceKind.FACE), None)
        if face is None:
            return None
        try:
            return self.evidence_store.read(face)
        except (EvidenceMissing, EvidenceIntegrityError, EvidenceKeyError):
            return None
