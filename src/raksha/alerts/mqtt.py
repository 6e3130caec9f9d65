"""Deliver alerts over MQTT (paho-mqtt 2.x) to `<prefix>/stations/<station_id>/incidents`.

`send` returns only after the broker acknowledged the message (PUBACK for QoS 1, PUBCOMP for
QoS 2). The connection is opened on the first send and reopened on the next send after the
broker went away; a send that cannot connect, or gets no acknowledgement in time, raises a
transient `DeliveryError` and drops the half-sent message from the client (the dispatcher
retries it, so paho never re-sends it behind the dispatcher's back).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from raksha.alerts.base import DeliveryError, alert_body
from raksha.alerts.outbox import PendingDelivery
from raksha.errors import ConfigError

#: Characters a station id may not contain, as they would change the topic's meaning.
_TOPIC_UNSAFE = frozenset("/+#\x00")


def incident_topic(topic_prefix: str, station_id: str, leaf: str = "incidents") -> str:
    """The topic for a station's incidents: `<prefix>/stations/<station_id>/incidents`
    (`…/eido`, `…/cap` for the standard formats)."""
    if not station_id or _TOPIC_UNSAFE.intersection(station_id):
        raise ValueError(f"station id {station_id!r} cannot be used in an MQTT topic")
    return f"{topic_prefix}/stations/{station_id}/{leaf}"


def unit_topic(topic_prefix: str, unit_id: str) -> str:
    """Where a patrol unit's job cards go: `<prefix>/units/<unit_id>/jobs`."""
    if not unit_id or _TOPIC_UNSAFE.intersection(unit_id):
        raise ValueError(f"unit id {unit_id!r} cannot be used in an MQTT topic")
    return f"{topic_prefix}/units/{unit_id}/jobs"


class MqttNotifier:
    """Publish each alert to its station's topic and wait for the broker's acknowledgement."""

    def __init__(
        self,
        host: str,
        port: int = 1883,
        topic_prefix: str = "raksha",
        qos: int = 1,
        client_id: str | None = None,
        *,
        timeout_s: float = 10.0,
        keepalive_s: int = 30,
        username: str | None = None,
        password: str | None = None,
        fmt: str = "raksha",
        render: Callable[[PendingDelivery], bytes] | None = None,
    ) -> None:
        #: "raksha" (station topic `…/incidents`, job cards to the unit's topic), "eido" or
        #: "cap" (station topics `…/eido`, `…/cap`) with the body `render` makes.
        self._fmt = fmt
        self._render = render or alert_body
        if qos not in (1, 2):
            raise ConfigError(f"mqtt qos must be 1 or 2 (QoS 0 cannot confirm delivery), got {qos}")
        prefix = topic_prefix.rstrip("/")
        if not prefix or "+" in prefix or "#" in prefix:
            raise ConfigError(f"mqtt topic_prefix {topic_prefix!r} is not a usable topic prefix")
        if timeout_s <= 0:
            raise ConfigError(f"mqtt timeout_s must be positive, got {timeout_s}")
        self._host = host
        self._port = port
        self._prefix = prefix
        self._qos = qos
        self._client_id = client_id or f"raksha-alerts-{uuid.uuid4().hex[:12]}"
        self._timeout_s = timeout_s
        self._keepalive_s = keepalive_s
        self._username = username
        self._password = password
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._connect_result: str | None = None

    @property
    def where(self) -> str:
        return f"MQTT broker {self._host}:{self._port}"

    def __repr__(self) -> str:
        return f"MqttNotifier({self._host!r}, {self._port}, topic_prefix={self._prefix!r})"

    def topic_for(self, station_id: str) -> str:
        leaf = "incidents" if self._fmt == "raksha" else self._fmt
        return incident_topic(self._prefix, station_id, leaf)

    def _topic(self, delivery: PendingDelivery) -> str:
        if delivery.payload.get("event") == "job_card":
            unit = delivery.payload.get("unit") or {}
            return unit_topic(self._prefix, str(unit.get("id", "")))
        if delivery.payload.get("event") in ("camera.fault", "camera.recovered"):
            return incident_topic(self._prefix, delivery.station_id, "cameras")
        return self.topic_for(delivery.station_id)

    def send(self, delivery: PendingDelivery) -> None:
        try:
            topic = self._topic(delivery)
        except ValueError as exc:
            raise DeliveryError(f"alert {delivery.alert_id}: {exc}", permanent=True) from None
        body = self._render(delivery)
        with self._lock:
            client = self._ensure_connected()
            info = client.publish(topic, body, qos=self._qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._teardown()
                raise DeliveryError(
                    f"{self.where}: publish to {topic} failed: {mqtt.error_string(info.rc)}"
                )
            try:
                info.wait_for_publish(self._timeout_s)
            except (RuntimeError, ValueError) as exc:
                self._teardown()
                raise DeliveryError(f"{self.where}: publish to {topic} failed: {exc}") from None
            if not info.is_published():
                self._teardown()
                raise DeliveryError(
                    f"{self.where}: no acknowledgement for {topic} within {self._timeout_s:g} s"
                )

    def close(self) -> None:
        """Disconnect from the broker (the next send reconnects)."""
        with self._lock:
            self._teardown()

    # -- connection ------------------------------------------------------------------------

    def _ensure_connected(self) -> mqtt.Client:
        if self._client is not None and self._client.is_connected():
            return self._client
        self._teardown()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        client.connect_timeout = self._timeout_s
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        client.on_connect = self._on_connect
        self._connected.clear()
        self._connect_result = None
        try:
            client.connect(self._host, self._port, keepalive=self._keepalive_s)
        except ConnectionRefusedError:
            raise DeliveryError(f"{self.where} refused the connection") from None
        except TimeoutError:
            raise DeliveryError(
                f"{self.where} did not answer within {self._timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise DeliveryError(f"{self.where} unreachable: {exc.strerror or exc}") from None
        self._client = client
        client.loop_start()
        if not self._connected.wait(self._timeout_s):
            self._teardown()
            raise DeliveryError(f"{self.where} did not accept the connection in time")
        if self._connect_result is not None:
            result = self._connect_result
            self._teardown()
            raise DeliveryError(f"{self.where} rejected the connection: {result}")
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._connect_result = str(reason_code)
        self._connected.set()

    def _teardown(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):  # the socket may already be gone
            client.disconnect()
        client.loop_stop()
