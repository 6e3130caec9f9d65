"""Password hashing with Argon2id (pwdlib's recommended parameters)."""

from __future__ import annotations

import threading
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


#: Argon2id checks running at once, at most (each holds its memory cost, 64 MiB with the
#: recommended parameters): a burst of logins queues here instead of filling the memory.
MAX_CONCURRENT_HASHES = 2
#: How long a check waits for its turn before the login is refused as busy (short: a waiting
#: login holds one of the server's worker threads).
HASH_WAIT_S = 2.0
_hash_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


class HashingBusy(AuthError):
    """Too many password checks are waiting; try again shortly."""


def verify_password(password: str, password_hash: str) -> bool:
    """Whether `password` matches; at most MAX_CONCURRENT_HASHES checks run at once (raises
    HashingBusy after HASH_WAIT_S in the queue)."""
    if len(password) > MAX_LENGTH:
        return False
    if not _hash_slots.acquire(timeout=HASH_WAIT_S):
        raise HashingBusy("the server is busy checking passwords; try again in a few seconds")
    try:
        return bool(_hasher().verify(password, password_hash))
    except Exception:  # an unreadable hash never lets anyone in
        return False
    finally:
        _hash_slots.release()


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to verify against for unknown users, so timing does not reveal who exists."""
    return _hasher().hash("raksha-no-such-user-password")
