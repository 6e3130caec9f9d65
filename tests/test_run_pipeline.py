"""`raksha run --exit-at-end` end to end on clips assembled from real faces.

The clips (tests/synthetic_video.py) show one real FER+ face at a fixed place: neutral -> fear
-> neutral (distress) or neutral -> happy -> neutral (calm). The camera's hotspot lies nearest
to station B of three. Real services: SQLite files, PostgreSQL on 127.0.0.1:5432 (database
`test`, a schema of its own per test), Mosquitto on 127.0.0.1:1883, and an HTTP receiver the
test starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import make_url
from sqlalchemy import text as sql

from outage_proxy import OutageProxy
from pg_support import admin_engine, pg_schema, skip_or_fail
from raksha.alerts.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from raksha.app import build_runtime
from raksha.config import load_run_config
from raksha.incidents.evidence import read_evidence
from raksha.pipeline.incident_sink import StoredIncident
from raksha.pipeline.runtime import Runtime
from raksha.store import IncidentStore
from synthetic_video import (
    FaceJudge,
    SyntheticClip,
    build_calm_clip,
    build_distress_clip,
    build_look_away_clip,
)

SCHEMA_PREFIX = "raksha_run_t_"
BROKER = ("127.0.0.1", 1883)
WEBHOOK_SECRET = "run-pipeline-webhook-secret-91d2"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
#: The evidence key the tests' conftest put in the environment (encryption is on by default).
KEY_ENV = {"RAKSHA_EVIDENCE_KEY": os.environ["RAKSHA_EVIDENCE_KEY"]}

#: The camera's hotspot and three stations around it; B is clearly the nearest.
HOTSPOT = {
    "id": "kaiserbagh-crossing",
    "name": "Kaiserbagh Crossing",
    "lat": 26.8500,
    "lon": 80.9400,
}
STATIONS = [
    {"id": "station-a", "name": "A", "lat": 26.8700, "lon": 80.9400},  # ~2.2 km north
    {"id": "station-b", "name": "B", "lat": 26.8460, "lon": 80.9440},  # ~0.6 km south-east
    {"id": "station-c", "name": "C", "lat": 26.8500, "lon": 80.9800},  # ~4.0 km east
]
UNITS = [
    {
        "id": "pink-scooter-1",
        "kind": "scooter",
        "station": "station-b",
        "lat": 26.8480,
        "lon": 80.9410,
    },
    {"id": "pink-car-2", "kind": "car", "station": "station-a", "lat": 26.8550, "lon": 80.9400},
    {
        "id": "pink-booth-3",
        "kind": "pink_booth",
        "station": "station-b",
        "lat": 26.8495,
        "lon": 80.9402,
    },
    {
        "id": "pink-scooter-4",
        "kind": "scooter",
        "station": "station-c",
        "lat": 26.8500,
        "lon": 80.9750,
    },
    {"id": "pink-van-5", "kind": "van", "station": "station-a", "lat": 26.8800, "lon": 80.9300},
]
INCIDENT_KEYS = {
    "id",
    "camera_id",
    "hotspot_id",
    "station_id",
    "state",
    "opened_at",
    "peak_distress",
    "expression_at_peak",
    "patrol_units",
    "evidence",
}


#: The dead camera's password. ("secrets file" in a hint about where credentials belong, or
#: the `totp_secret` column in the database's schema, is not a leak, hence the word match.)
PASSWORD_RE = re.compile(r"(?<![A-Za-z_])secret(?![A-Za-z_])")


#: A camera password given through the environment.
ENV_PASSWORD = "Zq81-pw-from-env"


def leaks_password(text: str) -> bool:
    return PASSWORD_RE.search(text) is not None


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def expected_units() -> list[tuple[str, float]]:
    d = [(u["id"], haversine_m(HOTSPOT["lat"], HOTSPOT["lon"], u["lat"], u["lon"])) for u in UNITS]
    return sorted(d, key=lambda x: x[1])[:3]


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def judge(models_dir: Path) -> FaceJudge:
    return FaceJudge(models_dir)


@pytest.fixture(scope="session")
def distress_clip(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, judge: FaceJudge
) -> SyntheticClip:
    return build_distress_clip(tmp_path_factory.mktemp("clips"), data_dir, judge)


@pytest.fixture(scope="session")
def calm_clip(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, judge: FaceJudge
) -> SyntheticClip:
    return build_calm_clip(tmp_path_factory.mktemp("clips"), data_dir, judge)


@pytest.fixture(scope="session")
def look_away_clip(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, judge: FaceJudge
) -> SyntheticClip:
    return build_look_away_clip(tmp_path_factory.mktemp("clips"), data_dir, judge)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections live in a fresh schema, dropped afterwards."""
    admin = admin_engine("the run tests", SCHEMA_PREFIX)
    try:
        with pg_schema(admin, SCHEMA_PREFIX) as url:
            yield url
    finally:
        admin.dispose()


@pytest.fixture
def broker() -> tuple[str, int]:
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError:
        skip_or_fail(f"Mosquitto is not reachable on {BROKER[0]}:{BROKER[1]}")
    return BROKER


# ---- helpers ----------------------------------------------------------------------------------


def write_config(
    path: Path,
    cameras: Sequence[dict[str, Any]],
    storage_url: str,
    *,
    alerts: dict[str, Any] | None = None,
    stations: Sequence[dict[str, Any]] = STATIONS,
    source: dict[str, Any] | None = None,
) -> Path:
    units = [dict(u) for u in UNITS]
    ids = {s["id"] for s in STATIONS}
    renamed = {old["id"]: new["id"] for old, new in zip(STATIONS, stations, strict=True)}
    for u in units:
        assert u["station"] in ids
        u["station"] = renamed[u["station"]]
    doc: dict[str, Any] = {
        "stations": list(stations),
        "patrol_units": units,
        "hotspots": [HOTSPOT],
        "cameras": list(cameras),
        "storage": {"url": storage_url},
        "evidence": {"dir": str(path.parent / "evidence")},
        "source": {"reconnect_initial_s": 0.5, **(source or {})},
    }
    if alerts:
        doc["alerts"] = alerts
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def camera(cam_id: str, url: str | Path) -> dict[str, Any]:
    return {"id": cam_id, "hotspot": HOTSPOT["id"], "url": str(url), "fps": 5}


def run_cli(
    *args: str, models_dir: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, RAKSHA_MODELS=str(models_dir), **(env or {}))
    full_env.pop("RAKSHA_TEST_PG_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "raksha", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def raksha_run(
    config: Path, models_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = run_cli(
        "run",
        "--config",
        str(config),
        "--exit-at-end",
        "--no-table",
        models_dir=models_dir,
        env=env,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def list_incidents(config: Path, models_dir: Path) -> list[dict[str, Any]]:
    proc = run_cli("incidents", "list", "--config", str(config), "--json", models_dir=models_dir)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert isinstance(rows, list)
    return rows


def stored_incidents(url: str) -> list[dict[str, Any]]:
    """What `raksha incidents list --json` prints, read in process (saves a process start
    where the CLI's own output is not what a test is about)."""
    from raksha.store.serialize import incident_to_json

    store = open_store(url)
    try:
        return [incident_to_json(i) for i in store.list_incidents()]
    finally:
        store.close()


def sqlite_count(db: Path, table: str) -> int:
    """Rows in `table` of the SQLite file `db`, read-only (0 while it or the table is missing)."""
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def check_evidence(row: dict[str, Any]) -> None:
    assert row["evidence"], row
    for ev in row["evidence"]:
        path = Path(ev["path"])
        assert path.is_file(), ev
        assert hashlib.sha256(path.read_bytes()).hexdigest() == ev["sha256"], ev
        # Encrypted at rest by default: nothing readable on disk, a JPEG once decrypted.
        assert path.suffix == ".enc" and path.read_bytes()[:2] != b"\xff\xd8", ev
        plain = read_evidence(path, os.environ["RAKSHA_EVIDENCE_KEY"].encode())
        if ev["kind"] == "clip":
            assert plain[4:8] == b"ftyp", "the clip is an MP4"
        else:
            assert plain[:2] == b"\xff\xd8", "evidence is a JPEG"
        assert hashlib.sha256(plain).hexdigest() == ev["content_sha256"], ev


def check_evidence_shows_the_subject(row: dict[str, Any], clip: SyntheticClip) -> None:
    """The face evidence is a crop around the fear face the clip showed, and the full frame
    keeps that face sharp (only other faces are blurred; there are none)."""
    import cv2
    import numpy as np

    by_kind = {ev["kind"]: ev for ev in row["evidence"]}
    assert set(by_kind) == {"face", "frame_blurred", "clip"}, by_kind
    fear = clip.segments[1]
    assert fear.label == "fear" and fear.image is not None
    source = cv2.imread(str(fear.image), cv2.IMREAD_GRAYSCALE)
    x1, y1, x2, y2 = clip.face_box
    face_px = x2 - x1
    subject = cv2.resize(source, (face_px, face_px), interpolation=cv2.INTER_CUBIC)

    def picture(path: str) -> Any:
        plain = read_evidence(path, KEY_ENV["RAKSHA_EVIDENCE_KEY"].encode())
        return cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_GRAYSCALE)

    face = picture(by_kind["face"]["path"])
    assert face is not None and min(face.shape) >= face_px // 2, face.shape
    # The crop may be scaled; bring the subject to the crop's scale by its box within it.
    frame = picture(by_kind["frame_blurred"]["path"])
    assert frame is not None and frame.shape == (480, 640), frame.shape
    in_frame = frame[y1:y2, x1:x2]
    score = float(cv2.matchTemplate(in_frame, subject, cv2.TM_CCOEFF_NORMED).max())
    assert score > 0.95, f"the subject's face in the frame evidence is altered ({score:.3f})"
    # The face crop holds the subject: find its centre part at some scale.
    centre = subject[face_px // 4 : 3 * face_px // 4, face_px // 4 : 3 * face_px // 4]
    best = 0.0
    for scale in np.linspace(0.5, 1.5, 21):
        t = cv2.resize(centre, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if t.shape[0] <= face.shape[0] and t.shape[1] <= face.shape[1]:
            best = max(best, float(cv2.matchTemplate(face, t, cv2.TM_CCOEFF_NORMED).max()))
    assert best > 0.9, f"the face evidence does not show the subject ({best:.3f})"

    # The clip: seconds before and after the decision, the subject's face unaltered in it.
    from raksha.incidents.clip import decode_mp4

    plain = read_evidence(by_kind["clip"]["path"], KEY_ENV["RAKSHA_EVIDENCE_KEY"].encode())
    images, times = decode_mp4(plain)
    assert len(images) >= 10 and times[-1] - times[0] >= 3.0, (len(images), times)
    assert images[0].shape[:2] == (480, 640)
    grey = [cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) for img in images]
    seen = max(
        float(cv2.matchTemplate(g[y1:y2, x1:x2], subject, cv2.TM_CCOEFF_NORMED).max()) for g in grey
    )
    assert seen > 0.8, f"the clip does not show the subject's fear face ({seen:.3f})"


def check_distress_incident(row: dict[str, Any], clip: SyntheticClip, camera_id: str) -> None:
    assert set(row) >= INCIDENT_KEYS, sorted(INCIDENT_KEYS - set(row))
    assert row["camera_id"] == camera_id
    assert row["hotspot_id"] == HOTSPOT["id"]
    assert row["station_id"] == "station-b"
    assert row["state"] == "NEW"
    assert 0.55 <= row["peak_distress"] <= 1.0
    expr = row["expression_at_peak"]
    assert max(expr, key=expr.get) == "fear", expr
    # The event opened while the fear segment was on screen.
    start, end = clip.window(1)
    assert start <= row["event_start_s"] <= end, (row["event_start_s"], clip.window(1))
    units = row["patrol_units"]
    assert [u["id"] for u in units] == [u for u, _ in expected_units()]
    dists = [u["distance_m"] for u in units]
    assert dists == sorted(dists)
    for u, (_, d) in zip(units, expected_units(), strict=True):
        assert u["distance_m"] == pytest.approx(d, abs=2.0)
    check_evidence(row)


def run_to_end(config: Path, models_dir: Path, **kw: Any) -> Runtime:
    """`raksha run --exit-at-end` in process: built, started, waited on, stopped."""
    rt = build_runtime(
        load_run_config(config), models_dir=models_dir, exit_at_end=True, env=KEY_ENV, **kw
    )
    rt.start()
    try:
        rt.wait()
    finally:
        rt.stop()
    return rt


def open_store(url: str) -> IncidentStore:
    return IncidentStore.open(url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A local webhook receiver that records every POST."""

    def __init__(self, port: int = 0) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.posts.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/raksha"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def check_signed(self, headers: dict[str, str], body: bytes) -> None:
        assert verify_signature(
            WEBHOOK_SECRET.encode(), headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER]
        ), headers
        assert not verify_signature(
            b"another-secret", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER]
        )


@contextmanager
def receiver(port: int = 0) -> Iterator[Receiver]:
    r = Receiver(port)
    try:
        yield r
    finally:
        r.close()


class Subscriber:
    def __init__(self, host: str, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: queue.Queue[Any] = queue.Queue()
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

    def drain(self, wait_s: float) -> list[Any]:
        out = []
        deadline = time.monotonic() + wait_s
        while True:
            try:
                out.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---- the whole pipeline -----------------------------------------------------------------------


@pytest.mark.slow
def test_distress_clip_gives_one_incident_routed_to_the_nearest_station(
    tmp_path: Path, models_dir: Path, distress_clip: SyntheticClip
) -> None:
    cfg = write_config(
        tmp_path / "raksha.yaml",
        [
            camera("cam-1", distress_clip.path.as_uri()),
            {**camera("cam-off", distress_clip.path), "enabled": False},
        ],
        f"sqlite:///{tmp_path / 'raksha.db'}",
    )
    proc = raksha_run(cfg, models_dir)
    assert "1 new incident(s) stored" in proc.stdout, proc.stdout
    rows = list_incidents(cfg, models_dir)
    assert len(rows) == 1, rows
    row = rows[0]
    check_distress_incident(row, distress_clip, "cam-1")
    assert row["route"]["method"] == "nearest"
    b = STATIONS[1]
    assert row["route"]["distance_m"] == pytest.approx(
        haversine_m(HOTSPOT["lat"], HOTSPOT["lon"], b["lat"], b["lon"]), abs=2.0
    )
    check_evidence_shows_the_subject(row, distress_clip)
    assert row["model"]["sha256"] and len(row["model"]["sha256"]) == 64
    assert row["thresholds"]["enter_threshold"] > 0

    # Nothing but evidence was written: one folder, for this incident.
    evidence_root = tmp_path / "evidence"
    assert [p.name for p in evidence_root.iterdir()] == [row["id"]]

    store = open_store(f"sqlite:///{tmp_path / 'raksha.db'}")
    try:
        cam, off = store.cameras()
        assert cam.camera_id == "cam-1" and cam.station_id == "station-b"
        assert cam.enabled and cam.last_frame_at is not None
        # A disabled camera is listed (for the dashboard) but never played.
        assert off.camera_id == "cam-off" and not off.enabled and off.last_frame_at is None
        deliveries = store.deliveries(row["id"])
        assert deliveries == []  # no channel configured beyond the store itself
    finally:
        store.close()


@pytest.mark.slow
def test_calm_clip_gives_no_incident(
    tmp_path: Path, models_dir: Path, calm_clip: SyntheticClip
) -> None:
    cfg = write_config(
        tmp_path / "raksha.yaml",
        [camera("cam-calm", calm_clip.path)],
        f"sqlite:///{tmp_path / 'raksha.db'}",
    )
    proc = raksha_run(cfg, models_dir)
    assert "0 new incident(s) stored" in proc.stdout
    # The camera did see the face all along: no incident is not "no frames".
    m = re.search(r"camera cam-calm: (\d+) frames, (\d+) faces, (\d+) events", proc.stdout)
    assert m is not None, proc.stdout
    frames, faces, events = map(int, m.groups())
    assert frames >= calm_clip.seconds * 5 - 2 and faces >= frames - 2 and events == 0
    assert list_incidents(cfg, models_dir) == []
    # Event clips are on by default: the camera's ring buffer held its last seconds all
    # along, and without an incident not one frame of it reached the disk.
    assert not (tmp_path / "evidence").exists() or not any((tmp_path / "evidence").iterdir())


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung camera)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()
        for conn in held:
            conn.close()


@pytest.mark.slow
def test_bad_cameras_do_not_stop_the_good_one(
    tmp_path: Path, models_dir: Path, distress_clip: SyntheticClip
) -> None:
    db = tmp_path / "raksha.db"
    with silent_server() as port:
        cfg = write_config(
            tmp_path / "raksha.yaml",
            [
                camera("cam-dead-rtsp", "rtsp://user:secret@127.0.0.1:9/x"),
                camera("cam-hung", f"rtsp://127.0.0.1:{port}/stream"),
                camera("cam-good", distress_clip.path.as_uri()),
                camera("cam-missing", tmp_path / "no-such-clip.mp4"),
                # Credentials from the environment, as they should be given.
                camera(
                    "cam-dead-env", "rtsp://${RAKSHA_T_CAM_USER}:${RAKSHA_T_CAM_PASS}@127.0.0.1:9/y"
                ),
            ],
            f"sqlite:///{db}",
            # The hung camera must time out well before the good clip ends: the clip plays in
            # real time (5 s), not flat out (under a second once its detector is built).
            source={"open_timeout_s": 0.5, "read_timeout_s": 0.5, "realtime_files": True},
        )
        env = {"RAKSHA_T_CAM_USER": "officer", "RAKSHA_T_CAM_PASS": ENV_PASSWORD}
        proc = raksha_run(cfg, models_dir, env=env)
    for out in (proc.stdout, proc.stderr):
        assert not leaks_password(out) and ENV_PASSWORD not in out, out
    # The dead camera is reported as failing, not as fine.
    assert re.search(r"camera cam-dead-rtsp: 0 frames.*error: .*refused", proc.stdout), proc.stdout
    rows = stored_incidents(f"sqlite:///{db}")
    assert len(rows) == 1, rows
    check_distress_incident(rows[0], distress_clip, "cam-good")

    store = open_store(f"sqlite:///{db}")
    try:
        cams = {c.camera_id: c for c in store.cameras()}
    finally:
        store.close()
    assert set(cams) == {"cam-dead-rtsp", "cam-hung", "cam-good", "cam-missing", "cam-dead-env"}
    assert cams["cam-good"].last_frame_at is not None
    for bad in ("cam-dead-rtsp", "cam-hung", "cam-missing", "cam-dead-env"):
        c = cams[bad]
        assert not c.online and c.last_frame_at is None, c
        assert c.last_error, c
        for text in (c.display_url or "", c.last_error):
            assert not leaks_password(text) and ENV_PASSWORD not in text, c
    assert "refused" in (cams["cam-dead-env"].last_error or ""), cams["cam-dead-env"]
    assert "no-such-clip.mp4" in (cams["cam-missing"].last_error or "")
    assert "no answer" in (cams["cam-hung"].last_error or ""), cams["cam-hung"]
    # The reason the stream is down, not a generic "stream lost" written at shutdown.
    assert "refused" in (cams["cam-dead-rtsp"].last_error or ""), cams["cam-dead-rtsp"]
    assert "127.0.0.1" in (cams["cam-dead-rtsp"].display_url or "")
    # Not in the database file either (nor its write-ahead log).
    for f in tmp_path.glob("raksha.db*"):
        data = f.read_bytes().decode("latin-1")
        assert not leaks_password(data) and ENV_PASSWORD not in data, f


@pytest.mark.slow
def test_webhook_and_mqtt_each_deliver_once(
    tmp_path: Path,
    models_dir: Path,
    distress_clip: SyntheticClip,
    pg_url: str,
    broker: tuple[str, int],
) -> None:
    # A station id of this test's own, so that other MQTT publishers cannot interfere.
    station_b = f"station-b-{uuid.uuid4().hex[:8]}"
    stations = [STATIONS[0], {**STATIONS[1], "id": station_b}, STATIONS[2]]
    sub = Subscriber(*broker, f"raksha/stations/{station_b}/incidents")
    try:
        with receiver() as hook:
            cfg = write_config(
                tmp_path / "raksha.yaml",
                [camera("cam-1", distress_clip.path)],
                pg_url,
                alerts={
                    "webhook": {"url": hook.url, "secret_env": "RAKSHA_TEST_HOOK_SECRET"},
                    "mqtt": {"host": broker[0], "port": broker[1]},
                },
                stations=stations,
            )
            raksha_run(cfg, models_dir, env={"RAKSHA_TEST_HOOK_SECRET": WEBHOOK_SECRET})
            rows = stored_incidents(pg_url)
            assert len(rows) == 1, rows
            incident = rows[0]
            assert incident["station_id"] == station_b
            check_evidence(incident)
            posts = list(hook.posts)
        messages = sub.drain(1.0)
    finally:
        sub.close()

    assert len(posts) == 1, posts
    headers, body = posts[0]
    hook.check_signed(headers, body)
    doc = json.loads(body)
    assert doc["incident_id"] == incident["id"] and doc["station_id"] == station_b
    assert headers[IDEMPOTENCY_HEADER] == doc["alert_id"]
    assert doc["alert"]["route"]["station_id"] == station_b

    assert len(messages) == 1, [m.payload for m in messages]
    assert messages[0].qos == 1
    mdoc = json.loads(messages[0].payload)
    assert mdoc["incident_id"] == incident["id"] and mdoc["alert_id"] == doc["alert_id"]

    store = open_store(pg_url)
    try:
        states = {d.channel: d.state for d in store.deliveries(incident["id"])}
    finally:
        store.close()
    assert states == {"webhook": "delivered", "mqtt": "delivered"}


@pytest.mark.slow
def test_webhook_down_during_the_run_is_delivered_once_by_a_later_run(
    tmp_path: Path,
    models_dir: Path,
    distress_clip: SyntheticClip,
    calm_clip: SyntheticClip,
    pg_url: str,
) -> None:
    port = free_port()  # nothing listens there during the first run
    alerts = {
        "webhook": {
            "url": f"http://127.0.0.1:{port}/hooks/raksha",
            "secret_env": "RAKSHA_TEST_HOOK_SECRET",
        }
    }
    env = {"RAKSHA_TEST_HOOK_SECRET": WEBHOOK_SECRET}
    cfg = write_config(
        tmp_path / "raksha.yaml", [camera("cam-1", distress_clip.path)], pg_url, alerts=alerts
    )
    raksha_run(cfg, models_dir, env=env)
    rows = stored_incidents(pg_url)
    assert len(rows) == 1, rows
    incident_id = rows[0]["id"]
    store = open_store(pg_url)
    try:
        (pending,) = store.deliveries(incident_id)
    finally:
        store.close()
    assert pending.channel == "webhook" and pending.state == "pending", pending
    assert pending.attempts >= 1 and pending.last_error and "refused" in pending.last_error

    # Later: the receiver is up, and the next run (a calm clip, no new incident) sends the
    # alert from the outbox once its retry time has come.
    wait = (pending.next_attempt_at - datetime.now(UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)
    calm = write_config(
        tmp_path / "raksha-calm.yaml", [camera("cam-1", calm_clip.path)], pg_url, alerts=alerts
    )
    with receiver(port) as hook:
        proc = raksha_run(calm, models_dir, env=env)
        posts = list(hook.posts)
    # The summary counts this run's incidents, not the store's.
    assert "0 new incident(s) stored" in proc.stdout, proc.stdout
    assert len(posts) == 1, posts
    headers, body = posts[0]
    hook.check_signed(headers, body)
    doc = json.loads(body)
    assert doc["incident_id"] == incident_id
    assert headers[IDEMPOTENCY_HEADER] == doc["alert_id"]
    # The PostgreSQL store through the list command.
    assert [r["id"] for r in list_incidents(calm, models_dir)] == [incident_id]
    store = open_store(pg_url)
    try:
        (done,) = store.deliveries(incident_id)
    finally:
        store.close()
    assert done.state == "delivered" and done.delivered_at is not None


@pytest.mark.slow
def test_sigterm_stops_a_run_that_loops_its_file_camera(
    tmp_path: Path, models_dir: Path, distress_clip: SyntheticClip
) -> None:
    """Without --exit-at-end a file camera replays for ever (a simulated live camera); the
    same person's distress on every replay stays one incident, and SIGTERM ends the run
    cleanly, leaving the camera recorded as offline."""
    db = tmp_path / "raksha.db"
    cfg = write_config(
        tmp_path / "raksha.yaml", [camera("cam-loop", distress_clip.path)], f"sqlite:///{db}"
    )
    env = dict(os.environ, RAKSHA_MODELS=str(models_dir))
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "raksha", "run", "--config", str(cfg), "--no-table"],
            stdout=out,
            stderr=err,
            env=env,
        )
        try:
            # Wait for the incident, then for at least one more pass over the clip.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                # Read-only and raw: opening an IncidentStore would migrate, racing the run's
                # own migration of the new database.
                if sqlite_count(db, "incidents"):
                    break
                time.sleep(0.5)
            assert proc.poll() is None, (tmp_path / "err.txt").read_text()
            time.sleep(distress_clip.seconds * 5 * 0.1)  # ~0.1 s per analysed frame
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    stdout, stderr = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    assert code == 0, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    m = re.search(r"camera cam-loop: (\d+) frames", stdout)
    assert m is not None and int(m.group(1)) > distress_clip.seconds * 5, stdout
    rows = stored_incidents(f"sqlite:///{db}")
    assert len(rows) == 1, rows
    store = open_store(f"sqlite:///{db}")
    try:
        (cam,) = store.cameras()
    finally:
        store.close()
    assert not cam.online and cam.last_error == "stopped" and cam.last_frame_at is not None, cam


# ---- the runtime, in process ------------------------------------------------------------------


@pytest.mark.slow
def test_the_same_person_distressed_twice_is_one_incident(
    tmp_path: Path, models_dir: Path, look_away_clip: SyntheticClip
) -> None:
    """The face leaves the picture for longer than the tracker keeps it and comes back still
    afraid: two distress events (two tracks) at one place within the merge window become one
    incident with one alert."""
    db = f"sqlite:///{tmp_path / 'raksha.db'}"
    cfg = write_config(tmp_path / "raksha.yaml", [camera("cam-1", look_away_clip.path)], db)
    stored: list[StoredIncident] = []
    rt = run_to_end(cfg, models_dir, on_stored=stored.append)
    (worker,) = rt.pipelines
    assert worker.stats.events == 2, worker.stats
    assert [(s.merged, s.station_id, s.camera_id) for s in stored] == [
        (False, "station-b", "cam-1"),
        (True, "station-b", "cam-1"),
    ], stored
    assert len({s.incident_id for s in stored}) == 1

    store = open_store(db)
    try:
        (incident,) = store.list_incidents()
        alerts = store.deliveries(incident.id)
    finally:
        store.close()
    assert alerts == []  # one alert, on the store channel only: nothing to deliver
    assert incident.station_id == "station-b"
    # The incident spans both events: opened in the first fear segment, seen in the second.
    first, second = look_away_clip.window(1), look_away_clip.window(3)
    assert first[0] <= (incident.event_start_s or -1) <= first[1]
    assert incident.event_end_s is not None and incident.event_end_s >= second[0]
    assert (incident.last_seen_at - incident.opened_at).total_seconds() > 0
    for ev in incident.evidence:
        assert hashlib.sha256(Path(ev.path).read_bytes()).hexdigest() == ev.sha256


@pytest.mark.slow
def test_two_runs_on_one_postgresql_make_one_incident_of_one_person(
    tmp_path: Path, models_dir: Path, pg_url: str, distress_clip: SyntheticClip
) -> None:
    """Two `raksha run` processes watch the same camera (a failover pair, or a restart that
    overlaps) and both see the same person in distress: the store merges the second
    process's event into the first's incident, so there is one incident and one alert."""
    cfg = write_config(tmp_path / "raksha.yaml", [camera("cam-1", distress_clip.path)], pg_url)
    env = dict(os.environ, RAKSHA_MODELS=str(models_dir))
    env.pop("RAKSHA_TEST_PG_URL", None)
    cmd = [sys.executable, "-m", "raksha", "run", "--config", str(cfg), "--exit-at-end"]
    procs = [
        subprocess.Popen(
            [*cmd, "--no-table"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, (out, err)
        assert "Traceback" not in err, err
    for out, _ in outputs:  # each process opened its own event
        m = re.search(r"camera cam-1: \d+ frames, \d+ faces, (\d+) events", out)
        assert m is not None and int(m.group(1)) >= 1, out
    rows = stored_incidents(pg_url)
    assert len(rows) == 1, rows
    store = open_store(pg_url)
    try:
        with store.engine.connect() as conn:
            n_alerts = conn.execute(sql("SELECT count(*) FROM alerts")).scalar_one()
        (incident,) = store.list_incidents()
    finally:
        store.close()
    assert n_alerts == 1
    # Both processes saw the fear segment; the incident spans what they saw.
    window = distress_clip.window(1)
    assert window[0] <= (incident.event_start_s or -1) <= window[1]


@pytest.mark.slow
def test_a_database_outage_does_not_end_a_run_with_its_live_table(
    tmp_path: Path, models_dir: Path, pg_url: str, distress_clip: SyntheticClip
) -> None:
    """`raksha run` in its default mode (the live table on) while PostgreSQL goes away for
    8 s during the fear segment and comes back: the run goes on, stores the incident once
    the database is back, and ends normally."""
    with OutageProxy(("127.0.0.1", 5432)) as proxy:
        proxied = _through(proxy, pg_url)
        cfg = write_config(
            tmp_path / "raksha.yaml",
            [camera("cam-1", distress_clip.path)],
            proxied,
            source={"realtime_files": True},
        )
        env = dict(os.environ, RAKSHA_MODELS=str(models_dir))
        env.pop("RAKSHA_TEST_PG_URL", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "raksha", "run", "--config", str(cfg), "--exit-at-end"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        _wait_for_camera_row(pg_url, proc)  # the run is up: now cut the database
        proxy.cut()
        time.sleep(8.0)
        proxy.restore()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert "Traceback" not in err, err
    assert "1 new incident(s) stored" in out, out
    assert len(stored_incidents(pg_url)) == 1


def _through(proxy: OutageProxy, pg_url: str) -> str:
    """`pg_url` with its host and port replaced by the proxy's."""
    return (
        make_url(pg_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )


def _wait_for_camera_row(pg_url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            store = open_store(pg_url)
            try:
                if store.cameras():
                    return
            finally:
                store.close()
        except Exception:  # the schema is not there yet
            pass
        time.sleep(0.2)


@pytest.mark.slow
def test_kill_9_during_a_database_outage_loses_no_incident(
    tmp_path: Path,
    models_dir: Path,
    pg_url: str,
    distress_clip: SyntheticClip,
    calm_clip: SyntheticClip,
) -> None:
    """The database goes away, the run decides an incident (it waits in the spool on disk)
    and is killed with SIGKILL; the database comes back and the next run stores the incident
    first, once, with its alert."""
    with OutageProxy(("127.0.0.1", 5432)) as proxy:
        proxied = _through(proxy, pg_url)
        config = tmp_path / "raksha.yaml"
        write_config(
            config, [camera("cam-1", distress_clip.path)], proxied, source={"realtime_files": True}
        )
        env = dict(os.environ, RAKSHA_MODELS=str(models_dir))
        env.pop("RAKSHA_TEST_PG_URL", None)
        cmd = [sys.executable, "-m", "raksha", "run", "--config", str(config), "--exit-at-end"]
        proc = subprocess.Popen(
            [*cmd, "--no-table"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        _wait_for_camera_row(pg_url, proc)
        proxy.cut()
        spool = tmp_path / "raksha-incident-spool.db"
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and proc.poll() is None:
            if spool.exists() and sqlite_count(spool, "spool") >= 1:
                break
            time.sleep(0.2)
        assert sqlite_count(spool, "spool") == 1, proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        proxy.restore()
        assert stored_incidents(pg_url) == []  # nothing reached the database before the kill

        # The next run (a calm clip on the same camera) takes up the spool first.
        write_config(
            config, [camera("cam-1", calm_clip.path)], proxied, source={"realtime_files": False}
        )
        again = subprocess.run(
            [*cmd, "--no-table"], capture_output=True, text=True, env=env, timeout=120, check=False
        )
    assert again.returncode == 0, (again.stdout, again.stderr)
    rows = stored_incidents(pg_url)
    assert len(rows) == 1, rows
    assert sqlite_count(spool, "spool") == 0
    store = open_store(pg_url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(sql("SELECT count(*) FROM alerts")).scalar_one() == 1
    finally:
        store.close()
    window = distress_clip.window(1)
    assert window[0] <= rows[0]["event_start_s"] <= window[1]


@pytest.mark.slow
def test_an_incident_is_stored_even_when_its_evidence_cannot_be_written(
    tmp_path: Path,
    models_dir: Path,
    distress_clip: SyntheticClip,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The evidence folder cannot be created (a file is in the way): the incident and its
    alert are still stored, without evidence, and the camera goes on to the end of its clip."""
    db = f"sqlite:///{tmp_path / 'raksha.db'}"
    cfg = write_config(tmp_path / "raksha.yaml", [camera("cam-1", distress_clip.path)], db)
    doc = yaml.safe_load(cfg.read_text())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the evidence folder should be\n")
    doc["evidence"]["dir"] = str(blocker / "evidence")
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    rt = run_to_end(cfg, models_dir)
    (worker,) = rt.pipelines
    assert worker.stats.frames >= distress_clip.seconds * 5 - 2, worker.stats
    rows = stored_incidents(db)
    assert len(rows) == 1, rows
    assert rows[0]["station_id"] == "station-b" and rows[0]["evidence"] == []
    assert any(
        "WITHOUT evidence" in r.getMessage() and rows[0]["id"] in r.getMessage()
        for r in caplog.records
    ), caplog.text


@pytest.mark.slow
def test_the_sites_source_fps_is_honoured_by_cameras_that_do_not_set_one(
    tmp_path: Path, models_dir: Path, calm_clip: SyntheticClip
) -> None:
    """`source.fps: 2` with a camera that sets no fps of its own: the camera is analysed at
    2 frames per second of video (it used to run at its own default of 5)."""
    db = f"sqlite:///{tmp_path / 'raksha.db'}"
    cam = {k: v for k, v in camera("cam-1", calm_clip.path).items() if k != "fps"}
    cfg = write_config(tmp_path / "raksha.yaml", [cam], db, source={"fps": 2})
    rt = run_to_end(cfg, models_dir)
    (worker,) = rt.pipelines
    assert abs(worker.stats.frames - calm_clip.seconds * 2) <= 2, worker.stats


def test_a_dead_stream_is_recorded_offline_while_the_runtime_runs(
    tmp_path: Path, models_dir: Path
) -> None:
    """A live camera that never connects is in the camera table, offline with its error,
    during the run (not only once the run ends), and the runtime stops promptly."""
    db = f"sqlite:///{tmp_path / 'raksha.db'}"
    cfg = write_config(
        tmp_path / "raksha.yaml",
        [camera("cam-dead", f"rtsp://user:secret@127.0.0.1:{free_port()}/x")],
        db,
    )
    rt = build_runtime(load_run_config(cfg), models_dir=models_dir, env=KEY_ENV)
    rt.start()
    waiter = threading.Thread(target=rt.wait, daemon=True)
    waiter.start()
    store = open_store(db)
    try:
        deadline = time.monotonic() + 15
        cams: list[Any] = []
        while time.monotonic() < deadline:
            cams = store.cameras()
            if cams and "refused" in (cams[0].last_error or ""):
                break
            time.sleep(0.2)
        assert len(cams) == 1, cams
        (cam,) = cams
        assert cam.camera_id == "cam-dead" and not cam.online and cam.last_frame_at is None
        assert "refused" in (cam.last_error or ""), cam
        assert not leaks_password(cam.last_error or "") and not leaks_password(
            cam.display_url or ""
        )
        assert waiter.is_alive()  # still trying: a live camera is never given up on
    finally:
        rt.stopping.set()
        waiter.join(timeout=5)
        t0 = time.monotonic()
        rt.stop()
        stop_s = time.monotonic() - t0
        store.close()
    assert not waiter.is_alive()
    assert stop_s < 5, stop_s
    store = open_store(db)
    try:
        (cam,) = store.cameras()
    finally:
        store.close()
    assert not cam.online and "refused" in (cam.last_error or ""), cam


# ---- configuration errors ---------------------------------------------------------------------


def run_in_process(
    args: Sequence[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """`raksha ARGS` through the CLI's entry point, in this process (exit code, out, err)."""
    from raksha.cli import main

    monkeypatch.setattr(sys, "argv", ["raksha", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(result: tuple[int, str, str], *needles: str) -> str:
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    err = err.strip()
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (
            lambda d: d["cameras"][0].update(hotspot="nowhere"),
            ("cameras.0.hotspot", "nowhere"),
        ),
        (
            lambda d: d["stations"].append(dict(d["stations"][0])),
            ("stations.3.id", "duplicate", "station-a"),
        ),
        (
            lambda d: d["stations"][1].update(lat=126.85),
            ("stations.1.lat", "latitude"),
        ),
    ],
    ids=["unknown-hotspot", "duplicate-station", "latitude-out-of-range"],
)
def test_config_errors_name_the_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mutate: Any,
    needles: tuple[str, ...],
) -> None:
    path = write_config(
        tmp_path / "bad.yaml",
        [camera("cam-1", tmp_path / "clip.mp4")],
        f"sqlite:///{tmp_path / 'raksha.db'}",
    )
    doc = yaml.safe_load(path.read_text())
    mutate(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    for args in (
        ["run", "--config", str(path), "--exit-at-end"],
        ["incidents", "list", "--config", str(path)],
    ):
        _one_line_error(run_in_process(args, capsys, monkeypatch), "bad.yaml", *needles)
    assert not (tmp_path / "raksha.db").exists()


def test_webhook_secret_variable_not_set(
    tmp_path: Path,
    models_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_config(
        tmp_path / "hook.yaml",
        [camera("cam-1", tmp_path / "clip.mp4")],
        f"sqlite:///{tmp_path / 'raksha.db'}",
        alerts={"webhook": {"url": "http://127.0.0.1:9/x", "secret_env": "RAKSHA_T_UNSET_VAR"}},
    )
    monkeypatch.setenv("RAKSHA_MODELS", str(models_dir))
    monkeypatch.delenv("RAKSHA_T_UNSET_VAR", raising=False)
    result = run_in_process(["run", "--config", str(path), "--exit-at-end"], capsys, monkeypatch)
    _one_line_error(result, "alerts.webhook.secret_env", "RAKSHA_T_UNSET_VAR")


def test_storage_url_placeholders_are_filled_from_the_environment(
    tmp_path: Path,
    models_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`storage.url` may hold `${NAME}` placeholders (documented for the database password);
    `raksha run` and `raksha incidents list` both fill them in, and name a missing one."""
    path = write_config(
        tmp_path / "raksha.yaml",
        [camera("cam-1", tmp_path / "clip.mp4")],
        "sqlite:///${RAKSHA_T_DB_DIR}/raksha.db",
    )
    monkeypatch.delenv("RAKSHA_T_DB_DIR", raising=False)
    args = ["incidents", "list", "--config", str(path), "--json"]
    _one_line_error(run_in_process(args, capsys, monkeypatch), "storage.url", "RAKSHA_T_DB_DIR")

    db_dir = tmp_path / "db"
    db_dir.mkdir()
    monkeypatch.setenv("RAKSHA_T_DB_DIR", str(db_dir))
    code, out, err = run_in_process(args, capsys, monkeypatch)
    assert (code, json.loads(out)) == (0, []), err
    assert (db_dir / "raksha.db").is_file()

    rt = build_runtime(
        load_run_config(path),
        models_dir=models_dir,
        env={"RAKSHA_T_DB_DIR": str(db_dir), **KEY_ENV},
    )
    try:
        assert Path(rt.store.engine.url.database or "") == db_dir / "raksha.db"
    finally:
        rt.stop()  # never started: stopping must still work
