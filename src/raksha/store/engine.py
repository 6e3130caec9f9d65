"""Open the database: SQLite by default (WAL, synchronous=FULL, foreign keys), PostgreSQL by URL.

    engine = make_engine("sqlite:///raksha.db")
    engine = make_engine("postgresql+psycopg://raksha@db.example/raksha")

Errors are one line (`StoreError`) with any password in the URL masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError, StatementError
from sqlalchemy.pool import StaticPool

from raksha.redact import redact
from raksha.store.errors import StoreError

#: How long a SQLite writer waits for another writer's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: How long a PostgreSQL connection attempt may take.
PG_CONNECT_TIMEOUT_S = 5


def display_url(url: str | URL) -> str:
    """The URL as it may be shown: the password replaced by ***."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return redact(url)


def parse_url(url: str | URL) -> URL:
    """Parse and normalise a database URL (plain `postgresql://` means psycopg 3)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        raise StoreError(
            f"invalid database URL {display_url(url)!r}; expected e.g. sqlite:///raksha.db "
            "or postgresql+psycopg://user@host/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        else:
            raise StoreError(
                f"unsupported PostgreSQL driver in {display_url(parsed)!r}; "
                "use postgresql+psycopg://"
            )
    elif backend == "sqlite":
        if parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
            raise StoreError(
                f"unsupported SQLite driver in {display_url(parsed)!r}; use sqlite:///PATH"
            )
    else:
        raise StoreError(
            f"unsupported database {display_url(parsed)!r}; use sqlite:///PATH or "
            "postgresql+psycopg://user@host/dbname"
        )
    return parsed


def make_engine(url: str | URL, *, check: bool = True, echo: bool = False) -> Engine:
    """An engine for `url`; with `check`, connect once so a bad or unreachable DB fails here."""
    parsed = parse_url(url)
    shown = display_url(parsed)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(parsed, echo)
        else:
            engine = _postgres_engine(parsed, echo)
    except (ArgumentError, NoSuchModuleError, TypeError) as exc:
        raise StoreError(f"cannot use database {shown!r}: {redact(str(exc))}") from None
    if check:
        try:
            with engine.connect():
                pass
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open database {shown!r}: {describe(exc)}") from None
    return engine


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def describe(exc: BaseException) -> str:
    """The first line of a database error, without SQL, parameters or passwords."""
    inner: BaseException = exc
    if isinstance(exc, StatementError) and exc.orig is not None:
        inner = exc.orig
    text = str(inner).strip().splitlines()
    first = text[0] if text else type(inner).__name__
    return redact(first)


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        parent = Path(database).expanduser().resolve().parent
        if not parent.is_dir():
            raise StoreError(
                f"cannot open database {display_url(url)!r}: folder {parent} does not exist"
            )
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if in_memory:
        # One shared connection, so every thread sees the same in-memory database.
        connect_args["check_same_thread"] = False
        engine = create_engine(url, echo=echo, connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = create_engine(url, echo=echo, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            if not in_memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cur.close()

    return engine


def _postgres_engine(url: URL, echo: bool) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)
