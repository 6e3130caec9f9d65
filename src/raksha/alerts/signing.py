"""HMAC-SHA256 signatures for webhook bodies, for senders and receivers.

The signed message is `<timestamp>.<body>`: the Unix time in whole seconds as ASCII digits, a
dot, and the exact body bytes. The header value is `sha256=<lowercase hex digest>`. Binding the
timestamp into the signature lets a receiver refuse replays older than its allowed skew.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Raksha-Signature"
TIMESTAMP_HEADER = "X-Raksha-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Raksha-Delivery-Attempt"

_PREFIX = "sha256="


def _digest(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """The `X-Raksha-Signature` value for `body` sent at `timestamp` (Unix seconds)."""
    if not secret:
        raise ValueError("the webhook secret is empty")
    return _PREFIX + _digest(secret, str(timestamp), body)


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    header: str,
    max_skew_s: float = 300.0,
    *,
    now: float | None = None,
) -> bool:
    """Whether `header` is a valid signature of `body` at `timestamp`, made with `secret`.

    False when the timestamp is not whole Unix seconds, lies more than `max_skew_s` from `now`
    (default: the current time), or the signature does not match. The digests are compared in
    constant time.
    """
    if not secret or not timestamp.isascii() or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > max_skew_s:
        return False
    if not header.startswith(_PREFIX):
        return False
    expected = _digest(secret, timestamp, body)
    given = header[len(_PREFIX) :].strip().lower()
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii", "replace"))
