"""Evidence governance: event clips (a third evidence kind) and the SHA-256 of each file's
content (the plain bytes; the recorded `sha256` stays the hash of the bytes on disk, which
changes when a key rotation re-encrypts them); legal holds on an incident's evidence; the
reason an officer gave for dismissing an incident; and the would-be incidents of a model or
threshold run in shadow beside the live one (stored, never alerted).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from raksha.store.columns import UtcDateTime, json_type

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

_OLD_KINDS = ("face", "frame_blurred")
_NEW_KINDS = ("face", "frame_blurred", "clip")
_REASONS = ("no_distress", "not_a_person", "duplicate", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("incident_evidence") as batch:
        batch.add_column(sa.Column("content_sha256", sa.String(64), nullable=True))
        batch.drop_constraint(op.f("ck_incident_evidence_kind"), type_="check")
        batch.create_check_constraint("kind", _in("kind", _NEW_KINDS))
    with op.batch_alter_table("incident_actions") as batch:
        batch.add_column(sa.Column("reason", sa.String(32), nullable=True))
        batch.create_check_constraint("reason", f"reason IS NULL OR {_in('reason', _REASONS)}")
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "incident_id",
            sa.String(36),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("case_number", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(128), nullable=False),
        sa.Column("placed_at", UtcDateTime(), nullable=False),
        sa.Column("lifted_by", sa.String(128), nullable=True),
        sa.Column("lifted_at", UtcDateTime(), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
    )
    op.create_index(op.f("ix_legal_holds_incident_id"), "legal_holds", ["incident_id"])
    op.create_table(
        "shadow_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("hotspot_id", sa.String(128), nullable=False),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("person_key", sa.String(256), nullable=True),
        sa.Column("event_start_s", sa.Float(), nullable=True),
        sa.Column("event_end_s", sa.Float(), nullable=True),
        sa.Column("peak_distress", sa.Float(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("thresholds", json_type(), nullable=False),
        # The live incident of the same person at the same time, when the live model had one.
        sa.Column("live_incident_id", sa.String(36), nullable=True),
    )
    op.create_index(
        op.f("ix_shadow_events_camera_id_opened_at"), "shadow_events", ["camera_id", "opened_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_shadow_events_camera_id_opened_at"), table_name="shadow_events")
    op.drop_table("shadow_events")
    op.drop_index(op.f("ix_legal_holds_incident_id"), table_name="legal_holds")
    op.drop_table("legal_holds")
    with op.batch_alter_table("incident_actions") as batch:
        batch.drop_constraint(op.f("ck_incident_actions_reason"), type_="check")
        batch.drop_column("reason")
    with op.batch_alter_table("incident_evidence") as batch:
        batch.drop_constraint(op.f("ck_incident_evidence_kind"), type_="check")
        batch.create_check_constraint("kind", _in("kind", _OLD_KINDS))
        batch.drop_column("content_sha256")
