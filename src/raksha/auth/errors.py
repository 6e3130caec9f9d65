"""Errors of user management (one line each, never a secret)."""

from __future__ import annotations

from raksha.errors import RakshaError


class AuthError(RakshaError):
    """A user-management request that cannot be done (unknown user, bad role, ...)."""
