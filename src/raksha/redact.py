"""The one place that decides what is secret in a URL or a message, and hides it.

Every output of Raksha goes through here before a person or a file sees it: API responses,
`config show`, log lines, reprs of config models, error messages. It is a leaf module (it
imports nothing of Raksha) so that the lowest layers can use it.

* `mask_url(url)`: the URL as it may be shown. The password of its user-info (even one holding
  `/`, `@` or `:`, or a `${NAME}` placeholder), every query or fragment value whose key looks
  secret (`SECRET_KEY_PARTS`), and `password=...` written into the path (some cameras take it
  there) become `***`. User names, hosts and `${NAME}` placeholders elsewhere stay.
* `redact(text, *urls)`: free text with every URL in it masked, any `key=value` whose key looks
  secret masked, and every spelling of the given URLs' secrets (as written, percent-decoded,
  percent-encoded) replaced.
* `scrub(text, secrets)`: known secret strings replaced.
* `RedactingFormatter`: a logging formatter that passes every formatted record (tracebacks
  included) through `redact`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, unquote_plus

MASK = "***"

#: Parts of a parameter name that mark its value as a secret (case-insensitive substrings).
#: The one list: URL queries and fragments, free-text `key=value`, and `has_literal_secret`.
SECRET_KEY_PARTS = (
    "pass",
    "pwd",
    "token",
    "secret",
    "auth",
    "key",
    "sig",
    "credential",
    "session",
    "cookie",
)

#: A `${NAME}` placeholder, filled from the environment or the secrets file at run time.
PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

#: A URL inside free text: a scheme, `://`, then anything up to whitespace or a quote.
_URL_IN_TEXT_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")

#: `password=value` inside a URL path (".../user=a_password=b_channel=1").
_PATH_SECRET_RE = re.compile(
    r"(?P<key>(?:password|passwd|pass|pwd|token|secret)=)(?P<value>.+?)(?=_\w+=|[&;/?#]|$)",
    re.IGNORECASE,
)

_KEY_PARTS_ALT = "|".join(SECRET_KEY_PARTS)
#: `key=value` or `key: value` in free text whose key looks secret; the value ends at
#: whitespace, a quote or a separator.
_TEXT_SECRET_RE = re.compile(
    rf"(?P<key>\b[A-Za-z0-9_\-]*(?:{_KEY_PARTS_ALT})[A-Za-z0-9_\-]*=)(?P<value>[^&\s;,'\"]+)",
    re.IGNORECASE,
)

#: `key: value` (a header, YAML, a JSON member) for the names that are secrets by themselves;
#: narrower than `key=value`, since "signal: fear" is not a secret. An HTTP authorization
#: keeps its scheme word (Bearer, Basic) and loses its credential.
_COLON_SECRET_RE = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|token|secret|api[_-]?key|authorization|cookie|"
    r"credentials?)[\"']?\s*:\s*[\"']?(?:(?:Bearer|Basic|Token|Digest)\s+)?)"
    r"(?P<value>[^\s\"',;}]+)",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """Whether a parameter name looks like it carries a secret."""
    lowered = unquote_plus(key).lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def _userinfo_span(url: str) -> tuple[int, int] | None:
    """(start, end) of the user-info: after `://`, before the last `@` ahead of the first `?`
    or `#`. A literal password holding `/` is covered (an odd path holding `@` may be
    over-masked, never under-masked)."""
    m = _SCHEME_RE.match(url)
    if m is None:
        return None
    start = m.end()
    end = len(url)
    for ch in "?#":
        pos = url.find(ch, start)
        if pos >= 0:
            end = min(end, pos)
    at = url.rfind("@", start, end)
    return None if at < 0 else (start, at)


def _mask_params(params: str) -> str:
    items = []
    for item in params.split("&"):
        key, sep, value = item.partition("=")
        items.append(f"{key}={MASK}" if sep and value and is_secret_key(key) else item)
    return "&".join(items)


def mask_url(url: str) -> str:
    """`url` with its password, secret query and fragment values and path secrets as `***`.

    Text without a `scheme://` (a file path) comes back unchanged.
    """
    if _SCHEME_RE.match(url) is None:
        return url
    span = _userinfo_span(url)
    if span is not None:
        start, at = span
        user, colon, _password = url[start:at].partition(":")
        if colon:
            url = f"{url[:start]}{user}:{MASK}{url[at:]}"
    head_end = len(url)
    for ch in "?#":
        pos = url.find(ch)
        if pos >= 0:
            head_end = min(head_end, pos)
    head, tail = url[:head_end], url[head_end:]
    head = _PATH_SECRET_RE.sub(lambda m: m.group("key") + MASK, head)
    if tail:
        query, hash_, fragment = tail.partition("#")
        if query.startswith("?"):
            query = "?" + _mask_params(query[1:])
        tail = query + hash_ + (_mask_params(fragment) if hash_ else "")
    return head + tail


def _raw_secrets(url: str) -> list[str]:
    found: list[str] = []
    span = _userinfo_span(url)
    if span is not None:
        _user, colon, password = url[span[0] : span[1]].partition(":")
        if colon and password:
            found.append(password)
    head_end = min([p for p in (url.find("?"), url.find("#")) if p >= 0] or [len(url)])
    found.extend(m.group("value") for m in _PATH_SECRET_RE.finditer(url[:head_end]))
    for params in re.split(r"[?#]", url[head_end:]):
        for item in params.split("&"):
            key, sep, value = item.partition("=")
            if sep and value and is_secret_key(key):
                found.append(value)
    return [s for s in found if s != MASK and not PLACEHOLDER_RE.fullmatch(s)]


def url_secrets(url: str) -> list[str]:
    """The secret strings in a URL in every spelling a message may show them (as written,
    percent-decoded, percent-encoded), longest first."""
    if _SCHEME_RE.match(url) is None:
        return []
    spellings: set[str] = set()
    for secret in _raw_secrets(url):
        for form in (secret, unquote(secret), unquote_plus(secret), quote(unquote(secret))):
            if form:
                spellings.add(form)
    return sorted(spellings, key=len, reverse=True)


def has_literal_secret(url: str) -> bool:
    """Whether `url` holds a password or secret value written out (not a `${NAME}`)."""
    return bool(_raw_secrets(url)) if _SCHEME_RE.match(url) else False


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (longest first) replaced by `***`."""
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


def _mask_url_in_text(m: re.Match[str]) -> str:
    """A URL found in prose, masked; punctuation that ends the sentence stays outside it."""
    url = m.group(0)
    body = url.rstrip(";,.:)]!?")
    return mask_url(body) + url[len(body) :]


def redact(text: str, *urls: str) -> str:
    """`text` fit to show: URLs in it masked, secret-looking `key=value` masked, and every
    spelling of the secrets of `urls` replaced."""
    text = _URL_IN_TEXT_RE.sub(_mask_url_in_text, text)
    for pattern in (_TEXT_SECRET_RE, _COLON_SECRET_RE):
        text = pattern.sub(lambda m: m.group("key") + MASK, text)
    secrets: list[str] = []
    for url in urls:
        secrets.extend(url_secrets(url))
    return scrub(text, secrets)


class RedactingFormatter(logging.Formatter):
    """A formatter whose every line (message, arguments, traceback) has passed `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
