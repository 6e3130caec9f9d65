"""The loop to the street with real processes, timed: `raksha run` (a camera playing a
distress clip, the escalation timer), `raksha serve` (the dashboard, its timer and the MQTT
intake), Mosquitto, SQLite or PostgreSQL.

    python benchmarks/dispatch_loop.py [--db sqlite|postgresql] [--json out.json]

A camera between two stations with three patrol units around it. Measured, from the
messages that arrive on the broker:
  - the incident's first alert (its station's topic, Raksha JSON, EIDO and CAP);
  - how late the escalation step comes after the acknowledge deadline (timers tick every
    second in each process; a step must come once, whichever process fires it);
  - a dispatch to a busy unit refused; a position over MQTT moving the nearest-unit choice;
  - dispatch (HTTP) -> the unit's job card on its MQTT topic;
  - an SOS near the camera joining the incident;
  - every state change once per format.
Nothing is asserted; it prints what it saw and the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests"))

PASSWORD = "correct horse battery staple"
UNIT_TOKENS = {
    "pink-1": "pink-1-token-0123456789",
    "pink-2": "pink-2-token-0123456789",
    "car-9": "car-9-token-0123456789",
}
SOS_TOKEN = "sos-app-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Listener:
    def __init__(self, prefix: str) -> None:
        self.messages: list[tuple[float, str, bytes]] = []
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"b-{uuid.uuid4().hex}")
        self.client.on_connect = lambda c, *_: (c.subscribe(f"{prefix}/#", qos=1), ready.set())
        self.client.on_message = lambda _c, _u, m: self.messages.append(
            (time.time(), m.topic, m.payload)
        )
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        ready.wait(10)

    def wait(self, pred: Any, timeout: float) -> tuple[float, str, bytes] | None:
        end = time.time() + timeout
        while time.time() < end:
            for m in list(self.messages):
                if pred(m):
                    return m
            time.sleep(0.05)
        return None


def config(folder: Path, prefix: str, db: str, clip: Path) -> Path:
    doc = {
        "stations": [
            {"id": "hazratganj", "name": "Hazratganj PS", "lat": 26.8520, "lon": 80.9410},
            {"id": "aliganj", "name": "Aliganj PS", "lat": 26.8900, "lon": 80.9400},
        ],
        "hotspots": [{"id": "crossing", "name": "Hazratganj crossing", "lat": 26.85, "lon": 80.94}],
        "cameras": [{"id": "cam-1", "hotspot": "crossing", "url": clip.as_uri()}],
        "patrol_units": [
            {
                "id": "pink-1",
                "kind": "scooter",
                "station": "hazratganj",
                "lat": 26.8518,
                "lon": 80.94,
                "token_env": "B_PINK1",
            },
            {
                "id": "pink-2",
                "kind": "scooter",
                "station": "hazratganj",
                "lat": 26.8560,
                "lon": 80.94,
                "token_env": "B_PINK2",
            },
            {
                "id": "car-9",
                "kind": "car",
                "station": "aliganj",
                "lat": 26.8800,
                "lon": 80.94,
                "token_env": "B_CAR9",
            },
        ],
        "alerts": {
            "mqtt": {
                "host": "127.0.0.1",
                "port": 1883,
                "topic_prefix": prefix,
                "formats": ["raksha", "eido", "cap"],
            }
        },
        "escalation": {"acknowledge_s": 10, "step_s": 10, "check_every_s": 1},
        "sos": {"sources": [{"id": "app-112", "token_env": "B_SOS"}]},
        "storage": {"url": db},
        "evidence": {"dir": str(folder / "evidence")},
        "source": {"realtime_files": True},
    }
    path = folder / "raksha.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from synthetic_video import FaceJudge, build_distress_clip

    folder = Path(tempfile.mkdtemp(prefix="raksha-loop-"))
    models = SHARED / "models"
    clip = build_distress_clip(folder, SHARED / "data", FaceJudge(models)).path
    prefix = f"raksha-b-{uuid.uuid4().hex[:8]}"
    if args.db == "sqlite":
        db = f"sqlite:///{folder / 'raksha.db'}"
    else:
        schema = f"raksha_loop_b_{uuid.uuid4().hex[:8]}"
        import sqlalchemy as sa

        admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        db = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    cfg = config(folder, prefix, db, clip)
    env = {
        **os.environ,
        "RAKSHA_MODELS": str(models),
        "B_PINK1": UNIT_TOKENS["pink-1"],
        "B_PINK2": UNIT_TOKENS["pink-2"],
        "B_CAR9": UNIT_TOKENS["car-9"],
        "B_SOS": SOS_TOKEN,
        "RAKSHA_PASSWORD": PASSWORD,
    }
    raksha = [sys.executable, "-m", "raksha"]
    subprocess.run(
        [
            *raksha,
            "users",
            "add",
            "--config",
            str(cfg),
            "--username",
            "op",
            "--role",
            "operator",
            "--station",
            "hazratganj",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    listener = Listener(prefix)
    port = free_port()
    serve = subprocess.Popen(
        [*raksha, "serve", "--config", str(cfg), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    run = subprocess.Popen(
        [*raksha, "run", "--config", str(cfg), "--no-table"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    out: dict[str, Any] = {"db": args.db}
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        first = listener.wait(lambda m: m[1].endswith("/stations/hazratganj/incidents"), 90)
        if first is None:
            raise SystemExit("no incident within 90 s")
        doc = json.loads(first[2])
        iid, opened = doc["incident_id"], datetime.fromisoformat(doc["alert"]["opened_at"])
        out["station"] = doc["station_id"]
        out["alert_after_opened_s"] = round(first[0] - opened.timestamp(), 3)
        step = listener.wait(
            lambda m: (
                m[1].endswith("/incidents") and b'"escalated"' in m[2] and iid.encode() in m[2]
            ),
            30,
        )
        if step is not None:
            out["escalation_late_s"] = round(step[0] - (opened.timestamp() + 10), 3)
        time.sleep(2)
        out["escalations_in_first_step"] = sum(
            1 for m in listener.messages if m[1].endswith("/incidents") and b'"escalated"' in m[2]
        )
        client = httpx.Client(base_url=base, timeout=10)
        r = client.post("/api/login", json={"username": "op", "password": PASSWORD})
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        for action in ("acknowledge", "confirm"):
            client.post(f"/api/incidents/{iid}/actions", json={"action": action})
        # pink-1 reports from far away, car-9 moves next to the camera over MQTT.
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex}")
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()
        now = datetime.now(UTC).isoformat()
        sent = time.time()
        pub.publish(
            f"{prefix}/units/car-9/position",
            json.dumps({"token": UNIT_TOKENS["car-9"], "lat": 26.8501, "lon": 80.9401, "at": now}),
            qos=1,
        )
        moved = None
        for _ in range(100):
            units = client.get(f"/api/incidents/{iid}/units").json()["units"]
            if units and units[0]["unit"]["id"] == "car-9":
                moved = time.time() - sent
                break
            time.sleep(0.05)
        out["mqtt_position_to_choice_s"] = None if moved is None else round(moved, 3)
        out["nearest_after_move"] = units[0]["unit"]["id"] if units else None
        t0 = time.time()
        r = client.post(
            f"/api/incidents/{iid}/actions", json={"action": "dispatch", "unit_id": "car-9"}
        )
        out["dispatch_status"] = r.status_code
        card = listener.wait(lambda m: m[1].endswith("/units/car-9/jobs"), 20)
        out["dispatch_to_job_card_s"] = None if card is None else round(card[0] - t0, 3)
        # A panic signal 700 m away opens a second incident; car-9 is busy with the first.
        bearer = {"Authorization": f"Bearer {SOS_TOKEN}"}
        far = httpx.post(
            f"{base}/api/sos",
            headers=bearer,
            timeout=10,
            json={"message_id": "m-0", "lat": 26.8563, "lon": 80.9400},
        ).json()
        out["sos_far"] = far
        second = far["incident_id"]
        for action in ("acknowledge", "confirm"):
            client.post(f"/api/incidents/{second}/actions", json={"action": action})
        for unit in ("car-9", "pink-99"):
            r = client.post(
                f"/api/incidents/{second}/actions", json={"action": "dispatch", "unit_id": unit}
            )
            out[f"dispatch_{unit}_to_second"] = [r.status_code, r.json().get("detail")]
        sos = httpx.post(
            f"{base}/api/sos",
            headers=bearer,
            json={"message_id": "m-1", "lat": 26.8504, "lon": 80.9402},
            timeout=10,
        )
        out["sos"] = sos.json()
        client.post(f"/api/incidents/{iid}/actions", json={"action": "resolve"})
        time.sleep(4)
        events: dict[str, dict[str, int]] = {}
        for _, topic, payload in listener.messages:
            leaf = topic.rsplit("/", 1)[1]
            if iid.encode() not in payload:
                continue  # the other incident's
            if leaf == "incidents":
                d = json.loads(payload)
                if d["incident_id"] == iid:
                    events.setdefault(d["alert"]["event"], {}).setdefault("raksha", 0)
                    events[d["alert"]["event"]]["raksha"] += 1
            elif leaf == "eido":
                d = json.loads(payload)
                ev = d.get("rakshaEvent", {}).get("event", "?")
                events.setdefault(ev, {}).setdefault("eido", 0)
                events[ev]["eido"] += 1
            elif leaf == "cap":
                m = re.search(rb"<valueName>RAKSHA_EVENT</valueName>\s*<value>([^<]+)<", payload)
                ev = m.group(1).decode() if m else "?"
                events.setdefault(ev, {}).setdefault("cap", 0)
                events[ev]["cap"] += 1
        out["messages_per_event_of_the_camera_incident"] = events
        pub.loop_stop()
    finally:
        for p in (run, serve):
            p.send_signal(signal.SIGINT)
        for p in (run, serve):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if args.db == "postgresql":
            with admin.begin() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
