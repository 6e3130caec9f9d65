"""Close two ways around the append-only audit log: on SQLite, `INSERT OR REPLACE` deletes
the row it replaces without firing DELETE triggers, so an insert over an existing entry (or
the head) is refused now; and on both databases the head may not change its hash while its
number stays (it moves forward with each entry, or not at all).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_LOG = "the audit log is append-only"
_HEAD = "the audit head may only move forward"

SQLITE_UP = (
    f"CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
    f"WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq) "
    f"BEGIN SELECT RAISE(ABORT, '{_LOG}'); END",
    f"CREATE TRIGGER audit_head_no_replace BEFORE INSERT ON audit_head "
    f"WHEN EXISTS (SELECT 1 FROM audit_head WHERE id = NEW.id) "
    f"BEGIN SELECT RAISE(ABORT, '{_HEAD}'); END",
    "DROP TRIGGER IF EXISTS audit_head_forward",
    f"CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head "
    f"WHEN NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) "
    f"BEGIN SELECT RAISE(ABORT, '{_HEAD}'); END",
)
SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS audit_head_forward",
    f"CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head WHEN NEW.seq < OLD.seq "
    f"BEGIN SELECT RAISE(ABORT, '{_HEAD}'); END",
    "DROP TRIGGER IF EXISTS audit_head_no_replace",
    "DROP TRIGGER IF EXISTS audit_log_no_replace",
)

POSTGRES_UP = (
    f"CREATE OR REPLACE FUNCTION raksha_audit_head_forward() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'DELETE' OR NEW.seq < OLD.seq "
    f"OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) THEN "
    f"RAISE EXCEPTION '{_HEAD}'; END IF; RETURN NEW; END $$",
)
POSTGRES_DOWN = (
    f"CREATE OR REPLACE FUNCTION raksha_audit_head_forward() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'DELETE' OR NEW.seq < OLD.seq THEN "
    f"RAISE EXCEPTION '{_HEAD}'; END IF; RETURN NEW; END $$",
)


def _run(statements: tuple[str, ...]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _run(POSTGRES_UP if postgres else SQLITE_UP)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _run(POSTGRES_DOWN if postgres else SQLITE_DOWN)
