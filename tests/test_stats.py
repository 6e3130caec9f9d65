"""Incident statistics (raksha.store.stats, raksha.services.stats, the /stats page): exact
counts per local day, station, camera, outcome and origin on real SQLite and PostgreSQL stores
filled with known incidents; days bucketed in Asia/Kolkata (20:00 UTC is the next day there);
the 95 % Wilson interval of the false-alarm share; scoping like the response-time report; the
page's SVG charts with their fallback tables, and escaped labels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from dashboard_support import PASSWORD, STATION_A, STATION_B, fast_settings, site_config
from pg_support import admin_engine, store_url
from raksha.api.app import create_app
from raksha.audit.log import AuditLog
from raksha.auth.access import Denied
from raksha.auth.roles import Role
from raksha.domain.routing import Route
from raksha.incidents import NewIncident
from raksha.incidents.model import Origin
from raksha.services.errors import Invalid, NotFound
from raksha.services.incidents import Caller
from raksha.services.stats import (
    Share,
    Statistics,
    incident_statistics,
    period,
    wilson_interval,
)
from raksha.store import IncidentStore
from raksha.store.stats import DayStats, IncidentStats, Outcomes, incident_stats
from raksha.web import svg_charts, web_for
from raksha.web.settings import WebSettings

SCHEMA_PREFIX = "raksha_stats_t_"
A, B = "hazratganj", "aliganj"
KOLKATA = "Asia/Kolkata"
#: 17:30 on 22 Nov in Kolkata: the last 7 local days are 16..22 Nov.
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SINCE, UNTIL = period(7, KOLKATA, NOW)
ODD_CAMERA = 'cam-<b>"&x'


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# ---- a store with known incidents -----------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    engine = admin_engine("the statistics tests", SCHEMA_PREFIX)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    admin = lambda: request.getfixturevalue("pg_admin")  # noqa: E731
    with store_url(request.param, tmp_path, admin, SCHEMA_PREFIX) as url:
        yield url


def incident(
    store: IncidentStore,
    station: str,
    camera: str,
    opened_at: datetime,
    steps: list[tuple[float, str]],
    origin: Origin = Origin.CAMERA,
) -> str:
    """An incident opened at `opened_at` and taken through `steps` (seconds after, action)."""
    inc = NewIncident(
        camera_id=camera,
        hotspot_id=f"{station}-crossing",
        station_id=station,
        peak_distress=0.8,
        expression_at_peak={"neutral": 0.1, "fear": 0.7, "sadness": 0.2},
        model_name="ferplus-8",
        model_sha256="a" * 64,
        thresholds={"enter_threshold": 0.55},
        route=Route(station, "nearest", 400.0, ()),
        source_id=camera,
        opened_at=opened_at,
        origin=origin,
    )
    iid = store.create_incident(inc, [], {"kind": "distress"}, ["store"], now=opened_at)
    for offset, action in steps:
        store.apply_action(iid, action, "officer-12", at=opened_at + timedelta(seconds=offset))
    return iid


def resolved(ack_s: float) -> list[tuple[float, str]]:
    return [(ack_s, "acknowledge"), (ack_s + 10, "confirm"), (ack_s + 20, "resolve")]


def dismissed(ack_s: float) -> list[tuple[float, str]]:
    return [(ack_s, "acknowledge"), (ack_s + 10, "dismiss")]


def populate(store: IncidentStore, a: str = A, b: str = B) -> None:
    """The incidents whose statistics the tests know (local days in Kolkata, UTC+05:30)."""
    # Before the period: 23:30 on 15 Nov in Kolkata.
    incident(store, b, "cam-b1", utc(15, 18, 0), [])
    # 00:30 on 16 Nov in Kolkata (still the 15th in UTC): open, never acknowledged.
    incident(store, b, "cam-b1", utc(15, 19, 0), [])
    # 20 Nov: resolved, acknowledged after 60 s.
    incident(store, a, "cam-1", utc(20, 10), resolved(60))
    # 20:00 UTC on the 20th is 01:30 on the 21st in Kolkata: a false alarm, ack 120 s.
    incident(store, a, "cam-1", utc(20, 20), dismissed(120))
    # 21 Nov: a false alarm (ack 30 s) and one nobody acknowledged, of a camera with odd id.
    incident(store, a, "cam-2", utc(21, 3), dismissed(30))
    incident(store, a, ODD_CAMERA, utc(21, 5), [(200, "escalate")])
    # 22 Nov: an SOS near cam-1 (not counted against it), acknowledged in 5 s, still open;
    # and station B's resolved one (ack 10 s).
    incident(store, a, "cam-1", utc(22, 4), [(5, "acknowledge")], origin=Origin.SOS)
    incident(store, b, "cam-b1", utc(22, 6), resolved(10))
    # After the period: 00:10 on 23 Nov in Kolkata.
    incident(store, a, "cam-1", utc(22, 18, 40), [])


@pytest.fixture
def store(db_url: str) -> Iterator[IncidentStore]:
    s = IncidentStore.open(db_url)
    populate(s)
    yield s
    s.close()


# ---- the store's counts ---------------------------------------------------------------------

EXPECTED_DAYS = [
    (date(2026, 11, 16), 1, ()),
    (date(2026, 11, 17), 0, ()),
    (date(2026, 11, 18), 0, ()),
    (date(2026, 11, 19), 0, ()),
    (date(2026, 11, 20), 1, (60.0,)),
    (date(2026, 11, 21), 3, (30.0, 120.0)),
    (date(2026, 11, 22), 2, (5.0, 10.0)),
]


def _days(stats: IncidentStats) -> list[tuple[date, int, tuple[float, ...]]]:
    return [(d.day, d.incidents, tuple(sorted(d.ack_seconds))) for d in stats.days]


def test_the_period_is_seven_local_days() -> None:
    assert period(7, KOLKATA, NOW) == (utc(15, 18, 30), utc(22, 18, 30))
    assert period(1, "UTC", NOW) == (utc(22, 0), utc(23, 0))
    # Just after local midnight it is already the next day.
    assert period(1, KOLKATA, utc(22, 18, 31))[0] == utc(22, 18, 30)


def test_counts_per_day_station_camera_outcome_and_origin(store: IncidentStore) -> None:
    stats = incident_stats(store.engine, since=SINCE, until=UNTIL, tz=KOLKATA)
    assert stats.tz == KOLKATA and stats.incidents == 7
    assert _days(stats) == EXPECTED_DAYS
    assert stats.outcomes == Outcomes(resolved=2, dismissed=2, open=3)
    assert stats.stations == {
        B: Outcomes(resolved=1, dismissed=0, open=1),
        A: Outcomes(resolved=1, dismissed=2, open=2),
    }
    assert list(stats.stations) == [B, A]  # sorted by id
    # Camera-raised incidents only, most first, then by id.
    assert list(stats.cameras.items()) == [
        ("cam-1", Outcomes(resolved=1, dismissed=1, open=0)),
        ("cam-b1", Outcomes(resolved=1, dismissed=0, open=1)),
        ("cam-2", Outcomes(resolved=0, dismissed=1, open=0)),
        (ODD_CAMERA, Outcomes(resolved=0, dismissed=0, open=1)),
    ]
    assert stats.origins == {"camera": 6, "sos": 1}


def test_filters_and_stations_without_incidents(store: IncidentStore) -> None:
    only_a = incident_stats(
        store.engine, since=SINCE, until=UNTIL, tz=KOLKATA, station_ids=[A], show_stations=[A]
    )
    assert only_a.incidents == 5 and list(only_a.stations) == [A]
    assert [d.incidents for d in only_a.days] == [0, 0, 0, 0, 1, 3, 1]
    assert only_a.origins == {"camera": 4, "sos": 1}
    quiet = incident_stats(
        store.engine,
        since=SINCE + timedelta(days=30),
        until=UNTIL + timedelta(days=30),
        tz=KOLKATA,
        show_stations=[A, B],
    )
    assert quiet.incidents == 0 and quiet.stations == {B: Outcomes(), A: Outcomes()}
    assert len(quiet.days) == 7 and all(d.incidents == 0 for d in quiet.days)
    assert quiet.cameras == {} and quiet.origins == {"camera": 0, "sos": 0}


def test_days_are_local_days(store: IncidentStore) -> None:
    """20:00 UTC on the 20th is the 21st in Kolkata, the 20th in UTC."""
    window: dict[str, Any] = {"since": utc(19, 0), "until": utc(22, 0)}
    local = incident_stats(store.engine, tz=KOLKATA, **window)
    in_utc = incident_stats(store.engine, tz="UTC", **window)
    # The window's edges are 05:30 in Kolkata: four local days are touched.
    assert [d.day.day for d in local.days] == [19, 20, 21, 22]
    assert [d.day.day for d in in_utc.days] == [19, 20, 21]
    assert {d.day.day: d.incidents for d in local.days} == {19: 0, 20: 1, 21: 3, 22: 0}
    assert {d.day.day: d.incidents for d in in_utc.days} == {19: 0, 20: 2, 21: 2}
    with pytest.raises(ValueError, match="unknown time zone"):
        incident_stats(store.engine, tz="Mars/Olympus", **window)
    with pytest.raises(ValueError, match="time zone"):
        incident_stats(store.engine, since=datetime(2026, 11, 19), until=utc(22, 0), tz="UTC")


def test_one_query(store: IncidentStore) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        stats = incident_stats(store.engine, since=SINCE, until=UNTIL, tz=KOLKATA)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert stats.incidents == 7
    assert len(statements) == 1, statements


# ---- the Wilson interval and the summary ----------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Checked against scipy.stats.binomtest(k, n).proportion_ci(method="wilson").
        (2, 4, 0.15003898915214953, 0.8499610108478505),
        (0, 10, 0.0, 0.27753279986288926),
        (10, 10, 0.7224672001371109, 1.0),
        (1, 3, 0.06149194472039626, 0.7923403991979523),
        (81, 263, 0.2552885198782742, 0.36620957698280004),
        (1, 1, 0.20654931437723745, 1.0),
    ],
)
def test_wilson_interval(k: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(k, n)
    assert got is not None
    assert got == pytest.approx((low, high), abs=1e-12)
    assert 0.0 <= got[0] <= k / n <= got[1] <= 1.0


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) is None
    assert Share(0, 0).value is None and Share(0, 0).low is None and Share(0, 0).high is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    share = Share(2, 4)
    assert share.value == 0.5
    assert (share.low, share.high) == pytest.approx((0.150039, 0.849961), abs=1e-6)


def test_top_ten_cameras_and_the_rest() -> None:
    cameras = {f"cam-{i:02d}": Outcomes(resolved=20 - i, dismissed=1) for i in range(13)}
    raw = IncidentStats(
        since=SINCE,
        until=UNTIL,
        tz=KOLKATA,
        days=(DayStats(date(2026, 11, 22), 3, (40.0, 10.0, 20.0)),),
        stations={},
        cameras=cameras,
        outcomes=Outcomes(resolved=3, dismissed=1, open=2),
        origins={"camera": 6, "sos": 0},
    )
    stats = Statistics.of(raw, days_back=1, station=None, station_choices=[B, A])
    assert list(stats.cameras) == [f"cam-{i:02d}" for i in range(10)]
    assert stats.other_cameras == 3
    assert stats.other_camera_outcomes == Outcomes(resolved=10 + 9 + 8, dismissed=3)
    assert stats.station_choices == (B, A)
    # Nearest-rank median of 10, 20, 40.
    assert stats.days[0].ack_median_s == 20.0 and stats.days[0].acknowledged == 3
    assert (stats.false_alarm.k, stats.false_alarm.n) == (1, 4)
    body = stats.to_json()
    assert body["false_alarm"]["value"] == 0.25 and len(body["cameras"]) == 10


# ---- the service: scoping and audit ---------------------------------------------------------


def _caller(name: str, role: Role, station: str | None) -> Caller:
    from raksha.auth.users import User

    user = User(
        id=1,
        username=name,
        role=role,
        station_id=station,
        disabled=False,
        created_at=NOW,
        last_login_at=None,
    )
    return Caller(user, "127.0.0.1")


def test_service_scoping_and_audit(store: IncidentStore) -> None:
    sup = _caller("sup_a", Role.SUPERVISOR, A)
    cr = _caller("cr", Role.CONTROL_ROOM, None)
    kw: dict[str, Any] = {"now": NOW, "known_stations": [A, B]}
    mine = incident_statistics(sup, store, days=7, **kw)
    assert list(mine.stations) == [A] and mine.incidents == 5
    assert mine.station_choices == (A,) and mine.station is None
    assert (mine.false_alarm.k, mine.false_alarm.n) == (2, 3)
    assert [(d.day.day, d.ack_median_s) for d in mine.days][-3:] == [
        (20, 60.0),
        (21, 30.0),  # nearest-rank p50 of 30, 120
        (22, 5.0),
    ]
    assert incident_statistics(sup, store, days=7, station=A, **kw).incidents == 5
    with pytest.raises(Denied) as other:
        incident_statistics(sup, store, days=7, station=B, **kw)
    assert other.value.status == 404
    with pytest.raises(Denied) as operator:
        incident_statistics(_caller("op_a", Role.OPERATOR, A), store, days=7, **kw)
    assert operator.value.status == 403

    every = incident_statistics(cr, store, days=7, **kw)
    assert every.incidents == 7 and list(every.stations) == [B, A]
    assert every.station_choices == (B, A)
    assert (every.false_alarm.k, every.false_alarm.n) == (2, 4)
    assert incident_statistics(cr, store, days=7, station=B, **kw).incidents == 2
    with pytest.raises(NotFound):
        incident_statistics(cr, store, days=7, station="nowhere", **kw)
    with pytest.raises(Invalid, match="days"):
        incident_statistics(cr, store, days=0, **kw)
    with pytest.raises(Invalid, match="time zone"):
        incident_statistics(cr, store, days=7, tz="Nowhere/Else", **kw)

    entries = AuditLog(store.engine).entries(action="report.stats")
    got = [(e.actor, e.details["stations"], e.details["incidents"]) for e in entries]
    assert sorted(got, key=str) == sorted(
        [("sup_a", [A], 5), ("sup_a", [A], 5), ("cr", None, 7), ("cr", [B], 2)], key=str
    )
    first = next(e for e in entries if e.actor == "sup_a")
    assert first.station_id == A and first.details["tz"] == KOLKATA
    assert first.details["since"] == "2026-11-15T18:30:00Z"


# ---- the charts -----------------------------------------------------------------------------


def test_charts_escape_labels_and_draw_gaps() -> None:
    bars = str(svg_charts.bars([("<img src=x>", 3.0), ('a"b', 1.0)], chart_id="c<1", title="T&"))
    assert "<img" not in bars and "&lt;img src=x&gt;" in bars and "a&quot;b" in bars
    assert 'id="c&lt;1"' in bars and '<title id="c&lt;1-t">T&amp;</title>' in bars
    assert bars.count('<rect class="bar"') == 2 and 'role="img"' in bars
    empty = str(svg_charts.bars([], chart_id="e", title="Nothing"))
    assert "no data" in empty
    line = str(
        svg_charts.line(
            [("d1", 1.0), ("d2", 2.0), ("d3", None), ("d4", 4.0), ("d5", 5.0)],
            chart_id="l",
            title="Line",
        )
    )
    assert line.count("<polyline") == 2 and line.count("<circle") == 4
    cols = str(
        svg_charts.columns([(str(i), float(i % 3)) for i in range(90)], chart_id="d", title="D")
    )
    assert cols.count('<rect class="bar"') == 90
    assert 1 <= cols.count('class="tick" x=') - len(svg_charts.nice_ticks(2)) <= 7
    assert svg_charts.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert svg_charts.nice_ticks(0) == [0.0, 1.0]
    assert svg_charts.nice_ticks(1) == [0, 1]


# ---- the page -------------------------------------------------------------------------------

PAGE_USERS = {
    "op_a": ("operator", STATION_A),
    "sup_a": ("supervisor", STATION_A),
    "cr": ("control_room", None),
}


class Site:
    def __init__(self, app: Any, store: IncidentStore) -> None:
        self.app, self.store = app, store
        self.clients: dict[str, TestClient] = {}

    def client(self, who: str) -> TestClient:
        if who not in self.clients:
            c = TestClient(self.app)
            r = c.post("/login", data={"username": who, "password": PASSWORD, "next": "/"})
            assert r.status_code == 200, r.text
            self.clients[who] = c
        return self.clients[who]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("stats-page")
    cfg = site_config(f"sqlite:///{folder / 'raksha.db'}", folder / "evidence")
    store = IncidentStore.open(cfg.storage.url)
    app = create_app(cfg, store=store, settings=fast_settings(), web=web_for(cfg, WebSettings()))
    for name, (role, station) in PAGE_USERS.items():
        app.state.raksha.users.add(name, role, PASSWORD, station_id=station)
    now = datetime.now(UTC).replace(microsecond=0)
    incident(store, STATION_A, ODD_CAMERA, now - timedelta(minutes=30), dismissed(40))
    incident(store, STATION_A, "cam-a", now - timedelta(minutes=20), resolved(90))
    incident(store, STATION_B, "cam-b", now - timedelta(minutes=10), [])
    with TestClient(app):
        yield Site(app, store)
    store.close()


def _rows(html: str, table_id: str) -> list[list[str]]:
    m = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert m, f"no table {table_id}"
    body = m.group(0).split("<tbody>", 1)[1]
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_page_renders_charts_and_fallback_tables(site: Site) -> None:
    r = site.client("sup_a").get("/stats")
    assert r.status_code == 200, r.text
    html = r.text
    assert '<link rel="stylesheet" href="/static/stats.css">' in html
    for chart in ("days", "ack", "outcomes", "origins", "stations", "cameras"):
        assert re.search(rf'<svg class="chart [^"]*" id="chart-{chart}"', html), chart
    assert html.count("<svg ") == 6 and html.count("<details>") == 6
    for table in ("days", "ack", "outcomes", "origins", "stations", "cameras"):
        assert _rows(html, f"table-{table}"), table
    assert "Asia/Kolkata" in html and 'href="/reports?days=7"' in html
    assert '<a href="/stats" aria-current="page">Statistics</a>' in html
    # No inline script, nothing from another host.
    assert "<script>" not in html
    assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", html)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert " style=" not in html  # the CSP forbids inline styles too
    # Station A's two incidents only: one resolved, one dismissed.
    assert _rows(html, "table-stations") == [[STATION_A, "2", "1", "1", "0"]]
    assert _rows(html, "table-outcomes")[:3] == [
        ["Resolved", "1"],
        ["Dismissed (false alarm)", "1"],
        ["Open", "0"],
    ]
    assert _rows(html, "table-origins") == [["Camera", "2"], ["SOS", "0"]]
    assert sum(int(row[1]) for row in _rows(html, "table-days")) == 2
    assert len(_rows(html, "table-days")) == 7
    assert "50.0\u00a0%" in html  # the false-alarm share
    assert site.client("sup_a").get("/static/stats.css").status_code == 200


def test_page_escapes_camera_ids(site: Site) -> None:
    html = site.client("cr").get("/stats", params={"days": 30}).text
    assert ODD_CAMERA not in html and "<b>" not in html
    # In the chart (escaped by svg_charts) and in its table (by the template).
    assert "cam-&lt;b&gt;&quot;&amp;x" in html
    cams = _rows(html, "table-cameras")
    assert sorted(row[0] for row in cams) == ["cam-&lt;b&gt;&#34;&amp;x", "cam-a", "cam-b"]


def test_page_scoping(site: Site) -> None:
    cr = site.client("cr")
    every = cr.get("/stats", params={"days": 90}).text
    assert _rows(every, "table-stations") == [
        [STATION_B, "1", "0", "0", "1"],
        [STATION_A, "2", "1", "1", "0"],
    ]
    assert len(_rows(every, "table-days")) == 90 and '<option value="aliganj">' in every
    only_b = cr.get("/stats", params={"station": STATION_B}).text
    assert _rows(only_b, "table-stations") == [[STATION_B, "1", "0", "0", "1"]]
    assert cr.get("/stats", params={"station": ""}).status_code == 200
    assert cr.get("/stats", params={"station": "nowhere"}).status_code == 404
    sup = site.client("sup_a")
    assert sup.get("/stats", params={"station": STATION_A}).status_code == 200
    assert sup.get("/stats", params={"station": STATION_B}).status_code == 404
    assert sup.get("/stats", params={"days": 5}).status_code == 422
    op = site.client("op_a")
    assert op.get("/stats").status_code == 403
    assert 'href="/stats"' not in op.get("/incidents").text
    anonymous = TestClient(site.app).get("/stats", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    actors = {e.actor for e in AuditLog(site.store.engine).entries(action="report.stats")}
    assert actors == {"cr", "sup_a"}
