"""Messages in over MQTT: patrol units' positions and status, and panic signals.

    intake = MqttIntake(host, port, "raksha", handle)   # handle(kind, sender_id, payload)
    intake.start(); ...; intake.stop()

Subscribes (QoS 1) to `<prefix>/units/+/position`, `<prefix>/units/+/status` and
`<prefix>/sos/+`, and hands each message to `handle` as ("position" | "status" | "sos",
the id from the topic, the raw bytes). The handler authenticates (a device token inside the
message) and acts; this module only moves bytes. paho reconnects by itself with backoff.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger("raksha.intake")

Handler = Callable[[str, str, bytes], None]
#: Largest message accepted; bigger ones are dropped unread.
MAX_MESSAGE_BYTES = 16 * 1024


def parse_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """("position" | "status" | "sos", sender id) for an intake topic, else None."""
    parts = topic.split("/")
    head = prefix.rstrip("/").split("/")
    if parts[: len(head)] != head:
        return None
    rest = parts[len(head) :]
    if len(rest) == 3 and rest[0] == "units" and rest[2] in ("position", "status") and rest[1]:
        return rest[2], rest[1]
    if len(rest) == 2 and rest[0] == "sos" and rest[1]:
        return "sos", rest[1]
    return None


class MqttIntake:
    def __init__(
        self,
        host: str,
        port: int,
        topic_prefix: str,
        handle: Handler,
        *,
        username: str | None = None,
        password: str | None = None,
        keepalive_s: int = 30,
    ) -> None:
        self._host = host
        self._port = port
        self._prefix = topic_prefix.rstrip("/")
        self._handle = handle
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"raksha-intake-{uuid.uuid4().hex[:12]}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 30)
        self._keepalive_s = keepalive_s
        self.received = 0
        self.dropped = 0

    @property
    def topics(self) -> list[str]:
        p = self._prefix
        return [f"{p}/units/+/position", f"{p}/units/+/status", f"{p}/sos/+"]

    def start(self) -> MqttIntake:
        try:
            self._client.connect_async(self._host, self._port, keepalive=self._keepalive_s)
        except (OSError, ValueError) as exc:
            log.warning("MQTT intake %s:%s: %s", self._host, self._port, exc)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("MQTT intake rejected by %s:%s: %s", self._host, self._port, reason_code)
            return
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        route = parse_topic(self._prefix, msg.topic)
        if route is None or len(msg.payload) > MAX_MESSAGE_BYTES:
            self.dropped += 1
            return
        self.received += 1
        try:
            self._handle(route[0], route[1], bytes(msg.payload))
        except Exception:  # a handler bug must not stop the intake
            log.exception("MQTT intake: message on %s not handled", msg.topic)
