"""The face watchlist: enrolled people (who listed them, why, until when), their encrypted
templates, the matches the cameras raised and the officers' decisions on them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from raksha.store.columns import UtcDateTime

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "watchlist_people",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("image_source", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("added_at", UtcDateTime(), nullable=False),
        sa.Column("review_date", UtcDateTime(), nullable=False),
        sa.Column("removed_at", UtcDateTime(), nullable=True),
        sa.Column("removed_by", sa.String(128), nullable=True),
        sa.Column("removed_reason", sa.Text(), nullable=True),
    )
    op.create_table(
        "watchlist_templates",
        sa.Column(
            "person_id",
            sa.String(128),
            sa.ForeignKey("watchlist_people.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("embedding_enc", sa.LargeBinary(), nullable=False),
        sa.Column("thumbnail_enc", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "n"),
    )
    op.create_table(
        "watchlist_alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("probe_thumbnail_enc", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(_in("state", ("pending", "confirmed", "rejected")), name="state"),
    )
    op.create_index(
        op.f("ix_watchlist_alerts_station_id_state"), "watchlist_alerts", ["station_id", "state"]
    )
    op.create_table(
        "watchlist_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "alert_id",
            sa.String(36),
            sa.ForeignKey("watchlist_alerts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("officer", sa.String(128), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("alert_id", "officer"),
        sa.CheckConstraint(_in("decision", ("confirm", "reject")), name="decision"),
    )


def downgrade() -> None:
    op.drop_table("watchlist_decisions")
    op.drop_index(op.f("ix_watchlist_alerts_station_id_state"), table_name="watchlist_alerts")
    op.drop_table("watchlist_alerts")
    op.drop_table("watchlist_templates")
    op.drop_table("watchlist_people")
