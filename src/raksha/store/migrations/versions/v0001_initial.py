"""Initial schema: incidents, evidence, action history, cameras, alerts and their deliveries.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from raksha.store.columns import UtcDateTime, json_type

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


_STATES = ("NEW", "ACKNOWLEDGED", "CONFIRMED", "DISPATCHED", "RESOLVED", "DISMISSED")
_ACTIONS = ("acknowledge", "confirm", "dispatch", "dismiss", "resolve", "escalate")


def _incident_fk() -> sa.ForeignKey:
    return sa.ForeignKey("incidents.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("hotspot_id", sa.String(128), nullable=False),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("source_id", sa.String(256), nullable=False),
        sa.Column("event_start_s", sa.Float(), nullable=True),
        sa.Column("event_end_s", sa.Float(), nullable=True),
        sa.Column("peak_distress", sa.Float(), nullable=False),
        sa.Column("expression_at_peak", json_type(), nullable=False),
        sa.Column("top_expression", sa.String(32), nullable=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("thresholds", json_type(), nullable=False),
        sa.Column("route", json_type(), nullable=False),
        sa.Column("person_key", sa.String(256), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.CheckConstraint(_in("state", _STATES), name=op.f("ck_incidents_state")),
    )
    op.create_index(
        op.f("ix_incidents_station_id_state_opened_at"),
        "incidents",
        ["station_id", "state", "opened_at"],
    )
    op.create_index(
        op.f("ix_incidents_camera_id_person_key_last_seen_at"),
        "incidents",
        ["camera_id", "person_key", "last_seen_at"],
    )
    op.create_index(op.f("ix_incidents_opened_at"), "incidents", ["opened_at"])

    op.create_table(
        "incident_evidence",
        sa.Column("incident_id", sa.String(36), _incident_fk(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "n", name=op.f("pk_incident_evidence")),
        sa.CheckConstraint(
            _in("kind", ("face", "frame_blurred")), name=op.f("ck_incident_evidence_kind")
        ),
    )

    op.create_table(
        "incident_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(36), _incident_fk(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("unit_id", sa.String(128), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_actions")),
        sa.CheckConstraint(_in("action", _ACTIONS), name=op.f("ck_incident_actions_action")),
    )
    op.create_index(
        op.f("ix_incident_actions_incident_id_id"), "incident_actions", ["incident_id", "id"]
    )

    op.create_table(
        "cameras",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("hotspot_id", sa.String(128), nullable=True),
        sa.Column("station_id", sa.String(128), nullable=True),
        sa.Column("display_url", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_frame_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
    )

    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("incident_id", sa.String(36), _incident_fk(), nullable=False),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("payload", json_type(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_incident_id"), "alerts", ["incident_id"])

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "alert_id",
            sa.String(36),
            sa.ForeignKey("alerts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint(
            "alert_id", "channel", name=op.f("uq_alert_deliveries_alert_id_channel")
        ),
        sa.CheckConstraint(
            _in("state", ("pending", "delivered", "failed")),
            name=op.f("ck_alert_deliveries_state"),
        ),
    )
    op.create_index(
        op.f("ix_alert_deliveries_channel_state_next_attempt_at"),
        "alert_deliveries",
        ["channel", "state", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("alerts")
    op.drop_table("cameras")
    op.drop_table("incident_actions")
    op.drop_table("incident_evidence")
    op.drop_table("incidents")
