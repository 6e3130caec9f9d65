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
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import URL, Connection, Engine, Row, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from raksha.alerts.outbox import PendingDelivery
from raksha.domain.routing import Route
from raksha.incidents.lifecycle import check_actor, record_action
from raksha.incidents.merge import MergeRule, OpenIncident, Sighting, pick
from raksha.incidents.model import (
    Action,
    ActionRecord,
    CameraHealth,
    CameraStatus,
    EvidenceFile,
    EvidenceKind,
    Incident,
    IncidentState,
    NewIncident,
    new_id,
    top_expression,
    utcnow,
)
from raksha.redact import MASK, mask_url, redact
from raksha.store._db import clean_distribution, clean_json, db_errors
from raksha.store.engine import is_postgres, make_engine
from raksha.store.errors import ConcurrentUpdate, IncidentNotFound, StoreError
from raksha.store.migrate import migrate
from raksha.store.outbox import DeliveryStatus, SqlOutbox
from raksha.store.tables import (
    alert_deliveries,
    alerts,
    cameras,
    incident_actions,
    incident_evidence,
    incidents,
)

T = incidents
#: The alert row itself is the "store" channel; it needs no delivery row.
STORE_CHANNEL = "store"
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
        alert_id = new_id()
        payload = clean_json(alert_payload, "alert payload")
        payload.update(alert_id=alert_id, incident_id=inc.id, station_id=inc.station_id)
        wanted = [c for c in dict.fromkeys(channels) if c != STORE_CHANNEL]
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
        }
        conn.execute(insert(T), row)
        self._insert_evidence(conn, inc.id, evidence, first_n=1, at=at)
        conn.execute(
            insert(alerts),
            {
                "id": alert_id,
                "incident_id": inc.id,
                "station_id": inc.station_id,
                "created_at": at,
                "payload": payload,
            },
        )
        if wanted:
            conn.execute(
                insert(alert_deliveries),
                [
                    {
                        "alert_id": alert_id,
                        "channel": channel,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": at,
                        "last_error": None,
                        "delivered_at": None,
                        "created_at": at,
                    }
                    for channel in wanted
                ],
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
        raise ConcurrentUpdate(f"incident {incident_id} kept changing; try again")

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
    ) -> ActionRecord:
        """Apply a lifecycle action by `actor` and record it in the history.

        Raises IllegalTransition (nothing changes) when the incident's state does not allow
        it, IncidentNotFound, InvalidActor, and ConcurrentUpdate when `expected_version` is
        given and the incident has changed since the caller read it. `with_it(conn, record)`
        runs inside the same transaction after the action is written (the audit entry of the
        action): if it raises, the action is rolled back and the error propagates.
        """
        check_actor(action, actor)
        for _ in range(_RETRIES):
            try:
                with (
                    db_errors(f"cannot update incident {incident_id}"),
                    self.engine.begin() as conn,
                ):
                    cur = self._read_for_update(conn, incident_id)
                    if expected_version is not None and cur.version != expected_version:
                        raise ConcurrentUpdate(
                            f"incident {incident_id} changed (version {cur.version}, "
                            f"expected {expected_version}); reload and try again"
                        )
                    rec = record_action(
                        cur.state,
                        action,
                        actor,
                        at=at or utcnow(),
                        note=note,
                        unit_id=unit_id,
                        incident_id=incident_id,
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
                        },
                    )
                    if with_it is not None:
                        with_it(conn, rec)
                return rec
            except _Retry:
                if expected_version is not None:
                    raise ConcurrentUpdate(
                        f"incident {incident_id} changed meanwhile; reload and try again"
                    ) from None
        raise ConcurrentUpdate(f"incident {incident_id} kept changing; try again")

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
        ).where(T.c.id == incident_id)
        if is_postgres(self.engine):
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise IncidentNotFound(f"no incident with id {incident_id}")
        return _Current(
            state=IncidentState(row.state),
            version=int(row.version),
            peak_distress=float(row.peak_distress),
            peak_absolute=row.peak_absolute,
            peak_relative=row.peak_relative,
            event_end_s=row.event_end_s,
            updated_at=row.updated_at,
            last_seen_at=row.last_seen_at,
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
        return _incident(row, evidence.get(incident_id, ()))

    def list_incidents(
        self,
        station_ids: Iterable[str] | None = None,
        states: Iterable[IncidentState | str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
    ) -> list[Incident]:
        """Incidents newest first, filtered by station, state and `since <= opened_at < until`."""
        query = select(T).order_by(T.c.opened_at.desc(), T.c.id)
        if station_ids is not None:
            query = query.where(T.c.station_id.in_(list(station_ids)))
        if states is not None:
            query = query.where(T.c.state.in_([IncidentState(s).value for s in states]))
        if since is not None:
            query = query.where(T.c.opened_at >= since)
        if until is not None:
            query = query.where(T.c.opened_at < until)
        if limit is not None:
            query = query.limit(limit)
        with db_errors("cannot list incidents"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
            evidence = self._evidence(conn, [r.id for r in rows])
        return [_incident(r, evidence.get(r.id, ())) for r in rows]

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
                    kind=EvidenceKind(r.kind), path=r.path, sha256=r.sha256, bytes=int(r.bytes)
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
                ),
            )
            for r in rows
        ]

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


def _incident(row: Row[Any], evidence: tuple[EvidenceFile, ...]) -> Incident:
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
