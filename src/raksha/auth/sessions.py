"""Server-side sessions: a random cookie value whose SHA-256 is the key of a database row.

A session ends at logout, when idle longer than `idle_s`, or `absolute_s` after login,
whichever comes first; expired rows are deleted when met and by `purge_expired`. Each session
has its own CSRF token, required on every state-changing request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update

from raksha.auth.tables import sessions
from raksha.incidents.model import utcnow
from raksha.store._db import db_errors


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user_id: int
    csrf_token: str
    created_at: datetime
    expires_at: datetime

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(
            self.csrf_token.encode(), str(presented).encode()
        )


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just made: `token` goes into the cookie and is never stored."""

    token: str
    session: Session


class SessionStore:
    def __init__(self, engine: Engine, *, idle_s: float = 1800, absolute_s: float = 43200):
        self.engine = engine
        self.idle = timedelta(seconds=idle_s)
        self.absolute = timedelta(seconds=absolute_s)

    def create(self, user_id: int, *, address: str | None = None) -> NewSession:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        expires = min(now + self.idle, now + self.absolute)
        digest = token_hash(token)
        with db_errors("cannot start a session"), self.engine.begin() as c:
            c.execute(
                insert(sessions),
                {
                    "token_hash": digest,
                    "user_id": user_id,
                    "csrf_token": csrf,
                    "created_at": now,
                    "last_seen_at": now,
                    "expires_at": expires,
                    "address": (address or "")[:64] or None,
                },
            )
        return NewSession(token, Session(digest, user_id, csrf, now, expires))

    def touch(self, token: str, *, now: datetime | None = None) -> Session | None:
        """The live session of `token`, its expiry moved forward; None when unknown or expired
        (an expired row is deleted)."""
        if not token or len(token) > 256:
            return None
        digest = token_hash(token)
        at = now or utcnow()
        with db_errors("cannot read the session"), self.engine.begin() as c:
            row = c.execute(select(sessions).where(sessions.c.token_hash == digest)).first()
            if row is None:
                return None
            if row.expires_at <= at:
                c.execute(delete(sessions).where(sessions.c.token_hash == digest))
                return None
            expires = min(at + self.idle, row.created_at + self.absolute)
            if expires - row.expires_at > timedelta(seconds=30):  # write at most twice a minute
                c.execute(
                    update(sessions)
                    .where(sessions.c.token_hash == digest)
                    .values(last_seen_at=at, expires_at=expires)
                )
            else:
                expires = row.expires_at
        return Session(digest, int(row.user_id), row.csrf_token, row.created_at, expires)

    def peek(self, token: str, *, now: datetime | None = None) -> Session | None:
        """Like `touch` without moving the expiry (for long-lived streams re-checking)."""
        if not token or len(token) > 256:
            return None
        digest = token_hash(token)
        with db_errors("cannot read the session"), self.engine.connect() as c:
            row = c.execute(select(sessions).where(sessions.c.token_hash == digest)).first()
        if row is None or row.expires_at <= (now or utcnow()):
            return None
        return Session(digest, int(row.user_id), row.csrf_token, row.created_at, row.expires_at)

    def alive(self, token_hash: str, *, now: datetime | None = None) -> bool:
        """Whether the session with this token hash still exists and has not expired (for
        long-lived streams re-checking; the expiry does not move)."""
        with db_errors("cannot read the session"), self.engine.connect() as c:
            expires = c.execute(
                select(sessions.c.expires_at).where(sessions.c.token_hash == token_hash)
            ).scalar_one_or_none()
        return expires is not None and bool(expires > (now or utcnow()))

    def end(self, token_or_hash: str, *, is_hash: bool = False) -> None:
        digest = token_or_hash if is_hash else token_hash(token_or_hash)
        with db_errors("cannot end the session"), self.engine.begin() as c:
            c.execute(delete(sessions).where(sessions.c.token_hash == digest))

    def end_all_for(self, user_id: int) -> int:
        with db_errors("cannot end sessions"), self.engine.begin() as c:
            res = c.execute(delete(sessions).where(sessions.c.user_id == user_id))
        return int(res.rowcount or 0)

    def purge_expired(self, *, now: datetime | None = None) -> int:
        with db_errors("cannot purge sessions"), self.engine.begin() as c:
            res = c.execute(delete(sessions).where(sessions.c.expires_at <= (now or utcnow())))
        return int(res.rowcount or 0)
