"""The dashboard shows a camera's open camera alert: `/api/cameras` carries it (kind, since,
message) and the map's camera table shows it, in English and in Hindi; scoped like the
cameras themselves, and gone once the camera recovers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dashboard_support import PASSWORD, STATION_A, STATION_B, USERS, fast_settings, site_config
from raksha.api.app import create_app
from raksha.audit.log import AuditLog
from raksha.incidents.model import new_id
from raksha.store import IncidentStore
from raksha.store import camera_alerts as rows
from raksha.web import web_for
from raksha.web.settings import WebSettings

SINCE = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)


@dataclass
class Dash:
    store: IncidentStore
    clients: dict[str, TestClient]
    csrf: dict[str, str]

    def client(self, name: str) -> TestClient:
        return self.clients[name]


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    folder = tmp_path_factory.mktemp("camalerts")
    cfg = site_config(f"sqlite:///{folder / 'raksha.db'}", folder / "evidence")
    store = IncidentStore.open(cfg.storage.url)
    app = create_app(cfg, store=store, settings=fast_settings(), web=web_for(cfg, WebSettings()))
    clients: dict[str, TestClient] = {}
    csrf: dict[str, str] = {}
    with TestClient(app):
        for name, (role, station) in USERS.items():
            if name not in ("op_a", "cr"):
                continue
            app.state.raksha.users.add(name, role, PASSWORD, station_id=station)
            c = TestClient(app)
            r = c.post("/api/login", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            clients[name] = c
            csrf[name] = r.json()["csrf_token"]
        yield Dash(store, clients, csrf)
    store.close()


def raise_alert(dash: Dash, camera_id: str, station: str, kind: str) -> rows.CameraAlert:
    alert = rows.CameraAlert(
        id=new_id(),
        camera_id=camera_id,
        station_id=station,
        kind=kind,
        since=SINCE,
        raised_at=SINCE + timedelta(seconds=20),
        message="The picture is frozen",
    )
    with dash.store.engine.begin() as c:
        rows.raise_alert(c, alert, b"\xff\xd8 not a real jpeg", ("store",))
    return alert


def test_open_camera_alert_in_the_api_and_on_the_map(dash: Dash) -> None:
    dash.store.set_camera_status(
        "cam-fz",
        True,
        station_id=STATION_A,
        display_url="rtsp://admin:hunter2secret@10.1.1.9/live",
    )
    dash.store.set_camera_status("cam-other", True, station_id=STATION_B)
    raise_alert(dash, "cam-fz", STATION_A, "frozen")
    raise_alert(dash, "cam-other", STATION_B, "covered")

    cams = {c["camera_id"]: c for c in dash.client("op_a").get("/api/cameras").json()["cameras"]}
    assert "cam-other" not in cams  # another station's camera, and its alert, stay hidden
    alert = cams["cam-fz"]["alert"]
    assert alert["kind"] == "frozen" and alert["message"] == "The picture is frozen"
    assert datetime.fromisoformat(alert["since"]) == SINCE
    assert "hunter2secret" not in dash.client("cr").get("/api/cameras").text

    page = dash.client("cr").get("/map").text
    assert "Camera alert" in page and "picture frozen" in page
    assert "lens covered or out of focus" in page
    rows_html = dash.client("cr").get("/map/cameras", headers={"Accept-Language": "hi"}).text
    assert "तस्वीर रुकी हुई है" in rows_html and "picture frozen" not in rows_html

    # Recovered: no alert any more.
    with dash.store.engine.begin() as c:
        assert rows.clear(c, "cam-fz", "frozen", SINCE + timedelta(minutes=5), ("store",))
    cams = {c["camera_id"]: c for c in dash.client("cr").get("/api/cameras").json()["cameras"]}
    assert cams["cam-fz"]["alert"] is None and cams["cam-other"]["alert"]["kind"] == "covered"


def test_acknowledging_a_camera_alert_is_scoped_and_audited(dash: Dash) -> None:
    own = raise_alert(dash, "cam-ack", STATION_A, "moved")
    other = raise_alert(dash, "cam-ack-b", STATION_B, "moved")

    def ack(who: str, alert_id: str) -> Any:
        return dash.client(who).post(
            f"/api/camera-alerts/{alert_id}/acknowledge",
            headers={"X-CSRF-Token": dash.csrf[who]},
        )

    assert ack("op_a", other.id).status_code == 404  # another station's: as if missing
    r = ack("op_a", own.id)
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged_by"] == "op_a" and r.json()["kind"] == "moved"
    assert ack("op_a", own.id).status_code == 409
    assert rows.acknowledged_open(dash.store.engine, "cam-ack", "moved") == own.id
    assert ack("cr", other.id).status_code == 200
    audit = [e for e in AuditLog(dash.store.engine).entries() if e.action == "camera.acknowledged"]
    assert {(e.actor, e.target) for e in audit} >= {
        ("op_a", "camera:cam-ack"),
        ("cr", "camera:cam-ack-b"),
    }


def test_the_map_marks_a_camera_alert_seen_for_the_stations_staff(dash: Dash) -> None:
    dash.store.set_camera_status("cam-btn", True, station_id=STATION_A)
    alert = raise_alert(dash, "cam-btn", STATION_A, "covered")
    op = dash.client("op_a")
    url = f"/map/camera-alerts/{alert.id}/acknowledge"
    rows_html = op.get("/map/cameras").text
    assert f'action="{url}"' in rows_html and "Mark as seen" in rows_html
    assert op.post(url).status_code == 403  # no CSRF token
    token = {"csrf_token": dash.csrf["op_a"]}
    r = op.post(url, data=token, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/map"
    rows_html = op.get("/map/cameras").text
    assert "seen by op_a" in rows_html and f'action="{url}"' not in rows_html
    again = op.post(url, data=token)
    assert again.status_code == 409 and "already acknowledged" in again.text
    missing = op.post("/map/camera-alerts/0000-none/acknowledge", data=token)
    assert missing.status_code == 404 and "No such camera alert." in missing.text
    hindi = op.get("/map/cameras", headers={"Accept-Language": "hi"}).text
    assert "op_a ने देखा" in hindi
    audit = [e for e in AuditLog(dash.store.engine).entries() if e.action == "camera.acknowledged"]
    assert ("op_a", "camera:cam-btn") in {(e.actor, e.target) for e in audit}
