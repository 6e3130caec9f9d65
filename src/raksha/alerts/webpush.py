"""Web Push to dashboard users' browsers (VAPID, RFC 8030/8291/8292) with pywebpush.

A new or escalated incident becomes a short notice (what happened, where, which station, a
link to the incident; never evidence) encrypted for each browser subscribed to that station
(and the control room's), and posted to the push service that browser uses. Only push
services on the configured `allowed_hosts` are contacted; a subscription elsewhere is refused
when it is made. A browser's service worker shows the notice with the alert id as its tag,
so a repeat replaces it instead of ringing twice.

Outcome per delivery: delivered when at least one browser's push service accepted it (or
nobody is subscribed); a subscription the push service says is gone (404, 410) is dropped,
one that keeps failing is counted and dropped after a few deliveries in a row (`failed`).
Only when no browser could be reached does the delivery fail, and the dispatcher try again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from raksha.alerts.base import DeliveryError
from raksha.alerts.outbox import PendingDelivery
from raksha.errors import ConfigError

_TITLES = {
    "new": "Raksha: a person may need help",
    "escalated": "Raksha: incident escalated",
    "sos_joined": "Raksha: SOS at an open incident",
    "reassigned": "Raksha: unit did not respond",
}


class Target(Protocol):
    @property
    def endpoint(self) -> str: ...
    @property
    def p256dh(self) -> str: ...
    @property
    def auth(self) -> str: ...


def host_allowed(endpoint: str, allowed: Sequence[str]) -> bool:
    """Whether a subscription's endpoint is an https URL (http only on this machine) on one
    of the allowed push service hosts."""
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        return False
    return host in {h.lower() for h in allowed}


def notice(delivery: PendingDelivery) -> dict[str, Any]:
    p = delivery.payload
    event = str(p.get("event", "new"))
    where = p.get("place") or p.get("hotspot_id") or "unknown place"
    station = p.get("station_name") or delivery.station_id
    body = f"{where} ({station})"
    if event == "escalated" and isinstance(p.get("escalation"), dict):
        body += f": {p['escalation'].get('reason') or 'escalated'}"
    if p.get("priority") == "high":
        body = "HIGH PRIORITY. " + body
    return {
        "title": _TITLES.get(event, "Raksha"),
        "body": body,
        "tag": delivery.alert_id,
        "incident_id": delivery.incident_id,
        "event": event,
        "url": f"/incidents/{delivery.incident_id}",
    }


class PushNotifier:
    def __init__(
        self,
        targets: Callable[[list[str]], Sequence[Target]],
        forget: Callable[[str], None],
        *,
        failed: Callable[[str], object] | None = None,
        reached: Callable[[str], object] | None = None,
        private_key: str,
        subject: str,
        allowed_hosts: Sequence[str],
        events: Sequence[str] = ("new", "escalated", "sos_joined", "reassigned"),
        ttl_s: int = 300,
        timeout_s: float = 5.0,
    ) -> None:
        from py_vapid import Vapid

        try:
            self._vapid = Vapid.from_string(private_key=private_key)
        except Exception:
            raise ConfigError(
                "alerts.push: the VAPID key is not a valid key (make one with `raksha push keygen`)"
            ) from None
        self._targets = targets
        self._forget = forget
        self._failed = failed
        self._reached = reached
        self._subject = subject
        self._allowed = tuple(allowed_hosts)
        self._events = frozenset(events)
        self._ttl = ttl_s
        self._timeout = timeout_s
        import requests

        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or netrc from the environment

    def close(self) -> None:
        self._session.close()

    def send(self, delivery: PendingDelivery) -> None:
        if str(delivery.payload.get("event", "new")) not in self._events:
            return  # other changes are not worth waking a phone for
        from pywebpush import WebPushException, webpush

        data = json.dumps(notice(delivery), ensure_ascii=False)
        failed = ok = 0
        for t in self._targets([delivery.station_id]):
            if not host_allowed(t.endpoint, self._allowed):
                continue
            try:
                webpush(
                    {"endpoint": t.endpoint, "keys": {"p256dh": t.p256dh, "auth": t.auth}},
                    data=data,
                    vapid_private_key=self._vapid,
                    vapid_claims={"sub": self._subject},
                    ttl=self._ttl,
                    timeout=self._timeout,
                    requests_session=self._session,
                    headers={"Urgency": "high", "Topic": delivery.alert_id.replace("-", "")[:32]},
                )
            except WebPushException as exc:
                status = getattr(exc.response, "status_code", None)
                if status in (404, 410):
                    self._forget(t.endpoint)
                    continue
                failed += 1
                self._note(self._failed, t.endpoint)
            except Exception:  # the push service cannot be reached
                failed += 1
                self._note(self._failed, t.endpoint)
            else:
                ok += 1
                self._note(self._reached, t.endpoint)
        if failed and not ok:
            raise DeliveryError(f"web push: {failed} browser(s) not reached; will retry")

    @staticmethod
    def _note(hook: Callable[[str], object] | None, endpoint: str) -> None:
        if hook is not None:
            with contextlib.suppress(Exception):  # bookkeeping must not fail a delivery
                hook(endpoint)
