"""Password hashing with Argon2id (pwdlib's recommended parameters)."""

from __future__ import annotations

import threading
from functools import lru_cache

from pwdlib import PasswordHash

from raksha.auth.errors import AuthError
from raksha.errors import N_, Message

MIN_LENGTH = 12
MAX_LENGTH = 1024


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


#: Words a guesser tries first, whatever digits and symbols are added to them (our own short
#: list of the usual suspects; the length rule does most of the work).
COMMON_WORDS = frozenset(
    [
        "password",
        "passwort",
        "passw0rd",
        "qwerty",
        "qwertyuiop",
        "asdfgh",
        "asdfghjkl",
        "zxcvbn",
        "letmein",
        "welcome",
        "admin",
        "administrator",
        "root",
        "login",
        "master",
        "secret",
        "iloveyou",
        "monkey",
        "dragon",
        "football",
        "cricket",
        "baseball",
        "sunshine",
        "princess",
        "shadow",
        "superman",
        "batman",
        "trustno1",
        "freedom",
        "whatever",
        "abc",
        "abcdef",
        "abcdefgh",
        "changeme",
        "default",
        "guest",
        "test",
        "testing",
        "hello",
        "hello123",
        "india",
        "bharat",
        "lucknow",
        "police",
        "station",
        "officer",
        "raksha",
        "operator",
        "supervisor",
        "control",
        "auditor",
    ]
)
_SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")


def _core(password: str) -> str:
    """The word inside a password: lower case, without the digits and symbols around it, with
    the usual digit-for-letter swaps inside it undone ("P@ssw0rd2026!" -> "password")."""
    inner = password.lower().strip("0123456789!@#$%^&*()_+-=.,;:?/~` ")
    swapped = inner.translate(str.maketrans("013457@$", "oieastas"))
    return "".join(c for c in swapped if c.isalpha())


def _is_common(core: str) -> bool:
    """A common word, or one repeated ("adminadmin")."""
    if core in COMMON_WORDS:
        return True
    return any(len(core) % len(w) == 0 and core == w * (len(core) // len(w)) for w in COMMON_WORDS)


def _has_run(text: str, run: int = 8) -> bool:
    """Whether `text` holds `run` characters of a keyboard row or the alphabet or digits, in
    either direction."""
    for i in range(len(text) - run + 1):
        piece = text[i : i + run]
        if any(piece in seq or piece in seq[::-1] for seq in _SEQUENCES):
            return True
    return False


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` is refused, or None: at least MIN_LENGTH characters, not a common
    word (or the user's own name) with digits and symbols around it, at least five
    different characters, no long run along a keyboard row or the alphabet."""
    if len(password) < MIN_LENGTH:
        return Message(N_("the password must have at least %(n)d characters"), n=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return Message(N_("the password may have at most %(n)d characters"), n=MAX_LENGTH)
    if not password.strip():
        return Message(N_("the password may not be blank"))
    lowered = password.lower()
    if _is_common(_core(password)):
        return Message(N_("the password is a common word with digits or symbols around it"))
    if len(username) >= 3 and username.lower() in lowered:
        return Message(N_("the password may not contain the user name"))
    if len(set(lowered)) < 5:
        return Message(N_("the password has too few different characters"))
    if _has_run(lowered):
        return Message(N_("the password is a run along the keyboard or the alphabet"))
    return None


def check_password_policy(password: str, username: str = "") -> None:
    problem = password_problem(password, username)
    if problem is not None:
        raise AuthError(problem)


def hash_password(password: str, username: str = "") -> str:
    check_password_policy(password, username)
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
