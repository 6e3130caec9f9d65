"""Errors that reach a user as one clear line (never a traceback).

Every error a user can cause (bad input, missing model, wrong config) is a subclass of
`RakshaError`. The CLI prints `str(error)` on stderr and exits with `exit_code`.
"""

from __future__ import annotations


class RakshaError(Exception):
    """An error with a message fit for the user; the CLI exits with `exit_code`."""

    exit_code: int = 2


class ConfigError(RakshaError):
    """The configuration file or a setting is wrong."""


class SourceError(RakshaError):
    """A video source cannot be opened or read (missing, corrupt, unreachable)."""


class ModelError(RakshaError):
    """A model file is missing, corrupt or unusable."""
