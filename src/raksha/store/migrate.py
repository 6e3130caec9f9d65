"""Bring a database to the newest schema with Alembic, configured in code (no alembic.ini).

    migrate("sqlite:///raksha.db")      # creates the file and every table if needed
    migrate(engine)                      # or an engine from make_engine()

Running it again is a no-op. On PostgreSQL a transaction-scoped advisory lock keeps two
processes from migrating at the same time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from raksha.store.engine import describe, display_url, is_postgres, make_engine
from raksha.store.errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Arbitrary constant naming Raksha's migration lock on PostgreSQL.
_PG_LOCK_ID = 0x5241_4B53


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (a lock file beside it), so
    `raksha run` and `raksha serve` starting together on a new database cannot both create
    the tables."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl

    lock_path = f"{database}.migrate-lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def _sqlite_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite's foreign keys off while migrating, back on after. A migration that changes a
    column rebuilds the table on SQLite (copy, drop, rename); with the keys on, dropping the
    old table would cascade into its children and delete their rows (the deliveries of
    every alert, when `alerts` is rebuilt). The pragma only takes effect outside a
    transaction, so it is set before the migration's transaction begins."""
    if conn.engine.url.get_backend_name() != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.commit()
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()


def _check_foreign_keys(conn: Connection) -> None:
    """After a migration on SQLite: every reference still points at a row (else the
    migration is rolled back)."""
    if conn.engine.url.get_backend_name() != "sqlite":
        return
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise StoreError(
            f"the migration left {len(broken)} broken reference(s) in {', '.join(tables)}; "
            "nothing was changed"
        )


def _move(engine: Engine, step: Callable[[Config, str], None], revision: str, what: str) -> None:
    """Run one Alembic command (upgrade or downgrade to `revision`) in one transaction: one
    process at a time, SQLite's foreign keys off for the table rebuilds and checked before
    commit."""
    try:
        with (
            _sqlite_file_lock(engine),
            engine.connect() as conn,
            _sqlite_keys_off(conn),
            conn.begin(),
        ):
            if is_postgres(engine):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
            step(alembic_config(conn), revision)
            _check_foreign_keys(conn)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot {what} database {display_url(engine.url)!r}: {describe(exc)}"
        ) from None


def migrate(target: str | URL | Engine, revision: str = "head") -> Engine:
    """Upgrade the database to `revision` (default: the newest) and return its engine."""
    engine = target if isinstance(target, Engine) else make_engine(target)
    _move(engine, command.upgrade, revision, "migrate")
    return engine


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to `revision` (for tests and a rollback by hand), keeping
    every row as `migrate` does."""
    _move(engine, command.downgrade, revision, "downgrade")
