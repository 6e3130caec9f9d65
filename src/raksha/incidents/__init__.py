"""Incidents: the domain types and the lifecycle rules (evidence capture lives beside them)."""

from raksha.incidents.lifecycle import (
    SYSTEM_ACTOR_PREFIX,
    TRANSITIONS,
    IllegalTransition,
    InvalidActor,
    allowed_actions,
    apply_action,
    check_actor,
    record_action,
)
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
)

__all__ = [
    "SYSTEM_ACTOR_PREFIX",
    "TRANSITIONS",
    "Action",
    "ActionRecord",
    "CameraHealth",
    "CameraStatus",
    "EvidenceFile",
    "EvidenceKind",
    "IllegalTransition",
    "Incident",
    "IncidentState",
    "InvalidActor",
    "NewIncident",
    "allowed_actions",
    "apply_action",
    "check_actor",
    "record_action",
]
