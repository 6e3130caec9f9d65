"""Time-based one-time codes (TOTP, RFC 6238: 6 digits, 30 s steps), the second factor of
the roles that can see everything or unblur evidence (admin, supervisor, control room).

A code is accepted for its own step and the one before and after (a phone's clock may be
half a minute off), and only once: the step of the last accepted code is stored and a code
of that step or an earlier one is refused (`UserStore.use_totp_step` makes that atomic).
"""

from __future__ import annotations

import hmac
import time

import pyotp

ISSUER = "Raksha"
#: Steps either side of now a code may belong to.
WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The `otpauth://` link an authenticator app reads (as a QR code or typed in)."""
    return str(pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER))


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step `code` belongs to (within WINDOW of now), or None."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    at = time.time() if now is None else now
    current = int(at // totp.interval)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            return step
    return None
