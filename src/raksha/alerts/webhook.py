"""Deliver alerts as signed JSON POSTs to a receiver's HTTP(S) endpoint.

Outcome of one attempt:
- 2xx: delivered.
- 408, 429 and 5xx, timeouts, refused or reset connections, DNS failures: a transient
  `DeliveryError`; the dispatcher tries again with backoff (honouring `Retry-After`).
- any other status (3xx, 4xx): a permanent `DeliveryError`; the receiver refused the alert as
  sent, so the dispatcher waits much longer before trying again and may mark it dead (see
  `raksha.alerts.dispatcher`). Redirects are not followed: configure the final URL.

User and password in the URL are sent as HTTP Basic credentials and are masked in every error.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

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
    ) -> None:
        self._display_url = mask_url(url)
        self._url = url
        try:
            parts = urlsplit(url)
            port = parts.port
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
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._auth: str | None = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        self._secret = secret
        self._timeout_s = timeout_s
        self._clock = clock
        self._ssl_context = ssl_context

    @property
    def display_url(self) -> str:
        """The URL with any password or secret query value masked; safe to log."""
        return self._display_url

    def __repr__(self) -> str:
        return f"WebhookNotifier({self._display_url!r})"

    def headers(self, delivery: PendingDelivery, body: bytes) -> dict[str, str]:
        """The headers of one attempt (signed now)."""
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"raksha/{__version__}",
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            TIMESTAMP_HEADER: timestamp,
            IDEMPOTENCY_HEADER: delivery.alert_id,
            ATTEMPT_HEADER: str(delivery.attempts + 1),
        }
        if self._auth is not None:
            headers["Authorization"] = self._auth
        return headers

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            context = self._ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout_s, context=context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)

    def send(self, delivery: PendingDelivery) -> None:
        body = alert_body(delivery)
        headers = self.headers(delivery, body)
        where = f"webhook {self._display_url}"
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            status, reason = response.status, response.reason
            retry_after = response.getheader("Retry-After")
            response.read(64 * 1024)  # drain a little so the server sees a clean close
        except TimeoutError:
            raise DeliveryError(f"{where} timed out after {self._timeout_s:g} s") from None
        except ConnectionRefusedError:
            raise DeliveryError(f"{where} refused the connection") from None
        except ssl.SSLError as exc:
            raise DeliveryError(f"{where} TLS failure: {self._clean(exc)}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"{where} unreachable: {self._clean(exc)}") from None
        finally:
            conn.close()
        if 200 <= status < 300:
            return
        message = f"{where} answered {status} {reason}".rstrip()
        if status >= 500 or status in _RETRYABLE_4XX:
            raise DeliveryError(message, retry_after_s=_parse_retry_after(retry_after, self._clock))
        raise DeliveryError(message, permanent=True)

    def _clean(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        return redact(text, self._url)


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
