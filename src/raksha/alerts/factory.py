"""The alert channels a deployment configured, built once: `build_notifiers`."""

from __future__ import annotations

from collections.abc import Mapping

from raksha.alerts.base import Notifier
from raksha.errors import ConfigError
from raksha.site.config import AlertsConfig


def build_notifiers(alerts: AlertsConfig, env: Mapping[str, str]) -> dict[str, Notifier]:
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
    if alerts.mqtt is not None:
        from raksha.alerts.mqtt import MqttNotifier

        mq = alerts.mqtt
        user = env.get(mq.username_env, "") if mq.username_env else None
        password = env.get(mq.password_env, "") if mq.password_env else None
        notifiers["mqtt"] = MqttNotifier(
            mq.host,
            mq.port,
            mq.topic_prefix,
            mq.qos,
            mq.client_id,
            username=user or None,
            password=password or None,
        )
    return notifiers
