"""Incidents as JSON (what `raksha incidents list --json` prints and the API returns)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from raksha.domain.types import round_or_none
from raksha.incidents.model import UNSPECIFIED_REASON, Action, ActionRecord, Incident


def iso(t: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z suffix, or None."""
    if t is None:
        return None
    return t.isoformat().replace("+00:00", "Z")


def action_to_json(rec: ActionRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": rec.action.value,
        "from_state": rec.from_state.value,
        "to_state": rec.to_state.value,
        "actor": rec.actor,
        "at": iso(rec.at),
        "note": rec.note,
        "unit_id": rec.unit_id,
    }
    if rec.action is Action.DISMISS:  # why (older dismissals have none: "unspecified")
        out["reason"] = rec.reason.value if rec.reason is not None else UNSPECIFIED_REASON
    return out


def incident_to_json(
    incident: Incident, actions: Sequence[ActionRecord] | None = None
) -> dict[str, Any]:
    """A JSON-serialisable dict of the incident; `actions` adds its history when given."""
    route = None if incident.route is None else incident.route.to_json()
    out: dict[str, Any] = {
        "id": incident.id,
        "camera_id": incident.camera_id,
        "hotspot_id": incident.hotspot_id,
        "station_id": incident.station_id,
        "state": incident.state.value,
        "opened_at": iso(incident.opened_at),
        "updated_at": iso(incident.updated_at),
        "closed_at": iso(incident.closed_at),
        "peak_distress": round(incident.peak_distress, 4),
        "expression_at_peak": {k: round(v, 4) for k, v in incident.expression_at_peak.items()},
        "peak_absolute": round_or_none(incident.peak_absolute),
        "peak_relative": round_or_none(incident.peak_relative),
        "baseline_at_peak": round_or_none(incident.baseline_at_peak),
        "top_expression": incident.top_expression,
        "patrol_units": [] if route is None else route["patrol_units"],
        "route": route,
        "evidence": [
            {
                "kind": ev.kind.value,
                "path": ev.path,
                "sha256": ev.sha256,
                "bytes": ev.bytes,
                "content_sha256": ev.content_sha256,
            }
            for ev in incident.evidence
        ],
        "track_id": incident.track_id,
        "source_id": incident.source_id,
        "event_start_s": incident.event_start_s,
        "event_end_s": incident.event_end_s,
        "model": {"name": incident.model_name, "sha256": incident.model_sha256},
        "thresholds": incident.thresholds,
        "version": incident.version,
        "origin": incident.origin.value,
        "priority": incident.priority.value,
        "lat": incident.lat,
        "lon": incident.lon,
        "place": incident.place,
        "deadline_at": iso(incident.deadline_at),
        "deadline_kind": incident.deadline_kind,
        "escalation_level": incident.escalation_level,
        "unit_id": incident.unit_id,
        "also_stations": list(incident.also_stations),
    }
    if actions is not None:
        out["actions"] = [action_to_json(a) for a in actions]
    return out
