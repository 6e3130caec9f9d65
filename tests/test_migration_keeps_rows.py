"""Migrations keep every row. On SQLite a migration that changes a column rebuilds the
table (copy, drop, rename); with foreign keys on, dropping the old table would cascade into
its children. Migration 0013 rebuilds `alerts` (its incident may now be NULL, for camera
alerts): an alert's pending deliveries must survive it, both ways."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from dashboard_support import STATION_A, new_incident
from raksha.store import IncidentStore
from raksha.store.migrate import current_revision, downgrade, migrate
from raksha.store.tables import alert_deliveries, alerts, incident_actions


def _counts(store: IncidentStore) -> tuple[int, int, int]:
    with store.engine.connect() as c:
        return (
            int(c.execute(select(func.count()).select_from(alerts)).scalar_one()),
            int(c.execute(select(func.count()).select_from(alert_deliveries)).scalar_one()),
            int(c.execute(select(func.count()).select_from(incident_actions)).scalar_one()),
        )


def test_rebuilding_the_alerts_table_keeps_its_deliveries(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'raksha.db'}"
    store = IncidentStore.open(url)
    try:
        iid = store.create_incident(
            new_incident(STATION_A), [], {"kind": "distress"}, ["webhook", "mqtt"]
        )
        store.apply_action(iid, "acknowledge", "op_a")
        before = _counts(store)
        assert before[1] >= 2, before
        downgrade(store.engine, "0012")
        assert current_revision(store.engine) == "0012"
        assert _counts(store) == before
        migrate(store.engine)
        assert current_revision(store.engine) == "0013"
        assert _counts(store) == before
        # The keys are back on for everyday use.
        with store.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        store.close()
