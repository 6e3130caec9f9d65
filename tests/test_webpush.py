"""Web Push end to end on this machine: a browser's subscription (keys made here as a browser
makes them), a local push service that records what it is sent, and the outbox delivering a
new incident to the right browsers only, encrypted (RFC 8291) and signed (VAPID, RFC 8292)."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from dashboard_support import (
    PASSWORD,
    STATION_A,
    STATION_B,
    database,
    fast_settings,
    new_incident,
    site_config,
)
from raksha.alerts.dispatcher import OutboxDispatcher
from raksha.api.app import create_app
from raksha.config import RunConfig
from raksha.incidents.model import AlertPayload
from raksha.services.deployment import push_notifier
from raksha.store import push as push_rows
from raksha.store.repository import IncidentStore

VAPID_KEY = "ojqITGGiXlzXl5gOx8-ovMJrdu9WP8Sb_vrcWdVzG4U"  # made by `raksha push keygen`


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Browser:
    """A subscription's keys, as a browser's PushManager makes them."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def json(self) -> dict[str, Any]:
        raw = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "keys": {"p256dh": _b64(raw), "auth": _b64(self.auth)}}

    def read(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth)
        doc: dict[str, Any] = json.loads(plain)
        return doc


class PushService:
    """A push service on 127.0.0.1: records each POST; `/gone/...` answers 410."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                self.send_response(410 if self.path.startswith("/gone/") else 201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("RAKSHA_VAPID_KEY", VAPID_KEY)
    service = PushService()
    with database("sqlite", tmp_path) as url:
        base = site_config(url, tmp_path / "evidence").model_dump(mode="json")
        base["alerts"] = {
            "push": {
                "subject": "mailto:control-room@lucknow.invalid",
                "allowed_hosts": ["127.0.0.1"],
            }
        }
        cfg = RunConfig.model_validate(base)
        store = IncidentStore.open(url)
        app = create_app(cfg, store=store, settings=fast_settings())
        clients = {}
        with TestClient(app):
            for name, station in (("op_a", STATION_A), ("op_b", STATION_B)):
                app.state.raksha.users.add(name, "operator", PASSWORD, station_id=station)
                c = TestClient(app)
                r = c.post("/api/login", json={"username": name, "password": PASSWORD})
                c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
                clients[name] = c
            yield {"cfg": cfg, "store": store, "clients": clients, "push": service}
        store.close()
    service.close()


def test_a_new_incident_reaches_its_station_browsers_encrypted_and_signed(
    world: dict[str, Any],
) -> None:
    op_a, op_b = world["clients"]["op_a"], world["clients"]["op_b"]
    push, store, cfg = world["push"], world["store"], world["cfg"]
    key = op_a.get("/api/push/key").json()["public_key"]
    a = Browser(f"{push.url}/sub/a")
    b = Browser(f"{push.url}/sub/b")
    gone = Browser(f"{push.url}/gone/x")
    # A push service nobody allowed is refused: nothing may be sent there.
    evil = Browser("https://push.evil.example/sub/1").json()
    assert op_a.post("/api/push/subscriptions", json=evil).status_code == 422
    bad = {**a.json(), "keys": {"p256dh": "A" * 87, "auth": "B" * 22}}
    assert op_a.post("/api/push/subscriptions", json=bad).status_code == 422
    for client, browser in ((op_a, a), (op_b, b), (op_a, gone)):
        assert client.post("/api/push/subscriptions", json=browser.json()).status_code == 201

    new = new_incident(STATION_A)
    channels = store.workflow.station_channels
    assert "push" in channels
    store.create_incident(new, [], AlertPayload.of(new).to_json(), channels)
    notifier = push_notifier(cfg, store, {"RAKSHA_VAPID_KEY": VAPID_KEY})
    assert notifier is not None
    stats = OutboxDispatcher(store, {"push": notifier}).run_once()
    assert stats.channels["push"].delivered == 1

    paths = [p for p, _, _ in push.received]
    assert sorted(paths) == ["/gone/x", "/sub/a"]  # station B's officer is not told
    _, headers, body = next(r for r in push.received if r[0] == "/sub/a")
    notice = a.read(body)
    assert notice["incident_id"] == new.id and notice["url"] == f"/incidents/{new.id}"
    assert "evidence" not in json.dumps(notice) and notice["title"].startswith("Raksha")
    assert headers["content-encoding"] == "aes128gcm" and int(headers["ttl"]) == 300
    # VAPID: a JWT for this push service's origin, signed by the server's key.
    auth = headers["authorization"]
    assert auth.startswith("vapid t=") and f"k={key}" in auth
    token = auth.split("t=")[1].split(",")[0]
    head, claims, sig = token.split(".")
    assert json.loads(_unb64(claims))["aud"] == push.url
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64(key))
    raw = _unb64(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    # The push service said the third subscription is gone: it is dropped.
    assert push_rows.of_user(store.engine, "op_a") == [a.endpoint]
    assert op_a.post("/api/push/subscriptions/delete", json={}).status_code == 200
    assert push_rows.of_user(store.engine, "op_a") == []
