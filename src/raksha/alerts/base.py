"""The Notifier seam: deliver one pending alert through one channel.

Every channel sends the same JSON document (`alert_document`), so a receiver that listens on
both the webhook and MQTT sees identical bodies and can de-duplicate on `alert_id`.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from raksha.alerts.outbox import PendingDelivery
from raksha.errors import RakshaError

#: Version of the alert document; bump when its shape changes incompatibly.
ALERT_SCHEMA = "raksha.alert/1"


class DeliveryError(RakshaError):
    """One delivery attempt failed. The message names the channel and the cause, never a secret.

    `permanent` is True when trying again unchanged cannot help (the receiver rejected the
    alert: HTTP 4xx other than 408/429, a redirect, an unusable station id). `retry_after_s` is
    the receiver's own hint (HTTP `Retry-After`), when it gave one.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


@runtime_checkable
class Notifier(Protocol):
    def send(self, delivery: PendingDelivery) -> None:
        """Deliver one alert; return only once the receiver has confirmed it.

        Raises DeliveryError when it was not (or may not have been) delivered.
        """
        ...


def alert_document(delivery: PendingDelivery) -> dict[str, Any]:
    """The JSON document every channel delivers for `delivery`.

    It is the same for every attempt and every channel (the attempt number travels in the
    webhook's `X-Raksha-Delivery-Attempt` header, not in the body).
    """
    return {
        "schema": ALERT_SCHEMA,
        "alert_id": delivery.alert_id,
        # None: a camera's own alert (`camera.fault`, `camera.recovered`), of no incident.
        "incident_id": delivery.incident_id or None,
        "station_id": delivery.station_id,
        "alert": delivery.payload,
    }


def alert_body(delivery: PendingDelivery) -> bytes:
    """`alert_document` as compact, key-sorted UTF-8 JSON (the bytes that are signed)."""
    try:
        text = json.dumps(
            alert_document(delivery),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise DeliveryError(
            f"alert {delivery.alert_id} cannot be encoded as JSON: {exc}", permanent=True
        ) from None
    return text.encode("utf-8")
