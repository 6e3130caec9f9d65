"""The loop to the street: patrol units as live resources, escalation deadlines kept in the
store, SOS signals, and one outbox alert per incident state change.

- `patrol_units`: each unit's status (available, dispatched, on_scene, off_duty), its last
  known position and when, and the incident it is busy with.
- `incidents`: where it is (`lat`, `lon`, `place`), whether a camera or a person raised it
  (`origin`), its `priority`, the running deadline (`deadline_at`, `deadline_kind`) and the
  escalation step reached, the unit it is dispatched to, and the number of its last event.
- `incident_stations`: further stations an incident was escalated to (they see it too).
- `sos_messages`: every panic or cancel signal received, keyed by its sender's message id
  (a replay is refused).
- `alerts`: `event` and `seq` (which state change this alert is) and `unit_id` (a job card's
  unit). Older alerts are the "new" event, seq 1.
- `incident_actions.action` may also be on_scene, unit_ack, sos_join, sos_cancel, reassign.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from raksha.store.columns import UtcDateTime

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_OLD_ACTIONS = ("acknowledge", "confirm", "dispatch", "dismiss", "resolve", "escalate")
_NEW_ACTIONS = (*_OLD_ACTIONS, "on_scene", "unit_ack", "sos_join", "sos_cancel", "reassign")
_UNIT_STATES = ("available", "dispatched", "on_scene", "off_duty")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _incident_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("origin", sa.String(16), nullable=False, server_default="camera"),
        sa.Column("priority", sa.String(8), nullable=False, server_default="normal"),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("place", sa.Text(), nullable=True),
        sa.Column("deadline_at", UtcDateTime(), nullable=True),
        sa.Column("deadline_kind", sa.String(16), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("unit_id", sa.String(128), nullable=True),
        sa.Column("event_seq", sa.Integer(), nullable=False, server_default="1"),
    ]


def upgrade() -> None:
    op.create_table(
        "patrol_units",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column("home_lat", sa.Float(), nullable=False),
        sa.Column("home_lon", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("position_at", UtcDateTime(), nullable=True),
        sa.Column("incident_id", sa.String(36), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(_in("status", _UNIT_STATES), name=op.f("ck_patrol_units_status")),
    )
    op.create_index(op.f("ix_patrol_units_status"), "patrol_units", ["status"])
    op.create_table(
        "incident_stations",
        sa.Column(
            "incident_id",
            sa.String(36),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "station_id", name=op.f("pk_incident_stations")),
    )
    op.create_index(op.f("ix_incident_stations_station_id"), "incident_stations", ["station_id"])
    op.create_table(
        "sos_messages",
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("sent_at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("incident_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("source_id", "message_id", name=op.f("pk_sos_messages")),
    )
    op.create_index(op.f("ix_sos_messages_received_at"), "sos_messages", ["received_at"])
    for column in _incident_columns():
        op.add_column("incidents", column)
    op.create_index(op.f("ix_incidents_deadline_at"), "incidents", ["deadline_at"])
    op.add_column("alerts", sa.Column("event", sa.String(24), nullable=False, server_default="new"))
    op.add_column("alerts", sa.Column("seq", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("alerts", sa.Column("unit_id", sa.String(128), nullable=True))
    with op.batch_alter_table("incident_actions") as batch:
        batch.drop_constraint(op.f("ck_incident_actions_action"), type_="check")
        batch.create_check_constraint("action", _in("action", _NEW_ACTIONS))


def downgrade() -> None:
    with op.batch_alter_table("incident_actions") as batch:
        batch.drop_constraint(op.f("ck_incident_actions_action"), type_="check")
        batch.create_check_constraint("action", _in("action", _OLD_ACTIONS))
    with op.batch_alter_table("alerts") as batch:
        for name in ("unit_id", "seq", "event"):
            batch.drop_column(name)
    op.drop_index(op.f("ix_incidents_deadline_at"), table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        for column in reversed(_incident_columns()):
            batch.drop_column(column.name)
    op.drop_table("sos_messages")
    op.drop_table("incident_stations")
    op.drop_index(op.f("ix_patrol_units_status"), table_name="patrol_units")
    op.drop_table("patrol_units")
