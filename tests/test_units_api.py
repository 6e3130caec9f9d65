"""Patrol units and SOS over the dashboard's HTTP API and over MQTT (real Mosquitto): device
tokens, live positions that move the nearest-unit choice, job cards a unit reads and
acknowledges, panic signals that open and join incidents, and bad input refused with a clear
4xx that changes nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from dashboard_support import PASSWORD, STATION_A, database, fast_settings, site_config
from raksha.api.app import create_app
from raksha.incidents.model import AlertPayload
from raksha.store.repository import IncidentStore

UNIT_TOKEN = "unit-a-token-0123456789"
BOOTH_TOKEN = "booth-token-0123456789"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("RAKSHA_T_UNIT_A", UNIT_TOKEN)
    monkeypatch.setenv("RAKSHA_T_BOOTH", BOOTH_TOKEN)
    prefix = f"raksha-u-{uuid.uuid4().hex[:8]}"
    with database("sqlite", tmp_path) as url:
        base = site_config(url, tmp_path / "evidence").model_dump(mode="json")
        base["patrol_units"][0]["token_env"] = "RAKSHA_T_UNIT_A"
        base["alerts"] = {"mqtt": {"host": "127.0.0.1", "port": 1883, "topic_prefix": prefix}}
        base["sos"] = {
            "sources": [
                {
                    "id": "booth-1",
                    "kind": "booth",
                    "token_env": "RAKSHA_T_BOOTH",
                    "lat": 26.8512,
                    "lon": 80.9411,
                },
            ]
        }
        from raksha.config import RunConfig

        cfg = RunConfig.model_validate(base)
        store = IncidentStore.open(url)
        app = create_app(cfg, store=store, settings=fast_settings(background_jobs=True))
        with TestClient(app) as officer:
            app.state.raksha.users.add("op_a", "operator", PASSWORD, station_id=STATION_A)
            r = officer.post("/api/login", json={"username": "op_a", "password": PASSWORD})
            assert r.status_code == 200
            yield {
                "app": app,
                "store": store,
                "cfg": cfg,
                "officer": officer,
                "csrf": r.json()["csrf_token"],
                "device": TestClient(app),
                "prefix": prefix,
            }
        store.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _publish(prefix: str, topic: str, doc: dict[str, Any]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    client.publish(f"{prefix}/{topic}", json.dumps(doc), qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def _wait(check: Any, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    return check()


def test_unit_reports_and_takes_its_job(world: dict[str, Any]) -> None:
    dev, officer, store = world["device"], world["officer"], world["store"]
    at = datetime.now(UTC)
    body = {"lat": 26.8511, "lon": 80.9410, "at": at.isoformat()}
    assert dev.post("/api/units/pink-a/position", json=body).status_code == 401
    assert (
        dev.post("/api/units/pink-a/position", json=body, headers=_bearer("x" * 20)).status_code
        == 401
    )
    # A token opens its own unit only.
    r = dev.post("/api/units/pink-b/position", json=body, headers=_bearer(UNIT_TOKEN))
    assert r.status_code == 403
    r = dev.post("/api/units/pink-a/position", json=body, headers=_bearer(UNIT_TOKEN))
    assert r.status_code == 200 and r.json()["lat"] == 26.8511
    # Replayed, stale, impossible or malformed reports: a clear 4xx, nothing changes.
    again = dev.post("/api/units/pink-a/position", json=body, headers=_bearer(UNIT_TOKEN))
    assert again.status_code == 409 and "already reported" in again.json()["detail"]
    old = {**body, "at": (at - timedelta(hours=2)).isoformat()}
    assert (
        dev.post("/api/units/pink-a/position", json=old, headers=_bearer(UNIT_TOKEN)).status_code
        == 409
    )
    far = {"lat": 28.6, "lon": 77.2, "at": (at + timedelta(seconds=5)).isoformat()}
    r = dev.post("/api/units/pink-a/position", json=far, headers=_bearer(UNIT_TOKEN))
    assert r.status_code == 409 and "cannot have moved" in r.json()["detail"]
    bad = dev.post(
        "/api/units/pink-a/position", json={"lat": 95, "lon": 0}, headers=_bearer(UNIT_TOKEN)
    )
    assert bad.status_code == 422
    assert store.unit("pink-a").lat == 26.8511

    # An incident at station A: the nearest available units, live first.
    from dashboard_support import new_incident

    new = new_incident(STATION_A)
    new = type(new)(**{**{f: getattr(new, f) for f in new.__slots__}, "lat": 26.851, "lon": 80.941})
    iid = store.create_incident(new, [], AlertPayload.of(new).to_json(), ["store"])
    r = officer.get(f"/api/incidents/{iid}/units")
    assert r.status_code == 200
    first = r.json()["units"][0]
    assert first["unit"]["id"] == "pink-a" and first["live"] is True

    # Over MQTT the unit moves; the refusal of a bad token changes nothing.
    prefix = world["prefix"]
    move = {
        "token": UNIT_TOKEN,
        "lat": 26.8600,
        "lon": 80.9400,
        "at": (at + timedelta(seconds=30)).isoformat(),
    }
    _publish(prefix, "units/pink-a/position", {**move, "token": "wrong-token-000000000"})
    _publish(prefix, "units/pink-a/position", move)
    assert _wait(lambda: store.unit("pink-a").lat == 26.86)

    # The officer dispatches it; the dashboard itself sends the job card over MQTT; the unit
    # reads it on its phone and acknowledges it.
    cards: list[bytes] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
    sub.on_message = lambda _c, _u, m: cards.append(m.payload)
    sub.connect("127.0.0.1", 1883)
    sub.subscribe(f"{prefix}/units/pink-a/jobs", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    h = {"X-CSRF-Token": world["csrf"]}
    for action in ("acknowledge", "confirm"):
        assert (
            officer.post(
                f"/api/incidents/{iid}/actions", json={"action": action}, headers=h
            ).status_code
            == 200
        )
    busy = officer.post(
        f"/api/incidents/{iid}/actions", json={"action": "dispatch", "unit_id": "nope"}, headers=h
    )
    assert busy.status_code == 400 and "unknown patrol unit" in busy.json()["detail"]
    r = officer.post(
        f"/api/incidents/{iid}/actions", json={"action": "dispatch", "unit_id": "pink-a"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert _wait(lambda: cards), "no job card on the unit's MQTT topic"
    sub.loop_stop()
    sub.disconnect()
    assert json.loads(cards[0])["alert"]["unit"]["id"] == "pink-a"
    job = dev.get("/api/units/pink-a/job", headers=_bearer(UNIT_TOKEN)).json()["job"]
    assert job["incident_id"] == iid and job["text"]["hi"] and job["directions"].startswith("geo:")
    assert (
        dev.post("/api/units/pink-a/job/ack", json={}, headers=_bearer(UNIT_TOKEN)).status_code
        == 200
    )
    assert (
        dev.post("/api/units/pink-a/job/on-scene", json={}, headers=_bearer(UNIT_TOKEN)).status_code
        == 200
    )
    history = [a.action.value for a in store.actions(iid)]
    assert history[-2:] == ["unit_ack", "on_scene"]
    assert store.unit("pink-a").status.value == "on_scene"
    off = dev.post("/api/units/pink-a/duty", json={"on_duty": False}, headers=_bearer(UNIT_TOKEN))
    assert off.status_code == 409  # busy with the incident


def test_sos_opens_and_joins_and_refuses_bad_input(world: dict[str, Any]) -> None:
    dev, store = world["device"], world["store"]
    from raksha.incidents.model import CameraHealth

    # The camera at the booth reported a face in distress moments ago.
    store.set_camera_status(
        "cam-a", True, datetime.now(UTC), health=CameraHealth(4.9, 0, 80.0, max_distress=0.42)
    )
    h = _bearer(BOOTH_TOKEN)
    assert dev.post("/api/sos", json={"message_id": "b-1"}).status_code == 401
    r = dev.post("/api/sos", json={"message_id": "b-1"}, headers=h)  # the booth's own place
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["result"] == "opened" and out["station_id"] == STATION_A
    inc = store.get_incident(out["incident_id"])
    assert inc.origin.value == "sos" and inc.priority.value == "high" and inc.camera_id == "cam-a"
    assert inc.peak_distress == 0.42  # the camera's latest reading travels with the SOS
    assert inc.thresholds["camera_reading"]["camera_id"] == "cam-a"
    assert dev.post("/api/sos", json={"message_id": "b-1"}, headers=h).status_code == 409
    assert dev.post("/api/sos", json={"message_id": "b-2", "evil": 1}, headers=h).status_code == 422
    assert (
        dev.post("/api/sos", json={"message_id": "b-3", "lat": 26.85}, headers=h).status_code == 422
    )
    stale = {"message_id": "b-4", "sent_at": "2026-01-01T00:00:00Z"}
    assert dev.post("/api/sos", json=stale, headers=h).status_code == 422
    far = {"message_id": "b-5", "lat": 51.5, "lon": -0.12}
    assert dev.post("/api/sos", json=far, headers=h).status_code == 422
    # Over MQTT, a second press joins the open incident.
    _publish(world["prefix"], "sos/booth-1", {"token": BOOTH_TOKEN, "message_id": "b-6"})
    assert _wait(
        lambda: any(a.action.value == "sos_join" for a in store.actions(out["incident_id"]))
    )
    # The person's own cancel is recorded; the incident stays open for an officer to close.
    r = dev.post("/api/sos", json={"message_id": "b-7", "kind": "cancel"}, headers=h)
    assert r.status_code == 202 and r.json()["result"] == "cancelled"
    assert store.get_incident(out["incident_id"]).state.value == "NEW"


def test_units_list_cli_shows_live_status(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from raksha.cli import app

    config = tmp_path / "site.yaml"
    config.write_text(
        "stations:\n  - {id: hz, lat: 26.852, lon: 80.941}\n"
        "patrol_units:\n  - {id: pink-1, kind: scooter, station: hz, lat: 26.85, lon: 80.94}\n"
        f'storage: {{url: "sqlite:///{tmp_path / "r.db"}"}}\n'
    )
    runner = CliRunner()
    first = runner.invoke(app, ["units", "list", "--config", str(config), "--json"])
    assert first.exit_code == 0, first.output
    rows = json.loads(first.output)
    assert rows[0]["id"] == "pink-1" and rows[0]["status"] == "available"
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    store.report_position("pink-1", 26.8501, 80.9401, datetime.now(UTC))
    store.close()
    rows = json.loads(
        runner.invoke(app, ["units", "list", "--config", str(config), "--json"]).output
    )
    assert rows[0]["lat"] == 26.8501 and rows[0]["position_age_s"] is not None


def test_two_devices_may_not_share_a_token_and_duty_must_be_a_boolean(
    world: dict[str, Any],
) -> None:
    from raksha.errors import ConfigError
    from raksha.services.devices import Device, DeviceTokens
    from raksha.services.intake import DeviceIntake

    with pytest.raises(ConfigError, match="same device token"):
        DeviceTokens({Device("unit", "a"): "x" * 20, Device("sos", "b"): "x" * 20})
    ctx = world["app"].state.raksha
    intake = DeviceIntake(ctx.devices, ctx.units, ctx.sos)
    # A string "false" is not false: refused, and the unit stays on duty.
    intake.handle(
        "status", "pink-a", json.dumps({"token": UNIT_TOKEN, "on_duty": "false"}).encode()
    )
    assert intake.outcomes["status.refused"] == 1
    assert world["store"].unit("pink-a").status.value == "available"
    intake.handle("status", "pink-a", json.dumps({"token": UNIT_TOKEN, "on_duty": False}).encode())
    assert intake.outcomes["status.ok"] == 1
    assert world["store"].unit("pink-a").status.value == "off_duty"
