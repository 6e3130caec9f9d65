"""Dashboard users: add, list, disable, look up and check a password.

There are no built-in accounts: the first user is made with `raksha users add`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from raksha.auth.errors import AuthError
from raksha.auth.passwords import dummy_hash, hash_password, verify_password
from raksha.auth.roles import Role
from raksha.auth.tables import users
from raksha.auth.totp import matching_step, new_secret
from raksha.incidents.model import utcnow
from raksha.store._db import db_errors

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{1,63}$")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    station_id: str | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    #: A second factor is set up (raksha users totp).
    totp_enrolled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role.value,
            "station_id": self.station_id,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "last_login_at": (
                None
                if self.last_login_at is None
                else self.last_login_at.isoformat().replace("+00:00", "Z")
            ),
        }


def _user(row: Any) -> User:
    return User(
        id=int(row.id),
        username=row.username,
        role=Role(row.role),
        station_id=row.station_id,
        disabled=bool(row.disabled),
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        totp_enrolled=getattr(row, "totp_secret", None) is not None,
    )


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise AuthError(f"unknown role {value!r}; known roles: {known}") from None


def _check_station(r: Role, station_id: str | None, known_stations: Sequence[str] | None) -> None:
    """Operators and supervisors need a (known) station; other roles have none."""
    if r.station_bound and not station_id:
        raise AuthError(f"a {r.value} works for one station: give --station")
    if not r.station_bound and station_id:
        raise AuthError(f"a {r.value} is not bound to a station: leave out --station")
    if station_id and known_stations is not None and station_id not in known_stations:
        shown = ", ".join(known_stations) or "none configured"
        raise AuthError(f"unknown station {station_id!r}; known stations: {shown}")


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        username: str,
        role: Role | str,
        password: str,
        *,
        station_id: str | None = None,
        known_stations: list[str] | None = None,
    ) -> User:
        """Create a user. Operators and supervisors need a station; other roles have none."""
        r = role if isinstance(role, Role) else parse_role(role)
        if not USERNAME.match(username):
            raise AuthError(
                f"invalid user name {username!r}: 2-64 letters, digits or . _ @ -, "
                "starting with a letter or digit"
            )
        _check_station(r, station_id, known_stations)
        digest = hash_password(password, username)
        now = utcnow()
        if self.get(username) is not None:
            raise AuthError(f"user {username!r} already exists")
        with db_errors(f"cannot add user {username}"), self.engine.begin() as c:
            try:
                c.execute(
                    insert(users),
                    {
                        "username": username,
                        "role": r.value,
                        "station_id": station_id,
                        "password_hash": digest,
                        "disabled": False,
                        "created_at": now,
                        "updated_at": now,
                        "last_login_at": None,
                    },
                )
            except IntegrityError:
                raise AuthError(f"user {username!r} already exists") from None
        found = self.get(username)
        if found is None:  # pragma: no cover
            raise AuthError(f"user {username!r} was not stored")
        return found

    def exists(self, username: str) -> bool:
        return self.get(username) is not None

    def get(self, username: str) -> User | None:
        with db_errors(f"cannot read user {username}"), self.engine.connect() as c:
            row = c.execute(select(users).where(users.c.username == username)).first()
        return None if row is None else _user(row)

    def get_by_id(self, user_id: int) -> User | None:
        with db_errors("cannot read user"), self.engine.connect() as c:
            row = c.execute(select(users).where(users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def list(self) -> list[User]:
        with db_errors("cannot list users"), self.engine.connect() as c:
            return [_user(r) for r in c.execute(select(users).order_by(users.c.username))]

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        with db_errors(f"cannot update user {username}"), self.engine.begin() as c:
            res = c.execute(
                update(users)
                .where(users.c.username == username)
                .values(disabled=disabled, updated_at=utcnow())
            )
        if res.rowcount != 1:
            raise AuthError(f"no user named {username!r}")
        found = self.get(username)
        assert found is not None
        return found

    def set_role(
        self,
        username: str,
        role: Role | str,
        *,
        station_id: str | None = None,
        known_stations: Sequence[str] | None = None,
    ) -> User:
        """Give `username` another role and station (the same rules as `add`)."""
        r = role if isinstance(role, Role) else parse_role(role)
        _check_station(r, station_id, known_stations)
        with db_errors(f"cannot update user {username}"), self.engine.begin() as c:
            res = c.execute(
                update(users)
                .where(users.c.username == username)
                .values(role=r.value, station_id=station_id, updated_at=utcnow())
            )
        if res.rowcount != 1:
            raise AuthError(f"no user named {username!r}")
        found = self.get(username)
        assert found is not None
        return found

    def set_password(self, username: str, password: str) -> User:
        """Give `username` a new password (the policy applies; AuthError names the rule)."""
        digest = hash_password(password, username)
        with db_errors(f"cannot update user {username}"), self.engine.begin() as c:
            res = c.execute(
                update(users)
                .where(users.c.username == username)
                .values(password_hash=digest, updated_at=utcnow())
            )
        if res.rowcount != 1:
            raise AuthError(f"no user named {username!r}")
        found = self.get(username)
        assert found is not None
        return found

    def enroll_totp(self, username: str) -> str:
        """Give `username` a new TOTP secret (replacing any earlier one); returns it, to show
        once to the officer setting up their authenticator app."""
        secret = new_secret()
        with db_errors(f"cannot update user {username}"), self.engine.begin() as c:
            res = c.execute(
                update(users)
                .where(users.c.username == username)
                .values(totp_secret=secret, totp_last_step=None, updated_at=utcnow())
            )
        if res.rowcount != 1:
            raise AuthError(f"no user named {username!r}")
        return secret

    def check_totp(self, user_id: int, code: str, *, now: float | None = None) -> bool:
        """Whether `code` is a current code of the user's second factor not used before
        (its step is recorded in the same statement that checks it was not)."""
        with db_errors("cannot check the code"), self.engine.connect() as c:
            secret = c.execute(
                select(users.c.totp_secret).where(users.c.id == user_id)
            ).scalar_one_or_none()
        if secret is None:
            return False
        step = matching_step(str(secret), code, now=now)
        if step is None:
            return False
        with db_errors("cannot record the code"), self.engine.begin() as c:
            res = c.execute(
                update(users)
                .where(
                    users.c.id == user_id,
                    or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
                )
                .values(totp_last_step=step)
            )
        return res.rowcount == 1

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right and the account enabled, else None.

        An unknown user costs the same Argon2 verification as a known one.
        """
        with db_errors("cannot check the login"), self.engine.connect() as c:
            row = c.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            verify_password(password, dummy_hash())
            return None
        if not verify_password(password, row.password_hash) or row.disabled:
            return None
        with db_errors("cannot record the login"), self.engine.begin() as c:
            c.execute(update(users).where(users.c.id == row.id).values(last_login_at=utcnow()))
        return self.get_by_id(int(row.id)) or _user(row)
