"""PostgreSQL for tests: the real server on 127.0.0.1:5432 (database `test`), one fresh schema
per use, dropped afterwards; schemas left by killed runs are cleaned up. PostgreSQL down:
skipped on a developer's machine, a failure in CI (CI=true)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text

from raksha.store import StoreError, display_url, make_engine

PG_URL = os.environ.get("RAKSHA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(msg: str) -> None:
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def admin_engine(what: str, prefix: str) -> Engine:
    """An engine on the test database, with stale `prefix` schemas of dead runs dropped."""
    try:
        engine = make_engine(PG_URL)
    except StoreError as exc:
        skip_or_fail(f"PostgreSQL is needed for {what} at {display_url(PG_URL)}: {exc}")
        raise
    drop_stale(engine, prefix)
    return engine


def drop_stale(engine: Engine, prefix: str) -> None:
    with engine.begin() as conn:
        names = conn.execute(
            text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"),
            {"p": prefix + "%"},
        ).scalars()
        for name in list(names):
            m = re.fullmatch(re.escape(prefix) + r"(\d+)_[0-9a-f]+", name)
            if m and not _alive(int(m.group(1))):
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def pg_schema(admin: Engine, prefix: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema of their own, dropped afterwards."""
    schema = f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@contextmanager
def store_url(kind: str, tmp_path: Path, admin: Callable[[], Engine], prefix: str) -> Iterator[str]:
    """A fresh database of `kind` ("sqlite" or "postgresql"): a file under `tmp_path`, or a
    PostgreSQL schema of its own (`admin()` is asked only then), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'raksha.db'}"
        return
    with pg_schema(admin(), prefix) as url:
        yield url
