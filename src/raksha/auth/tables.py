"""Tables of the dashboard's users and their server-side sessions (migration 0002).

They live on the store's `metadata`, so the schema check of the store covers them too.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from raksha.store.columns import UtcDateTime
from raksha.store.tables import metadata

ROLES = ("operator", "supervisor", "control_room", "auditor", "admin")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("station_id", String(128), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("last_login_at", UtcDateTime(), nullable=True),
    # A second factor (TOTP, RFC 6238): the shared secret, and the last time step used, so a
    # code is accepted once (migration 0008).
    Column("totp_secret", String(64), nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),
    CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})", name="role"),
)

sessions = Table(
    "sessions",
    metadata,
    # SHA-256 of the cookie value: a database reader cannot replay a session.
    Column("token_hash", String(64), primary_key=True),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("address", String(64), nullable=True),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)
