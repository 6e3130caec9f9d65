"""Shared helpers of the dashboard tests (test_api, test_access_matrix, test_auth, ...).

Databases: a SQLite file, and a real PostgreSQL (127.0.0.1:5432, database `test`) where each
test module gets a schema of its own, dropped afterwards. PostgreSQL down: skipped on a
developer's machine, a failure in CI (CI=true).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from pg_support import admin_engine, pg_schema
from raksha.api.app import create_app
from raksha.api.settings import ApiSettings
from raksha.auth.ratelimit import Limits
from raksha.config import RunConfig
from raksha.domain.routing import Route
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import EvidenceFile, NewIncident
from raksha.store import IncidentStore

SCHEMA_PREFIX = "raksha_api_t_"
STATION_A = "hazratganj"
STATION_B = "aliganj"
PASSWORD = "correct horse battery staple"
KEY_ENV = "RAKSHA_TEST_EVIDENCE_KEY"


def pg_admin_engine() -> Engine:
    return admin_engine("the dashboard tests", SCHEMA_PREFIX)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh database URL of `kind` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'raksha.db'}"
        return
    admin = pg_admin_engine()
    try:
        with pg_schema(admin, SCHEMA_PREFIX) as url:
            yield url
    finally:
        admin.dispose()


#: The two cameras of the dashboard tests' site.
CAMERAS: list[dict[str, Any]] = [
    {"id": "cam-a", "hotspot": "a-crossing", "url": "rtsp://viewer:${CAM_PW}@10.0.0.5/s1"},
    {"id": "cam-b", "hotspot": "b-gate", "url": "rtsp://10.0.0.6/s1"},
]


def site_config(
    db_url: str,
    evidence_dir: Path,
    *,
    encrypt: bool = False,
    cameras: list[dict[str, Any]] | None = None,
) -> RunConfig:
    return RunConfig.model_validate(
        {
            "storage": {"url": db_url},
            "evidence": {"dir": str(evidence_dir), "encrypt": encrypt, "key_env": KEY_ENV},
            "timezone": "Asia/Kolkata",
            "stations": [
                {"id": STATION_A, "lat": 26.85, "lon": 80.94},
                {"id": STATION_B, "lat": 26.89, "lon": 80.94},
            ],
            "hotspots": [
                {"id": "a-crossing", "lat": 26.851, "lon": 80.941},
                {"id": "b-gate", "lat": 26.891, "lon": 80.941},
            ],
            "cameras": CAMERAS if cameras is None else cameras,
            "patrol_units": [
                {
                    "id": "pink-a",
                    "kind": "scooter",
                    "station": STATION_A,
                    "lat": 26.85,
                    "lon": 80.94,
                },
                {
                    "id": "pink-b",
                    "kind": "scooter",
                    "station": STATION_B,
                    "lat": 26.89,
                    "lon": 80.94,
                },
            ],
        }
    )


def fast_settings(**kw: Any) -> ApiSettings:
    base: dict[str, Any] = {
        "events_poll_s": 0.2,
        "events_keepalive_s": 1.0,
        "web": False,
        "login_limits": Limits(per_account=5, per_address=1000, window_s=900),
        # The second factor has tests of its own (test_second_factor.py); here every role
        # logs in with a password.
        "totp_roles": (),
    }
    base.update(kw)
    return ApiSettings(**base)


def face_image(faces_dir: Path) -> np.ndarray:  # type: ignore[type-arg]
    img = cv2.imread(str(faces_dir / "astronaut.jpg"), cv2.IMREAD_COLOR)
    assert img is not None, "astronaut.jpg unreadable"
    return np.asarray(img, dtype=np.uint8)


#: The astronaut's face in astronaut.jpg (512x512), xyxy pixels.
SUBJECT_BOX = (170.0, 50.0, 260.0, 160.0)


def new_incident(station: str, *, peak: float = 0.8) -> NewIncident:
    return NewIncident(
        camera_id=f"cam-{station}",
        hotspot_id=f"{station}-crossing",
        station_id=station,
        peak_distress=peak,
        expression_at_peak={"neutral": 0.1, "fear": 0.7, "sadness": 0.2},
        model_name="ferplus-8",
        model_sha256="a" * 64,
        thresholds={"enter_threshold": 0.55},
        route=Route(station, "nearest", 400.0, ()),
        track_id=1,
        source_id=f"cam-{station}",
        opened_at=datetime.now(UTC),
    )


def add_incident(
    store: IncidentStore,
    writer: EvidenceWriter,
    image: np.ndarray,
    station: str,  # type: ignore[type-arg]
) -> str:
    inc = new_incident(station)
    evidence: list[EvidenceFile] = writer.capture(inc.id, image, SUBJECT_BOX)
    return store.create_incident(inc, evidence, {"kind": "distress"}, ["store"])


@dataclass
class Dash:
    """An app over a fresh database, with its store and one logged-in client per user."""

    app: FastAPI
    store: IncidentStore
    cfg: RunConfig
    writer: EvidenceWriter
    image: np.ndarray  # type: ignore[type-arg]
    clients: dict[str, TestClient]
    csrf: dict[str, str]

    def client(self, name: str) -> TestClient:
        return self.clients[name]

    def post(self, name: str, url: str, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}) or {})
        headers.setdefault("X-CSRF-Token", self.csrf[name])
        return self.clients[name].post(url, headers=headers, **kw)


#: name -> (role, station)
USERS: dict[str, tuple[str, str | None]] = {
    "op_a": ("operator", STATION_A),
    "sup_a": ("supervisor", STATION_A),
    "cr": ("control_room", None),
    "aud": ("auditor", None),
    "adm": ("admin", None),
}


@contextmanager
def dashboard(
    kind: str,
    folder: Path,
    faces_dir: Path,
    *,
    users: dict[str, tuple[str, str | None]] | None = None,
    encrypt: bool = False,
    settings: ApiSettings | None = None,
    cameras: list[dict[str, Any]] | None = None,
) -> Iterator[Dash]:
    with database(kind, folder) as url:
        cfg = site_config(url, folder / "evidence", encrypt=encrypt, cameras=cameras)
        store = IncidentStore.open(url)
        app = create_app(cfg, store=store, settings=settings or fast_settings())
        ctx = app.state.raksha
        key = os.environ.get(KEY_ENV, "").encode() if encrypt else None
        writer = EvidenceWriter(folder / "evidence", key=key)
        clients: dict[str, TestClient] = {}
        csrf: dict[str, str] = {}
        keeper = TestClient(app)  # runs the app's lifespan (the event hub) once
        keeper.__enter__()
        try:
            for name, (role, station) in (users if users is not None else USERS).items():
                ctx.users.add(name, role, PASSWORD, station_id=station)
                c = TestClient(app)
                clients[name] = c
                r = c.post("/api/login", json={"username": name, "password": PASSWORD})
                assert r.status_code == 200, r.text
                csrf[name] = r.json()["csrf_token"]
            yield Dash(app, store, cfg, writer, face_image(faces_dir), clients, csrf)
        finally:
            keeper.__exit__(None, None, None)
            store.close()


def allow_tampering(engine: Engine) -> None:
    """Drop the audit log's append-only triggers, as an intruder with schema rights could:
    the tamper tests then show what the hash chain and the checkpoints still catch."""
    from sqlalchemy import text

    from raksha.store.migrations.versions import v0006_audit_append_only as m6
    from raksha.store.migrations.versions import v0007_audit_no_replace as m7

    postgres = engine.dialect.name == "postgresql"
    sqlite_extra = (
        "DROP TRIGGER IF EXISTS audit_log_no_replace",
        "DROP TRIGGER IF EXISTS audit_head_no_replace",
    )
    down = m6.POSTGRES_DOWN if postgres else (*sqlite_extra, *m6.SQLITE_DOWN)
    with engine.begin() as conn:
        for statement in down:
            conn.execute(text(statement))
    del m7  # (its triggers and functions are among those dropped above)
