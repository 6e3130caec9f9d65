"""Errors of the store, each one clear line with any database password masked."""

from __future__ import annotations

from raksha.errors import RakshaError


class StoreError(RakshaError):
    """The database cannot be reached, opened, migrated or written."""


class IncidentNotFound(StoreError):
    """No incident has the given id."""

    exit_code = 1


class ConcurrentUpdate(StoreError):
    """Somebody else changed the incident first; reload and try again."""

    exit_code = 1


class UnknownUnit(StoreError):
    """No patrol unit has the given id."""

    exit_code = 1


class UnitUnavailable(StoreError):
    """The patrol unit cannot take this (busy elsewhere, off duty, not dispatched here)."""

    exit_code = 1


class StalePosition(StoreError):
    """A position report older than the one stored, too old, from the future or impossible."""

    exit_code = 1
