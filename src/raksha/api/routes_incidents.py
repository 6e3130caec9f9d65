"""Incidents: list, one, evidence, actions, export (all station-scoped).

Thin adapters over `raksha.services.incidents`: the service checks scope, writes the audit
entries and applies the lifecycle; a route turns HTTP into a call and the result into JSON.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.schemas import ActionIn, ActionOut, IncidentList, IncidentOut
from raksha.api.views import action_view, incident_view
from raksha.auth.access import Rule
from raksha.incidents.model import EvidenceKind, IncidentState

router = APIRouter(tags=["incidents"])

IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such incident in your scope"}
}


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
    with service_errors():
        rows = ctx.incidents.list_visible(
            who.caller, states=state, station=station, since=since, until=until, limit=limit
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
    state: Annotated[list[IncidentState] | None, Query()] = None,
    station: Annotated[str | None, Query(max_length=128)] = None,
    camera: Annotated[str | None, Query(max_length=128)] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> Response:
    """The caller's incidents as CSV (no evidence, no personal data), narrowed by the same
    filters as the list (times, states, station, camera, lowest peak score); audited as an
    export with its filters."""
    with service_errors():
        rows = ctx.incidents.list_visible(
            who.caller,
            states=state or None,
            station=station,
            since=since,
            until=until,
            limit=100000,
            rule=Rule.INCIDENTS_EXPORT,
            audit_action="incident.export",
            camera=camera,
            min_score=min_score,
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
        w.writerow([getattr(v, c) for c in cols])
    return Response(
        buf.getvalue(),
        media_type="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="incidents.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/api/incidents/{incident_id}", response_model=IncidentOut, responses=NOT_FOUND)
def get_incident(
    incident_id: IncidentId,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
) -> IncidentOut:
    """One incident with its evidence list, history and delivery state."""
    with service_errors():
        detail = ctx.incidents.view(who.caller, incident_id)
    return incident_view(detail.incident, detail.actions, detail.deliveries)


@router.get(
    "/api/incidents/{incident_id}/evidence/{n}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "video/mp4": {}}},
        206: {"description": "A byte range of a clip", "content": {"video/mp4": {}}},
        403: {"description": "Unblurring is not allowed for this role"},
        404: {"description": "No such incident or evidence in your scope"},
        409: {"description": "The file fails its SHA-256 check; not served"},
        410: {"description": "The file is gone"},
        416: {"description": "A byte range outside the clip"},
    },
)
def get_evidence(
    request: Request,
    incident_id: IncidentId,
    n: Annotated[int, Path(ge=1, le=10000)],
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.EVIDENCE_VIEW))],
    unblur: Annotated[bool, Query(description="The original (supervisor, control room).")] = False,
    reason: Annotated[str | None, Query(max_length=500, description="Required to unblur.")] = None,
    masked: Annotated[bool, Query(description="Pixelate the subject too.")] = False,
) -> Response:
    """Evidence image `n` (1-based) as stored: the subject, with every other face blurred at
    capture; `masked=true` pixelates the subject too. Every view is audited. `unblur=true`
    with a `reason` (supervisor, control room) returns the same stored file, audited with
    the reason: bystanders are never stored unblurred. A clip (video/mp4) plays pixelated
    unless unblurred with a reason, and is served in byte ranges when asked (`Range`); every
    request is audited."""
    view = "original" if unblur else ("blurred" if masked else "subject")
    try:
        with service_errors():
            image = ctx.incidents.evidence(
                who.caller, incident_id, n, unblur=unblur, reason=reason, masked=masked
            )
    except HTTPException as exc:
        outcome = {409: "integrity_failure", 410: "missing", 503: "key_error"}.get(exc.status_code)
        if outcome is not None:
            ctx.metrics.evidence.labels(view, outcome).inc()
        raise
    ctx.metrics.evidence.labels(image.view, "ok").inc()
    headers = {"Cache-Control": "no-store", "X-Raksha-Evidence-View": image.view}
    if image.kind is not EvidenceKind.CLIP:
        return Response(image.data, media_type="image/jpeg", headers=headers)
    # A video: browsers (Safari above all) ask for it in byte ranges.
    headers["Accept-Ranges"] = "bytes"
    size = len(image.data)
    span = byte_range(request.headers.get("range"), size)
    if span is None:
        return Response(image.data, media_type="video/mp4", headers=headers)
    if span == (-1, -1):
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(
        image.data[start : end + 1], status_code=206, media_type="video/mp4", headers=headers
    )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a `Range: bytes=a-b` header asks for, inclusive; None for no
    header or a form not handled (then the whole body is sent), (-1, -1) when unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":  # the last N bytes
            n = int(last)
            return (-1, -1) if n <= 0 else (max(0, size - n), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        return (-1, -1)
    return start, min(end, size - 1)


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
    """Acknowledge, confirm, dispatch, dismiss, resolve or escalate; the caller is the actor.
    The action and its audit entry commit together or not at all."""
    with service_errors():
        outcome = ctx.incidents.act(
            who.caller,
            incident_id,
            body.action,
            note=body.note,
            unit_id=body.unit_id,
            expected_version=body.expected_version,
            reason=body.reason,
        )
    ctx.metrics.actions.labels(outcome.record.action.value).inc()
    return ActionOut(
        action=action_view(outcome.record),
        incident=incident_view(outcome.incident, outcome.actions),
    )
