"""What the API shows for incidents and cameras, as typed response models: no file paths,
no secrets."""

from __future__ import annotations

from collections.abc import Sequence

from raksha.api.schemas import (
    ActionRecordOut,
    CameraAlertOut,
    CameraOut,
    DeliveryOut,
    EvidenceOut,
    IncidentOut,
    ModelOut,
    RouteOut,
    UnitOut,
)
from raksha.incidents.lifecycle import officer_actions
from raksha.incidents.model import ActionRecord, CameraStatus, Incident
from raksha.redact import mask_url, redact
from raksha.store.camera_alerts import CameraAlert
from raksha.store.outbox import DeliveryStatus
from raksha.store.serialize import action_to_json, incident_to_json, iso


def incident_view(
    incident: Incident,
    actions: Sequence[ActionRecord] | None = None,
    deliveries: Sequence[DeliveryStatus] | None = None,
) -> IncidentOut:
    out = incident_to_json(incident)
    route = out["route"]
    return IncidentOut(
        **{k: out[k] for k in out if k not in ("evidence", "route", "patrol_units", "model")},
        model=ModelOut(name=incident.model_name, sha256=incident.model_sha256),
        route=None if route is None else RouteOut.model_validate(route),
        patrol_units=[UnitOut.model_validate(u) for u in out["patrol_units"]],
        evidence=[
            EvidenceOut(
                n=i,
                kind=ev.kind.value,
                sha256=ev.sha256,
                bytes=ev.bytes,
                encrypted=ev.path.endswith(".enc"),
                url=f"/api/incidents/{incident.id}/evidence/{i}",
            )
            for i, ev in enumerate(incident.evidence, start=1)
        ],
        allowed_actions=[a.value for a in officer_actions(incident.state)],
        actions=None if actions is None else [action_view(a) for a in actions],
        deliveries=None
        if deliveries is None
        else [
            DeliveryOut(channel=d.channel, state=d.state, attempts=d.attempts) for d in deliveries
        ],
    )


def action_view(rec: ActionRecord) -> ActionRecordOut:
    return ActionRecordOut.model_validate(action_to_json(rec))


def camera_view(cam: CameraStatus, alert: CameraAlert | None = None) -> CameraOut:
    """`cam` as the API shows it, with its open camera `alert` if it has one."""
    return CameraOut(
        camera_id=cam.camera_id,
        hotspot_id=cam.hotspot_id,
        station_id=cam.station_id,
        # Stored masked already; masked again so nothing unmasked can ever leave.
        display_url=None if cam.display_url is None else mask_url(cam.display_url),
        enabled=cam.enabled,
        online=cam.online,
        last_frame_at=iso(cam.last_frame_at),
        last_error=None if cam.last_error is None else redact(cam.last_error),
        updated_at=iso(cam.updated_at),
        # How the analysis keeps up, as the camera's worker last reported (None: not yet).
        analysed_fps=None if cam.health is None else cam.health.analysed_fps,
        frames_dropped=None if cam.health is None else cam.health.frames_dropped,
        p95_latency_ms=None if cam.health is None else cam.health.p95_latency_ms,
        alert=None if alert is None else camera_alert_view(alert),
    )


def camera_alert_view(alert: CameraAlert) -> CameraAlertOut:
    return CameraAlertOut(
        id=alert.id,
        kind=alert.kind,
        since=iso(alert.since) or "",
        message=alert.message,
        acknowledged_by=alert.acknowledged_by,
        cleared_at=iso(alert.cleared_at),
    )
