"""Distress parts of an incident's peak: the highest absolute and relative evidence and the
person's baseline at the peak (all nullable: incidents stored before have none).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("peak_absolute", "peak_relative", "baseline_at_peak")


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("incidents", sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
