"""Deliver alerts as signed JSON POSTs to a receiver's HTTP(S) endpoint.

Outcome of one attempt:
- 2xx: delivered.
- 408, 429 and 5xx, timeouts, refused or reset connections, DNS failures: a transient
  `DeliveryError`; the dispatcher tries again with backoff (honouring `Retry-After`).
- any other status (3xx, 4xx): a permanent `DeliveryError`; the receiver refused the alert as
  sent, so the dispatcher waits much longer before trying again and may mark it dead (see
  `raksha.alerts.dispatcher`). Redirects are not followed: configure the final URL.

User and password in the URL are sent as HTTP Basic credentials and are masked in every error.

The transport is one `httpx.Client` per notifier, so consecutive alerts reuse the connection
(close it with `close()`; the dispatcher does). It talks to the configured URL only: no proxy,
`.netrc` or CA file from the environment (`trust_env=False`), no redirects, no cookies kept.
TLS is verified against the system's trust store unless an `ssl_context` is given.
"""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from raksha import __version__
from raksha.alerts.base import DeliveryError, alert_body
from raksha.alerts.outbox import PendingDelivery
from raksha.alerts.signing import (
    ATTEMPT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from raksha.errors import ConfigError
from raksha.redact import mask_url, redact

#: Statuses that say "try again later" although they are 4xx.
_RETRYABLE_4XX = frozenset({408, 429})
#: Longest Retry-After the notifier passes on (a receiver cannot park an alert for days).
_MAX_RETRY_AFTER_S = 3600.0
#: At most this much of a response body is read (so a kept-alive connection can be reused);
#: a longer body closes the connection instead.
_MAX_DRAIN_BYTES = 64 * 1024


def _raksha_json(delivery: PendingDelivery) -> tuple[bytes, str]:
    return alert_body(delivery), "application/json"


class WebhookNotifier:
    """POST each alert to `url`, signed with `secret` (HMAC-SHA256 over `timestamp.body`)."""

    def __init__(
        self,
        url: str,
        secret: bytes,
        timeout_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
        render: Callable[[PendingDelivery], tuple[bytes, str]] | None = None,
    ) -> None:
        #: The body and its content type for a delivery (Raksha's JSON unless given: EIDO,
        #: CAP, an SMS gateway's shape).
        self._render = render or _raksha_json
        self._display_url = mask_url(url)
        self._url = url
        try:
            parts = urlsplit(url)
            _ = parts.port  # ValueError for a port out of range
        except ValueError:
            raise ConfigError(f"webhook url is not a valid URL: {self._display_url}") from None
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(
                f"webhook url must be an http:// or https:// URL with a host: {self._display_url}"
            )
        if not secret:
            raise ConfigError("webhook secret is empty; set the environment variable it names")
        if timeout_s <= 0:
            raise ConfigError(f"webhook timeout_s must be positive, got {timeout_s}")
        # Credentials travel in the Authorization header below, never in the request URL.
        host_port = parts.netloc.rpartition("@")[2]
        self._request_url = urlunsplit(
            (parts.scheme, host_port, parts.path or "/", parts.query, "")
        )
        try:
            httpx.URL(self._request_url)
        except httpx.InvalidURL:
            raise ConfigError(f"webhook url is not a valid URL: {self._display_url}") from None
        self._auth: str | None = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        self._secret = secret
        self._timeout_s = timeout_s
        self._clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            # The system trust store, as the standard library uses (not certifi's bundle).
            verify=ssl_context or ssl.create_default_context(),
            trust_env=False,
            follow_redirects=False,
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
        )

    @property
    def display_url(self) -> str:
        """The URL with any password or secret query value masked; safe to log."""
        return self._display_url

    def __repr__(self) -> str:
        return f"WebhookNotifier({self._display_url!r})"

    def headers(
        self, delivery: PendingDelivery, body: bytes, content_type: str = "application/json"
    ) -> dict[str, str]:
        """The headers of one attempt (signed now)."""
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": f"{content_type}; charset=utf-8",
            "User-Agent": f"raksha/{__version__}",
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            TIMESTAMP_HEADER: timestamp,
            IDEMPOTENCY_HEADER: delivery.alert_id,
            ATTEMPT_HEADER: str(delivery.attempts + 1),
        }
        if self._auth is not None:
            headers["Authorization"] = self._auth
        return headers

    def close(self) -> None:
        """Close the kept-alive connection (a later `send` is not possible)."""
        self._client.close()

    def send(self, delivery: PendingDelivery) -> None:
        body, content_type = self._render(delivery)
        headers = self.headers(delivery, body, content_type)
        where = f"webhook {self._display_url}"
        try:
            with self._client.stream(
                "POST", self._request_url, content=body, headers=headers
            ) as response:
                status, reason = response.status_code, response.reason_phrase
                retry_after = response.headers.get("Retry-After")
                _drain(response)
        except httpx.TimeoutException:
            raise DeliveryError(f"{where} timed out after {self._timeout_s:g} s") from None
        except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
            causes = list(_causes(exc))
            if any(isinstance(c, ConnectionRefusedError) for c in causes):
                raise DeliveryError(f"{where} refused the connection") from None
            tls = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
            if tls is not None:
                raise DeliveryError(f"{where} TLS failure: {self._clean(tls)}") from None
            raise DeliveryError(f"{where} unreachable: {self._clean(exc)}") from None
        if 200 <= status < 300:
            return
        message = f"{where} answered {status} {reason}".rstrip()
        if status >= 500 or status in _RETRYABLE_4XX:
            raise DeliveryError(message, retry_after_s=_parse_retry_after(retry_after, self._clock))
        raise DeliveryError(message, permanent=True)

    def _clean(self, exc: BaseException) -> str:
        """The error's text on one line with every secret of the URL masked."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        return redact(text, self._url)


def _drain(response: httpx.Response) -> None:
    """Read up to `_MAX_DRAIN_BYTES` of the body, undecoded (the body itself is not used)."""
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read > _MAX_DRAIN_BYTES:
            return  # leaving the stream unread closes the connection instead of reusing it


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from (httpx wraps httpcore, which wraps the OSError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _parse_retry_after(value: str | None, clock: Callable[[], float]) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    seconds: float
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - clock()
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)
