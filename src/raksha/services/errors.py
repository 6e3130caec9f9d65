"""Why a service refused, with the HTTP status an adapter should answer with."""

from __future__ import annotations

from raksha.errors import RakshaError


class ServiceError(RakshaError):
    """A refusal the caller can act on; `status` is the HTTP status that fits it."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ServiceError):
    status = 400


class Invalid(ServiceError):
    """A request value the service cannot use (a time without a zone)."""

    status = 422


class NotFound(ServiceError):
    """Does not exist, or belongs to a station outside the caller's scope (the same reply)."""

    status = 404


class Conflict(ServiceError):
    """Not allowed in the incident's state, or it changed since the caller read it."""

    status = 409


class Gone(ServiceError):
    status = 410


class Unavailable(ServiceError):
    status = 503
