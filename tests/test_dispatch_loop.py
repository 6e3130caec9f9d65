"""The loop to the street, end to end on real services (SQLite and PostgreSQL, Mosquitto):
an incident at a camera between two stations and three units reaches the nearest station;
nobody acknowledges, so it escalates on time and once (also with two stores racing, and
after a restart); a dispatch to a busy or unknown unit is refused; a position update moves
the nearest-unit choice; the dispatch sends the job card over MQTT; a panic signal near the
camera joins the incident; every state change leaves once as Raksha JSON, EIDO JSON and CAP
XML, each valid against its schema."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import xmlschema
from jsonschema import Draft202012Validator
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from pg_support import admin_engine, pg_schema, store_url
from raksha.alerts.dispatcher import OutboxDispatcher
from raksha.alerts.factory import build_notifiers
from raksha.audit.log import AuditLog
from raksha.config import RunConfig
from raksha.geo.routing import Router
from raksha.incidents.model import Action, AlertPayload, IncidentState, NewIncident, Priority
from raksha.services.deployment import configure_store
from raksha.services.devices import Device
from raksha.services.errors import Conflict, Invalid
from raksha.services.sos import SosService, SosSignal
from raksha.store.errors import UnitUnavailable, UnknownUnit
from raksha.store.repository import IncidentStore
from raksha.store.tables import alerts

SCHEMA_PREFIX = "raksha_loop_t_"
SCHEMAS = files("raksha.alerts") / "schemas"
HOTSPOT = (26.8500, 80.9400)


def _config(prefix: str, db: str) -> RunConfig:
    return RunConfig.model_validate(
        {
            "stations": [
                {"id": "hazratganj", "name": "Hazratganj PS", "lat": 26.8520, "lon": 80.9410},
                {"id": "aliganj", "name": "Aliganj PS", "lat": 26.8900, "lon": 80.9400},
            ],
            "hotspots": [
                {"id": "crossing", "name": "Hazratganj crossing", "lat": 26.85, "lon": 80.94}
            ],
            "cameras": [{"id": "cam-1", "hotspot": "crossing", "url": "file:///dev/null"}],
            "patrol_units": [
                {
                    "id": "pink-1",
                    "kind": "scooter",
                    "station": "hazratganj",
                    "lat": 26.8518,
                    "lon": 80.9400,
                },
                {
                    "id": "pink-2",
                    "kind": "scooter",
                    "station": "hazratganj",
                    "lat": 26.8560,
                    "lon": 80.9400,
                },
                {
                    "id": "car-9",
                    "kind": "car",
                    "station": "aliganj",
                    "lat": 26.8800,
                    "lon": 80.9400,
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
            "escalation": {"acknowledge_s": 60, "acknowledge_high_s": 30, "step_s": 60},
            "sos": {"sources": [{"id": "app-112", "token_env": "RAKSHA_T_SOS_TOKEN"}]},
            "storage": {"url": db},
        }
    )


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[Engine]:
    engine = admin_engine("the dispatch loop tests", SCHEMA_PREFIX)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    admin = lambda: request.getfixturevalue("pg_admin")  # noqa: E731
    with store_url(request.param, tmp_path, admin, SCHEMA_PREFIX) as url:
        yield url


class Listener:
    """Every message under a topic prefix on the real broker."""

    def __init__(self, prefix: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
        self.client.on_connect = lambda c, *_: (
            c.subscribe(f"{prefix}/#", qos=1),
            self._ready.set(),
        )
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        assert self._ready.wait(10), "Mosquitto on 127.0.0.1:1883 is needed for this test"
        time.sleep(0.3)  # the subscription is acknowledged

    def on(self, suffix: str) -> list[bytes]:
        return [p for t, p in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _incident(cfg: RunConfig, at: datetime, where: tuple[float, float] = HOTSPOT) -> NewIncident:
    route = Router.from_site(cfg).route(*where)
    return NewIncident(
        camera_id="cam-1",
        hotspot_id="crossing",
        station_id=route.station_id,
        peak_distress=0.8,
        expression_at_peak={"fear": 0.7, "neutral": 0.3},
        model_name="m",
        model_sha256="a" * 64,
        thresholds={},
        route=route,
        opened_at=at,
        lat=where[0],
        lon=where[1],
        place="Hazratganj crossing",
    )


def _drain(dispatcher: OutboxDispatcher, listener: Listener, want: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        dispatcher.run_once()
        if len(listener.messages) >= want:
            time.sleep(0.3)
            return
        time.sleep(0.1)


def test_the_loop_from_camera_to_unit(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"raksha-t-{uuid.uuid4().hex[:8]}"
    cfg = _config(prefix, db_url)
    monkeypatch.setenv("RAKSHA_T_SOS_TOKEN", "sos-token-0123456789")
    listener = Listener(prefix)
    store = configure_store(IncidentStore.open(db_url), cfg)
    dispatcher = OutboxDispatcher(store, build_notifiers(cfg.alerts, {}, cfg.patrol_units))
    try:
        now = datetime.now(UTC)
        new = _incident(cfg, now)
        channels = store.workflow.station_channels
        assert channels == ("store", "mqtt", "mqtt-eido", "mqtt-cap")
        iid = store.create_incident(new, [], AlertPayload.of(new).to_json(), channels, now=now)
        inc = store.get_incident(iid)
        assert inc is not None and inc.station_id == "hazratganj"  # the nearest station
        assert inc.deadline_kind == "acknowledge"
        assert inc.deadline_at == now + timedelta(seconds=60)

        # Nobody acknowledges: nothing before the deadline, one step at it, not twice.
        assert store.fire_due(now + timedelta(seconds=59)) == []
        fired = store.fire_due(now + timedelta(seconds=60))
        assert [r.action for r in fired] == [Action.ESCALATE]
        assert fired[0].actor == "system:escalation" and "not acknowledged" in (fired[0].note or "")
        assert store.fire_due(now + timedelta(seconds=60)) == []
        # After a restart (a new store on the same database) the next step is still due once.
        store.close()
        store = configure_store(IncidentStore.open(db_url), cfg)
        dispatcher = OutboxDispatcher(store, build_notifiers(cfg.alerts, {}, cfg.patrol_units))
        assert store.fire_due(now + timedelta(seconds=119)) == []
        assert len(store.fire_due(now + timedelta(seconds=120))) == 1
        inc = store.get_incident(iid)
        assert inc is not None and inc.escalation_level == 2

        # The officer acts; the dispatch deadline replaces the acknowledgement's.
        store.apply_action(iid, "acknowledge", "op-a", at=now + timedelta(seconds=130))
        store.apply_action(iid, "confirm", "op-a", at=now + timedelta(seconds=131))
        inc = store.get_incident(iid)
        assert inc is not None and inc.deadline_kind == "dispatch" and inc.escalation_level == 0

        # Another incident takes pink-1: a dispatch of pink-1 here is refused, as is a
        # unit that does not exist; nothing changes.
        other = _incident(cfg, now + timedelta(seconds=1), (26.8600, 80.9400))
        oid = store.create_incident(other, [], AlertPayload.of(other).to_json(), channels)
        for action in ("acknowledge", "confirm"):
            store.apply_action(oid, action, "op-a")
        store.apply_action(oid, "dispatch", "op-a", unit_id="pink-1")
        with pytest.raises(UnitUnavailable, match="pink-1 is dispatched"):
            store.apply_action(iid, "dispatch", "op-a", unit_id="pink-1")
        with pytest.raises(UnknownUnit, match="unknown patrol unit 'pink-99'"):
            store.apply_action(iid, "dispatch", "op-a", unit_id="pink-99")
        assert store.get_incident(iid).state is IncidentState.CONFIRMED  # type: ignore[union-attr]

        # The nearest available unit, then a position report moves the choice.
        nearest = store.nearest_available_units(*HOTSPOT, k=3)
        assert [u.id for u, _, _ in nearest] == ["pink-2", "car-9"]
        store.report_position("car-9", 26.8501, 80.9401, datetime.now(UTC))
        nearest = store.nearest_available_units(*HOTSPOT, k=3)
        assert nearest[0][0].id == "car-9" and nearest[0][2] is True  # live position
        store.apply_action(iid, "dispatch", "op-a", unit_id="car-9")
        assert store.unit("car-9").status.value == "dispatched"  # type: ignore[union-attr]

        # A panic signal 60 m from the camera joins the incident and raises its priority.
        sos = SosService(store, AuditLog(store.engine), cfg, Router.from_site(cfg), channels)
        out = sos.receive(
            Device("sos", "app-112"), SosSignal("m-1", "panic", 26.8505, 80.9403, datetime.now(UTC))
        )
        assert out.result == "joined" and out.incident_id == iid
        inc = store.get_incident(iid)
        assert inc is not None and inc.priority is Priority.HIGH
        with pytest.raises(Conflict, match="already received"):  # a replay changes nothing
            sos.receive(Device("sos", "app-112"), SosSignal("m-1", "panic", 26.8505, 80.9403))
        with pytest.raises(Invalid, match="older than"):
            sos.receive(
                Device("sos", "app-112"),
                SosSignal("m-2", "panic", 26.85, 80.94, datetime.now(UTC) - timedelta(hours=1)),
            )

        # Resolving frees the unit.
        store.apply_action(iid, "resolve", "op-a")
        assert store.unit("car-9").status.value == "available"  # type: ignore[union-attr]

        # Every alert goes out: state changes once per format, the job card to its unit.
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(alerts.c.incident_id, alerts.c.event, alerts.c.seq).order_by(alerts.c.seq)
            ).all()
        changes = [r for r in rows if r.incident_id == iid and r.event != "job_card"]
        events = [r.event for r in changes]
        assert events == [
            "new",
            "escalated",
            "escalated",
            "acknowledged",
            "confirmed",
            "dispatched",
            "sos_joined",
            "resolved",
        ]
        assert [r.seq for r in rows if r.incident_id == iid] == list(range(1, 10))
        all_changes = sum(1 for r in rows if r.event != "job_card")
        job_cards = sum(1 for r in rows if r.event == "job_card")
        assert job_cards == 2
        _drain(dispatcher, listener, want=3 * all_changes + job_cards)

        station_docs = [json.loads(p) for p in listener.on("/incidents")]
        mine = [d for d in station_docs if d["incident_id"] == iid]
        assert [d["alert"]["event"] for d in mine] == events  # once each, in order
        eido = [json.loads(p) for p in listener.on("/eido")]
        cap = listener.on("/cap")
        assert len(eido) == len(cap) == all_changes == len(station_docs)
        validator = Draft202012Validator(
            json.loads(SCHEMAS.joinpath("eido-raksha.schema.json").read_text(encoding="utf-8"))
        )
        for doc in eido:
            assert not list(validator.iter_errors(doc)), doc
        xsd = xmlschema.XMLSchema10(SCHEMAS.joinpath("cap-1.2.xsd").read_text(encoding="utf-8"))
        for body in cap:
            xsd.validate(body.decode("utf-8"))
        card = [json.loads(p) for p in listener.on(f"{prefix}/units/car-9/jobs")]
        assert len(card) == 1
        job = card[0]["alert"]
        assert job["event"] == "job_card" and job["unit"]["id"] == "car-9"
        assert "Hazratganj crossing" in job["text"]["en"] and "रक्षा" in job["text"]["hi"]
        assert job["directions"].startswith("geo:26.85")
        assert len(listener.on(f"{prefix}/units/pink-1/jobs")) == 1
    finally:
        listener.close()
        store.close()


def test_two_stores_fire_each_deadline_once(pg_admin: Engine, tmp_path: Path) -> None:
    """Two processes' stores on one PostgreSQL racing over the same passed deadlines."""
    with pg_schema(pg_admin, SCHEMA_PREFIX) as url:
        cfg = _config(f"raksha-t-{uuid.uuid4().hex[:8]}", url)
        stores = [configure_store(IncidentStore.open(url), cfg) for _ in range(2)]
        try:
            now = datetime.now(UTC)
            ids = []
            for i in range(6):
                new = _incident(cfg, now + timedelta(milliseconds=i))
                ids.append(stores[0].create_incident(new, [], AlertPayload.of(new).to_json(), ()))
            fired: list[list[Any]] = [[], []]
            at = now + timedelta(seconds=61)
            for step in range(3):  # three steps, each taken by whichever store is first
                when = at + timedelta(seconds=60 * step)
                barrier = threading.Barrier(2)

                def race(
                    k: int, when: datetime = when, barrier: threading.Barrier = barrier
                ) -> None:
                    barrier.wait()
                    fired[k].extend(stores[k].fire_due(when))

                threads = [threading.Thread(target=race, args=(k,)) for k in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(30)
            assert len(fired[0]) + len(fired[1]) == 3 * len(ids)
            for iid in ids:
                history = [a for a in stores[0].actions(iid) if a.action is Action.ESCALATE]
                assert len(history) == 3
            # Past the last step, nothing more fires.
            assert stores[0].fire_due(at + timedelta(seconds=600)) == []
            with stores[0].engine.connect() as conn:
                n = conn.execute(select(func.count()).select_from(alerts)).scalar_one()
            assert n == len(ids) * 4  # new + three escalations, each one alert
        finally:
            for s in stores:
                s.close()


Local = tuple[RunConfig, IncidentStore]


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    """The loop's site on a SQLite store of its own."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    cfg = _config(f"raksha-t-{uuid.uuid4().hex[:8]}", url)
    store = configure_store(IncidentStore.open(url), cfg)
    yield cfg, store
    store.close()


def _open_at_camera(cfg: RunConfig, store: IncidentStore, now: datetime) -> str:
    new = _incident(cfg, now)
    return store.create_incident(new, [], AlertPayload.of(new).to_json(), ())


def _dispatch(store: IncidentStore, iid: str, unit: str, now: datetime) -> None:
    for action in ("acknowledge", "confirm"):
        store.apply_action(iid, action, "op-a", at=now)
    store.apply_action(iid, "dispatch", "op-a", unit_id=unit, at=now)


def test_the_last_step_brings_in_the_next_station_live(local: Local) -> None:
    """After supervisor and control room, the next-nearest station gets the incident: it can
    list it, its live events carry it, and its alert goes to that station's topic."""
    from raksha.store.changes import IncidentChangeFeed

    cfg, store = local
    now = datetime.now(UTC)
    iid = _open_at_camera(cfg, store, now)
    feed = IncidentChangeFeed(store.engine)
    feed.prime()
    assert store.list_incidents(station_ids=["aliganj"]) == []
    for step in range(3):
        store.fire_due(now + timedelta(seconds=60 * (step + 1)))
    inc = store.get_incident(iid)
    assert inc is not None and inc.escalation_level == 3 and inc.also_stations == ("aliganj",)
    assert [i.id for i in store.list_incidents(station_ids=["aliganj"])] == [iid]
    changes = feed.poll()
    assert changes and changes[-1][1]["also_stations"] == ["aliganj"]
    with store.engine.connect() as conn:
        last = conn.execute(
            select(alerts.c.station_id, alerts.c.payload).order_by(alerts.c.seq.desc())
        ).first()
    assert last is not None and last.station_id == "aliganj"
    assert last.payload["escalation"]["to"] == "station"


def test_a_unit_that_does_not_acknowledge_is_replaced(local: Local) -> None:
    cfg, store = local
    now = datetime.now(UTC)
    iid = _open_at_camera(cfg, store, now)
    _dispatch(store, iid, "pink-1", now)
    inc = store.get_incident(iid)
    assert inc is not None and inc.deadline_kind == "unit_ack"
    assert store.fire_due(now + timedelta(seconds=59)) == []
    fired = store.fire_due(now + timedelta(seconds=60))
    assert [(r.action, r.unit_id) for r in fired] == [(Action.REASSIGN, "pink-2")]
    assert "did not acknowledge" in (fired[0].note or "")
    assert store.unit("pink-1").status.value == "available"  # type: ignore[union-attr]
    assert store.unit("pink-2").incident_id == iid  # type: ignore[union-attr]
    inc = store.get_incident(iid)
    assert inc is not None and inc.unit_id == "pink-2" and inc.escalation_level == 1
    # The first unit answering late is told the job went elsewhere; the new one acks.
    with pytest.raises(UnitUnavailable, match="no longer"):
        store.apply_action(iid, "unit_ack", "unit:pink-1", unit_id="pink-1")
    store.apply_action(iid, "unit_ack", "unit:pink-2", unit_id="pink-2")
    inc = store.get_incident(iid)
    assert inc is not None and inc.deadline_at is None  # nothing more is due
    with store.engine.connect() as conn:
        cards = conn.execute(
            select(alerts.c.unit_id).where(alerts.c.event == "job_card").order_by(alerts.c.seq)
        ).scalars()
        assert list(cards) == ["pink-1", "pink-2"]


_RACER = """
import sys, time, json
from datetime import datetime, timedelta
from raksha.config import RunConfig
from raksha.services.deployment import configure_store
from raksha.store.repository import IncidentStore
cfg = RunConfig.model_validate(json.loads(sys.argv[1]))
store = configure_store(IncidentStore.open(cfg.storage.url), cfg)
when, start = datetime.fromisoformat(sys.argv[2]), float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
print(len(store.fire_due(when)))
"""


def test_two_processes_fire_each_deadline_once(pg_admin: Engine) -> None:
    """Two `raksha`-like processes on one PostgreSQL, released at the same instant."""
    import subprocess
    import sys

    with pg_schema(pg_admin, SCHEMA_PREFIX) as url:
        cfg = _config(f"raksha-t-{uuid.uuid4().hex[:8]}", str(url))
        store = configure_store(IncidentStore.open(url), cfg)
        try:
            now = datetime.now(UTC)
            ids = []
            for i in range(10):
                new = _incident(cfg, now + timedelta(milliseconds=i))
                ids.append(store.create_incident(new, [], AlertPayload.of(new).to_json(), ()))
            doc = json.dumps(cfg.model_dump(mode="json"))
            when = (now + timedelta(seconds=61)).isoformat()
            start = str(time.time() + 4.0)
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", _RACER, doc, when, start],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            counts = [int((p.communicate(timeout=60)[0] or "0").strip()) for p in procs]
            assert sum(counts) == len(ids), counts
            for iid in ids:
                assert [a.action for a in store.actions(iid)] == [Action.ESCALATE]
        finally:
            store.close()


def test_a_job_that_keeps_lapsing_never_goes_back_to_a_unit_that_had_it(local: Local) -> None:
    cfg, store = local
    now = datetime.now(UTC)
    iid = _open_at_camera(cfg, store, now)
    _dispatch(store, iid, "pink-1", now)
    offered = []
    for step in range(1, 4):
        for rec in store.fire_due(now + timedelta(seconds=60 * step)):
            offered.append((rec.action, rec.unit_id))
    # pink-1 -> pink-2 -> car-9, then nobody new is left: escalate, never back to pink-1.
    assert offered == [
        (Action.REASSIGN, "pink-2"),
        (Action.REASSIGN, "car-9"),
        (Action.ESCALATE, None),
    ], offered


def test_an_sos_joining_brings_the_high_priority_deadline(local: Local) -> None:
    cfg, store = local
    now = datetime.now(UTC)
    iid = _open_at_camera(cfg, store, now)
    inc = store.get_incident(iid)
    assert inc is not None and inc.deadline_at == now + timedelta(seconds=60)
    store.apply_action(iid, "sos_join", "sos:app-112", "panic nearby", at=now)
    inc = store.get_incident(iid)
    assert inc is not None and inc.priority is Priority.HIGH
    assert inc.deadline_at == now + timedelta(seconds=30)  # acknowledge_high_s
    assert [r.action for r in store.fire_due(now + timedelta(seconds=30))] == [Action.ESCALATE]
