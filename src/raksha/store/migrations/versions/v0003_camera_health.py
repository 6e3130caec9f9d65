"""Camera health: analysed frames per second, frames dropped and p95 capture-to-score latency,
as last reported by the camera's worker.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("analysed_fps", "frames_dropped", "p95_latency_ms")


def upgrade() -> None:
    op.add_column("cameras", sa.Column("analysed_fps", sa.Float(), nullable=True))
    op.add_column("cameras", sa.Column("frames_dropped", sa.BigInteger(), nullable=True))
    op.add_column("cameras", sa.Column("p95_latency_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
