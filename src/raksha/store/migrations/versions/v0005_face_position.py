"""Where an incident's face was last seen (centre and width, px of the camera's frame), so
that the store can merge a re-detection of the same person whichever process found it; and
an index for the merge lookup by camera and last sighting.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("face_cx", "face_cy", "face_w")
_INDEX = "ix_incidents_camera_id_last_seen_at"


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("incidents", sa.Column(name, sa.Float(), nullable=True))
    op.create_index(op.f(_INDEX), "incidents", ["camera_id", "last_seen_at"])


def downgrade() -> None:
    op.drop_index(op.f(_INDEX), table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
