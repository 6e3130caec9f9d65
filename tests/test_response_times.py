"""Response times (raksha.store.response_times, raksha.services.reports): exact p50/p95 of
incidents with known action times on real SQLite and PostgreSQL stores, per station and per
patrol unit; scoping through the dashboard API; `raksha report response-times` writing JSON
and a PNG; bad input as one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from dashboard_support import STATION_A, STATION_B, Dash, dashboard
from pg_support import admin_engine, store_url
from raksha.audit.log import AuditLog
from raksha.domain.routing import Route
from raksha.incidents import NewIncident
from raksha.incidents.model import Origin
from raksha.services.reports import ResponseTimes, percentile, response_times_for_operator
from raksha.store import IncidentStore
from raksha.store.response_times import incident_times

SCHEMA_PREFIX = "raksha_rt_t_"
T0 = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
A, B = "hazratganj", "aliganj"


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    engine = admin_engine("the response-time tests", SCHEMA_PREFIX)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    admin = lambda: request.getfixturevalue("pg_admin")  # noqa: E731
    with store_url(request.param, tmp_path, admin, SCHEMA_PREFIX) as url:
        yield url


@dataclass(frozen=True)
class _Unit:
    id: str
    kind: str = "scooter"
    station: str = A
    lat: float = 26.85
    lon: float = 80.94
    name: str = ""


UNITS = [_Unit(f"unit-{i}") for i in range(6)]


def _open(store: IncidentStore, station: str, opened_at: datetime, origin: Origin) -> str:
    inc = NewIncident(
        camera_id=f"cam-{station}",
        hotspot_id=f"{station}-crossing",
        station_id=station,
        peak_distress=0.8,
        expression_at_peak={"neutral": 0.1, "fear": 0.7, "sadness": 0.2},
        model_name="ferplus-8",
        model_sha256="a" * 64,
        thresholds={"enter_threshold": 0.55},
        route=Route(station, "nearest", 400.0, ()),
        source_id=f"cam-{station}",
        opened_at=opened_at,
        origin=origin,
    )
    return store.create_incident(inc, [], {"kind": "distress"}, ["store"], now=opened_at)


#: (seconds after opening, action, unit) per step.
Script = list[tuple[float, str, str | None]]


def _incident(
    store: IncidentStore,
    station: str,
    opened_at: datetime,
    script: Script,
    origin: Origin = Origin.CAMERA,
) -> str:
    iid = _open(store, station, opened_at, origin)
    for offset, action, unit in script:
        if action in ("unit_ack", "on_scene"):
            actor = f"unit:{unit}"
        elif action in ("reassign", "escalate"):
            actor = "system:escalation"
        else:
            actor = "officer-12"
        store.apply_action(
            iid, action, actor, unit_id=unit, at=opened_at + timedelta(seconds=offset)
        )
    return iid


def _minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def populate(store: IncidentStore, a: str = A, b: str = B, units: list[str] | None = None) -> None:
    """The incidents whose figures the tests know (see the expected values below)."""
    u = units or [x.id for x in UNITS]
    ack_confirm = [(60.0, "acknowledge", None), (90.0, "confirm", None)]
    # A1: unit acknowledges after 30 s, on scene 300 s after the dispatch.
    _incident(
        store,
        a,
        _minutes(0),
        [
            *ack_confirm,
            (120, "dispatch", u[0]),
            (150, "unit_ack", u[0]),
            (420, "on_scene", u[0]),
            (900, "resolve", None),
        ],
    )
    # A2: the first unit never answers; the job is reassigned; the second acknowledges
    # 20 s after the reassign and arrives 360 s after the first dispatch.
    _incident(
        store,
        a,
        _minutes(10),
        [
            (30, "acknowledge", None),
            (40, "confirm", None),
            (200, "dispatch", u[1]),
            (260, "reassign", u[2]),
            (280, "unit_ack", u[2]),
            (560, "on_scene", u[2]),
            (1000, "resolve", None),
        ],
    )
    # A3: acknowledged, then dismissed.
    _incident(store, a, _minutes(20), [(120, "acknowledge", None), (130, "dismiss", None)])
    # A4: nobody has acknowledged it (an escalation is no acknowledgement): waiting.
    _incident(store, a, _minutes(30), [(300, "escalate", None)])
    # A5: dispatched, still open, nobody on scene yet.
    _incident(
        store,
        a,
        _minutes(40),
        [(600, "acknowledge", None), (650, "confirm", None), (700, "dispatch", u[3])],
    )
    # A6: dismissed without an acknowledgement: closed, so not waiting.
    _incident(store, a, _minutes(50), [(50, "dismiss", None)])
    # A7: a panic signal (origin sos), acknowledged in 5 s.
    _incident(store, a, _minutes(60), [(5, "acknowledge", None)], origin=Origin.SOS)
    # B1: station B; the unit arrives without acknowledging its job card.
    _incident(
        store,
        b,
        _minutes(5),
        [
            (10, "acknowledge", None),
            (20, "confirm", None),
            (45, "dispatch", u[4]),
            (345, "on_scene", u[4]),
        ],
    )
    # Before the period: the day before.
    _incident(store, a, T0 - timedelta(days=1), [(9999, "acknowledge", None)])


@pytest.fixture
def store(db_url: str) -> Iterator[IncidentStore]:
    s = IncidentStore.open(db_url)
    s.sync_units(UNITS, now=T0 - timedelta(days=2))
    populate(s)
    yield s
    s.close()


PERIOD: dict[str, Any] = {"since": T0, "until": T0 + timedelta(days=1)}


def _stat(n: int, p50: float | None, p95: float | None) -> dict[str, Any]:
    return {"n": n, "p50_s": p50, "p95_s": p95}


EXPECTED_A = {
    "station_id": A,
    "incidents": 7,
    "waiting_ack": 1,
    "waiting_on_scene": 1,
    # 5, 30, 60, 120, 600: rank ceil(2.5) = 3 and rank 5.
    "acknowledge": _stat(5, 60.0, 600.0),
    # 120, 200, 700
    "dispatch": _stat(3, 200.0, 700.0),
    # 30 (after the dispatch), 20 (after the reassign it answers, not the dispatch)
    "unit_ack": _stat(2, 20.0, 30.0),
    # from the first dispatch: 300, 360
    "travel": _stat(2, 300.0, 360.0),
    "on_scene": _stat(2, 420.0, 560.0),
}
EXPECTED_B = {
    "station_id": B,
    "incidents": 1,
    "waiting_ack": 0,
    "waiting_on_scene": 0,
    "acknowledge": _stat(1, 10.0, 10.0),
    "dispatch": _stat(1, 45.0, 45.0),
    "unit_ack": _stat(0, None, None),
    "travel": _stat(1, 300.0, 300.0),
    "on_scene": _stat(1, 345.0, 345.0),
}
EXPECTED_OVERALL = {
    "incidents": 8,
    "waiting_ack": 1,
    "waiting_on_scene": 1,
    # 5, 10, 30, 60, 120, 600: rank 3 and rank ceil(5.7) = 6
    "acknowledge": _stat(6, 30.0, 600.0),
    # 45, 120, 200, 700
    "dispatch": _stat(4, 120.0, 700.0),
    "unit_ack": _stat(2, 20.0, 30.0),
    "travel": _stat(3, 300.0, 360.0),
    "on_scene": _stat(3, 420.0, 560.0),
}
NONE = _stat(0, None, None)


def _unit(uid: str, jobs: int, ack: Any, travel: Any, on_scene: Any) -> dict[str, Any]:
    return {"unit_id": uid, "jobs": jobs, "unit_ack": ack, "travel": travel, "on_scene": on_scene}


EXPECTED_UNITS = [
    _unit("unit-0", 1, _stat(1, 30.0, 30.0), _stat(1, 300.0, 300.0), _stat(1, 420.0, 420.0)),
    # Reassigned away before it answered: a job with no figures.
    _unit("unit-1", 1, NONE, NONE, NONE),
    # Its travel counts from its own assignment (the reassign): 560 - 260.
    _unit("unit-2", 1, _stat(1, 20.0, 20.0), _stat(1, 300.0, 300.0), _stat(1, 560.0, 560.0)),
    _unit("unit-3", 1, NONE, NONE, NONE),
    _unit("unit-4", 1, NONE, _stat(1, 300.0, 300.0), _stat(1, 345.0, 345.0)),
]


def _report(store: IncidentStore, **kw: Any) -> dict[str, Any]:
    report = response_times_for_operator(store, actor="cli:test", **{**PERIOD, **kw})
    return report.to_json()


# ---- percentiles ----------------------------------------------------------------------------


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(20, 0, -1)]  # unsorted on purpose
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile([float(v) for v in range(1, 101)], 95) == 95.0
    assert percentile([float(v) for v in range(1, 102)], 95) == 96.0  # ceil(95.95)
    assert percentile([7.0], 50) == percentile([7.0], 95) == 7.0
    assert percentile([3.0, 1.0], 50) == 1.0 and percentile([3.0, 1.0], 95) == 3.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 0)


# ---- the store and the summary --------------------------------------------------------------


def test_per_incident_times(store: IncidentStore) -> None:
    rows = incident_times(store.engine, **PERIOD)
    assert [r.opened_at for r in rows] == sorted(r.opened_at for r in rows)
    a2 = next(r for r in rows if r.opened_at == _minutes(10))
    assert (a2.t_ack, a2.t_dispatch, a2.t_unit_ack, a2.t_travel, a2.t_on_scene) == (
        30.0,
        200.0,
        20.0,
        360.0,
        560.0,
    )
    assert [(j.unit_id, j.action, j.t_unit_ack, j.t_travel) for j in a2.assignments] == [
        ("unit-1", "dispatch", None, None),
        ("unit-2", "reassign", 20.0, 300.0),
    ]
    a4 = next(r for r in rows if r.opened_at == _minutes(30))
    assert a4.waiting_ack and a4.t_ack is None and a4.assignments == ()
    a6 = next(r for r in rows if r.opened_at == _minutes(50))
    assert not a6.waiting_ack and a6.state == "DISMISSED"


def test_station_unit_and_overall_figures(store: IncidentStore) -> None:
    got = _report(store, known_stations=[A, B])
    assert got["percentile_method"] == "nearest-rank"
    assert got["overall"] == EXPECTED_OVERALL
    assert got["stations"] == [EXPECTED_B, EXPECTED_A]  # sorted by station id
    assert got["units"] == EXPECTED_UNITS
    assert got["since"] == "2026-11-22T08:00:00Z" and got["until"] == "2026-11-23T08:00:00Z"


def test_filters(store: IncidentStore) -> None:
    only_b = _report(store, stations=[B], known_stations=[A, B])
    assert only_b["stations"] == [EXPECTED_B]
    assert {k: v for k, v in only_b["overall"].items()} == {
        k: v for k, v in EXPECTED_B.items() if k != "station_id"
    }
    assert [u["unit_id"] for u in only_b["units"]] == ["unit-4"]
    sos = _report(store, origin="sos")
    assert sos["overall"]["incidents"] == 1 and sos["overall"]["acknowledge"] == _stat(1, 5, 5)
    window = _report(store, since=_minutes(10), until=_minutes(40))  # A2, A3, A4
    assert window["overall"]["incidents"] == 3
    assert window["overall"]["acknowledge"] == _stat(2, 30.0, 120.0)
    assert window["overall"]["waiting_ack"] == 1
    everything = _report(store, since=None, until=None)
    assert everything["overall"]["incidents"] == 9
    assert everything["overall"]["acknowledge"]["p95_s"] == 9999.0
    # A station with nothing in the period still gets its row.
    quiet = _report(store, since=T0 + timedelta(days=5), until=None, known_stations=[A, B])
    assert [(s["station_id"], s["incidents"]) for s in quiet["stations"]] == [(B, 0), (A, 0)]
    assert quiet["overall"]["acknowledge"] == NONE


def test_one_query_for_all_incidents(store: IncidentStore) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        rows = incident_times(store.engine)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert len(rows) == 9
    assert len(statements) == 1, statements


def test_operator_report_is_audited_and_refuses_bad_input(store: IncidentStore) -> None:
    from raksha.services.errors import Invalid, NotFound

    _report(store, stations=[A], known_stations=[A, B])
    entries = AuditLog(store.engine).entries(action="report.response_times")
    assert [(e.actor, e.details["stations"], e.details["incidents"]) for e in entries] == [
        ("cli:test", [A], 7)
    ]
    with pytest.raises(NotFound, match="unknown station 'nowhere'"):
        _report(store, stations=["nowhere"], known_stations=[A, B])
    with pytest.raises(Invalid, match="time zone"):
        _report(store, since=datetime(2026, 11, 22, 8, 0))
    with pytest.raises(Invalid, match="before until"):
        _report(store, since=T0, until=T0)
    with pytest.raises(Invalid, match="unknown origin"):
        _report(store, origin="pigeon")
    assert len(AuditLog(store.engine).entries(action="report.response_times")) == 1


def test_summary_of_nothing() -> None:
    empty = ResponseTimes.summarise([]).to_json()
    assert empty["overall"]["incidents"] == 0 and empty["stations"] == []
    assert empty["overall"]["travel"] == NONE and empty["units"] == []


# ---- the dashboard API ----------------------------------------------------------------------

API_USERS: dict[str, tuple[str, str | None]] = {
    "op_a": ("operator", STATION_A),
    "sup_a": ("supervisor", STATION_A),
    "cr": ("control_room", None),
    "aud": ("auditor", None),
}
URL = "/api/reports/response-times"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dash(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, faces_dir: Path
) -> Iterator[Dash]:
    folder = tmp_path_factory.mktemp(f"rt-{request.param}")
    with dashboard(request.param, folder, faces_dir, users=API_USERS) as d:
        # The dashboard site's stations and units; the same known action times.
        d.store.sync_units([_Unit(f"rt-{i}", station=STATION_A) for i in range(6)])
        populate(d.store, STATION_A, STATION_B, [f"rt-{i}" for i in range(6)])
        yield d


def _period(**extra: str) -> dict[str, str]:
    return {"since": T0.isoformat(), "until": (T0 + timedelta(days=1)).isoformat(), **extra}


def test_api_scoped_to_the_supervisors_station(dash: Dash) -> None:
    r = dash.client("sup_a").get(URL, params=_period())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stations_filter"] == [STATION_A]
    assert [s["station_id"] for s in body["stations"]] == [STATION_A]
    want_a = {**EXPECTED_A, "station_id": STATION_A}
    assert body["stations"][0] == want_a
    assert body["overall"] == {k: v for k, v in want_a.items() if k != "station_id"}
    # Station B's unit (its only job is B's incident) is not in A's report.
    assert [u["unit_id"] for u in body["units"]] == ["rt-0", "rt-1", "rt-2", "rt-3"]
    named = dash.client("sup_a").get(URL, params=_period(station=STATION_A)).json()
    assert named["stations"] == body["stations"] and named["units"] == body["units"]
    other = dash.client("sup_a").get(URL, params=_period(station=STATION_B))
    assert other.status_code == 404
    entries = AuditLog(dash.store.engine).entries(action="report.response_times", actor="sup_a")
    assert entries and entries[0].details["stations"] == [STATION_A]
    assert entries[0].station_id == STATION_A and entries[0].details["incidents"] == 7


def test_api_control_room_sees_every_station(dash: Dash) -> None:
    cr = dash.client("cr")
    body = cr.get(URL, params=_period()).json()
    assert body["stations_filter"] is None
    assert [s["station_id"] for s in body["stations"]] == [STATION_B, STATION_A]
    assert body["overall"] == EXPECTED_OVERALL
    only_b = cr.get(URL, params=_period(station=STATION_B)).json()
    assert only_b["stations"] == [{**EXPECTED_B, "station_id": STATION_B}]
    sos = cr.get(URL, params=_period(origin="sos")).json()
    assert sos["origin"] == "sos" and sos["overall"]["incidents"] == 1


def test_api_refusals(dash: Dash) -> None:
    assert dash.client("op_a").get(URL).status_code == 403
    assert dash.client("aud").get(URL).status_code == 403
    from fastapi.testclient import TestClient

    assert TestClient(dash.app).get(URL).status_code == 401
    cr = dash.client("cr")
    unknown = cr.get(URL, params={"station": "nowhere"})
    assert unknown.status_code == 404 and "unknown station" in unknown.json()["detail"]
    naive = cr.get(URL, params={"since": "2026-11-22T08:00:00"})
    assert naive.status_code == 422 and "time zone" in naive.json()["detail"]
    backwards = cr.get(URL, params={"since": "2026-11-23T00:00:00Z", "until": "2026-11-22T00Z"})
    assert backwards.status_code == 422
    assert cr.get(URL, params={"origin": "pigeon"}).status_code == 422


# ---- the command line -----------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A deployment config on a SQLite store holding the known incidents."""
    db = tmp_path / "raksha.db"
    cfg = tmp_path / "raksha.yaml"
    cfg.write_text(
        f"stations:\n- {{id: {A}, name: Hazratganj, lat: 26.85, lon: 80.94}}\n"
        f"- {{id: {B}, name: Aliganj, lat: 26.89, lon: 80.94}}\n"
        f"hotspots:\n- {{id: h1, name: Market, lat: 26.85, lon: 80.95}}\n"
        f"storage:\n  url: sqlite:///{db}\n"
        f"evidence:\n  dir: {tmp_path / 'evidence'}\n"
    )
    store = IncidentStore.open(f"sqlite:///{db}")
    try:
        store.sync_units(UNITS, now=T0 - timedelta(days=2))
        populate(store)
    finally:
        store.close()
    return cfg


def test_cli_writes_json_and_plot(site: Path, tmp_path: Path) -> None:
    from raksha.cli import app

    out, png = tmp_path / "rt.json", tmp_path / "rt.png"
    args = ["report", "response-times", "--config", str(site), "--since", "2026-11-22T08:00Z"]
    args += ["--until", "2026-11-23T08:00:00+00:00", "--json", str(out), "--plot", str(png)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    assert got["overall"] == EXPECTED_OVERALL
    assert got["stations"] == [EXPECTED_B, EXPECTED_A]
    assert got["units"] == EXPECTED_UNITS
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    lines = result.output.splitlines()
    assert any(
        line.split() == ["station", A, "acknowledge", "5", "1m00s", "10m00s"] for line in lines
    ), result.output
    assert any(line.split()[:4] == ["all", "stations", "8", "1"] for line in lines)
    assert any(line.split()[-4:] == ["unit_ack", "1", "20s", "20s"] for line in lines)


def _raksha(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raksha", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--since", "2026-11-22T08:00:00"], "--since '2026-11-22T08:00:00' needs a time zone"),
        (["--until", "yesterday"], "--until 'yesterday' is not an ISO 8601 time"),
        (["--station", "nowhere"], f"unknown station 'nowhere'; known: {B}, {A}"),
        (["--origin", "pigeon"], "unknown origin 'pigeon'"),
    ],
)
def test_cli_bad_input_is_one_clear_line(site: Path, extra: list[str], needle: str) -> None:
    proc = _raksha("report", "response-times", "--config", site, *extra)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.startswith("raksha: error: ") and needle in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
