"""Errors of user management and login (one line each, never a secret)."""

from __future__ import annotations

from raksha.errors import RakshaError


class AuthError(RakshaError):
    """A user-management request that cannot be done (unknown user, bad role, ...)."""


class LoginFailed(AuthError):
    """Wrong user name or password, or a disabled account (deliberately not saying which)."""


class LoginThrottled(AuthError):
    """Too many failed logins for this account or address; try again later."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
