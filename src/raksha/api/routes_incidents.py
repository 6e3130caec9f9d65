"""Incidents: list, one, evidence, actions, export (all station-scoped)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from raksha.api.access import Denied, Rule, check_station, visible_stations
from raksha.api.context import ApiContext
from raksha.api.deps import Context, Principal, denied, require
from raksha.api.evidence_view import (
    EvidenceIntegrityError,
    EvidenceKeyError,
    EvidenceMissing,
    blurred_view,
    read_checked,
)
from raksha.api.schemas import ActionIn, ActionOut, IncidentList
from raksha.api.views import incident_view
from raksha.incidents.lifecycle import IllegalTransition, InvalidActor
from raksha.incidents.model import EvidenceKind, Incident, IncidentState
from raksha.store.errors import ConcurrentUpdate, IncidentNotFound
from raksha.store.serialize import action_to_json

router = APIRouter(tags=["incidents"])

IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such incident in your scope"}
}


def _load_scoped(ctx: ApiContext, who: Principal, incident_id: str, rule: Rule) -> Incident:
    """The incident if it exists and is in the caller's scope; 404 otherwise (the same reply
    for "does not exist" and "another station's")."""
    incident = ctx.store.get_incident(incident_id)
    try:
        check_station(who.user, rule, incident.station_id if incident is not None else None)
    except Denied as exc:
        raise denied(exc) from None
    if incident is None:
        raise HTTPException(404, "not found")
    return incident


@router.get("/api/incidents", response_model=IncidentList)
def list_incidents(
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
    state: Annotated[list[IncidentState] | None, Query(description="Only these states.")] = None,
    station: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[datetime | None, Query(description="Opened at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Opened before (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> IncidentList:
    """Incidents in the caller's scope, newest first."""
    assert who.user is not None
    try:
        scope = visible_stations(who.user, Rule.INCIDENTS_READ)
        if station is not None:
            check_station(who.user, Rule.INCIDENTS_READ, station)
    except Denied as exc:
        raise denied(exc) from None
    stations = [station] if station is not None else (None if scope is None else sorted(scope))
    for t in (since, until):
        if t is not None and t.tzinfo is None:
            raise HTTPException(422, "since/until need a time zone (e.g. 2026-11-22T08:00:00Z)")
    rows = ctx.store.list_incidents(
        station_ids=stations, states=state, since=since, until=until, limit=limit
    )
    ctx.audit.append(
        who.name,
        "incident.list",
        station_id=who.user.station_id,
        address=who.address,
        details={
            "count": len(rows),
            "states": [s.value for s in state] if state else None,
            "station": station,
        },
    )
    return IncidentList(incidents=[incident_view(i) for i in rows], count=len(rows))


@router.get(
    "/api/export/incidents.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_incidents(
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_EXPORT))],
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> Response:
    """The caller's incidents as CSV (no evidence, no personal data); audited as an export."""
    assert who.user is not None
    try:
        scope = visible_stations(who.user, Rule.INCIDENTS_EXPORT)
    except Denied as exc:
        raise denied(exc) from None
    for t in (since, until):
        if t is not None and t.tzinfo is None:
            raise HTTPException(422, "since/until need a time zone (e.g. 2026-11-22T08:00:00Z)")
    rows = ctx.store.list_incidents(
        station_ids=None if scope is None else sorted(scope), since=since, until=until, limit=100000
    )
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = [
        "id",
        "station_id",
        "camera_id",
        "hotspot_id",
        "state",
        "opened_at",
        "closed_at",
        "peak_distress",
        "top_expression",
    ]
    w.writerow(cols)
    for i in rows:
        v = incident_view(i)
        w.writerow([v[c] for c in cols])
    ctx.audit.append(
        who.name,
        "incident.export",
        station_id=who.user.station_id,
        address=who.address,
        details={"count": len(rows), "format": "csv"},
    )
    return Response(
        buf.getvalue(),
        media_type="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="incidents.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/api/incidents/{incident_id}", responses=NOT_FOUND)
def get_incident(
    incident_id: IncidentId,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
) -> dict[str, Any]:
    """One incident with its evidence list, history and delivery state."""
    incident = _load_scoped(ctx, who, incident_id, Rule.INCIDENTS_READ)
    out = incident_view(incident, ctx.store.actions(incident_id))
    out["deliveries"] = [
        {"channel": d.channel, "state": d.state, "attempts": d.attempts}
        for d in ctx.store.deliveries(incident_id)
    ]
    ctx.audit.append(
        who.name,
        "incident.view",
        target=f"incident:{incident_id}",
        station_id=incident.station_id,
        address=who.address,
    )
    return out


@router.get(
    "/api/incidents/{incident_id}/evidence/{n}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}},
        403: {"description": "Unblurring is not allowed for this role"},
        404: {"description": "No such incident or evidence in your scope"},
        409: {"description": "The file fails its SHA-256 check; not served"},
        410: {"description": "The file is gone"},
    },
)
def get_evidence(
    incident_id: IncidentId,
    n: Annotated[int, Path(ge=1, le=10000)],
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.EVIDENCE_VIEW))],
    unblur: Annotated[bool, Query(description="The original (supervisor, control room).")] = False,
    reason: Annotated[str | None, Query(max_length=500, description="Required to unblur.")] = None,
) -> Response:
    """Evidence image `n` (1-based): blurred by default; `unblur=true` with a `reason` gives
    the stored original to a supervisor or the control room, and is audited with the reason."""
    incident = _load_scoped(ctx, who, incident_id, Rule.EVIDENCE_VIEW)
    if n > len(incident.evidence):
        raise HTTPException(404, "no such evidence")
    ev = incident.evidence[n - 1]
    target = f"incident:{incident_id}/evidence:{n}"
    if unblur:
        try:
            check_station(who.user, Rule.EVIDENCE_UNBLUR, incident.station_id)
        except Denied as exc:
            ctx.audit.append(
                who.name,
                "evidence.unblur_refused",
                target=target,
                station_id=incident.station_id,
                address=who.address,
                details={"reason": reason},
            )
            raise denied(exc) from None
        if reason is None or len(reason.strip()) < 3:
            raise HTTPException(422, "unblurring needs a reason (at least 3 characters)")
    key_env = ctx.evidence.key_env
    view = "original" if unblur else "blurred"
    try:
        data = read_checked(ev, key_env)
        if not unblur:
            crop: bytes | None = None
            if ev.kind is EvidenceKind.FRAME_BLURRED:
                face = next((f for f in incident.evidence if f.kind is EvidenceKind.FACE), None)
                if face is not None:
                    try:
                        crop = read_checked(face, key_env)
                    except (EvidenceMissing, EvidenceIntegrityError, EvidenceKeyError):
                        crop = None
            data = blurred_view(data, ev.kind, crop)
    except EvidenceMissing as exc:
        ctx.metrics.evidence.labels(view, "missing").inc()
        ctx.audit.append(
            who.name,
            "evidence.missing",
            target=target,
            station_id=incident.station_id,
            address=who.address,
        )
        raise HTTPException(410, str(exc)) from None
    except EvidenceIntegrityError as exc:
        ctx.metrics.evidence.labels(view, "integrity_failure").inc()
        ctx.audit.append(
            who.name,
            "evidence.integrity_failure",
            target=target,
            station_id=incident.station_id,
            address=who.address,
            details={"error": str(exc)},
        )
        raise HTTPException(409, str(exc)) from None
    except EvidenceKeyError as exc:
        ctx.metrics.evidence.labels(view, "key_error").inc()
        raise HTTPException(503, str(exc)) from None
    action = "evidence.unblur" if unblur else "evidence.view"
    details: dict[str, Any] = {"kind": ev.kind.value, "sha256": ev.sha256}
    if unblur:
        details["reason"] = (reason or "").strip()
    ctx.audit.append(
        who.name,
        action,
        target=target,
        station_id=incident.station_id,
        address=who.address,
        details=details,
    )
    ctx.metrics.evidence.labels(view, "ok").inc()
    return Response(
        data,
        media_type="image/jpeg",
        headers={"Cache-Control": "no-store", "X-Raksha-Evidence-View": view},
    )


@router.post(
    "/api/incidents/{incident_id}/actions",
    response_model=ActionOut,
    responses={**NOT_FOUND, 409: {"description": "Not allowed in this state, or changed"}},
)
def post_action(
    incident_id: IncidentId,
    body: ActionIn,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_ACT))],
) -> ActionOut:
    """Acknowledge, confirm, dispatch, dismiss, resolve or escalate; the caller is the actor."""
    incident = _load_scoped(ctx, who, incident_id, Rule.INCIDENTS_ACT)
    target = f"incident:{incident_id}"
    try:
        rec = ctx.store.apply_action(
            incident_id,
            body.action,
            who.name,
            body.note,
            body.unit_id,
            expected_version=body.expected_version,
        )
    except (IllegalTransition, ConcurrentUpdate, InvalidActor, IncidentNotFound) as exc:
        ctx.audit.append(
            who.name,
            "incident.action_refused",
            target=target,
            station_id=incident.station_id,
            address=who.address,
            details={"action": body.action, "error": str(exc)},
        )
        status = (
            404
            if isinstance(exc, IncidentNotFound)
            else (400 if isinstance(exc, InvalidActor) else 409)
        )
        raise HTTPException(status, str(exc)) from None
    ctx.metrics.actions.labels(rec.action.value).inc()
    ctx.audit.append(
        who.name,
        "incident.action",
        target=target,
        station_id=incident.station_id,
        address=who.address,
        details={
            "action": rec.action.value,
            "from": rec.from_state.value,
            "to": rec.to_state.value,
            "note": rec.note,
            "unit_id": rec.unit_id,
        },
    )
    fresh = ctx.store.get_incident(incident_id)
    assert fresh is not None
    hub = ctx.hub
    notify = getattr(hub, "poke", None)
    if callable(notify):
        notify()
    return ActionOut(
        action=action_to_json(rec), incident=incident_view(fresh, ctx.store.actions(incident_id))
    )
