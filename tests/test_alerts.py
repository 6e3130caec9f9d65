"""Alert delivery against real services: a local HTTP receiver, Mosquitto on 127.0.0.1:1883,
and a private Mosquitto the test starts and stops. The outbox below the dispatcher is a small
in-memory OutboxStore (the store's own tests cover its SQL implementation).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from raksha.alerts.base import DeliveryError, Notifier, alert_body, alert_document
from raksha.alerts.dispatcher import DeadLetterStore, OutboxDispatcher, RetryPolicy
from raksha.alerts.log import LogNotifier
from raksha.alerts.mqtt import MqttNotifier
from raksha.alerts.outbox import OutboxStore, PendingDelivery
from raksha.alerts.signing import (
    ATTEMPT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify_signature,
)
from raksha.alerts.webhook import WebhookNotifier
from raksha.backoff import Backoff
from raksha.domain.routing import Route
from raksha.errors import RakshaError

SECRET = b"test-webhook-secret-4f1c"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def make_delivery(
    alert_id: str = "alert-1",
    station_id: str = "hazratganj",
    channel: str = "webhook",
    attempts: int = 0,
    delivery_id: int = 1,
) -> PendingDelivery:
    return PendingDelivery(
        delivery_id=delivery_id,
        channel=channel,
        alert_id=alert_id,
        incident_id=f"inc-{alert_id}",
        station_id=station_id,
        payload={
            "camera_id": "cam-1",
            "hotspot_id": "hazratganj-crossing",
            "peak_distress": 0.91,
            "expression_at_peak": "fear",
            "patrol_units": [{"id": "pink-scooter-07", "distance_m": 412.5}],
            "note": "डर",  # non-ASCII survives the round trip
        },
        attempts=attempts,
    )


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a real HTTP receiver ----------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    #: The client's source port: the same port for two requests means one connection.
    client_port: int = 0


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that checks signatures like a real one would."""

    secret: bytes
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    #: Scripted (status, headers) answers, used in order; then 200.
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay_s: float = 0.0
    #: Answer as HTTP/1.1 and keep connections open (HTTP/1.0 closes after each answer).
    keep_alive: bool = False

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver.keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify_signature(
                    receiver.secret,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    self.headers.get(SIGNATURE_HEADER, ""),
                    max_skew_s=60,
                )
                receiver.requests.append(
                    Received(self.path, dict(self.headers), body, ok, self.client_address[1])
                )
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                headers: dict[str, str] = {}
                status = 200 if ok else 401
                if ok and receiver.answers:
                    status, headers = receiver.answers.pop(0)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/raksha?source=test"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


# -- an in-memory outbox (the seam below the dispatcher) ----------------------------------------


@dataclass
class Row:
    delivery_id: int
    channel: str
    alert_id: str
    station_id: str
    next_attempt_at: datetime
    attempts: int = 0
    state: str = "pending"
    errors: list[str] = field(default_factory=list)
    delivered_at: datetime | None = None


class MemoryOutbox:
    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}

    def add(self, channel: str, alert_id: str, station_id: str = "hazratganj") -> int:
        delivery_id = len(self.rows) + 1
        self.rows[delivery_id] = Row(delivery_id, channel, alert_id, station_id, T0)
        return delivery_id

    def due_deliveries(self, channel: str, now: datetime, limit: int) -> list[PendingDelivery]:
        due = [
            r
            for r in sorted(self.rows.values(), key=lambda r: r.delivery_id)
            if r.state == "pending" and r.channel == channel and r.next_attempt_at <= now
        ]
        return [
            make_delivery(r.alert_id, r.station_id, r.channel, r.attempts, r.delivery_id)
            for r in due[:limit]
        ]

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        row = self.rows[delivery_id]
        assert row.state == "pending", "delivered twice"
        row.state, row.delivered_at = "delivered", at

    def mark_failed(self, delivery_id: int, error: str, next_attempt_at: datetime) -> None:
        row = self.rows[delivery_id]
        row.attempts += 1
        row.errors.append(error)
        row.next_attempt_at = next_attempt_at


class MemoryOutboxWithDead(MemoryOutbox):
    def mark_dead(self, delivery_id: int, error: str, at: datetime) -> None:
        row = self.rows[delivery_id]
        row.attempts += 1
        row.errors.append(error)
        row.state = "dead"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def to(self, when: datetime) -> None:
        self.now = max(self.now, when)


def test_fakes_and_notifiers_satisfy_the_protocols(receiver: Receiver) -> None:
    store: OutboxStore = MemoryOutbox()
    assert not isinstance(store, DeadLetterStore)
    assert isinstance(MemoryOutboxWithDead(), DeadLetterStore)
    assert isinstance(WebhookNotifier(receiver.url, SECRET), Notifier)
    assert isinstance(MqttNotifier("127.0.0.1"), Notifier)
    assert isinstance(LogNotifier(), Notifier)
    assert issubclass(DeliveryError, RakshaError)


# -- signing -----------------------------------------------------------------------------------


def test_signature_verifies_and_rejects_tampering() -> None:
    body = alert_body(make_delivery())
    now = 1_780_000_000
    header = sign(SECRET, now, body)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify_signature(SECRET, str(now), body, header, now=now)
    upper = "sha256=" + header.removeprefix("sha256=").upper()
    assert verify_signature(SECRET, str(now), body, upper, now=now)
    assert not verify_signature(b"another-secret", str(now), body, header, now=now)
    assert not verify_signature(SECRET, str(now), body + b" ", header, now=now)
    assert not verify_signature(SECRET, str(now + 1), body, header, now=now)
    assert not verify_signature(SECRET, str(now), body, header, max_skew_s=300, now=now + 301)
    assert verify_signature(SECRET, str(now), body, header, max_skew_s=300, now=now + 299)
    assert not verify_signature(SECRET, "12.5", body, header, now=now)
    assert not verify_signature(SECRET, str(now), body, header.removeprefix("sha256="), now=now)
    assert not verify_signature(b"", str(now), body, header, now=now)


def test_alert_body_is_stable_json_of_the_document() -> None:
    delivery = make_delivery()
    body = alert_body(delivery)
    assert body == alert_body(make_delivery(attempts=5))  # attempt is not in the body
    doc = json.loads(body)
    assert doc == alert_document(delivery)
    assert doc["alert_id"] == "alert-1" and doc["station_id"] == "hazratganj"
    assert doc["alert"]["note"] == "डर"
    bad = PendingDelivery(1, "webhook", "a", "i", "s", {"t": object()}, 0)
    with pytest.raises(DeliveryError) as err:
        alert_body(bad)
    assert err.value.permanent


# -- webhook -----------------------------------------------------------------------------------


def test_webhook_delivers_signed_json(receiver: Receiver) -> None:
    notifier = WebhookNotifier(receiver.url, SECRET, timeout_s=5)
    delivery = make_delivery(attempts=2)
    notifier.send(delivery)
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got.path == "/hooks/raksha?source=test"
    assert got.signature_ok
    assert got.headers["Content-Type"].startswith("application/json")
    assert got.headers[IDEMPOTENCY_HEADER] == "alert-1"
    assert got.headers[ATTEMPT_HEADER] == "3"
    assert abs(int(got.headers[TIMESTAMP_HEADER]) - time.time()) < 60
    assert "Authorization" not in got.headers
    assert json.loads(got.body) == alert_document(delivery)


def test_webhook_with_wrong_secret_fails_verification(receiver: Receiver) -> None:
    notifier = WebhookNotifier(receiver.url, b"not-the-receivers-secret", timeout_s=5)
    with pytest.raises(DeliveryError) as err:
        notifier.send(make_delivery())
    assert len(receiver.requests) == 1 and not receiver.requests[0].signature_ok
    assert err.value.permanent
    assert "401" in str(err.value)
    assert "not-the-receivers-secret" not in str(err.value)


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [
        (400, {}, True, None),
        (404, {}, True, None),
        (410, {}, True, None),
        (301, {"Location": "http://elsewhere/"}, True, None),
        (408, {}, False, None),
        (429, {"Retry-After": "7"}, False, 7.0),
        (500, {}, False, None),
        (503, {"Retry-After": "120"}, False, 120.0),
    ],
)
def test_webhook_classifies_answers(
    receiver: Receiver,
    status: int,
    headers: dict[str, str],
    permanent: bool,
    retry_after: float | None,
) -> None:
    receiver.answers.append((status, headers))
    with pytest.raises(DeliveryError) as err:
        WebhookNotifier(receiver.url, SECRET, timeout_s=5).send(make_delivery())
    assert err.value.permanent is permanent
    assert err.value.retry_after_s == retry_after
    assert str(status) in str(err.value)


def test_webhook_accepts_any_2xx(receiver: Receiver) -> None:
    receiver.answers.append((202, {}))
    WebhookNotifier(receiver.url, SECRET).send(make_delivery())
    assert len(receiver.requests) == 1


def test_webhook_url_credentials_are_sent_but_never_shown(receiver: Receiver) -> None:
    url = f"http://alice:pa%3Ass-w0rd@127.0.0.1:{receiver.port}/hooks?token=tok-991"
    notifier = WebhookNotifier(url, SECRET)
    notifier.send(make_delivery())
    auth = receiver.requests[0].headers["Authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")) == b"alice:pa:ss-w0rd"
    assert "pa%3Ass-w0rd" not in repr(notifier) and "tok-991" not in repr(notifier)

    down = WebhookNotifier(url.replace(str(receiver.port), str(free_port())), SECRET)
    with pytest.raises(DeliveryError) as err:
        down.send(make_delivery())
    message = str(err.value)
    assert not err.value.permanent
    assert "refused" in message and "127.0.0.1" in message
    for secret in ("pa%3Ass-w0rd", "pa:ss-w0rd", "tok-991", SECRET.decode()):
        assert secret not in message


def test_webhook_timeout_is_transient(receiver: Receiver) -> None:
    receiver.delay_s = 3.0
    started = time.monotonic()
    with pytest.raises(DeliveryError) as err:
        WebhookNotifier(receiver.url, SECRET, timeout_s=0.2).send(make_delivery())
    assert time.monotonic() - started < 2.5  # gave up long before the answer came
    assert not err.value.permanent
    assert "timed out" in str(err.value)


def test_webhook_reuses_its_connection_and_ignores_proxy_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A proxy in the environment must not be used: nothing listens there.
    proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    receiver = Receiver(SECRET, keep_alive=True)
    notifier = WebhookNotifier(receiver.url, SECRET, timeout_s=5)
    try:
        for i in range(3):
            notifier.send(make_delivery(f"alert-{i}"))
        receiver.answers.append((302, {"Location": f"http://127.0.0.1:{free_port()}/x"}))
        with pytest.raises(DeliveryError) as err:
            notifier.send(make_delivery("alert-moved"))
    finally:
        notifier.close()
        receiver.close()
    assert err.value.permanent and "302" in str(err.value)
    assert [r.headers[IDEMPOTENCY_HEADER] for r in receiver.requests] == [
        "alert-0",
        "alert-1",
        "alert-2",
        "alert-moved",  # the redirect was not followed
    ]
    assert all(r.signature_ok for r in receiver.requests)
    assert len({r.client_port for r in receiver.requests}) == 1  # one connection for all


def test_webhook_rejects_unusable_settings() -> None:
    with pytest.raises(RakshaError, match="http"):
        WebhookNotifier("ftp://127.0.0.1/x", SECRET)
    with pytest.raises(RakshaError, match="secret"):
        WebhookNotifier("http://127.0.0.1/x", b"")
    with pytest.raises(RakshaError) as err:
        WebhookNotifier("http://bob:hunter2@127.0.0.1:99999/x", SECRET)
    assert "hunter2" not in str(err.value)


# -- dispatcher --------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_s=2, factor=2, max_s=60, jitter=0.25)
    rng = random.Random(7)
    for n in range(1, 40):
        raw = min(60.0, 2.0 * 2 ** (n - 1))
        for _ in range(20):
            delay = policy.backoff_s(n, rng)
            assert 0.75 * raw <= delay <= raw
    spread = {round(policy.backoff_s(3, rng), 6) for _ in range(20)}
    assert len(spread) > 10  # jitter really spreads retries
    exact = RetryPolicy(base_s=1, factor=3, max_s=20, jitter=0)
    assert [exact.backoff_s(n, rng) for n in range(1, 6)] == [1, 3, 9, 20, 20]
    assert policy.backoff == Backoff(2, 2, 60, jitter=0.25)  # the shared rule
    assert all(2700 <= policy.permanent_delay_s(rng) <= 3600 for _ in range(20))
    assert RetryPolicy().backoff_s(10_000, rng) <= RetryPolicy().max_s
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.0)


def test_webhook_down_then_up_is_delivered_exactly_once() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    store, clock = MemoryOutbox(), Clock()
    first = store.add("webhook", "alert-1")
    second = store.add("webhook", "alert-2")
    policy = RetryPolicy(base_s=5, factor=2, max_s=60, jitter=0)
    dispatcher = OutboxDispatcher(
        store, {"webhook": WebhookNotifier(url, SECRET, timeout_s=2)}, policy, clock=clock
    )

    # Down: the first attempt fails, the channel is held and alert-2 waits untouched.
    stats = dispatcher.run_once()
    assert (stats.attempted, stats.failed, stats.delivered) == (1, 1, 0)
    assert store.rows[first].attempts == 1 and store.rows[second].attempts == 0
    assert store.rows[first].next_attempt_at == T0 + timedelta(seconds=5)
    assert dispatcher.held_until("webhook") == T0 + timedelta(seconds=5)
    clock.advance(1)
    assert dispatcher.run_once().held == ["webhook"]
    clock.to(store.rows[first].next_attempt_at)
    assert dispatcher.run_once().failed == 1  # still down: second attempt, longer backoff
    assert store.rows[first].attempts == 2
    assert store.rows[first].next_attempt_at == clock.now + timedelta(seconds=10)
    assert all("refused" in e for e in store.rows[first].errors)

    # Up again on the same port.
    receiver = Receiver(SECRET, port=port)
    try:
        clock.to(store.rows[first].next_attempt_at)
        recovered_at = clock.now
        stats = dispatcher.run_once()
        assert (stats.attempted, stats.delivered, stats.failed) == (2, 2, 0)
        for _ in range(5):  # later rounds send nothing again
            clock.advance(120)
            assert dispatcher.run_once().attempted == 0
        assert [r.headers[IDEMPOTENCY_HEADER] for r in receiver.requests] == [
            "alert-1",
            "alert-2",
        ]
        assert [r.headers[ATTEMPT_HEADER] for r in receiver.requests] == ["3", "1"]
        assert all(r.signature_ok for r in receiver.requests)
    finally:
        receiver.close()
    assert store.rows[first].state == store.rows[second].state == "delivered"
    assert store.rows[first].attempts == 2  # the two failed attempts are on record
    assert store.rows[first].delivered_at == recovered_at


def test_permanent_failure_is_recorded_retried_late_then_dead(receiver: Receiver) -> None:
    policy = RetryPolicy(permanent_s=3600, max_permanent_attempts=2, jitter=0.1)
    notifiers = {"webhook": WebhookNotifier(receiver.url, SECRET)}
    receiver.answers.append((422, {}))

    plain, clock = MemoryOutbox(), Clock()
    rejected = plain.add("webhook", "alert-bad")
    other = plain.add("webhook", "alert-good")
    stats = OutboxDispatcher(plain, notifiers, policy, clock=clock).run_once()
    # The receiver is up: a refusal does not hold the channel, the next alert goes too.
    assert (stats.rejected, stats.failed, stats.delivered) == (1, 0, 1)
    assert stats.held == []
    row = plain.rows[rejected]
    assert row.state == "pending" and row.attempts == 1 and "422" in row.errors[0]
    assert T0 + timedelta(seconds=3240) <= row.next_attempt_at <= T0 + timedelta(seconds=3600)
    assert plain.rows[other].state == "delivered"

    # A store that can park dead letters gets the second refusal as dead.
    receiver.answers += [(422, {}), (422, {})]
    dead_store, clock = MemoryOutboxWithDead(), Clock()
    bad = dead_store.add("webhook", "alert-bad")
    dispatcher = OutboxDispatcher(dead_store, notifiers, policy, clock=clock)
    assert dispatcher.run_once().rejected == 1
    clock.advance(3600)
    assert dispatcher.run_once().dead == 1
    clock.advance(10 * 3600)
    assert dispatcher.run_once().attempted == 0
    assert dead_store.rows[bad].state == "dead" and dead_store.rows[bad].attempts == 2
    assert len(receiver.requests) == 4


def test_a_down_channel_does_not_hold_up_the_others(caplog: pytest.LogCaptureFixture) -> None:
    store, clock = MemoryOutbox(), Clock()
    for i in range(3):
        store.add("webhook", f"alert-{i}")
        store.add("log", f"alert-{i}")
    dead_url = f"http://127.0.0.1:{free_port()}/hook"
    dispatcher = OutboxDispatcher(
        store,
        {"webhook": WebhookNotifier(dead_url, SECRET), "log": LogNotifier()},
        clock=clock,
        rng=random.Random(1),
    )
    with caplog.at_level(logging.INFO, logger="raksha.alerts"):
        stats = dispatcher.run_once()
    assert stats.channels["log"].delivered == 3
    assert stats.channels["webhook"].failed == 1 and stats.channels["webhook"].attempted == 1
    logged = [r.getMessage() for r in caplog.records if "for station hazratganj" in r.getMessage()]
    assert len(logged) == 3 and '"alert_id":"alert-2"' in logged[2]
    pending = [r for r in store.rows.values() if r.state == "pending"]
    assert len(pending) == 3 and {r.channel for r in pending} == {"webhook"}


def test_batches_drain_and_run_forever_stops(receiver: Receiver) -> None:
    store = MemoryOutbox()
    for i in range(7):
        store.add("webhook", f"alert-{i}")
    dispatcher = OutboxDispatcher(
        store, {"webhook": WebhookNotifier(receiver.url, SECRET)}, batch_size=3
    )
    stop = threading.Event()
    worker = threading.Thread(target=dispatcher.run_forever, args=(stop, 0.05), daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(r.state == "pending" for r in store.rows.values()):
        time.sleep(0.02)
    stop.set()
    dispatcher.wake()
    worker.join(5)
    assert not worker.is_alive()
    assert all(r.state == "delivered" for r in store.rows.values())
    keys = [r.headers[IDEMPOTENCY_HEADER] for r in receiver.requests]
    assert sorted(keys) == [f"alert-{i}" for i in range(7)]  # each exactly once


def test_run_forever_survives_a_failing_store(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[datetime] = []

    class BrokenStore(MemoryOutbox):
        def due_deliveries(self, channel: str, now: datetime, limit: int) -> list[PendingDelivery]:
            calls.append(now)
            raise OSError("database is locked")

    dispatcher = OutboxDispatcher(BrokenStore(), {"log": LogNotifier()})
    stop = threading.Event()
    worker = threading.Thread(target=dispatcher.run_forever, args=(stop, 0.02), daemon=True)
    with caplog.at_level(logging.ERROR, logger="raksha.alerts"):
        worker.start()
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        worker.join(5)
    assert len(calls) >= 3 and not worker.is_alive()
    assert any("dispatch round failed" in r.getMessage() for r in caplog.records)


# -- MQTT --------------------------------------------------------------------------------------

BROKER = ("127.0.0.1", 1883)


@pytest.fixture(scope="module")
def broker() -> tuple[str, int]:
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError:
        msg = f"Mosquitto is not reachable on {BROKER[0]}:{BROKER[1]}; the MQTT tests need it"
        if IN_CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return BROKER


class Subscriber:
    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        connected, subscribed = threading.Event(), threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
        self.client.on_connect = lambda *_: connected.set()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.connect(host, port)
        self.client.loop_start()
        assert connected.wait(5), "test subscriber could not connect"
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(5), "test subscriber got no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_publishes_on_the_station_topic_with_qos1(broker: tuple[str, int]) -> None:
    station = f"hazratganj-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(*broker, "raksha/stations/+/incidents")
    notifier = MqttNotifier(*broker, topic_prefix="raksha", qos=1, timeout_s=5)
    try:
        delivery = make_delivery(station_id=station, channel="mqtt")
        notifier.send(delivery)
        msg = sub.messages.get(timeout=5)
        while msg.topic != f"raksha/stations/{station}/incidents":  # other publishers
            msg = sub.messages.get(timeout=5)
        assert msg.qos == 1
        assert json.loads(msg.payload) == alert_document(delivery)
        assert notifier.topic_for(station) == msg.topic
    finally:
        notifier.close()
        sub.close()


def test_mqtt_refuses_unsafe_station_ids_and_settings() -> None:
    notifier = MqttNotifier("127.0.0.1", free_port())
    for station in ("a/b", "#", "st+1", ""):
        with pytest.raises(DeliveryError) as err:
            notifier.send(make_delivery(station_id=station, channel="mqtt"))
        assert err.value.permanent
    with pytest.raises(RakshaError, match="qos"):
        MqttNotifier("127.0.0.1", qos=0)


def test_mqtt_broker_unreachable_is_transient() -> None:
    notifier = MqttNotifier("127.0.0.1", free_port(), timeout_s=2, password="mqtt-pw-77")
    with pytest.raises(DeliveryError) as err:
        notifier.send(make_delivery(channel="mqtt"))
    assert not err.value.permanent
    assert "refused" in str(err.value) and "mqtt-pw-77" not in str(err.value)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start (and restart) a Mosquitto of the test's own on a free port."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        pytest.skip("the mosquitto binary is not installed (needed to stop and restart a broker)")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        procs.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc
            except OSError:
                time.sleep(0.02)
        raise AssertionError("private mosquitto did not start")

    start.port = port  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(5)


@pytest.mark.slow
def test_mqtt_reconnects_after_the_broker_was_down(
    private_broker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    port: int = private_broker.port  # type: ignore[attr-defined]
    store, clock = MemoryOutbox(), Clock()
    notifier = MqttNotifier("127.0.0.1", port, timeout_s=2)
    dispatcher = OutboxDispatcher(
        store, {"mqtt": notifier}, RetryPolicy(base_s=1, jitter=0), clock=clock
    )
    first = private_broker()
    try:
        sub = Subscriber("127.0.0.1", port, "raksha/stations/+/incidents")
        store.add("mqtt", "alert-1")
        assert dispatcher.run_once().delivered == 1
        assert json.loads(sub.messages.get(timeout=5).payload)["alert_id"] == "alert-1"
        sub.close()
    finally:
        first.terminate()
        first.wait(5)

    store.add("mqtt", "alert-2", station_id="chowk")
    clock.advance(1)
    assert dispatcher.run_once().failed == 1  # broker down: recorded, not lost
    assert store.rows[2].state == "pending" and store.rows[2].attempts == 1

    private_broker()
    sub = Subscriber("127.0.0.1", port, "raksha/stations/+/incidents")
    try:
        clock.to(store.rows[2].next_attempt_at)
        assert dispatcher.run_once().delivered == 1
        msg = sub.messages.get(timeout=5)
        assert msg.topic == "raksha/stations/chowk/incidents"
        assert json.loads(msg.payload)["alert_id"] == "alert-2"
    finally:
        sub.close()
        dispatcher.close()
    assert store.rows[2].state == "delivered"


# -- the real SQLite outbox --------------------------------------------------------------------


def test_dispatcher_on_the_real_sqlite_store(tmp_path: Path) -> None:
    from raksha.incidents.model import NewIncident
    from raksha.store.repository import IncidentStore

    def incident(store: IncidentStore, camera: str) -> str:
        return store.create_incident(
            NewIncident(
                camera_id=camera,
                hotspot_id="hazratganj-crossing",
                station_id="hazratganj",
                peak_distress=0.9,
                expression_at_peak={"fear": 0.8, "neutral": 0.2},
                model_name="test-model",
                model_sha256="0" * 64,
                thresholds={"open": 0.6},
                route=Route("hazratganj", "nearest", 120.0, ()),
                opened_at=T0,
            ),
            [],
            {"camera_id": camera, "peak_distress": 0.9},
            ["store", "webhook", "log"],
            now=T0,
        )

    def deliveries(store: IncidentStore, incident_id: str) -> dict[str, Any]:
        return {d.channel: d for d in store.deliveries(incident_id)}

    store = IncidentStore.open(f"sqlite:///{tmp_path / 'raksha.db'}")
    try:
        first, second = incident(store, "cam-1"), incident(store, "cam-2")
        port = free_port()
        dispatcher = OutboxDispatcher(
            store,
            {
                "webhook": WebhookNotifier(f"http://127.0.0.1:{port}/hook", SECRET),
                "log": LogNotifier(),
            },
            RetryPolicy(base_s=4, jitter=0),
        )
        stats = dispatcher.run_once(T0)
        assert (stats.delivered, stats.failed) == (2, 1)
        state = deliveries(store, first)
        assert state["log"].state == "delivered"
        assert state["webhook"].state == "pending" and state["webhook"].attempts == 1
        assert "refused" in (state["webhook"].last_error or "")
        # Only the probe was claimed: the second alert is neither attempted nor leased away.
        waiting = deliveries(store, second)["webhook"]
        assert waiting.attempts == 0 and waiting.next_attempt_at.replace(tzinfo=UTC) == T0

        receiver = Receiver(SECRET, port=port)
        try:
            assert dispatcher.run_once(T0 + timedelta(seconds=2)).attempted == 0  # held
            assert dispatcher.run_once(T0 + timedelta(seconds=4)).delivered == 2
            for minutes in (5, 60, 600):  # nothing is sent twice
                assert dispatcher.run_once(T0 + timedelta(minutes=minutes)).attempted == 0
        finally:
            receiver.close()
        assert len(receiver.requests) == 2 and all(r.signature_ok for r in receiver.requests)
        docs = [json.loads(r.body) for r in receiver.requests]
        assert sorted(d["incident_id"] for d in docs) == sorted([first, second])
        assert [r.headers[IDEMPOTENCY_HEADER] for r in receiver.requests] == [
            d["alert_id"] for d in docs
        ]
        assert deliveries(store, first)["webhook"].state == "delivered"
        # The store counts failed attempts: the first alert failed once, the second never.
        assert deliveries(store, first)["webhook"].attempts == 1
        assert deliveries(store, second)["webhook"].attempts == 0
    finally:
        store.close()
