"""Deadlines and escalation steps (pure): what must happen by when, and who is told next.

    NEW          --acknowledge within `acknowledge_s`-->  ACKNOWLEDGED
    ACKNOWLEDGED / CONFIRMED --dispatch within `dispatch_s` (from the acknowledgement)-->
    DISPATCHED   --the unit acknowledges its job card within `unit_ack_s`-->

Each deadline depends on the incident's priority (an SOS, or a camera incident near one, is
`high`). When a deadline passes, the incident escalates one step: the station's supervisor,
then the control room, then the next-nearest station; the next step follows `step_s` later
while the deadline is still missed. A missed unit acknowledgement offers the job to the next
available unit and tells the supervisor. An action that meets the deadline starts the next
one (from step 0); closing the incident stops the clock. The "Escalate" button takes the
next step by hand.

The store keeps the deadline with the incident (`deadline_at`, `deadline_kind`,
`escalation_level`), so timers survive a restart, and fires each one in a transaction that
re-checks it, so two processes never fire the same step twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from raksha.incidents.model import Action, IncidentState, Priority


class DeadlineKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISPATCH = "dispatch"
    UNIT_ACK = "unit_ack"


class Step(StrEnum):
    SUPERVISOR = "supervisor"
    CONTROL_ROOM = "control_room"
    NEXT_STATION = "next_station"


@dataclass(frozen=True, slots=True)
class Deadline:
    kind: DeadlineKind
    at: datetime


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    acknowledge_s: dict[Priority, float] = field(
        default_factory=lambda: {Priority.NORMAL: 60.0, Priority.HIGH: 30.0}
    )
    dispatch_s: dict[Priority, float] = field(
        default_factory=lambda: {Priority.NORMAL: 180.0, Priority.HIGH: 120.0}
    )
    unit_ack_s: float = 60.0
    #: Seconds between two steps while the deadline is still missed.
    step_s: float = 60.0
    steps: tuple[Step, ...] = (Step.SUPERVISOR, Step.CONTROL_ROOM, Step.NEXT_STATION)

    def __post_init__(self) -> None:
        values = [*self.acknowledge_s.values(), *self.dispatch_s.values()]
        if any(v <= 0 for v in [*values, self.unit_ack_s, self.step_s]):
            raise ValueError("escalation deadlines must be positive seconds")

    def first(self, priority: Priority, opened_at: datetime) -> Deadline:
        return Deadline(
            DeadlineKind.ACKNOWLEDGE, opened_at + _s(self.acknowledge_s.get(priority, 60.0))
        )

    def after_action(
        self,
        action: Action,
        to_state: IncidentState,
        priority: Priority,
        at: datetime,
        current: Deadline | None,
    ) -> Deadline | None:
        """The deadline running after a person's `action` (None: no clock runs)."""
        if to_state.is_terminal:
            return None
        if action is Action.ACKNOWLEDGE:
            return Deadline(DeadlineKind.DISPATCH, at + _s(self.dispatch_s.get(priority, 180.0)))
        if action is Action.DISPATCH:
            return Deadline(DeadlineKind.UNIT_ACK, at + _s(self.unit_ack_s))
        if action in (Action.UNIT_ACK, Action.ON_SCENE):
            return None
        return current

    def step(self, level: int) -> Step | None:
        """The step taken at escalation `level` (1-based); None past the last one."""
        return self.steps[level - 1] if 1 <= level <= len(self.steps) else None

    def after_step(self, level: int, kind: DeadlineKind, at: datetime) -> Deadline | None:
        """When the next step is due after taking step `level` (None after the last)."""
        if level >= len(self.steps):
            return None
        return Deadline(kind, at + _s(self.step_s))


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
