"""Password hashing with Argon2id (pwdlib's recommended parameters)."""

from __future__ import annotations

from functools import lru_cache

from pwdlib import PasswordHash

from raksha.auth.errors import AuthError

MIN_LENGTH = 10
MAX_LENGTH = 1024


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def check_password_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise AuthError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise AuthError(f"the password may have at most {MAX_LENGTH} characters")
    if not password.strip():
        raise AuthError("the password may not be blank")


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return bool(_hasher().verify(password, password_hash))
    except Exception:  # an unreadable hash never lets anyone in
        return False


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to verify against for unknown users, so timing does not reveal who exists."""
    return _hasher().hash("raksha-no-such-user-password")
