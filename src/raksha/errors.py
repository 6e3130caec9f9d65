"""Errors that reach a user as one clear line (never a traceback).

Every error a user can cause (bad input, missing model, wrong config) is a subclass of
`RakshaError`. The CLI prints `str(error)` on stderr and exits with `exit_code`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def N_(message: str) -> str:
    """Marks a message for the dashboard's catalogue (raksha.web.i18n extracts it); it is
    translated where a page shows it."""
    return message


class Message(str):
    """A message with values: English as a `str` (logs, the CLI, the API), and on a page in
    the page's language through `render` with the catalogue's translation of `template`.
    A value that is itself a Message (a state's name), or a tuple of them (a list of
    actions, shown joined by commas), is translated too."""

    template: str
    params: Mapping[str, object]

    def __new__(cls, template: str, /, **params: object) -> Message:
        obj = super().__new__(cls, _fill(template, params, _same))
        obj.template = template
        obj.params = dict(params)
        return obj

    def render(self, translate: Callable[[str], str]) -> str:
        try:
            return _fill(translate(self.template), self.params, translate)
        except (KeyError, ValueError, TypeError):  # a translation that lost a field
            return str(self)


def _same(text: str) -> str:
    return text


def _value(v: object, translate: Callable[[str], str]) -> object:
    if isinstance(v, Message):
        return v.render(translate)
    if isinstance(v, tuple) and all(isinstance(x, Message) for x in v):
        return ", ".join(x.render(translate) for x in v)
    return v


def _fill(text: str, params: Mapping[str, object], translate: Callable[[str], str]) -> str:
    if not params:
        return text
    return text % {k: _value(v, translate) for k, v in params.items()}


def message_of(exc: BaseException) -> str:
    """The exception's message, a Message where it was raised with one (so an adapter
    passing it on keeps its translation)."""
    first = exc.args[0] if len(exc.args) == 1 else None
    return first if isinstance(first, Message) else str(exc)


class RakshaError(Exception):
    """An error with a message fit for the user; the CLI exits with `exit_code`."""

    exit_code: int = 2


class ConfigError(RakshaError):
    """The configuration file or a setting is wrong."""


class SourceError(RakshaError):
    """A video source cannot be opened or read (missing, corrupt, unreachable)."""


class ModelError(RakshaError):
    """A model file is missing, corrupt or unusable."""
