"""The five roles of the dashboard and which of them belong to one station."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    #: Sees and acts on the incidents of one station; evidence blurred only.
    OPERATOR = "operator"
    #: As an operator, and may view unblurred evidence with a stated reason.
    SUPERVISOR = "supervisor"
    #: Every station: incidents, actions, evidence (unblurred with a reason), cameras.
    CONTROL_ROOM = "control_room"
    #: Reads and verifies the audit log; nothing else.
    AUDITOR = "auditor"
    #: Manages users and configuration; sees metrics; no incidents.
    ADMIN = "admin"

    @property
    def station_bound(self) -> bool:
        """True for roles that work for exactly one station."""
        return self in (Role.OPERATOR, Role.SUPERVISOR)
