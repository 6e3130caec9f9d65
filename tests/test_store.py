"""The store on real SQLite files and a real PostgreSQL (127.0.0.1:5432, database `test`).

Each PostgreSQL test runs in its own schema (dropped afterwards), so reruns start clean and
other tests using the same database are not disturbed. Where PostgreSQL is down, its cases are
skipped on a developer's machine and fail with a clear message in CI (CI=true).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, func, inspect, select, text

from pg_support import admin_engine, pg_schema
from raksha.alerts.base import DeliveryError, alert_document
from raksha.alerts.dispatcher import DeadLetterStore, OutboxDispatcher, RetryPolicy
from raksha.alerts.outbox import OutboxStore, PendingDelivery
from raksha.domain.routing import Route, UnitRoute
from raksha.errors import RakshaError
from raksha.incidents import (
    Action,
    CameraHealth,
    EvidenceFile,
    EvidenceKind,
    IllegalTransition,
    IncidentState,
    InvalidActor,
    NewIncident,
)
from raksha.incidents.merge import MergeRule
from raksha.store import (
    ConcurrentUpdate,
    IncidentNotFound,
    IncidentStore,
    StoreError,
    current_revision,
    head_revision,
    incident_to_json,
    make_engine,
    migrate,
)
from raksha.store.migrate import alembic_config
from raksha.store.repository import OpenResult
from raksha.store.tables import alert_deliveries, alerts, incident_evidence, incidents, metadata

SCHEMA_PREFIX = "raksha_store_t_"
T0 = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    engine = admin_engine("the store tests", SCHEMA_PREFIX)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'raksha.db'}"
        return
    with pg_schema(request.getfixturevalue("pg_admin"), SCHEMA_PREFIX) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[IncidentStore]:
    s = IncidentStore.open(db_url, claim_lease_s=60)
    s.sync_units(UNITS, now=T0)
    yield s
    s.close()


@pytest.fixture
def pg_url(pg_admin: Engine) -> Iterator[str]:
    with pg_schema(pg_admin, SCHEMA_PREFIX) as url:
        yield url


@dataclass(frozen=True)
class _Unit:
    id: str
    kind: str = "scooter"
    station: str = "hazratganj"
    lat: float = 26.85
    lon: float = 80.94
    name: str = ""


UNITS = [
    _Unit("pink-scooter-07"),
    _Unit("pink-scooter-02"),
    *(_Unit(f"unit-{i}") for i in range(8)),
]


def _evidence(tmp_path: Path, name: str, kind: EvidenceKind, data: bytes) -> EvidenceFile:
    path = tmp_path / name
    path.write_bytes(data)
    return EvidenceFile(
        kind=kind, path=str(path), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data)
    )


def _new(
    *,
    station: str = "hazratganj",
    camera: str = "cam-1",
    opened_at: datetime = T0,
    peak: float = 0.8,
    person_key: str | None = "cam-1:7",
) -> NewIncident:
    return NewIncident(
        camera_id=camera,
        hotspot_id="hazratganj-crossing",
        station_id=station,
        peak_distress=peak,
        expression_at_peak={"neutral": 0.1, "fear": 0.7, "sadness": 0.2},
        model_name="ferplus-8",
        model_sha256="a" * 64,
        thresholds={"enter_threshold": 0.55, "exit_threshold": 0.35, "min_duration_s": 2.0},
        route=Route(
            station,
            "nearest",
            420.5,
            (
                UnitRoute("pink-scooter-07", "scooter", station, 310.0),
                UnitRoute("pink-scooter-02", "scooter", station, 905.2),
            ),
        ),
        track_id=7,
        source_id=camera,
        event_start_s=12.0,
        event_end_s=16.5,
        person_key=person_key,
        opened_at=opened_at,
    )


def _create(store: IncidentStore, tmp_path: Path, **kw: object) -> str:
    inc = _new(**kw)  # type: ignore[arg-type]
    ev = [
        _evidence(
            tmp_path, f"{inc.id}-face.jpg", EvidenceKind.FACE, b"\xff\xd8face" + os.urandom(8)
        ),
        _evidence(tmp_path, f"{inc.id}-frame.jpg", EvidenceKind.FRAME_BLURRED, b"\xff\xd8frame"),
    ]
    return store.create_incident(inc, ev, {"kind": "distress"}, ["store", "webhook", "mqtt"])


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


# ---- engine and migrations ------------------------------------------------------------------


def test_migrate_on_empty_db_and_again_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    migrate(engine)
    assert current_revision(engine) == head_revision()
    migrate(db_url).dispose()  # a second run, through a fresh engine
    assert current_revision(engine) == head_revision()
    names = set(inspect(engine).get_table_names())
    assert {"incidents", "incident_evidence", "incident_actions", "cameras", "alerts"} <= names
    assert "alert_deliveries" in names
    index_cols = [ix["column_names"] for ix in inspect(engine).get_indexes("incidents")]
    assert ["station_id", "state", "opened_at"] in index_cols
    # The migrated schema is exactly what the table modules declare (the dashboard's tables
    # join the store's metadata when their modules are imported).
    import raksha.audit.tables
    import raksha.auth.tables  # noqa: F401

    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []
    engine.dispose()


def test_sqlite_is_durable_by_default(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert int(conn.execute(text("PRAGMA busy_timeout")).scalar() or 0) > 0
    engine.dispose()


def test_bad_and_unreachable_databases_give_one_clear_line_without_password(
    tmp_path: Path,
) -> None:
    with pytest.raises(StoreError) as info:
        make_engine("postgresql+psycopg://raksha:hunter2@127.0.0.1:1/raksha")
    msg = str(info.value)
    assert "cannot open database" in msg and "127.0.0.1:1" in msg
    assert "hunter2" not in msg and "***" in msg and "\n" not in msg
    assert isinstance(info.value, RakshaError)

    with pytest.raises(StoreError, match="unsupported database") as info:
        make_engine("mysql://root:hunter2@localhost/db")
    assert "hunter2" not in str(info.value)
    with pytest.raises(StoreError, match="invalid database URL"):
        make_engine("not a database url")
    with pytest.raises(StoreError, match="does not exist"):
        make_engine(f"sqlite:///{tmp_path / 'missing' / 'r.db'}")


# ---- incidents ------------------------------------------------------------------------------


def test_create_get_and_json(store: IncidentStore, tmp_path: Path) -> None:
    iid = _create(store, tmp_path)
    inc = store.get_incident(iid)
    assert inc is not None
    assert inc.state is IncidentState.NEW and inc.version == 1
    assert inc.opened_at == T0 and inc.opened_at.tzinfo is not None
    assert inc.opened_at.utcoffset() == timedelta(0)
    assert inc.top_expression == "fear"
    assert inc.thresholds["enter_threshold"] == 0.55
    assert [e.kind for e in inc.evidence] == [EvidenceKind.FACE, EvidenceKind.FRAME_BLURRED]
    for ev in inc.evidence:
        assert hashlib.sha256(Path(ev.path).read_bytes()).hexdigest() == ev.sha256

    doc = json.loads(json.dumps(incident_to_json(inc)))
    for key in (
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
    ):
        assert key in doc
    assert doc["opened_at"] == "2026-11-22T08:00:00Z"
    assert doc["state"] == "NEW"
    assert [u["id"] for u in doc["patrol_units"]] == ["pink-scooter-07", "pink-scooter-02"]
    assert doc["evidence"][0]["sha256"] == inc.evidence[0].sha256
    assert doc["model"] == {"name": "ferplus-8", "sha256": "a" * 64}
    assert store.get_incident(str(uuid.uuid4())) is None


def test_list_filters_by_station_state_and_time(store: IncidentStore, tmp_path: Path) -> None:
    a = _create(store, tmp_path, station="hazratganj", opened_at=T0)
    b = _create(store, tmp_path, station="hazratganj", opened_at=T0 + timedelta(minutes=10))
    c = _create(store, tmp_path, station="chowk", opened_at=T0 + timedelta(minutes=20))
    d = _create(store, tmp_path, station="aliganj", opened_at=T0 + timedelta(minutes=30))
    store.apply_action(b, Action.ACKNOWLEDGE, "officer-1")

    def ids(**kw: object) -> list[str]:
        return [i.id for i in store.list_incidents(**kw)]  # type: ignore[arg-type]

    assert ids() == [d, c, b, a]  # newest first
    assert ids(station_ids=["hazratganj"]) == [b, a]
    assert ids(station_ids=["hazratganj", "chowk"], states=["NEW"]) == [c, a]
    assert ids(states=[IncidentState.ACKNOWLEDGED]) == [b]
    assert ids(since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=30)) == [c, b]
    assert ids(limit=2) == [d, c]
    assert ids(station_ids=[]) == []
    listed = store.list_incidents(station_ids=["chowk"])
    assert len(listed[0].evidence) == 2


def test_incident_and_alert_are_written_in_one_transaction(
    store: IncidentStore, tmp_path: Path
) -> None:
    good = _evidence(tmp_path, "face.jpg", EvidenceKind.FACE, b"face")
    bad = EvidenceFile(kind=cast(EvidenceKind, "thumbnail"), path="x.jpg", sha256="b" * 64, bytes=1)
    inc = _new()
    with pytest.raises(StoreError, match=f"cannot store incident {inc.id}"):
        store.create_incident(inc, [good, bad], {"kind": "distress"}, ["webhook"])
    for table in (incidents, incident_evidence, alerts, alert_deliveries):
        assert _count(store.engine, table) == 0, table.name
    assert store.get_incident(inc.id) is None

    # A payload that cannot be stored is refused before anything is written.
    with pytest.raises(StoreError, match="alert payload"):
        store.create_incident(_new(), [good], {"frame": object()}, ["webhook"])
    assert _count(store.engine, incidents) == 0

    # The same incident twice: the second write fails whole, the first stays intact.
    iid = store.create_incident(inc, [good], {"kind": "distress"}, ["webhook"])
    with pytest.raises(StoreError):
        store.create_incident(inc, [good], {"kind": "distress"}, ["webhook"])
    assert _count(store.engine, alerts) == 1 and _count(store.engine, alert_deliveries) == 1
    assert store.get_incident(iid) is not None


def test_lifecycle_through_the_repository_keeps_who_and_when(
    store: IncidentStore, tmp_path: Path
) -> None:
    iid = _create(store, tmp_path)
    steps = [
        (Action.ESCALATE, "system:escalation", None, IncidentState.NEW),
        (Action.ACKNOWLEDGE, "officer-12", None, IncidentState.ACKNOWLEDGED),
        (Action.CONFIRM, "officer-12", None, IncidentState.CONFIRMED),
        (Action.DISPATCH, "sho-hazratganj", "pink-scooter-07", IncidentState.DISPATCHED),
        (Action.RESOLVE, "pink-scooter-07", None, IncidentState.RESOLVED),
    ]
    for i, (action, actor, unit, expected) in enumerate(steps):
        at = T0 + timedelta(minutes=i + 1)
        rec = store.apply_action(iid, action, actor, note=f"step {i}", unit_id=unit, at=at)
        assert rec.to_state is expected
    inc = store.get_incident(iid)
    assert inc is not None
    assert inc.state is IncidentState.RESOLVED and inc.version == 1 + len(steps)
    assert inc.closed_at == T0 + timedelta(minutes=5) == inc.updated_at

    history = store.actions(iid)
    assert [(h.action, h.actor, h.at) for h in history] == [
        (a, who, T0 + timedelta(minutes=i + 1)) for i, (a, who, _, _) in enumerate(steps)
    ]
    assert history[3].unit_id == "pink-scooter-07"
    assert history[0].from_state is history[0].to_state is IncidentState.NEW
    for prev, nxt in itertools.pairwise(history):
        assert prev.to_state is nxt.from_state
    doc = incident_to_json(inc, history)
    assert doc["actions"][1] == {
        "action": "acknowledge",
        "from_state": "NEW",
        "to_state": "ACKNOWLEDGED",
        "actor": "officer-12",
        "at": "2026-11-22T08:02:00Z",
        "note": "step 1",
        "unit_id": None,
    }


def test_illegal_actions_raise_and_change_nothing(store: IncidentStore, tmp_path: Path) -> None:
    iid = _create(store, tmp_path)
    with pytest.raises(IllegalTransition, match="cannot dispatch an incident that is NEW"):
        store.apply_action(iid, "dispatch", "officer-12")
    with pytest.raises(InvalidActor):
        store.apply_action(iid, "acknowledge", "  ")
    with pytest.raises(InvalidActor):
        store.apply_action(iid, "acknowledge", "system:auto-ack")
    inc = store.get_incident(iid)
    assert inc is not None and inc.state is IncidentState.NEW and inc.version == 1
    assert store.actions(iid) == []

    store.apply_action(iid, "dismiss", "officer-12", note="reflection in a shop window")
    for action in Action:
        with pytest.raises(IllegalTransition):
            store.apply_action(iid, action, "officer-12")
    assert [a.action for a in store.actions(iid)] == [Action.DISMISS]

    with pytest.raises(IncidentNotFound):
        store.apply_action(str(uuid.uuid4()), "acknowledge", "officer-12")


def test_stale_version_is_refused(store: IncidentStore, tmp_path: Path) -> None:
    iid = _create(store, tmp_path)
    store.apply_action(iid, "acknowledge", "officer-1", expected_version=1)
    with pytest.raises(ConcurrentUpdate, match="reload"):
        store.apply_action(iid, "escalate", "officer-2", expected_version=1)
    assert len(store.actions(iid)) == 1


RULE = MergeRule(window_s=60, distance_faces=1.5)
#: Centre x, centre y and width of the face, px.
FACE = (200.0, 150.0, 80.0)


def _open(
    store: IncidentStore,
    tmp_path: Path,
    at: datetime,
    *,
    person_key: str | None = "cam-1:run1:7",
    camera: str = "cam-1",
    face: tuple[float, float, float] | None = FACE,
    peak: float = 0.7,
) -> tuple[OpenResult, list[EvidenceFile]]:
    inc = _new(opened_at=at, person_key=person_key, camera=camera, peak=peak)
    ev = [_evidence(tmp_path, f"{inc.id}-face.jpg", EvidenceKind.FACE, b"\xff\xd8" + os.urandom(8))]
    result = store.open_or_extend(
        inc, ev, {"kind": "distress"}, ["webhook"], rule=RULE, face=face, now=at
    )
    return result, ev


def test_open_or_extend_merges_the_same_person_in_the_store(
    store: IncidentStore, tmp_path: Path
) -> None:
    first, _ = _open(store, tmp_path, T0)
    assert not first.merged and first.evidence_used
    iid = first.incident_id
    # The same track 30 s later, higher peak: merged, its evidence attached, no new alert.
    same, ev = _open(store, tmp_path, T0 + timedelta(seconds=30), peak=0.9)
    assert (same.incident_id, same.merged, same.evidence_used) == (iid, True, True)
    inc = store.get_incident(iid)
    assert inc is not None and inc.peak_distress == 0.9
    assert inc.last_seen_at == T0 + timedelta(seconds=30)
    assert ev[0].path in [e.path for e in inc.evidence]
    # Another track (another process, a lost track) whose face is near: merged; a lower
    # peak attaches no evidence.
    near = (FACE[0] + 100, FACE[1], FACE[2])  # 1.25 face widths away
    other, _ = _open(store, tmp_path, T0 + timedelta(seconds=50), person_key="x:9", face=near)
    assert (other.incident_id, other.merged, other.evidence_used) == (iid, True, False)
    # Far away, another camera, or no key and no face: a new incident each.
    far = (FACE[0] + 400, FACE[1], FACE[2])  # 3.75 face widths from the last sighting
    at = T0 + timedelta(seconds=55)
    assert not _open(store, tmp_path, at, person_key="x:10", face=far)[0].merged
    assert not _open(store, tmp_path, at, camera="cam-2")[0].merged
    assert not _open(store, tmp_path, at, person_key=None, face=None)[0].merged
    # The window counts from the last sighting (50 s, at the near face): 109 s is inside.
    late, _ = _open(store, tmp_path, T0 + timedelta(seconds=109), person_key="y:1", face=near)
    assert late.incident_id == iid and late.merged
    # 61 s after the last sighting: a new incident that alerts again.
    again, _ = _open(store, tmp_path, T0 + timedelta(seconds=171))
    assert not again.merged and again.incident_id != iid
    # Only new incidents made alerts: one delivery row each, on the webhook channel.
    assert len(store.deliveries(iid)) == 1
    assert len(store.deliveries(again.incident_id)) == 1
    # A closed incident is not merged into: a flare-up alerts again.
    store.apply_action(again.incident_id, "dismiss", "officer-1")
    flare, _ = _open(store, tmp_path, T0 + timedelta(seconds=175))
    assert not flare.merged and flare.incident_id != again.incident_id


def test_merge_window(store: IncidentStore, tmp_path: Path) -> None:
    iid = _create(store, tmp_path, opened_at=T0, peak=0.7)
    extra = _evidence(tmp_path, "later.jpg", EvidenceKind.FACE, b"later")
    merged = store.extend_incident(
        iid,
        peak_distress=0.9,
        expression_at_peak={"fear": 0.95, "neutral": 0.05},
        seen_at=T0 + timedelta(seconds=50),
        event_end_s=40.0,
        evidence=[extra],
    )
    assert merged.peak_distress == 0.9 and merged.top_expression == "fear"
    assert merged.expression_at_peak == {"fear": 0.95, "neutral": 0.05}
    assert merged.event_end_s == 40.0 and merged.version == 2
    assert merged.last_seen_at == T0 + timedelta(seconds=50)
    assert [e.path for e in merged.evidence][-1] == extra.path and len(merged.evidence) == 3

    lower = store.extend_incident(
        iid,
        peak_distress=0.6,
        expression_at_peak={"sadness": 0.9},
        seen_at=T0 + timedelta(seconds=55),
        event_end_s=30.0,
    )
    assert lower.peak_distress == 0.9 and lower.top_expression == "fear"
    assert lower.event_end_s == 40.0


def test_peak_parts_are_stored_and_merged(store: IncidentStore, tmp_path: Path) -> None:
    """The absolute and relative parts of the peak and the baseline at it: stored as given,
    the highest part kept on a merge, the baseline replaced only with the peak."""
    parts = {"peak_absolute": 0.3, "peak_relative": 0.62, "baseline_at_peak": 0.05}
    inc = dataclasses.replace(_new(peak=0.6), **parts)
    iid = store.create_incident(inc, [], {"kind": "distress"}, [])
    got = store.get_incident(iid)
    assert got is not None
    assert (got.peak_absolute, got.peak_relative, got.baseline_at_peak) == (0.3, 0.62, 0.05)
    doc = json.loads(json.dumps(incident_to_json(got)))
    assert {k: doc[k] for k in parts} == parts

    # A higher peak driven by the absolute part: its baseline replaces the old one, and each
    # part keeps its highest value.
    higher = store.extend_incident(
        iid,
        peak_distress=0.8,
        expression_at_peak={"fear": 0.8, "neutral": 0.2},
        peak_absolute=0.8,
        peak_relative=0.4,
        baseline_at_peak=0.2,
    )
    assert (higher.peak_absolute, higher.peak_relative, higher.baseline_at_peak) == (
        0.8,
        0.62,
        0.2,
    )
    # A lower peak leaves the baseline at the peak; a merge without parts erases nothing.
    lower = store.extend_incident(
        iid,
        peak_distress=0.6,
        expression_at_peak={"sadness": 0.9},
        peak_absolute=0.5,
        peak_relative=0.7,
        baseline_at_peak=0.4,
    )
    assert (lower.peak_absolute, lower.peak_relative, lower.baseline_at_peak) == (0.8, 0.7, 0.2)
    plain = store.extend_incident(iid, peak_distress=0.9, expression_at_peak={"fear": 1.0})
    assert (plain.peak_absolute, plain.peak_relative, plain.baseline_at_peak) == (0.8, 0.7, None)

    with pytest.raises(ValueError, match="peak_relative"):
        dataclasses.replace(_new(), peak_relative=1.5)
    with pytest.raises(StoreError, match="peak_absolute"):
        store.extend_incident(
            iid, peak_distress=0.9, expression_at_peak={}, peak_absolute=float("nan")
        )


def test_incidents_stored_before_the_peak_parts_read_back_without_them(
    db_url: str, tmp_path: Path
) -> None:
    """Revision 0004 adds the parts as empty columns; 0003's incidents keep everything else,
    and going back to 0003 drops the columns again."""
    engine = migrate(db_url, "0003")
    old = _new()
    row = {
        "id": old.id,
        "camera_id": old.camera_id,
        "hotspot_id": old.hotspot_id,
        "station_id": old.station_id,
        "state": "NEW",
        "opened_at": T0,
        "updated_at": T0,
        "last_seen_at": T0,
        "source_id": old.source_id,
        "peak_distress": 0.7,
        "expression_at_peak": old.expression_at_peak,
        "model_name": old.model_name,
        "model_sha256": old.model_sha256,
        "thresholds": old.thresholds,
        "route": old.route.to_json(),
        "version": 1,
    }
    with engine.begin() as conn:
        conn.execute(incidents.insert().values(**row))
    migrate(engine)
    store = IncidentStore(engine)
    got = store.get_incident(old.id)
    assert got is not None and got.peak_distress == 0.7 and got.route == old.route
    assert (got.peak_absolute, got.peak_relative, got.baseline_at_peak) == (None, None, None)
    assert incident_to_json(got)["peak_relative"] is None

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    columns = {c["name"] for c in inspect(engine).get_columns("incidents")}
    assert "peak_relative" not in columns and "peak_distress" in columns
    assert current_revision(engine) == "0003"
    engine.dispose()


# ---- outbox ---------------------------------------------------------------------------------


def test_outbox_due_failed_backoff_delivered(store: IncidentStore, tmp_path: Path) -> None:
    outbox: OutboxStore = store  # the store implements the alert workers' protocol
    iid = _create(store, tmp_path)
    now = datetime.now(UTC)
    assert {d.channel for d in store.deliveries(iid)} == {"webhook", "mqtt"}  # not "store"

    due = outbox.due_deliveries("webhook", now, 10)
    assert len(due) == 1
    d = due[0]
    assert d.incident_id == iid and d.station_id == "hazratganj" and d.attempts == 0
    assert d.payload["incident_id"] == iid and d.payload["alert_id"] == d.alert_id
    assert d.payload["kind"] == "distress"
    # Claimed: another worker asking now gets nothing.
    assert outbox.due_deliveries("webhook", now, 10) == []

    outbox.mark_failed(
        d.delivery_id,
        "POST http://u:hunter2@hq/ -> connection refused",
        now + timedelta(seconds=30),
    )
    assert outbox.due_deliveries("webhook", now + timedelta(seconds=29), 10) == []
    again = outbox.due_deliveries("webhook", now + timedelta(seconds=31), 10)
    assert [x.delivery_id for x in again] == [d.delivery_id] and again[0].attempts == 1
    status = {s.channel: s for s in store.deliveries(iid)}
    assert status["webhook"].state == "pending" and status["webhook"].attempts == 1
    assert status["webhook"].last_error is not None
    assert "hunter2" not in status["webhook"].last_error
    assert "connection refused" in status["webhook"].last_error

    outbox.mark_delivered(d.delivery_id, now + timedelta(seconds=32))
    outbox.mark_delivered(d.delivery_id, now + timedelta(seconds=40))  # repeated: no change
    status = {s.channel: s for s in store.deliveries(iid)}
    assert status["webhook"].state == "delivered"
    assert status["webhook"].attempts == 1  # the failed attempt stays on record
    assert status["webhook"].delivered_at == now + timedelta(seconds=32)
    assert outbox.due_deliveries("webhook", now + timedelta(days=1), 10) == []
    # The other channel is untouched and still due.
    assert status["mqtt"].state == "pending" and status["mqtt"].attempts == 0
    (mqtt,) = outbox.due_deliveries("mqtt", now, 10)
    # The dispatcher gives up on a delivery the receiver keeps refusing.
    assert isinstance(store, DeadLetterStore)
    store.mark_dead(mqtt.delivery_id, "401 Unauthorized\ntraceback...", now)
    status = {s.channel: s for s in store.deliveries(iid)}
    assert status["mqtt"].state == "failed" and status["mqtt"].last_error == "401 Unauthorized"
    assert outbox.due_deliveries("mqtt", now + timedelta(days=1), 10) == []

    with pytest.raises(StoreError, match="no alert delivery"):
        outbox.mark_delivered(999_999, now)


def test_outbox_lease_expires_and_max_attempts(db_url: str, tmp_path: Path) -> None:
    store = IncidentStore(migrate(db_url), claim_lease_s=5, max_attempts=2)
    iid = _create(store, tmp_path)
    now = datetime.now(UTC)
    first = store.due_deliveries("mqtt", now, 10)
    assert len(first) == 1
    # The worker died without reporting: after the lease the row is due again.
    assert store.due_deliveries("mqtt", now + timedelta(seconds=4), 10) == []
    retry = store.due_deliveries("mqtt", now + timedelta(seconds=6), 10)
    assert [r.delivery_id for r in retry] == [first[0].delivery_id]

    store.mark_failed(first[0].delivery_id, "broker down", now + timedelta(seconds=7))
    store.mark_failed(first[0].delivery_id, "broker down", now + timedelta(seconds=8))
    status = {s.channel: s for s in store.deliveries(iid)}
    assert status["mqtt"].state == "failed" and status["mqtt"].attempts == 2
    assert store.due_deliveries("mqtt", now + timedelta(days=1), 10) == []
    store.close()


def test_concurrent_workers_never_claim_the_same_delivery(
    store: IncidentStore, tmp_path: Path
) -> None:
    for i in range(12):
        _create(store, tmp_path, opened_at=T0 + timedelta(seconds=i))
    now = datetime.now(UTC)
    claimed: list[list[int]] = [[], [], []]
    barrier = threading.Barrier(3)

    def worker(k: int) -> None:
        barrier.wait()
        while batch := store.due_deliveries("webhook", now, 2):
            claimed[k].extend(d.delivery_id for d in batch)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    everything = [x for c in claimed for x in c]
    assert len(everything) == 12 and len(set(everything)) == 12


# ---- concurrency on PostgreSQL --------------------------------------------------------------


def test_two_officers_at_once_leave_a_consistent_history(pg_url: str, tmp_path: Path) -> None:
    store = IncidentStore.open(pg_url)
    store.sync_units(UNITS, now=T0)
    ids = [_create(store, tmp_path, opened_at=T0 + timedelta(seconds=i)) for i in range(8)]
    unit_of = {iid: f"unit-{i}" for i, iid in enumerate(ids)}
    errors: list[BaseException] = []

    def officer(actions: list[tuple[str, str]], barrier: threading.Barrier) -> None:
        barrier.wait()
        for iid, action in actions:
            try:
                store.apply_action(
                    iid,
                    action,
                    f"officer-{threading.get_ident()}",
                    unit_id=unit_of[iid] if action == "dispatch" else None,
                )
            except (IllegalTransition, ConcurrentUpdate) as exc:
                errors.append(exc)

    # Each round, both officers act on every incident at once; in each race exactly one
    # action can apply (dispatch and dismiss exclude each other in either order).
    for round_actions in (
        ([(i, "acknowledge") for i in ids], [(i, "acknowledge") for i in ids]),
        ([(i, "confirm") for i in ids], [(i, "confirm") for i in ids]),
        ([(i, "dispatch") for i in ids], [(i, "dismiss") for i in reversed(ids)]),
    ):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=officer, args=(a, barrier)) for a in round_actions]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

    assert all(isinstance(e, IllegalTransition) for e in errors)
    for iid in ids:
        history = store.actions(iid)
        assert next(h.action for h in history) is Action.ACKNOWLEDGE
        assert [h.action for h in history].count(Action.ACKNOWLEDGE) == 1
        assert len(history) == 3, history  # the loser of each race was refused
        assert history[0].from_state is IncidentState.NEW
        for prev, nxt in itertools.pairwise(history):
            assert prev.to_state is nxt.from_state
        assert history[-1].to_state in (IncidentState.DISPATCHED, IncidentState.DISMISSED)
        inc = store.get_incident(iid)
        assert inc is not None and inc.state is history[-1].to_state
        assert inc.version == 1 + len(history)
    assert len(errors) == 3 * len(ids)
    store.close()


# ---- cameras --------------------------------------------------------------------------------


def test_camera_status_upsert_never_stores_a_password(store: IncidentStore) -> None:
    url = "rtsp://admin:hunter2@10.0.0.5:554/stream1?token=s3cr3t-t0k3n&channel=1"
    seen = T0 + timedelta(seconds=5)
    store.set_camera_status(
        "cam-1",
        True,
        seen,
        None,
        hotspot_id="hazratganj-crossing",
        station_id="hazratganj",
        display_url=url,
        enabled=True,
    )
    store.set_camera_status(
        "cam-1",
        False,
        None,
        f"cannot open {url}: 401 Unauthorized (password=hunter2) key pw=Xyz-9",
        secrets=["Xyz-9"],
        now=T0 + timedelta(seconds=9),
    )
    (cam,) = store.cameras()
    assert cam.online is False and cam.enabled is True
    assert cam.last_frame_at == seen  # kept when not given
    assert cam.hotspot_id == "hazratganj-crossing" and cam.station_id == "hazratganj"
    assert cam.display_url == "rtsp://admin:***@10.0.0.5:554/stream1?token=***&channel=1"
    assert cam.last_error is not None and "401 Unauthorized" in cam.last_error
    assert cam.updated_at == T0 + timedelta(seconds=9)

    with store.engine.connect() as conn:
        dump = json.dumps(
            [list(map(str, r)) for r in conn.execute(text("SELECT * FROM cameras")).all()]
        )
    for secret in ("hunter2", "s3cr3t-t0k3n", "Xyz-9"):
        assert secret not in dump

    store.set_camera_status("cam-1", True, T0 + timedelta(seconds=20))
    (cam,) = store.cameras()
    assert cam.online and cam.last_error is None and cam.last_frame_at == T0 + timedelta(seconds=20)
    assert cam.display_url is not None and "hunter2" not in cam.display_url


def test_camera_health_is_kept_until_reported_again(store: IncidentStore) -> None:
    store.set_camera_status("cam-1", False, None, "connecting")
    assert store.cameras()[0].health is None  # nothing reported yet
    first = CameraHealth(analysed_fps=4.98, frames_dropped=3, p95_latency_ms=41.5)
    store.set_camera_status("cam-1", True, T0, health=first)
    assert store.cameras()[0].health == first
    store.set_camera_status("cam-1", False, None, "stream lost")  # no report: kept
    assert store.cameras()[0].health == first
    later = CameraHealth(analysed_fps=0.0, frames_dropped=3, p95_latency_ms=None)
    store.set_camera_status("cam-1", False, None, "stream lost", health=later)
    assert store.cameras()[0].health == later


def test_naive_times_are_refused(store: IncidentStore) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        store.set_camera_status("cam-1", True, datetime(2026, 11, 22, 8, 0, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        _new(opened_at=datetime(2026, 11, 22, 8, 0, 0))


def test_store_error_is_a_raksha_error() -> None:
    assert issubclass(StoreError, RakshaError)
    assert issubclass(IncidentNotFound, StoreError)
    # A sqlite engine from SQLAlchemy directly (no make_engine) still works with migrate().
    engine = create_engine("sqlite://")
    migrate(engine)
    assert current_revision(engine) == head_revision()


def test_in_memory_sqlite_is_one_database_for_every_thread(tmp_path: Path) -> None:
    store = IncidentStore.open("sqlite://")
    iid = _create(store, tmp_path)
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(len(store.list_incidents())))
    worker.start()
    worker.join()
    assert seen == [1] and store.get_incident(iid) is not None


class _Receiver:
    """A channel that can be down: records what it accepted."""

    def __init__(self) -> None:
        self.down = True
        self.received: list[dict[str, object]] = []

    def send(self, delivery: PendingDelivery) -> None:
        if self.down:
            raise DeliveryError("webhook: connection refused")
        self.received.append(alert_document(delivery))


def test_dispatcher_on_the_store_delivers_once_after_the_channel_returns(
    store: IncidentStore, tmp_path: Path
) -> None:
    iid = _create(store, tmp_path)
    receiver = _Receiver()
    policy = RetryPolicy(base_s=5, max_s=5, jitter=0)
    dispatcher = OutboxDispatcher(store, {"webhook": receiver}, policy)
    now = datetime.now(UTC) + timedelta(seconds=1)

    assert dispatcher.run_once(now).failed == 1
    (status,) = [s for s in store.deliveries(iid) if s.channel == "webhook"]
    assert status.state == "pending" and status.attempts == 1
    assert status.next_attempt_at == now + timedelta(seconds=5)

    receiver.down = False
    assert dispatcher.run_once(now + timedelta(seconds=2)).held == ["webhook"]
    assert dispatcher.run_once(now + timedelta(seconds=6)).delivered == 1
    assert dispatcher.run_once(now + timedelta(seconds=600)).attempted == 0
    assert [r["incident_id"] for r in receiver.received] == [iid]
    (status,) = [s for s in store.deliveries(iid) if s.channel == "webhook"]
    assert status.state == "delivered" and status.attempts == 1


def _migrate_in_child(url: str) -> None:
    migrate(url)


@pytest.mark.slow
def test_processes_migrating_one_new_sqlite_file_at_once(tmp_path: Path) -> None:
    """`raksha run` and `raksha serve` may start together on a new database."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_migrate_in_child, args=(url,)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert current_revision(make_engine(url)) == head_revision()


def test_a_replayed_merge_stores_nothing_twice_and_keeps_its_evidence(
    store: IncidentStore, tmp_path: Path
) -> None:
    """The spool replays an event that had merged (a crash between the commit and the
    spool's delete): the incident is not extended again and its evidence stays attached."""
    first, _ = _open(store, tmp_path, T0, peak=0.6)
    inc = _new(opened_at=T0 + timedelta(seconds=10), person_key="x:2", peak=0.9)
    ev = [_evidence(tmp_path, f"{inc.id}-face.jpg", EvidenceKind.FACE, b"\xff\xd8" + os.urandom(8))]
    args = (inc, ev, {"kind": "distress"}, ["webhook"])
    merged = store.open_or_extend(*args, rule=RULE, face=FACE, now=inc.opened_at)
    assert merged.merged and merged.evidence_used
    before = store.get_incident(first.incident_id)
    assert before is not None
    again = store.open_or_extend(*args, rule=RULE, face=FACE, now=inc.opened_at)
    assert (again.incident_id, again.merged, again.evidence_used) == (first.incident_id, True, True)
    after = store.get_incident(first.incident_id)
    assert after is not None and after.version == before.version
    assert [e.path for e in after.evidence] == [e.path for e in before.evidence]
