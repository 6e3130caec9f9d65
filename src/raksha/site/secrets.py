"""Camera credentials: `${NAME}` placeholders filled from the environment or a secrets file.

Credentials never live in the config file or the database. A camera URL such as
`rtsp://${CAM1_USER}:${CAM1_PASS}@10.0.0.7/stream1` is stored and shown as written, with the
password part masked (`display_url`); the real URL is built only to open the stream
(`resolve_camera_url`). Values come from the environment first, then from the secrets file
(`KEY=VALUE` lines). Placeholders inside the URL's user-info are percent-encoded, so a password
may contain `@`, `:` or `/`; elsewhere the value is inserted as it is (a whole URL may be one
placeholder). Errors name the missing variable, never a value.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from raksha.errors import ConfigError
from raksha.redact import MASK, PLACEHOLDER_RE, mask_url, url_secrets
from raksha.redact import has_literal_secret as has_literal_secret

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretValues(Mapping[str, str]):
    """Read-only KEY -> value mapping whose repr shows only the keys."""

    __slots__ = ("_values", "source")

    def __init__(self, values: Mapping[str, str], source: str = "") -> None:
        self._values = dict(values)
        self.source = source

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"SecretValues({sorted(self._values)}{where}, values hidden)"

    __str__ = __repr__


def _unquote_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_secrets(text: str, source: str = "secrets file") -> SecretValues:
    """Parse `KEY=VALUE` lines (`#` comments, blank lines, optional `export `, quotes)."""
    values: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.match(key):
            # Never echo the line: it may hold a secret.
            raise ConfigError(f"{source}:{n}: expected KEY=VALUE (KEY made of letters, digits, _)")
        values[key] = _unquote_value(value)
    return SecretValues(values, source)


def load_secrets(path: Path) -> SecretValues:
    """Read a secrets file; warn (once per load) if other users may read it."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"secrets file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"secrets file {path} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read secrets file {path}: {type(exc).__name__}") from None
    if st.st_mode & stat.S_IROTH:
        log.warning("secrets file %s is readable by every user; run: chmod 600 %s", path, path)
    elif st.st_mode & stat.S_IRGRP:
        log.info("secrets file %s is readable by its group", path)
    return parse_secrets(text, str(path))


def placeholders(template: str) -> list[str]:
    """Names of the `${NAME}` placeholders in `template`, in order."""
    return PLACEHOLDER_RE.findall(template)


def _userinfo_span(url: str, stops: str = "/?#") -> tuple[int, int] | None:
    """(start, end) of the user-info in `url` (the part before the last `@` of the
    authority, which ends at the first of `stops`), or None when there is none."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    end = len(url)
    for ch in stops:
        pos = url.find(ch, start)
        if pos >= 0:
            end = min(end, pos)
    at = url.rfind("@", start, end)
    if at < 0:
        return None
    return start, at


def _lookup(name: str, env: Mapping[str, str], secrets: Mapping[str, str], what: str) -> str:
    if name in env:
        return env[name]
    if name in secrets:
        return secrets[name]
    raise ConfigError(
        f"{what}: variable {name} is not set (set it in the environment or in the secrets file)"
    )


def expand(
    template: str,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    *,
    what: str = "url",
) -> str:
    """`template` with each `${NAME}` replaced; user-info values are percent-encoded."""
    env = os.environ if env is None else env
    secrets = {} if secrets is None else secrets
    span = _userinfo_span(template)

    def sub(m: re.Match[str]) -> str:
        value = _lookup(m.group(1), env, secrets, what)
        if span is not None and span[0] <= m.start() < span[1]:
            return quote(value, safe="")
        return value

    return PLACEHOLDER_RE.sub(sub, template)


class _Credentials(Protocol):
    @property
    def user_env(self) -> str: ...
    @property
    def password_env(self) -> str: ...


class _HasUrl(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def credentials(self) -> _Credentials | None: ...


def display_url(camera: _HasUrl) -> str:
    """The camera's URL with the password masked; never contains a secret."""
    shown = mask_url(camera.url)
    if camera.credentials is not None:
        span = _userinfo_span(shown)
        if span is None and "://" in shown:
            head, sep, rest = shown.partition("://")
            shown = f"{head}{sep}${{{camera.credentials.user_env}}}:{MASK}@{rest}"
    return shown


def resolve_camera_url(
    camera: _HasUrl,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> str:
    """The real URL (secrets filled in), only to open the stream: never log or store it.

    `env` defaults to `os.environ`. With `camera.credentials`, the named user and password
    are put into the URL's user-info (replacing any there).
    """
    env = os.environ if env is None else env
    secrets = {} if secrets is None else secrets
    what = f"camera {camera.id}"
    url = expand(camera.url, env, secrets, what=what)
    creds = camera.credentials
    if creds is not None:
        if "://" not in url:
            raise ConfigError(f"{what}: credentials need a URL with a scheme (rtsp://…)")
        user = quote(_lookup(creds.user_env, env, secrets, what), safe="")
        password = quote(_lookup(creds.password_env, env, secrets, what), safe="")
        head, sep, rest = url.partition("://")
        span = _userinfo_span(url)
        if span is not None:
            rest = url[span[1] + 1 :]
        url = f"{head}{sep}{user}:{password}@{rest}"
    return url


def camera_secrets(
    camera: _HasUrl,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> list[str]:
    """The secret strings a camera's real URL contains (raw and percent-encoded), longest
    first, for scrubbing library error messages. Unset variables are skipped."""
    env = os.environ if env is None else env
    secrets = {} if secrets is None else secrets
    names = placeholders(camera.url)
    if camera.credentials is not None:
        names += [camera.credentials.user_env, camera.credentials.password_env]
    found: set[str] = set()
    for name in names:
        value = env.get(name, secrets.get(name))
        if value:
            found.update({value, quote(value, safe="")})
    found.update(url_secrets(camera.url))  # secrets written out in the URL itself
    return sorted(found, key=len, reverse=True)
