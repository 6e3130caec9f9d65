"""The dashboard API end to end on SQLite and PostgreSQL: incidents in scope, actions and
their audit trail, evidence (blurred, unblurred with a reason, encrypted, tampered), live
events over a real uvicorn server, cameras, metrics and health."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from dashboard_support import (
    KEY_ENV,
    PASSWORD,
    STATION_A,
    STATION_B,
    SUBJECT_BOX,
    Dash,
    add_incident,
    allow_tampering,
    dashboard,
)
from raksha.api.app import RouteWithoutRule, create_app
from raksha.api.context import ApiContext
from raksha.api.deps import Principal, require
from raksha.audit.tables import audit_log
from raksha.auth.access import Rule


def _jpeg(data: bytes) -> np.ndarray:  # type: ignore[type-arg]
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return np.asarray(img, dtype=np.float32)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dash(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, faces_dir: Path
) -> Iterator[Dash]:
    """One app per database for the module (logins cost an Argon2 hash each); every test
    makes its own incidents and looks only at those."""
    with dashboard(request.param, tmp_path_factory.mktemp(request.param), faces_dir) as d:
        yield d


# ---- incidents, actions, audit --------------------------------------------------------------


def test_incident_flow_is_scoped_audited_and_verifiable(dash: Dash) -> None:
    a = add_incident(dash.store, dash.writer, dash.image, STATION_A)
    b = add_incident(dash.store, dash.writer, dash.image, STATION_B)
    op = dash.client("op_a")
    listed = {i["id"] for i in op.get("/api/incidents").json()["incidents"]}
    assert a in listed and b not in listed
    assert op.get(f"/api/incidents/{b}").status_code == 404
    one = op.get(f"/api/incidents/{a}").json()
    assert one["state"] == "NEW" and one["allowed_actions"][0] == "acknowledge"
    assert [e["url"] for e in one["evidence"]] == [
        f"/api/incidents/{a}/evidence/1",
        f"/api/incidents/{a}/evidence/2",
    ]
    assert str(dash.writer.directory) not in json.dumps(one)  # no server paths leak
    url = f"/api/incidents/{a}/actions"
    for action, state in (("acknowledge", "ACKNOWLEDGED"), ("confirm", "CONFIRMED")):
        r = dash.post("op_a", url, json={"action": action, "note": "on it"})
        assert r.status_code == 200, r.text
        assert r.json()["incident"]["state"] == state
    r = dash.post("op_a", url, json={"action": "dispatch", "unit_id": "pink-a"})
    assert r.json()["action"]["unit_id"] == "pink-a"
    assert r.json()["action"]["actor"] == "op_a"
    illegal = dash.post("op_a", url, json={"action": "acknowledge"})
    assert illegal.status_code == 409 and "DISPATCHED" in illegal.json()["detail"]
    stale = dash.post("op_a", url, json={"action": "resolve", "expected_version": 1})
    assert stale.status_code == 409
    bad = dash.post("op_a", url, json={"action": "teleport"})
    assert bad.status_code == 422
    history = op.get(f"/api/incidents/{a}").json()["actions"]
    assert [h["action"] for h in history] == ["acknowledge", "confirm", "dispatch"]

    aud = dash.client("aud")
    verify = aud.get("/api/audit/verify").json()
    assert verify["ok"] is True and verify["problems"] == []
    assert verify["actions"]["incident.action"] >= 3
    recent = [(e["actor"], e["what"]) for e in verify["recent"] if e["action"] == "incident.action"]
    assert recent[-3:] == [("op_a", "acknowledge"), ("op_a", "confirm"), ("op_a", "dispatch")]
    entries = aud.get(
        "/api/audit", params={"action": "incident.action", "target": f"incident:{a}"}
    ).json()["entries"]
    assert [e["details"]["action"] for e in entries] == ["dispatch", "confirm", "acknowledge"]
    assert {e["actor"] for e in entries} == {"op_a"}
    names = {e["action"] for e in aud.get("/api/audit", params={"limit": 1000}).json()["entries"]}
    assert {
        "login.success",
        "incident.list",
        "incident.view",
        "incident.action",
        "incident.action_refused",
    } <= names

    # An audit row edited directly in the database: the API names the broken entry.
    target = entries[1]["seq"]
    allow_tampering(dash.store.engine)  # an intruder with schema rights
    with dash.store.engine.begin() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == target).values(actor="someone"))
    broken = aud.get("/api/audit/verify").json()
    assert broken["ok"] is False
    assert broken["problems"][0]["seq"] == target


def test_list_filters(dash: Dash) -> None:
    start = datetime.now(UTC).isoformat()
    a = add_incident(dash.store, dash.writer, dash.image, STATION_A)
    add_incident(dash.store, dash.writer, dash.image, STATION_A)
    dash.post("cr", f"/api/incidents/{a}/actions", json={"action": "dismiss", "reason": "other"})
    cr = dash.client("cr")
    mine = {"since": start}
    assert cr.get("/api/incidents", params={**mine, "state": "DISMISSED"}).json()["count"] == 1
    both = cr.get("/api/incidents", params={**mine, "state": ["NEW", "DISMISSED"]}).json()
    assert both["count"] == 2
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert cr.get("/api/incidents", params={"since": later}).json()["count"] == 0
    assert cr.get("/api/incidents", params={"until": later, "limit": 1}).json()["count"] == 1
    assert cr.get("/api/incidents", params={"since": "2026-01-01T00:00:00"}).status_code == 422
    assert cr.get("/api/incidents", params={"state": "BOGUS"}).status_code == 422
    csv_text = dash.client("sup_a").get("/api/export/incidents.csv").text
    assert csv_text.splitlines()[0].startswith("id,station_id") and a in csv_text
    assert dash.store.engine is not None
    from raksha.audit import AuditLog

    assert AuditLog(dash.store.engine).entries(action="incident.export")


# ---- evidence -------------------------------------------------------------------------------


def test_evidence_shows_the_subject_by_default_masked_on_request(dash: Dash) -> None:
    a = add_incident(dash.store, dash.writer, dash.image, STATION_A)
    inc = dash.store.get_incident(a)
    assert inc is not None
    face_file, frame_file = (Path(e.path).read_bytes() for e in inc.evidence)
    base = f"/api/incidents/{a}/evidence"
    op = dash.client("op_a")

    # The officer of the incident's station sees the subject (bystanders were blurred at
    # capture) without a reason; the view is audited.
    plain = op.get(f"{base}/1")
    assert plain.status_code == 200 and plain.content == face_file
    assert plain.headers["x-raksha-evidence-view"] == "subject"
    assert op.get(f"{base}/2").content == frame_file

    face = op.get(f"{base}/1", params={"masked": True})
    assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"
    assert face.headers["x-raksha-evidence-view"] == "blurred"
    orig_face, blur_face = _jpeg(face_file), _jpeg(face.content)
    assert blur_face.shape == orig_face.shape
    assert np.abs(blur_face - orig_face).mean() > 8  # pixelated, not the face

    frame = _jpeg(op.get(f"{base}/2", params={"masked": True}).content)
    orig = _jpeg(frame_file)
    x1, y1, x2, y2 = (int(v) for v in SUBJECT_BOX)
    inside = np.abs(frame[y1:y2, x1:x2] - orig[y1:y2, x1:x2]).mean()
    mask = np.ones(orig.shape[:2], bool)
    mask[max(0, y1 - 60) : y2 + 60, max(0, x1 - 60) : x2 + 60] = False
    outside = np.abs(frame[mask] - orig[mask]).mean()
    assert inside > 8 and outside < 3, (inside, outside)  # only the subject is hidden

    assert op.get(f"{base}/1", params={"unblur": True, "reason": "identify"}).status_code == 403
    sup = dash.client("sup_a")
    assert sup.get(f"{base}/1", params={"unblur": True}).status_code == 422
    r = sup.get(f"{base}/1", params={"unblur": True, "reason": "identify the person for help"})
    assert r.status_code == 200 and r.content == face_file
    assert r.headers["x-raksha-evidence-view"] == "original"
    assert dash.client("cr").get(f"{base}/2", params={"unblur": 1, "reason": "xyz"}).content == (
        frame_file
    )
    assert op.get(f"{base}/3").status_code == 404

    entries = [
        e
        for e in dash.client("aud").get("/api/audit", params={"limit": 1000}).json()["entries"]
        if (e["target"] or "").startswith(f"incident:{a}/")
    ]
    unblurs = [e for e in entries if e["action"] == "evidence.unblur"]
    assert {e["actor"] for e in unblurs} == {"sup_a", "cr"}
    assert "identify the person for help" in {e["details"]["reason"] for e in unblurs}
    assert any(e["action"] == "evidence.unblur_refused" and e["actor"] == "op_a" for e in entries)
    assert sum(e["action"] == "evidence.view" for e in entries) == 4
    views = [e["details"]["view"] for e in entries if e["action"] == "evidence.view"]
    assert sorted(views) == ["blurred", "blurred", "subject", "subject"]


def test_tampered_or_missing_evidence_is_reported_not_served(dash: Dash) -> None:
    a = add_incident(dash.store, dash.writer, dash.image, STATION_A)
    inc = dash.store.get_incident(a)
    assert inc is not None
    face_path, frame_path = (Path(e.path) for e in inc.evidence)
    data = bytearray(face_path.read_bytes())
    data[-10] ^= 0xFF
    face_path.write_bytes(bytes(data))
    sup = dash.client("sup_a")
    r = sup.get(f"/api/incidents/{a}/evidence/1", params={"unblur": True, "reason": "check"})
    assert r.status_code == 409 and "integrity" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/json")
    # The frame's blurred view cannot use the tampered crop: the whole frame is pixelated.
    frame = sup.get(f"/api/incidents/{a}/evidence/2")
    assert frame.status_code == 200
    frame_path.unlink()
    assert sup.get(f"/api/incidents/{a}/evidence/2").status_code == 410
    audit = dash.client("aud").get("/api/audit", params={"limit": 1000}).json()["entries"]
    acts = [e["action"] for e in audit if (e["target"] or "").startswith(f"incident:{a}/")]
    assert "evidence.integrity_failure" in acts and "evidence.missing" in acts


def test_encrypted_evidence_is_decrypted_on_the_fly(
    tmp_path: Path, faces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    users = {"sup_a": ("supervisor", STATION_A)}
    with dashboard("sqlite", tmp_path, faces_dir, users=users, encrypt=True) as d:
        a = add_incident(d.store, d.writer, d.image, STATION_A)
        inc = d.store.get_incident(a)
        assert inc is not None and inc.evidence[0].path.endswith(".jpg.enc")
        stored = Path(inc.evidence[0].path).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == inc.evidence[0].sha256
        sup = d.client("sup_a")
        r = sup.get(f"/api/incidents/{a}/evidence/1", params={"unblur": True, "reason": "identify"})
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
        assert r.content != stored
        assert sup.get(f"/api/incidents/{a}/evidence/2").content[:2] == b"\xff\xd8"
        monkeypatch.delenv(KEY_ENV)
        missing = sup.get(f"/api/incidents/{a}/evidence/1")
        assert missing.status_code == 503 and KEY_ENV in missing.json()["detail"]


# ---- cameras, metrics, health ---------------------------------------------------------------


def test_cameras_masked_metrics_and_health(dash: Dash, monkeypatch: pytest.MonkeyPatch) -> None:
    dash.store.set_camera_status(
        "cam-a",
        True,
        station_id=STATION_A,
        display_url="rtsp://admin:hunter2secret@10.1.1.1:554/live?token=abc123",
    )
    text = dash.client("cr").get("/api/cameras").text
    assert "hunter2secret" not in text and "abc123" not in text and "cam-a" in text
    anon = TestClient(dash.app)
    assert anon.get("/healthz").json() == {"status": "ok", "database": True}
    assert anon.get("/metrics").status_code == 401
    monkeypatch.setenv("RAKSHA_METRICS_TOKEN", "metrics-token-123")
    assert anon.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    m = anon.get("/metrics", headers={"Authorization": "Bearer metrics-token-123"})
    assert m.status_code == 200 and "raksha_logins_total" in m.text
    assert 'raksha_http_requests_total{method="GET",route="/api/cameras",status="200"}' in m.text
    assert dash.client("adm").get("/metrics").status_code == 200
    assert dash.client("op_a").get("/metrics").status_code == 403


def test_openapi_documents_every_route(dash: Dash) -> None:
    assert TestClient(dash.app).get("/openapi.json").status_code == 401  # behind login
    schema = dash.client("op_a").get("/openapi.json").json()
    for path in (
        "/api/login",
        "/api/logout",
        "/api/incidents",
        "/api/incidents/{incident_id}",
        "/api/incidents/{incident_id}/evidence/{n}",
        "/api/incidents/{incident_id}/actions",
        "/api/events",
        "/api/cameras",
        "/api/audit",
        "/api/audit/verify",
        "/healthz",
        "/metrics",
    ):
        assert path in schema["paths"], path
    # The responses are typed: the schema names each field an officer's client relies on.
    parts = schema["components"]["schemas"]
    incident = parts["IncidentOut"]["properties"]
    for name in ("id", "station_id", "state", "peak_distress", "route", "evidence", "actions"):
        assert name in incident, name
    assert set(parts["IncidentOut"]["properties"]["state"]["enum"]) == {
        "NEW",
        "ACKNOWLEDGED",
        "CONFIRMED",
        "DISPATCHED",
        "RESOLVED",
        "DISMISSED",
    }
    assert "display_url" in parts["CameraOut"]["properties"]
    assert "distance_m" in parts["RouteOut"]["properties"]
    one = schema["paths"]["/api/incidents/{incident_id}"]["get"]["responses"]["200"]
    assert one["content"]["application/json"]["schema"]["$ref"].endswith("/IncidentOut")


# ---- live events over a real server ---------------------------------------------------------


class _Server:
    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class _Listener(threading.Thread):
    """Reads one SSE stream and records (arrival time, event, data)."""

    def __init__(self, base: str, username: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=None))
        r = self.client.post("/api/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200
        self.csrf = r.json()["csrf_token"]
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.connected = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        kind = ""
        try:
            with self.client.stream("GET", "/api/events") as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith(": connected"):
                        self.connected.set()
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((time.monotonic(), kind, json.loads(line[6:])))
                        if kind == "session.ended":
                            return
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def wait_for(self, pred: Any, timeout: float) -> tuple[float, str, dict[str, Any]] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in list(self.events):
                if pred(ev):
                    return ev
            time.sleep(0.02)
        return None


def test_events_reach_own_station_within_2s_and_never_another(dash: Dash, tmp_path: Path) -> None:
    users = dash.app.state.raksha.users
    if not users.exists("op_b"):
        users.add("op_b", "operator", PASSWORD, station_id=STATION_B)
    with _Server(dash.app) as base:
        op_a, op_b = _Listener(base, "op_a"), _Listener(base, "op_b")
        for lis in (op_a, op_b):
            lis.start()
            assert lis.connected.wait(5)
        t0 = time.monotonic()
        a = add_incident(dash.store, dash.writer, dash.image, STATION_A)
        got = op_a.wait_for(lambda e: e[2].get("id") == a, 5)
        assert got is not None, "op_a never got the new incident"
        assert got[1] == "incident.new" and got[2]["station_id"] == STATION_A
        assert got[0] - t0 < 2.0, f"arrived after {got[0] - t0:.2f} s"

        b = add_incident(dash.store, dash.writer, dash.image, STATION_B)
        assert op_b.wait_for(lambda e: e[2].get("id") == b, 5) is not None
        r = op_a.client.post(
            f"/api/incidents/{a}/actions",
            json={"action": "acknowledge"},
            headers={"X-CSRF-Token": op_a.csrf},
        )
        assert r.status_code == 200
        upd = op_a.wait_for(lambda e: e[1] == "incident.update" and e[2]["id"] == a, 5)
        assert upd is not None and upd[2]["state"] == "ACKNOWLEDGED"
        time.sleep(0.5)
        assert all(e[2].get("station_id") == STATION_A for e in op_a.events)
        assert all(e[2].get("station_id") == STATION_B for e in op_b.events)
        assert b not in {e[2].get("id") for e in op_a.events}

        # Logging out ends the stream (the session is re-checked at the next keepalive).
        op_b.client.post("/api/logout", headers={"X-CSRF-Token": op_b.csrf})
        assert op_b.ended.wait(5)
        for lis in (op_a, op_b):
            lis.client.close()


# ---- the web package's hook -----------------------------------------------------------------


def test_web_hook_routes_must_declare_a_rule(dash: Dash) -> None:
    def good(app: FastAPI, ctx: ApiContext) -> None:
        assert isinstance(ctx, ApiContext)

        @app.get("/web/incidents")
        def page(
            who: Annotated[Principal, Depends(require(Rule.INCIDENTS_READ))],
        ) -> dict[str, str]:
            return {"user": who.name}

    app = create_app(dash.cfg, store=dash.store, web=good)
    c = TestClient(app)
    assert c.get("/web/incidents").status_code == 401
    assert c.post("/api/login", json={"username": "aud", "password": PASSWORD}).status_code == 200
    assert c.get("/web/incidents").status_code == 403  # an auditor has no incidents

    def bad(app: FastAPI, ctx: ApiContext) -> None:
        @app.get("/web/leak")
        def leak() -> dict[str, str]:
            return {}

    with pytest.raises(RouteWithoutRule, match="/web/leak"):
        create_app(dash.cfg, store=dash.store, web=bad)


# ---- raksha serve ---------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_once(config: Path) -> None:
    """Start `raksha serve`, wait for /healthz, stop it."""
    import subprocess
    import sys

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "raksha", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if r.status_code == 200:
                    assert r.json()["database"] is True
                    assert httpx.get(f"http://127.0.0.1:{port}/api/incidents").status_code == 401
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "raksha serve did not come up"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_raksha_serve_starts_and_audits_its_config(tmp_path: Path) -> None:
    from raksha.audit import AuditLog
    from raksha.store import IncidentStore

    config = tmp_path / "raksha.yaml"
    db = f"sqlite:///{tmp_path / 'r.db'}"
    config.write_text(f"storage:\n  url: {db}\n", encoding="utf-8")
    _serve_once(config)
    config.write_text(f"storage:\n  url: {db}\nincidents:\n  merge_window_s: 60\n", "utf-8")
    _serve_once(config)
    store = IncidentStore.open(db)
    try:
        log = AuditLog(store.engine)
        acts = [e.action for e in log.entries(limit=10)]
        assert acts == ["config.loaded", "config.changed"]
        assert log.verify().ok
    finally:
        store.close()


def test_event_hub_announces_late_commits_once_and_not_old_incidents(dash: Dash) -> None:
    import dataclasses

    from dashboard_support import new_incident
    from raksha.api.sse import EventHub
    from raksha.store.changes import IncidentChangeFeed

    add_incident(dash.store, dash.writer, dash.image, STATION_A)  # there before the hub
    hub = EventHub(IncidentChangeFeed(dash.store.engine), poll_s=0.1)
    hub.prime()  # what start() does before polling
    assert hub.poll_once() == []
    now = datetime.now(UTC)
    first = dash.store.create_incident(new_incident(STATION_A), [], {}, [], now=now)
    assert [(k, d["id"]) for k, d in hub.poll_once()] == [("incident.new", first)]
    # Written with an earlier time but committed after the hub moved past it (a slow writer).
    late_inc = dataclasses.replace(new_incident(STATION_B), opened_at=now - timedelta(seconds=3))
    late = dash.store.create_incident(late_inc, [], {}, [], now=now - timedelta(seconds=3))
    assert [(k, d["id"]) for k, d in hub.poll_once()] == [("incident.new", late)]
    dash.store.apply_action(first, "acknowledge", "op_a")
    changes = hub.poll_once()
    assert [(k, d["id"], d["state"]) for k, d in changes] == [
        ("incident.update", first, "ACKNOWLEDGED")
    ]
    assert hub.poll_once() == []
