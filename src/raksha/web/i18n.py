"""The dashboard's languages: English (the source language, written in the templates, the
page scripts and this package's code) and Hindi (`locale/hi/LC_MESSAGES/messages.po`).

The catalogues are compiled in memory when this module is imported (Babel reads the `.po`
and writes the `.mo` into a buffer that `gettext.GNUTranslations` reads), so no binary is
kept in the repository. The language of a request is its `lang` cookie (set by the switch in
the page header, `/lang/{code}`), else the best of hi / en in its `Accept-Language`, else
English; `LanguageMiddleware` makes it the current language while the request is handled,
so the templates' `_()` and `{% trans %}`, and `gettext` in this package's code, speak it.
The current language is a context variable: each request (thread or task) has its own while
the Jinja2 environment, shared by all, never changes after import.

Updating the catalogues after a change of text (the mapping is `babel.cfg`):

    pybabel extract -F babel.cfg --no-wrap --sort-by-file --project=Raksha \
        --copyright-holder="Raksha contributors" -o src/raksha/web/locale/messages.pot .
    pybabel update --no-wrap -i src/raksha/web/locale/messages.pot -d src/raksha/web/locale

(the mapping also reads `raksha.errors.N_` in the store, the services, the incidents and
auth packages: their refusals with values are `raksha.errors.Message`s, shown through
`localize`), then translate the new or fuzzy messages of `hi/LC_MESSAGES/messages.po`
(tests/test_web_i18n.py fails while one lacks its Hindi).
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from raksha.errors import Message

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
SOURCE = "en"
#: Code -> the language's name in itself (as the switch shows it).
LANGUAGES: Mapping[str, str] = {"en": "English", "hi": "हिन्दी"}
COOKIE = "lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
#: The page scripts whose messages each page carries (in its `<script id="i18n">` block).
SCRIPT_SUFFIX = ".js"


def N_(message: str) -> str:
    """Marks a message for the catalogue where it is defined; it is translated where shown."""
    return message


#: Fixed messages of the API and the services that the pages show (a refusal's detail).
KNOWN_MESSAGES = frozenset(
    {
        N_("wrong user name or password"),
        N_("enter the 6-digit code from your authenticator app"),
        N_("wrong or already used code"),
        N_("the current password is wrong"),
        N_("the server is busy checking passwords; try again in a few seconds"),
        N_("You cannot disable your own account."),
        N_("You cannot change your own role."),
    }
)


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalogue(lang: str) -> Catalog:
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def compile_catalogue(catalog: Catalog) -> _gettext.GNUTranslations:
    """The catalogue as gettext reads it: a `.mo` written into memory (fuzzy and untranslated
    messages left out, so they fall back to English)."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def script_messages(catalog: Catalog, translations: _gettext.NullTranslations) -> dict[str, Any]:
    """What the page scripts need of a catalogue: their messages (those found in a `.js` file)
    with the translation (a list of the plural forms for a plural message) and which form
    0, 1 and 2 or more take."""
    messages: dict[str, str | list[str]] = {}
    for m in catalog:
        in_script = any(f.endswith(SCRIPT_SUFFIX) for f, _ in m.locations)
        if not m.id or m.fuzzy or m.context or not in_script:
            continue
        if isinstance(m.id, tuple | list):
            forms = [str(s) for s in m.string] if isinstance(m.string, tuple | list) else []
            if forms and all(forms):
                messages[str(m.id[0])] = forms
        elif isinstance(m.string, str) and m.string:
            messages[str(m.id)] = m.string
    plural = getattr(translations, "plural", None)
    forms_of = [int(plural(n)) for n in (0, 1, 2)] if callable(plural) else [1, 0, 1]
    return {"plural": forms_of, "messages": messages}


def _load() -> tuple[dict[str, _gettext.NullTranslations], dict[str, dict[str, Any]]]:
    """Each language's translations and its page scripts' messages (English: the messages
    themselves, so nothing to look up)."""
    translations: dict[str, _gettext.NullTranslations] = {SOURCE: _gettext.NullTranslations()}
    scripts: dict[str, dict[str, Any]] = {
        SOURCE: {"lang": SOURCE, "plural": [1, 0, 1], "messages": {}}
    }
    for lang in LANGUAGES:
        if lang != SOURCE:
            catalog = read_catalogue(lang)
            translations[lang] = compile_catalogue(catalog)
            scripts[lang] = {"lang": lang, **script_messages(catalog, translations[lang])}
    return translations, scripts


TRANSLATIONS, SCRIPT_CATALOGUES = _load()

_current: ContextVar[str] = ContextVar("raksha_web_language", default=SOURCE)


def current() -> str:
    """The language of the request being handled (English outside a request)."""
    return _current.get()


@contextmanager
def using(lang: str) -> Iterator[str]:
    """Speak `lang` (an unknown code: English) inside the block."""
    token = _current.set(lang if lang in TRANSLATIONS else SOURCE)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _t() -> _gettext.NullTranslations:
    return TRANSLATIONS[_current.get()]


def gettext(message: str) -> str:
    """`message` in the current language (itself where the catalogue has none)."""
    return _t().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _t().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return _t().pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return _t().npgettext(context, singular, plural, n)


def known_message(text: str) -> str:
    """A message of another layer in the current language when it is one of KNOWN_MESSAGES
    (those are in the catalogue), else as it is."""
    return gettext(text) if text in KNOWN_MESSAGES else text


def localize(text: object) -> str:
    """A refusal's detail in the current language: a `raksha.errors.Message` (a message of
    another layer with its values, marked for the catalogue where it is raised) through the
    catalogue, else as `known_message`."""
    if isinstance(text, Message):
        return text.render(gettext)
    return known_message(str(text))


def script_catalogue(lang: str | None = None) -> dict[str, Any]:
    """The page scripts' messages in `lang` (default: the current language)."""
    return SCRIPT_CATALOGUES.get(lang or current(), SCRIPT_CATALOGUES[SOURCE])


def short_day(day: date) -> str:
    """'22 Nov' ('22 नव॰' in Hindi): the day and the month's short name."""
    return format_date(day, "d MMM", locale=current())


def from_accept_language(header: str) -> str | None:
    """The best of our languages in an Accept-Language header ('hi-IN,hi;q=0.9,en;q=0.8'),
    by its weights (the first listed wins a tie); None when it names none of them."""
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().split("-", 1)[0].lower()
        if primary not in LANGUAGES:
            continue
        weight = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight <= 0.0:
            continue
        if best is None or (weight, -i) > (best[0], best[1]):
            best = (weight, -i, primary)
    return best[2] if best is not None else None


def language_of(conn: HTTPConnection) -> str:
    """The request's language: the `lang` cookie, else Accept-Language, else English."""
    chosen = conn.cookies.get(COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return from_accept_language(conn.headers.get("accept-language", "")) or SOURCE


class LanguageMiddleware:
    """Makes the request's language the current one while it is handled (the handlers' and
    templates' gettext read it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with using(language_of(HTTPConnection(scope))):
            await self.app(scope, receive, send)
