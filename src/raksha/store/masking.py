"""Keep secrets out of what the store writes: passwords in URLs and in error texts."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

#: `scheme://user:password@` anywhere in a text.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):(?P<pw>[^\s@]*)@")
#: `password=...`, `token=...` etc. in query strings or free text.
_SECRET_PARAM = re.compile(
    r"(?P<key>[A-Za-z_]*(?:pass|pwd|token|secret|auth|key|sig|credential)[A-Za-z_]*)="
    r"(?P<value>[^&\s;,'\"]+)",
    re.IGNORECASE,
)


def mask_url(url: str) -> str:
    """`url` with the password of its user info and any secret-looking query value masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _pw = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{user}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if _SECRET_PARAM.fullmatch(f"{k}=x") and v else v) for k, v in pairs],
            safe="*",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str) -> str:
    """`text` with `scheme://user:password@` and `secret=value` pairs masked."""
    text = _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group('key')}={MASK}", text)
