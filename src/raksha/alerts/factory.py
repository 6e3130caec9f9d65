"""The alert channels a deployment configured, built once: `build_notifiers`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from raksha.alerts.base import DeliveryError, Notifier
from raksha.alerts.outbox import PendingDelivery
from raksha.errors import ConfigError
from raksha.site.config import AlertsConfig, PatrolUnitConfig


def channel_roles(alerts: AlertsConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(channels every state change goes out on, channels a unit's job card goes out on)."""
    station: list[str] = ["store"]
    unit: list[str] = ["store"]
    if alerts.webhook is not None:
        station.append("webhook")
        unit.append("webhook")
    if alerts.mqtt is not None:
        for fmt in dict.fromkeys(alerts.mqtt.formats):
            station.append("mqtt" if fmt == "raksha" else f"mqtt-{fmt}")
        unit.append("mqtt")
    station.extend(f"feed-{f.name}" for f in alerts.feeds)
    if alerts.push is not None:
        station.append("push")
    if alerts.sms is not None:
        unit.append("sms")
    return tuple(station), tuple(unit)


#: A camera's own alerts go out on channels of their own (the same receivers, named apart):
#: a receiver that refuses or fails on them holds only them, never the distress alerts.
CAMERA_WEBHOOK = "webhook-camera"
CAMERA_MQTT = "mqtt-camera"


def camera_channels(alerts: AlertsConfig) -> tuple[str, ...]:
    """The channels a camera's own alerts (`camera.fault`, `camera.recovered`) go out on:
    the webhook's and MQTT's (Raksha's own format) camera channels."""
    channels = ["store"]
    if alerts.webhook is not None:
        channels.append(CAMERA_WEBHOOK)
    if alerts.mqtt is not None and "raksha" in alerts.mqtt.formats:
        channels.append(CAMERA_MQTT)
    return tuple(channels)


def _secret(env: Mapping[str, str], name: str, where: str) -> bytes:
    secret = env.get(name, "")
    if not secret:
        raise ConfigError(f"{where}.secret_env: environment variable {name} is not set")
    return secret.encode()


def _sms_render(phones: Mapping[str, str], language: str) -> Any:
    import json

    def render(delivery: PendingDelivery) -> tuple[bytes, str]:
        unit = delivery.payload.get("unit") or {}
        phone = phones.get(str(unit.get("id", "")))
        if phone is None:
            raise DeliveryError(
                f"alert {delivery.alert_id}: patrol unit {unit.get('id')!r} has no phone "
                "configured for SMS",
                permanent=True,
            )
        text = (delivery.payload.get("text") or {}).get(language, "")
        doc = {"to": phone, "text": text, "ref": delivery.alert_id}
        return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode(), "application/json"

    return render


def build_notifiers(
    alerts: AlertsConfig,
    env: Mapping[str, str],
    units: Sequence[PatrolUnitConfig] = (),
) -> dict[str, Notifier]:
    """One notifier per configured alert channel, by channel name (the store itself is
    always a channel and needs none). Secrets come from the environment variables the
    config names; a missing one is a `ConfigError` naming the variable, never a value."""
    notifiers: dict[str, Notifier] = {}
    if alerts.webhook is not None:
        from raksha.alerts.webhook import WebhookNotifier

        wh = alerts.webhook
        if not wh.secret_env:
            raise ConfigError(
                "alerts.webhook.secret_env: a signing secret is required; name the "
                "environment variable that holds it"
            )
        secret = env.get(wh.secret_env, "")
        if not secret:
            raise ConfigError(
                f"alerts.webhook.secret_env: environment variable {wh.secret_env} is not set"
            )
        notifiers["webhook"] = WebhookNotifier(wh.url, secret.encode(), wh.timeout_s)
        notifiers[CAMERA_WEBHOOK] = WebhookNotifier(wh.url, secret.encode(), wh.timeout_s)
    if alerts.mqtt is not None:
        from raksha.alerts.mqtt import MqttNotifier

        mq = alerts.mqtt
        user = env.get(mq.username_env, "") if mq.username_env else None
        password = env.get(mq.password_env, "") if mq.password_env else None
        from raksha.alerts.formats import render

        for fmt in dict.fromkeys(mq.formats):
            name = "mqtt" if fmt == "raksha" else f"mqtt-{fmt}"

            def body(d: PendingDelivery, f: str = fmt) -> bytes:
                return render(d, f)[0]

            notifiers[name] = MqttNotifier(
                mq.host,
                mq.port,
                mq.topic_prefix,
                mq.qos,
                None if mq.client_id is None else f"{mq.client_id}-{fmt}",
                username=user or None,
                password=password or None,
                fmt=fmt,
                render=body,
            )
            if fmt == "raksha":  # the camera alerts' own connection and hold
                notifiers[CAMERA_MQTT] = MqttNotifier(
                    mq.host,
                    mq.port,
                    mq.topic_prefix,
                    mq.qos,
                    None if mq.client_id is None else f"{mq.client_id}-camera",
                    username=user or None,
                    password=password or None,
                    fmt=fmt,
                    render=body,
                )
    for feed in alerts.feeds:
        from raksha.alerts.formats import render
        from raksha.alerts.webhook import WebhookNotifier

        def feed_body(d: PendingDelivery, f: str = feed.format) -> tuple[bytes, str]:
            return render(d, f)

        notifiers[f"feed-{feed.name}"] = WebhookNotifier(
            feed.url,
            _secret(env, feed.secret_env, f"alerts.feeds.{feed.name}"),
            feed.timeout_s,
            render=feed_body,
        )
    if alerts.sms is not None:
        from raksha.alerts.webhook import WebhookNotifier

        phones = {u.id: u.phone for u in units if u.phone}
        notifiers["sms"] = WebhookNotifier(
            alerts.sms.url,
            _secret(env, alerts.sms.secret_env, "alerts.sms"),
            alerts.sms.timeout_s,
            render=_sms_render(phones, alerts.sms.language),
        )
    return notifiers
