"""Tables of the hash-chained audit log (migration 0002).

`audit_log` holds the entries, numbered 1, 2, 3, ... by `seq`; `audit_head` is one row with the
number and hash of the newest entry, so that deleting the newest entries is detected too.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from raksha.store.columns import UtcDateTime, json_type
from raksha.store.tables import metadata

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=True),
    Column("station_id", String(128), nullable=True),
    Column("address", String(64), nullable=True),
    Column("details", json_type(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "at"),
    Index(None, "actor"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=True),
)

#: The `prev_hash` of the first entry.
GENESIS = "0" * 64
