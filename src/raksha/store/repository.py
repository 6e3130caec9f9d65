"""IncidentStore: incidents, their evidence and history, camera status, and the alert outbox.

    store = IncidentStore.open("sqlite:///raksha.db")     # make_engine + migrate
    incident_id = store.create_incident(new, evidence, alert_payload, ["webhook", "mqtt"])
    store.apply_action(incident_id, "acknowledge", actor="officer-12")

Every write is one transaction. `create_incident` persists the incident, its evidence rows,
its alert and one delivery row per channel together, so an alert never exists without its
incident and an incident never exists without its alert. `apply_action` reads the incident
(`FOR UPDATE` on PostgreSQL) and writes the new state only if the row's `version` is still the
one it read, so two officers acting at once are serialised: the second sees the first's result
and is refused if its action no longer applies.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import URL, Connection, Engine, Row, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from raksha.alerts.outbox import PendingDelivery
from raksha.domain.routing import Route
from raksha.domain.units import UnitState
from raksha.errors import N_, Message, RakshaError
from raksha.incidents.events import Event
from raksha.incidents.lifecycle import (
    IllegalTransition,
    check_actor,
    dismiss_reason,
    record_action,
)
from raksha.incidents.merge import MergeRule, OpenIncident, Sighting, pick
from raksha.incidents.model import (
    Action,
    ActionRecord,
    CameraHealth,
    CameraStatus,
    DismissReason,
    EvidenceFile,
    EvidenceKind,
    Incident,
    IncidentState,
    NewIncident,
    Origin,
    Priority,
    top_expression,
    utcnow,
)
from raksha.redact import MASK, mask_url, redact
from raksha.store import sos as sos_rows
from raksha.store import units as unit_rows
from raksha.store import workflow
from raksha.store._db import clean_distribution, clean_json, db_errors
from raksha.store.engine import is_postgres, make_engine
from raksha.store.errors import ConcurrentUpdate, IncidentNotFound, StoreError, UnitUnavailable
from raksha.store.migrate import migrate
from raksha.store.outbox import DeliveryStatus, SqlOutbox
from raksha.store.tables import (
    cameras,
    incident_actions,
    incident_evidence,
    incident_stations,
    incidents,
)
from raksha.store.workflow import STORE_CHANNEL, Workflow

T = incidents
log = logging.getLogger("raksha.store")
__all__ = ["STORE_CHANNEL", "IncidentStore", "OpenResult", "Workflow"]
#: How often apply_action re-reads after losing a race before giving up.
_RETRIES = 5


@dataclass(frozen=True, slots=True)
class _Current:
    """The fields of an incident a write depends on, as read inside its transaction."""

    state: IncidentState
    version: int
    peak_distress: float
    peak_absolute: float | None
    peak_relative: float | None
    event_end_s: float | None
    updated_at: datetime
    last_seen_at: datetime
    deadline_at: datetime | None = None
    deadline_kind: str | None = None


class NotDue(Exception):
    """A deadline another process fired (or an action met) since it was found due."""


@dataclass(frozen=True, slots=True)
class OpenResult:
    """What `open_or_extend` did: the incident the event went into, whether that was a
    merge into an open incident, and whether the given evidence was attached to it."""

    incident_id: str
    merged: bool
    evidence_used: bool


class _Retry(Exception):
    """Internal: the row changed between read and write; roll back and read again."""


class IncidentStore:
    def __init__(
        self, engine: Engine, *, claim_lease_s: float = 60.0, max_attempts: int | None = None
    ) -> None:
        self.engine = engine
        self.outbox = SqlOutbox(engine, claim_lease_s=claim_lease_s, max_attempts=max_attempts)
        #: Deadlines, channels and unit rules for what follows an action (`configure`).
        self.workflow = Workflow()

    def configure(self, wf: Workflow) -> IncidentStore:
        """Use `wf` for every action from now on (the composition roots call it once)."""
        self.workflow = wf
        return self

    @classmethod
    def open(
        cls, url: str | URL, *, claim_lease_s: float = 60.0, max_attempts: int | None = None
    ) -> IncidentStore:
        """Connect to `url`, bring its schema up to date and return a store on it."""
        engine = migrate(make_engine(url))
        return cls(engine, claim_lease_s=claim_lease_s, max_attempts=max_attempts)

    def close(self) -> None:
        self.engine.dispose()

    def evidence_paths(self) -> set[str]:
        """Every evidence file path an incident row refers to (for the orphan sweep)."""
        with db_errors("cannot read evidence rows"), self.engine.connect() as conn:
            return {str(p) for p in conn.execute(select(incident_evidence.c.path)).scalars()}

    def ping(self) -> bool:
        """Whether the database answers (for health checks); never raises."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    # ---- incidents --------------------------------------------------------------------------

    def create_incident(
        self,
        new_incident: NewIncident,
        evidence: Sequence[EvidenceFile],
        alert_payload: Mapping[str, Any],
        channels: Sequence[str],
        *,
        now: datetime | None = None,
    ) -> str:
        """Store an incident, its evidence, its alert and its deliveries in one transaction.

        The alert's payload is `alert_payload` plus `alert_id`, `incident_id` and `station_id`.
        `channels` lists the delivery channels ("webhook", "mqtt", ...); "store" is skipped.
        Returns the incident id.
        """
        at = now or utcnow()
        with db_errors(f"cannot store incident {new_incident.id}"), self.engine.begin() as conn:
            self._insert_incident(conn, new_incident, evidence, alert_payload, channels, at)
        return new_incident.id

    def _insert_incident(
        self,
        conn: Connection,
        inc: NewIncident,
        evidence: Sequence[EvidenceFile],
        alert_payload: Mapping[str, Any],
        channels: Sequence[str],
        at: datetime,
        face: tuple[float, float, float] | None = None,
    ) -> None:
        """The incident row, its evidence, its alert and one delivery row per channel."""
        expression = clean_distribution(inc.expression_at_peak, "expression_at_peak")
        wf = self.workflow
        priority = inc.priority
        if priority is Priority.NORMAL and workflow.near_recent_sos(conn, inc.lat, inc.lon, at, wf):
            priority = Priority.HIGH
        deadline = wf.policy.first(priority, inc.opened_at)
        cx, cy, fw = face if face is not None else (None, None, None)
        row = {
            "id": inc.id,
            "camera_id": inc.camera_id,
            "hotspot_id": inc.hotspot_id,
            "station_id": inc.station_id,
            "state": IncidentState.NEW.value,
            "opened_at": inc.opened_at,
            "closed_at": None,
            "updated_at": at,
            "last_seen_at": inc.opened_at,
            "track_id": inc.track_id,
            "source_id": inc.source_id,
            "event_start_s": inc.event_start_s,
            "event_end_s": inc.event_end_s,
            "peak_distress": float(inc.peak_distress),
            "peak_absolute": _part(inc.peak_absolute, "peak_absolute"),
            "peak_relative": _part(inc.peak_relative, "peak_relative"),
            "baseline_at_peak": _part(inc.baseline_at_peak, "baseline_at_peak"),
            "expression_at_peak": expression,
            "top_expression": top_expression(expression),
            "model_name": inc.model_name,
            "model_sha256": inc.model_sha256,
            "thresholds": clean_json(inc.thresholds, "thresholds"),
            "route": clean_json(inc.route.to_json(), "route"),
            "person_key": inc.person_key,
            "version": 1,
            "face_cx": cx,
            "face_cy": cy,
            "face_w": fw,
            "origin": inc.origin.value,
            "priority": priority.value,
            "lat": inc.lat,
            "lon": inc.lon,
            "place": inc.place or None,
            "deadline_at": deadline.at,
            "deadline_kind": deadline.kind.value,
            "escalation_level": 0,
            "unit_id": None,
            "event_seq": 1,
        }
        conn.execute(insert(T), row)
        self._insert_evidence(conn, inc.id, evidence, first_n=1, at=at)
        payload = dict(alert_payload)
        if "event" in payload:
            payload["priority"] = priority.value
        workflow.enqueue(
            conn,
            incident_id=inc.id,
            station_id=inc.station_id,
            payload=payload,
            event=Event.NEW,
            seq=1,
            channels=channels,
            at=at,
        )

    @staticmethod
    def _insert_evidence(
        conn: Connection,
        incident_id: str,
        evidence: Sequence[EvidenceFile],
        *,
        first_n: int,
        at: datetime,
    ) -> None:
        if not evidence:
            return
        conn.execute(
            insert(incident_evidence),
            [
                {
                    "incident_id": incident_id,
                    "n": first_n + i,
                    "kind": str(ev.kind),
                    "path": ev.path,
                    "sha256": ev.sha256,
                    "bytes": ev.bytes,
                    "created_at": at,
                    "content_sha256": ev.content_sha256,
                }
                for i, ev in enumerate(evidence)
            ],
        )

    def open_or_extend(
        self,
        new_incident: NewIncident,
        evidence: Sequence[EvidenceFile],
        alert_payload: Mapping[str, Any],
        channels: Sequence[str],
        *,
        rule: MergeRule,
        face: tuple[float, float, float] | None = None,
        now: datetime | None = None,
    ) -> OpenResult:
        """Store a distress event: merged into the open incident it continues
        (`raksha.incidents.merge`), or as a new incident with its alert and deliveries.

        One transaction, serialised per camera (a PostgreSQL advisory lock; SQLite's write
        lock), so two processes that see the same person at once make one incident. `face`
        is (centre x, centre y, width) of the face, px of the camera's frame. On a merge the
        incident keeps the higher peak, its last sighting moves on, no new alert is made,
        and `evidence` is attached only when the new peak is higher (`OpenResult.evidence_used`
        says whether it was; the caller removes files that were not).
        """
        inc = new_incident
        at = now or utcnow()
        seen = Sighting(
            inc.camera_id,
            inc.person_key,
            None if face is None else (face[0], face[1]),
            None if face is None else face[2],
            inc.opened_at,
        )
        for _ in range(_RETRIES):
            try:
                with (
                    db_errors(f"cannot store incident {inc.id}"),
                    self.engine.begin() as conn,
                ):
                    self._lock_camera(conn, inc.camera_id)
                    stored = conn.execute(select(T.c.id).where(T.c.id == inc.id)).first()
                    if stored is not None:  # a replay (the spool): already here, once
                        return OpenResult(inc.id, merged=False, evidence_used=True)
                    target = pick(self._open_at(conn, inc.camera_id, seen.at, rule), seen, rule)
                    if target is None:
                        self._insert_incident(
                            conn, inc, evidence, alert_payload, channels, at, face
                        )
                        return OpenResult(inc.id, merged=False, evidence_used=True)
                    if evidence and self._has_evidence(conn, target, evidence):
                        # A replay of a merge already stored (the spool after a crash).
                        return OpenResult(target, merged=True, evidence_used=True)
                    used = self._extend_in(
                        conn,
                        target,
                        peak_distress=inc.peak_distress,
                        expression_at_peak=inc.expression_at_peak,
                        when=seen.at,
                        event_end_s=None,
                        evidence=evidence,
                        evidence_if_higher=True,
                        peak_absolute=inc.peak_absolute,
                        peak_relative=inc.peak_relative,
                        baseline_at_peak=inc.baseline_at_peak,
                        face=face,
                        person_key=inc.person_key,
                    )
                    return OpenResult(target, merged=True, evidence_used=used)
            except _Retry:
                continue
        raise ConcurrentUpdate(f"incident for camera {inc.camera_id} kept changing; try again")

    @staticmethod
    def _has_evidence(conn: Connection, incident_id: str, evidence: Sequence[EvidenceFile]) -> bool:
        paths = [ev.path for ev in evidence]
        found = conn.execute(
            select(incident_evidence.c.path).where(
                incident_evidence.c.incident_id == incident_id,
                incident_evidence.c.path.in_(paths),
            )
        ).first()
        return found is not None

    def _lock_camera(self, conn: Connection, camera_id: str) -> None:
        """Serialise merge decisions for one camera until the transaction ends."""
        if is_postgres(self.engine):
            key = int.from_bytes(
                hashlib.sha256(camera_id.encode()).digest()[:8], "big", signed=True
            )
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        else:  # SQLite: take the database's write lock now, before reading
            conn.execute(update(T).where(T.c.id.is_(None)).values(version=T.c.version))

    @staticmethod
    def _open_at(
        conn: Connection, camera_id: str, at: datetime, rule: MergeRule
    ) -> list[OpenIncident]:
        closed = [s.value for s in IncidentState if s.is_terminal]
        rows = conn.execute(
            select(
                T.c.id,
                T.c.state,
                T.c.person_key,
                T.c.last_seen_at,
                T.c.face_cx,
                T.c.face_cy,
                T.c.face_w,
            ).where(
                T.c.camera_id == camera_id,
                T.c.state.not_in(closed),
                T.c.last_seen_at >= at - timedelta(seconds=rule.window_s),
            )
        ).all()
        return [
            OpenIncident(
                id=str(r.id),
                state=IncidentState(r.state),
                last_seen=Sighting(
                    camera_id,
                    r.person_key,
                    None if r.face_cx is None else (float(r.face_cx), float(r.face_cy)),
                    None if r.face_w is None else float(r.face_w),
                    r.last_seen_at,
                ),
            )
            for r in rows
        ]

    def extend_incident(
        self,
        incident_id: str,
        *,
        peak_distress: float,
        expression_at_peak: Mapping[str, float],
        seen_at: datetime | None = None,
        event_end_s: float | None = None,
        evidence: Sequence[EvidenceFile] = (),
        peak_absolute: float | None = None,
        peak_relative: float | None = None,
        baseline_at_peak: float | None = None,
    ) -> Incident:
        """Merge a re-detection into an incident: a higher peak replaces the old one (with its
        expression and the baseline at it), the highest absolute and relative parts are kept,
        the end and last-seen times move forward, extra evidence is appended."""
        when = seen_at or utcnow()
        for _ in range(_RETRIES):
            try:
                with (
                    db_errors(f"cannot update incident {incident_id}"),
                    self.engine.begin() as conn,
                ):
                    self._extend_in(
                        conn,
                        incident_id,
                        peak_distress=peak_distress,
                        expression_at_peak=expression_at_peak,
                        when=when,
                        event_end_s=event_end_s,
                        evidence=evidence,
                        evidence_if_higher=False,
                        peak_absolute=peak_absolute,
                        peak_relative=peak_relative,
                        baseline_at_peak=baseline_at_peak,
                    )
            except _Retry:
                continue
            found = self.get_incident(incident_id)
            assert found is not None
            return found
        raise ConcurrentUpdate(
            Message(N_("incident %(incident)s kept changing; try again"), incident=incident_id)
        )

    def _extend_in(
        self,
        conn: Connection,
        incident_id: str,
        *,
        peak_distress: float,
        expression_at_peak: Mapping[str, float],
        when: datetime,
        event_end_s: float | None,
        evidence: Sequence[EvidenceFile],
        evidence_if_higher: bool,
        peak_absolute: float | None,
        peak_relative: float | None,
        baseline_at_peak: float | None,
        face: tuple[float, float, float] | None = None,
        person_key: str | None = None,
    ) -> bool:
        """The update of `extend_incident` inside `conn`; returns whether `evidence` was
        attached (always, or with `evidence_if_higher` only for a higher peak)."""
        expression = clean_distribution(expression_at_peak, "expression_at_peak")
        parts = {
            "peak_absolute": _part(peak_absolute, "peak_absolute"),
            "peak_relative": _part(peak_relative, "peak_relative"),
        }
        baseline = _part(baseline_at_peak, "baseline_at_peak")
        cur = self._read_for_update(conn, incident_id)
        values: dict[str, Any] = {
            "version": cur.version + 1,
            "updated_at": max(cur.updated_at, when),
            "last_seen_at": max(cur.last_seen_at, when),
        }
        higher = peak_distress > cur.peak_distress
        if higher:
            values.update(
                peak_distress=float(peak_distress),
                expression_at_peak=expression,
                top_expression=top_expression(expression),
                baseline_at_peak=baseline,
            )
        for name, new in parts.items():
            old = getattr(cur, name)
            if new is not None and (old is None or new > old):
                values[name] = new
        if event_end_s is not None and (cur.event_end_s is None or event_end_s > cur.event_end_s):
            values["event_end_s"] = float(event_end_s)
        if face is not None and when >= cur.last_seen_at:
            values.update(face_cx=face[0], face_cy=face[1], face_w=face[2])
            if person_key is not None:
                values["person_key"] = person_key
        self._write_if_unchanged(conn, incident_id, cur.version, values)
        attach = bool(evidence) and (higher or not evidence_if_higher)
        if attach:
            last = conn.execute(
                select(func.max(incident_evidence.c.n)).where(
                    incident_evidence.c.incident_id == incident_id
                )
            ).scalar_one_or_none()
            self._insert_evidence(conn, incident_id, evidence, first_n=(last or 0) + 1, at=when)
        return attach

    def apply_action(
        self,
        incident_id: str,
        action: Action | str,
        actor: str,
        note: str | None = None,
        unit_id: str | None = None,
        *,
        expected_version: int | None = None,
        at: datetime | None = None,
        with_it: Callable[[Connection, ActionRecord], object] | None = None,
        only_if_due: datetime | None = None,
        job_extra: Mapping[str, Any] | None = None,
        reason: DismissReason | str | None = None,
    ) -> ActionRecord:
        """Apply a lifecycle action by `actor` and record it in the history.

        Raises IllegalTransition (nothing changes) when the incident's state does not allow
        it, IncidentNotFound, InvalidActor, and ConcurrentUpdate when `expected_version` is
        given and the incident has changed since the caller read it. `with_it(conn, record)`
        runs inside the same transaction after the action is written (the audit entry of the
        action): if it raises, the action is rolled back and the error propagates.

        What follows the action commits with it (`raksha.store.workflow.after_action`): a
        dispatch claims its unit (`UnknownUnit`, `UnitUnavailable` refuse it), closing frees
        it, the next deadline is set, and the state change (with a job card for a dispatched
        unit) goes into the outbox. `only_if_due` (the escalation timer) applies the action
        only while the incident's deadline is still at or before that time, else `NotDue`.
        `reason` is a dismissal's (`InvalidReason` for an unknown one or on another action);
        whether a dismissal must have one is the caller's rule (`require_reason`).
        """
        check_actor(action, actor)
        dismiss_reason(action, reason)
        for _ in range(_RETRIES):
            try:
                with (
                    db_errors(f"cannot update incident {incident_id}"),
                    self.engine.begin() as conn,
                ):
                    cur = self._read_for_update(conn, incident_id)
                    if only_if_due is not None and (
                        cur.deadline_at is None or cur.deadline_at > only_if_due
                    ):
                        raise NotDue(incident_id)
                    if expected_version is not None and cur.version != expected_version:
                        raise ConcurrentUpdate(
                            Message(
                                N_(
                                    "incident %(incident)s changed (version %(version)d, "
                                    "expected %(expected)d); reload and try again"
                                ),
                                incident=incident_id,
                                version=cur.version,
                                expected=expected_version,
                            )
                        )
                    rec = record_action(
                        cur.state,
                        action,
                        actor,
                        at=at or utcnow(),
                        note=note,
                        unit_id=unit_id,
                        incident_id=incident_id,
                        reason=reason,
                    )
                    values: dict[str, Any] = {
                        "state": rec.to_state.value,
                        "version": cur.version + 1,
                        "updated_at": rec.at,
                    }
                    if rec.to_state.is_terminal:
                        values["closed_at"] = rec.at
                    self._write_if_unchanged(conn, incident_id, cur.version, values)
                    conn.execute(
                        insert(incident_actions),
                        {
                            "incident_id": incident_id,
                            "action": rec.action.value,
                            "from_state": rec.from_state.value,
                            "to_state": rec.to_state.value,
                            "actor": rec.actor,
                            "note": rec.note,
                            "unit_id": rec.unit_id,
                            "at": rec.at,
                            "reason": None if rec.reason is None else rec.reason.value,
                        },
                    )
                    workflow.after_action(
                        conn,
                        self.workflow,
                        rec,
                        deadline_kind=cur.deadline_kind,
                        job_extra=job_extra,
                    )
                    if with_it is not None:
                        with_it(conn, rec)
                return rec
            except _Retry:
                if expected_version is not None:
                    raise ConcurrentUpdate(
                        Message(
                            N_("incident %(incident)s changed meanwhile; reload and try again"),
                            incident=incident_id,
                        )
                    ) from None
        raise ConcurrentUpdate(
            Message(N_("incident %(incident)s kept changing; try again"), incident=incident_id)
        )

    def _read_for_update(self, conn: Connection, incident_id: str) -> _Current:
        query = select(
            T.c.state,
            T.c.version,
            T.c.peak_distress,
            T.c.peak_absolute,
            T.c.peak_relative,
            T.c.event_end_s,
            T.c.updated_at,
            T.c.last_seen_at,
            T.c.deadline_at,
            T.c.deadline_kind,
        ).where(T.c.id == incident_id)
        if is_postgres(self.engine):
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise IncidentNotFound(
                Message(N_("no incident with id %(incident)s"), incident=incident_id)
            )
        return _Current(
            state=IncidentState(row.state),
            version=int(row.version),
            peak_distress=float(row.peak_distress),
            peak_absolute=row.peak_absolute,
            peak_relative=row.peak_relative,
            event_end_s=row.event_end_s,
            updated_at=row.updated_at,
            last_seen_at=row.last_seen_at,
            deadline_at=row.deadline_at,
            deadline_kind=row.deadline_kind,
        )

    @staticmethod
    def _write_if_unchanged(
        conn: Connection, incident_id: str, version: int, values: dict[str, Any]
    ) -> None:
        res = conn.execute(
            update(T).where(T.c.id == incident_id, T.c.version == version).values(**values)
        )
        if res.rowcount != 1:
            raise _Retry

    def get_incident(self, incident_id: str) -> Incident | None:
        with db_errors(f"cannot read incident {incident_id}"), self.engine.connect() as conn:
            row = conn.execute(select(T).where(T.c.id == incident_id)).first()
            if row is None:
                return None
            evidence = self._evidence(conn, [incident_id])
            shared = workflow.also_stations(conn, [incident_id])
        return _incident(row, evidence.get(incident_id, ()), shared.get(incident_id, ()))

    def list_incidents(
        self,
        station_ids: Iterable[str] | None = None,
        states: Iterable[IncidentState | str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
        camera_id: str | None = None,
        min_peak_distress: float | None = None,
    ) -> list[Incident]:
        """Incidents newest first, filtered by station, state, `since <= opened_at < until`,
        camera and `peak_distress >= min_peak_distress`."""
        query = select(T).order_by(T.c.opened_at.desc(), T.c.id)
        if station_ids is not None:
            ids = list(station_ids)
            escalated_to = select(incident_stations.c.incident_id).where(
                incident_stations.c.station_id.in_(ids)
            )
            query = query.where(or_(T.c.station_id.in_(ids), T.c.id.in_(escalated_to)))
        if states is not None:
            query = query.where(T.c.state.in_([IncidentState(s).value for s in states]))
        if since is not None:
            query = query.where(T.c.opened_at >= since)
        if until is not None:
            query = query.where(T.c.opened_at < until)
        if camera_id is not None:
            query = query.where(T.c.camera_id == camera_id)
        if min_peak_distress is not None:
            query = query.where(T.c.peak_distress >= min_peak_distress)
        if limit is not None:
            query = query.limit(limit)
        with db_errors("cannot list incidents"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
            evidence = self._evidence(conn, [r.id for r in rows])
            shared = workflow.also_stations(conn, [r.id for r in rows])
        return [_incident(r, evidence.get(r.id, ()), shared.get(r.id, ())) for r in rows]

    @staticmethod
    def _evidence(conn: Connection, ids: list[str]) -> dict[str, tuple[EvidenceFile, ...]]:
        if not ids:
            return {}
        E = incident_evidence
        rows = conn.execute(
            select(E).where(E.c.incident_id.in_(ids)).order_by(E.c.incident_id, E.c.n)
        ).all()
        out: dict[str, list[EvidenceFile]] = {}
        for r in rows:
            out.setdefault(r.incident_id, []).append(
                EvidenceFile(
                    kind=EvidenceKind(r.kind),
                    path=r.path,
                    sha256=r.sha256,
                    bytes=int(r.bytes),
                    content_sha256=r.content_sha256,
                )
            )
        return {k: tuple(v) for k, v in out.items()}

    def actions(self, incident_id: str) -> list[ActionRecord]:
        """The incident's history, oldest first."""
        A = incident_actions
        with db_errors(f"cannot read the history of {incident_id}"), self.engine.connect() as c:
            rows = c.execute(select(A).where(A.c.incident_id == incident_id).order_by(A.c.id))
            return [
                ActionRecord(
                    action=Action(r.action),
                    from_state=IncidentState(r.from_state),
                    to_state=IncidentState(r.to_state),
                    actor=r.actor,
                    at=r.at,
                    note=r.note,
                    unit_id=r.unit_id,
                    incident_id=r.incident_id,
                    reason=None if r.reason is None else DismissReason(r.reason),
                )
                for r in rows
            ]

    # ---- cameras ----------------------------------------------------------------------------

    def set_camera_status(
        self,
        camera_id: str,
        online: bool,
        last_frame_at: datetime | None = None,
        last_error: str | None = None,
        *,
        hotspot_id: str | None = None,
        station_id: str | None = None,
        display_url: str | None = None,
        enabled: bool | None = None,
        secrets: Sequence[str] = (),
        now: datetime | None = None,
        health: CameraHealth | None = None,
    ) -> None:
        """Create or update a camera's status row (`health` None keeps the last one).

        `last_frame_at` None keeps the previous value; `last_error` is stored as given (None
        when healthy). The URL is stored masked and the error text redacted; any string in
        `secrets` (e.g. the camera password from the environment) is masked as well.
        """
        at = now or utcnow()

        def scrub(text: str) -> str:
            for secret in secrets:
                if secret:
                    text = text.replace(secret, MASK)
            return text

        values: dict[str, Any] = {
            "online": online,
            "last_error": None if last_error is None else scrub(redact(last_error))[:1000],
            "updated_at": at,
        }
        if last_frame_at is not None:
            values["last_frame_at"] = last_frame_at
        if hotspot_id is not None:
            values["hotspot_id"] = hotspot_id
        if station_id is not None:
            values["station_id"] = station_id
        if display_url is not None:
            values["display_url"] = scrub(mask_url(display_url))
        if enabled is not None:
            values["enabled"] = enabled
        if health is not None:
            values.update(
                analysed_fps=health.analysed_fps,
                frames_dropped=health.frames_dropped,
                p95_latency_ms=health.p95_latency_ms,
                max_distress=health.max_distress,
            )
        first = {"id": camera_id, "enabled": True, "last_frame_at": None, **values}
        dialect_insert = postgresql.insert if is_postgres(self.engine) else sqlite.insert
        stmt = dialect_insert(cameras).values(**first)
        stmt = stmt.on_conflict_do_update(index_elements=[cameras.c.id], set_=values)
        with db_errors(f"cannot record status of camera {camera_id}"), self.engine.begin() as c:
            c.execute(stmt)

    def cameras(self) -> list[CameraStatus]:
        C = cameras
        with db_errors("cannot read camera status"), self.engine.connect() as conn:
            rows = conn.execute(select(C).order_by(C.c.id)).all()
        return [
            CameraStatus(
                camera_id=r.id,
                hotspot_id=r.hotspot_id,
                station_id=r.station_id,
                display_url=r.display_url,
                enabled=bool(r.enabled),
                online=bool(r.online),
                last_frame_at=r.last_frame_at,
                last_error=r.last_error,
                updated_at=r.updated_at,
                health=None
                if r.analysed_fps is None
                else CameraHealth(
                    analysed_fps=float(r.analysed_fps),
                    frames_dropped=int(r.frames_dropped or 0),
                    p95_latency_ms=None if r.p95_latency_ms is None else float(r.p95_latency_ms),
                    max_distress=None if r.max_distress is None else float(r.max_distress),
                ),
            )
            for r in rows
        ]

    # ---- patrol units -----------------------------------------------------------------------

    def sync_units(
        self, configured: Sequence[unit_rows.UnitConfigLike], now: datetime | None = None
    ) -> None:
        """Make the store's patrol units the site's (`raksha.store.units.sync_units`)."""
        unit_rows.sync_units(self.engine, configured, now or utcnow())

    def units(self, station_ids: Iterable[str] | None = None) -> list[UnitState]:
        return unit_rows.list_units(self.engine, station_ids)

    def unit(self, unit_id: str) -> UnitState | None:
        with db_errors(f"cannot read patrol unit {unit_id}"), self.engine.connect() as conn:
            return unit_rows.get_unit(conn, unit_id)

    def report_position(
        self,
        unit_id: str,
        lat: float,
        lon: float,
        at: datetime,
        *,
        accuracy_m: float | None = None,
        now: datetime | None = None,
    ) -> UnitState:
        return unit_rows.report_position(
            self.engine,
            unit_id,
            lat,
            lon,
            at,
            now=now or utcnow(),
            accuracy_m=accuracy_m,
            max_age_s=self.workflow.position_max_age_s,
        )

    def set_unit_duty(self, unit_id: str, on_duty: bool, now: datetime | None = None) -> UnitState:
        return unit_rows.set_duty(self.engine, unit_id, on_duty, now or utcnow())

    def nearest_available_units(
        self,
        lat: float,
        lon: float,
        *,
        k: int = 3,
        exclude: Iterable[str] = (),
        now: datetime | None = None,
    ) -> list[tuple[UnitState, float, bool]]:
        """The `k` nearest available units by live position (the base when stale)."""
        with db_errors("cannot read the patrol units"), self.engine.connect() as conn:
            return unit_rows.nearest_available(
                conn,
                lat,
                lon,
                now=now or utcnow(),
                max_age_s=self.workflow.position_max_age_s,
                exclude=exclude,
                k=k,
            )

    def latest_job_card(self, incident_id: str, unit_id: str) -> dict[str, Any] | None:
        """The newest job card sent to `unit_id` for `incident_id` (its alert payload)."""
        with db_errors("cannot read job cards"), self.engine.connect() as conn:
            return workflow.latest_job_card(conn, incident_id, unit_id)

    # ---- deadlines --------------------------------------------------------------------------

    def fire_due(self, now: datetime | None = None, limit: int = 50) -> list[ActionRecord]:
        """Take the escalation step of every incident whose deadline has passed, once.

        Each step is an action by `system:escalation` applied only while the deadline is
        still due (`only_if_due`), so another process that fired it first, or an officer who
        acted meanwhile, makes this one a no-op. A unit that did not acknowledge its job is
        replaced by the nearest other available unit (`reassign`), else escalated.
        """
        at = now or utcnow()
        with db_errors("cannot read due deadlines"), self.engine.connect() as conn:
            due = workflow.due_incidents(conn, at, limit)
        fired: list[ActionRecord] = []
        for incident_id, kind, deadline_at, unit_id, lat, lon in due:
            reason = workflow.missed_reason(kind, deadline_at)
            try:
                if kind == "unit_ack" and unit_id is not None and lat is not None:
                    # Never back to a unit that already had this job and let it lapse.
                    held = {
                        a.unit_id
                        for a in self.actions(incident_id)
                        if a.action in (Action.DISPATCH, Action.REASSIGN) and a.unit_id
                    }
                    others = self.nearest_available_units(
                        lat, lon or 0.0, k=1, exclude=held | {unit_id}, now=at
                    )
                    if others:
                        other = others[0][0]
                        try:
                            fired.append(
                                self.apply_action(
                                    incident_id,
                                    Action.REASSIGN,
                                    "system:escalation",
                                    f"{reason}; the job goes to patrol unit {other.id}",
                                    other.id,
                                    at=at,
                                    only_if_due=at,
                                )
                            )
                            continue
                        except UnitUnavailable:
                            pass  # taken meanwhile: escalate instead
                fired.append(
                    self.apply_action(
                        incident_id,
                        Action.ESCALATE,
                        "system:escalation",
                        reason,
                        at=at,
                        only_if_due=at,
                    )
                )
            except (NotDue, IllegalTransition):
                continue
            except RakshaError as exc:  # one incident must not hold up the others
                log.warning("escalation of incident %s failed: %s", incident_id[:8], exc)
                continue
        return fired

    # ---- SOS --------------------------------------------------------------------------------

    def record_sos_message(
        self,
        source_id: str,
        message_id: str,
        kind: str,
        lat: float | None,
        lon: float | None,
        sent_at: datetime,
        now: datetime | None = None,
    ) -> bool:
        """Keep a panic/cancel signal; False when this sender's message id was seen before."""
        with db_errors("cannot record the SOS signal"), self.engine.begin() as conn:
            return sos_rows.record(
                conn, source_id, message_id, kind, lat, lon, sent_at, now or utcnow()
            )

    def forget_sos_message(self, source_id: str, message_id: str) -> None:
        with db_errors("cannot remove the SOS signal"), self.engine.begin() as conn:
            sos_rows.forget(conn, source_id, message_id)

    def link_sos_message(self, source_id: str, message_id: str, incident_id: str) -> None:
        with db_errors("cannot record the SOS signal"), self.engine.begin() as conn:
            sos_rows.link(conn, source_id, message_id, incident_id)

    def sos_incident_of(self, source_id: str) -> str | None:
        """The open incident this sender's latest panic signal opened or joined."""
        with db_errors("cannot read SOS signals"), self.engine.connect() as conn:
            return sos_rows.open_incident_of(conn, source_id)

    def open_incident_near(
        self, lat: float, lon: float, *, radius_m: float, window_s: float, now: datetime
    ) -> tuple[str, float] | None:
        """(id, metres) of the nearest open incident within `radius_m` seen in `window_s`."""
        with db_errors("cannot read open incidents"), self.engine.connect() as conn:
            return sos_rows.open_incident_near(conn, lat, lon, radius_m, window_s, now)

    # ---- outbox (raksha.alerts.outbox.OutboxStore) -------------------------------------------

    def due_deliveries(self, channel: str, now: datetime, limit: int) -> list[PendingDelivery]:
        return self.outbox.due_deliveries(channel, now, limit)

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        self.outbox.mark_delivered(delivery_id, at)

    def mark_failed(self, delivery_id: int, error: str, next_attempt_at: datetime) -> None:
        self.outbox.mark_failed(delivery_id, error, next_attempt_at)

    def mark_dead(self, delivery_id: int, error: str, at: datetime) -> None:
        self.outbox.mark_dead(delivery_id, error, at)

    def deliveries(self, incident_id: str) -> list[DeliveryStatus]:
        """Delivery state per channel of every alert of the incident."""
        return self.outbox.deliveries(incident_id)


def _incident(
    row: Row[Any], evidence: tuple[EvidenceFile, ...], shared: tuple[str, ...] = ()
) -> Incident:
    try:
        state = IncidentState(row.state)
    except ValueError:
        raise StoreError(f"incident {row.id} has an unknown state {row.state!r}") from None
    return Incident(
        id=row.id,
        camera_id=row.camera_id,
        hotspot_id=row.hotspot_id,
        station_id=row.station_id,
        state=state,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        last_seen_at=row.last_seen_at,
        peak_distress=float(row.peak_distress),
        expression_at_peak=dict(row.expression_at_peak),
        top_expression=row.top_expression,
        model_name=row.model_name,
        model_sha256=row.model_sha256,
        thresholds=dict(row.thresholds),
        route=_route(row.route),
        track_id=row.track_id,
        source_id=row.source_id,
        event_start_s=row.event_start_s,
        event_end_s=row.event_end_s,
        person_key=row.person_key,
        version=int(row.version),
        evidence=evidence,
        peak_absolute=row.peak_absolute,
        peak_relative=row.peak_relative,
        baseline_at_peak=row.baseline_at_peak,
        origin=Origin(row.origin),
        priority=Priority(row.priority),
        lat=row.lat,
        lon=row.lon,
        place=row.place or "",
        deadline_at=row.deadline_at,
        deadline_kind=row.deadline_kind,
        escalation_level=int(row.escalation_level),
        unit_id=row.unit_id,
        also_stations=shared,
    )


def _route(data: Any) -> Route | None:
    try:
        return Route.from_json(dict(data))
    except (TypeError, ValueError):
        return None


def _part(value: float | None, what: str) -> float | None:
    """A part of the distress peak for storage: None, or a finite number."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise StoreError(f"{what} is not a finite number")
    return number
