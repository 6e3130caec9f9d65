"""Hide camera passwords and URL secrets before a URL or a message is shown or logged.

`mask_url` rewrites one URL for display; `redact` scrubs the secrets of given URLs out of any
text (FFmpeg error strings, exception messages), plus any `scheme://user:password@` it finds.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

MASK = "***"

#: Query keys whose values are treated as secrets (matched case-insensitively as substrings).
_SECRET_KEY_PARTS = (
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

#: `scheme://user:password@` anywhere in a text; the password may not contain whitespace.
_USERINFO_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):(?P<pw>[^\s@/]*)@")


#: `password=value` inside a URL path, as some cameras take it (".../user=a_password=b_channel=1").
_PATH_SECRET_RE = re.compile(
    r"(?P<key>(?:password|passwd|pass|pwd|token|secret)=)(?P<value>.+?)(?=_\w+=|[&;/?#]|$)",
    re.IGNORECASE,
)


#: `key=value` in free text (query strings echoed in errors, "password=..." in messages)
#: whose key looks secret; the value ends at whitespace, quotes or a separator.
_TEXT_SECRET_RE = re.compile(
    r"(?P<key>\b(?:[A-Za-z_]*(?:pass|pwd|token|secret|auth|credential|signature)[A-Za-z_]*"
    r"|(?:[A-Za-z]+_)?(?:api)?key|sig)=)"
    r"(?P<value>[^&\s;,'\"]+)",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """Whether a query parameter name looks like it carries a secret."""
    lowered = unquote_plus(key).lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def _mask_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        key, sep, value = item.partition("=")
        if sep and value and is_secret_key(key):
            parts.append(f"{key}={MASK}")
        else:
            parts.append(item)
    return "&".join(parts)


def _mask_netloc(netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return netloc
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return netloc
    return f"{user}:{MASK}@{hostport}"


def mask_url(url: str) -> str:
    """The URL with its password and secret-looking query values replaced by `***`.

    Plain file paths and URLs without secrets come back unchanged.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO_RE.sub(lambda m: f"{m.group('head')}:{MASK}@", url)
    netloc = _mask_netloc(parts.netloc)
    path = _PATH_SECRET_RE.sub(lambda m: m.group("key") + MASK, parts.path)
    query = _mask_query(parts.query) if parts.query else parts.query
    if (netloc, path, query) == (parts.netloc, parts.path, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The secret strings in a URL (password, secret query values), in every spelling that
    may show up in a message: as written, percent-decoded and percent-encoded."""
    if "://" not in url:
        return []
    found: list[str] = []
    try:
        parts = urlsplit(url)
        userinfo, at, _host = parts.netloc.rpartition("@")
        if at and ":" in userinfo:
            found.append(userinfo.partition(":")[2])
        found.extend(m.group("value") for m in _PATH_SECRET_RE.finditer(parts.path))
        for item in parts.query.split("&") if parts.query else []:
            key, sep, value = item.partition("=")
            if sep and value and is_secret_key(key):
                found.append(value)
    except ValueError:
        found.extend(m.group("pw") for m in _USERINFO_RE.finditer(url))
    spellings: set[str] = set()
    for secret in found:
        for form in (secret, unquote(secret), unquote_plus(secret), quote(unquote(secret))):
            if form:
                spellings.add(form)
    # Longest first so that a secret containing another is replaced whole.
    return sorted(spellings, key=len, reverse=True)


def redact(text: str, *urls: str) -> str:
    """`text` with the secrets of `urls` masked, and any `scheme://user:password@` or
    secret-looking `key=value` (password=, token=, ...) in it."""
    for url in urls:
        masked = mask_url(url)
        if masked != url:
            text = text.replace(url, masked)
    text = _USERINFO_RE.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    text = _TEXT_SECRET_RE.sub(
        lambda m: m.group("key") + (m.group("value") if m.group("value") == MASK else MASK), text
    )
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, MASK)
    return text
