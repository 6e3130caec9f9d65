"""Camera alerts: cameras that report their own failures (video loss, a frozen picture, a
covered lens, a moved camera, reconnects failing), and alerts in the outbox that belong to a
camera rather than an incident (`alerts.incident_id` may be NULL).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from raksha.store.columns import UtcDateTime

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

_KINDS = ("video_loss", "frozen", "covered", "moved", "reconnect")


def upgrade() -> None:
    op.create_table(
        "camera_alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.Column("raised_at", UtcDateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.LargeBinary(), nullable=True),
        sa.Column("cleared_at", UtcDateTime(), nullable=True),
        sa.Column("acknowledged_at", UtcDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(128), nullable=True),
        sa.CheckConstraint(f"kind IN ({', '.join(repr(k) for k in _KINDS)})", name="kind"),
    )
    op.create_index(
        op.f("ix_camera_alerts_camera_id_cleared_at"), "camera_alerts", ["camera_id", "cleared_at"]
    )
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("incident_id", existing_type=sa.String(36), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM alerts WHERE incident_id IS NULL")
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("incident_id", existing_type=sa.String(36), nullable=False)
    op.drop_index(op.f("ix_camera_alerts_camera_id_cleared_at"), table_name="camera_alerts")
    op.drop_table("camera_alerts")
