"""The escalation timer: every process with a store runs one; each passed deadline fires once.

`raksha run` and `raksha serve` both start an `EscalationTimer`. Each tick asks the store to
fire every passed deadline (`IncidentStore.fire_due`), which re-checks the deadline inside the
transaction that records the step, so two processes on one PostgreSQL, or a restart in the
middle, never fire a step twice or lose one: the deadline lives in the incidents table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from raksha.errors import RakshaError
from raksha.incidents.model import ActionRecord
from raksha.services.periodic import Periodic
from raksha.store.repository import IncidentStore

log = logging.getLogger("raksha.escalation")


class EscalationTimer(Periodic):
    name = "raksha-escalation"

    def __init__(
        self,
        store: IncidentStore,
        *,
        every_s: float = 1.0,
        on_fired: Callable[[list[ActionRecord]], None] | None = None,
    ) -> None:
        super().__init__(every_s)
        self.store = store
        self.on_fired = on_fired
        self.fired = 0

    def tick(self) -> list[ActionRecord]:
        """Fire every passed deadline now (also what each loop round does)."""
        try:
            fired = self.store.fire_due()
        except RakshaError as exc:  # the database is away: try again next tick
            log.warning("escalation timer: %s", exc)
            return []
        if fired:
            self.fired += len(fired)
            for rec in fired:
                log.info(
                    "incident %s escalated (%s): %s", rec.incident_id[:8], rec.action, rec.note
                )
            if self.on_fired is not None:
                self.on_fired(fired)
        return fired
