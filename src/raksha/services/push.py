"""Web Push subscriptions for dashboard users: the key a browser subscribes with, and its
subscription kept (or removed) for the user's station scope.

A subscription is refused unless its endpoint is on a push service host the deployment
allowed (`alerts.push.allowed_hosts`) and its keys are a P-256 public key and a 16-byte
secret: nothing the server sends can go to a host nobody configured.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from raksha.alerts.webpush import host_allowed
from raksha.audit.log import AuditLog
from raksha.incidents.model import utcnow
from raksha.services.errors import Invalid, NotFound
from raksha.services.incidents import Caller
from raksha.site.config import PushConfig
from raksha.store import push as push_rows
from raksha.store.repository import IncidentStore


def _b64url(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise Invalid("subscription keys must be base64url") from None


def public_key_of(private_key: str) -> str:
    """The VAPID application server key (uncompressed P-256 point, base64url) of a private
    key as `raksha push keygen` prints it."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from py_vapid import Vapid

    vapid = Vapid.from_string(private_key=private_key)
    raw = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class PushService:
    def __init__(
        self,
        store: IncidentStore,
        audit: AuditLog,
        cfg: PushConfig | None,
        env: Mapping[str, str],
    ) -> None:
        self.store = store
        self.audit = audit
        self.cfg = cfg
        self._public: str | None = None
        if cfg is not None and env.get(cfg.vapid_key_env):
            try:
                self._public = public_key_of(env[cfg.vapid_key_env])
            except Exception:
                self._public = None

    def public_key(self) -> str:
        if self.cfg is None or self._public is None:
            raise NotFound("web push is not configured on this server")
        return self._public

    def subscribe(self, caller: Caller, endpoint: str, p256dh: str, auth: str) -> None:
        cfg = self.cfg
        if cfg is None or self._public is None:
            raise NotFound("web push is not configured on this server")
        if not host_allowed(endpoint, cfg.allowed_hosts):
            raise Invalid("this push service is not one the deployment allows")
        key, secret = _b64url(p256dh), _b64url(auth)
        if len(key) != 65 or key[0] != 4 or len(secret) != 16:
            raise Invalid("p256dh must be a P-256 public key and auth a 16-byte secret")
        user = caller.user
        push_rows.subscribe(
            self.store.engine,
            username=user.username,
            role=user.role.value,
            station_id=user.station_id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            now=utcnow(),
        )
        host = endpoint.split("/")[2] if "//" in endpoint else ""
        self.audit.append(
            caller.name,
            "push.subscribe",
            station_id=user.station_id,
            address=caller.address,
            details={"push_host": host},
        )

    def unsubscribe(self, caller: Caller, endpoint: str | None) -> int:
        n = push_rows.unsubscribe(self.store.engine, caller.user.username, endpoint)
        self.audit.append(
            caller.name,
            "push.unsubscribe",
            station_id=caller.user.station_id,
            address=caller.address,
            details={"removed": n},
        )
        return n
