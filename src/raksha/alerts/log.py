"""A notifier for development: writes each alert to the log instead of sending it anywhere."""

from __future__ import annotations

import logging

from raksha.alerts.base import alert_body
from raksha.alerts.outbox import PendingDelivery


class LogNotifier:
    """Log each alert's JSON document on `logger` (default `raksha.alerts`) at `level`."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self._log = logger or logging.getLogger("raksha.alerts")
        self._level = level

    def __repr__(self) -> str:
        return f"LogNotifier({self._log.name!r})"

    def send(self, delivery: PendingDelivery) -> None:
        body = alert_body(delivery).decode("utf-8")
        self._log.log(
            self._level,
            "alert %s for station %s (incident %s, attempt %d): %s",
            delivery.alert_id,
            delivery.station_id,
            delivery.incident_id,
            delivery.attempts + 1,
            body,
        )
