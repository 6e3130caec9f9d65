"""Field precision (raksha.store.precision, raksha.services.precision, `raksha report
precision`, the /stats page) on a SQLite store filled with known camera incidents and their
officers' outcomes: real of judged per camera, station, local hour and model, computed here
by hand; the Wilson interval; the review flag at and below the floor; the dismissals' reasons
(an old dismissal without one reads "unspecified"); SOS incidents and incidents nobody judged
left out; scoping and audit. And the reason a dismissal needs: through the service, the API
and the dashboard's form."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dashboard_support import (
    PASSWORD,
    STATION_A,
    STATION_B,
    fast_settings,
    new_incident,
    site_config,
)
from raksha.api.app import create_app
from raksha.audit.log import AuditLog
from raksha.auth.roles import Role
from raksha.auth.users import User
from raksha.domain.routing import Route
from raksha.errors import RakshaError
from raksha.incidents import NewIncident
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.lifecycle import InvalidReason
from raksha.incidents.model import DismissReason, Origin
from raksha.services.errors import BadRequest
from raksha.services.incidents import Caller, IncidentService
from raksha.services.precision import field_precision, field_precision_for_operator
from raksha.site.config import PrecisionConfig
from raksha.store import IncidentStore
from raksha.store.precision import precision_counts
from raksha.store.tables import DISMISS_REASONS
from raksha.web import web_for
from raksha.web.settings import WebSettings

A, B = STATION_A, STATION_B
KOLKATA = "Asia/Kolkata"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SETTINGS = PrecisionConfig(floor=0.3, min_judged=10, days=30)

REAL = [(60, "acknowledge"), (70, "confirm")]
RESOLVED = [*REAL, (80, "resolve")]


def dismissed(reason: str | None) -> list[tuple[float, str | None]]:
    return [(60, "acknowledge"), (70, f"dismiss:{reason}" if reason else "dismiss")]


def incident(
    store: IncidentStore,
    station: str,
    camera: str,
    opened_at: datetime,
    steps: list[tuple[float, str]] | list[tuple[float, str | None]],
    *,
    model: tuple[str, str] = ("fer-a", "a" * 64),
    origin: Origin = Origin.CAMERA,
) -> str:
    inc = NewIncident(
        camera_id=camera,
        hotspot_id=f"{station}-crossing",
        station_id=station,
        peak_distress=0.8,
        expression_at_peak={"neutral": 0.1, "fear": 0.7, "sadness": 0.2},
        model_name=model[0],
        model_sha256=model[1],
        thresholds={"enter_threshold": 0.55},
        route=Route(station, "nearest", 400.0, ()),
        source_id=camera,
        opened_at=opened_at,
        origin=origin,
    )
    iid = store.create_incident(inc, [], {"kind": "distress"}, ["store"], now=opened_at)
    for offset, step in steps:
        assert step is not None
        action, _, reason = step.partition(":")
        store.apply_action(
            iid, action, "officer-12", at=opened_at + timedelta(seconds=offset), reason=reason
        )
    return iid


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def populate(store: IncidentStore) -> None:
    """Hours in Kolkata (UTC+05:30): 20:00 UTC is 01:30 the next day, 10:00 UTC is 15:30,
    03:00 UTC is 08:30."""
    b_model = ("fer-b", "b" * 64)
    # cam-1 (station A, model fer-a), local hour 01: 2 real, 3 dismissed, 1 not judged.
    for i, steps in enumerate(
        [
            REAL,
            RESOLVED,
            dismissed("no_distress"),
            dismissed("not_a_person"),
            dismissed(None),  # as stored before reasons were asked for
            [(30, "acknowledge")],
        ]
    ):
        incident(store, A, "cam-1", utc(19, 20, i), steps)
    # An SOS near cam-1, dismissed, and an incident before the period: neither counts.
    incident(store, A, "cam-1", utc(19, 20, 30), dismissed("other"), origin=Origin.SOS)
    incident(store, A, "cam-1", datetime(2026, 10, 1, 20, tzinfo=UTC), dismissed("other"))
    # cam-2 (station A, model fer-b), hour 15: 1 real of 10 judged -> below the floor.
    reasons = ["no_distress"] * 5 + ["duplicate"] * 2 + ["other"] * 2
    incident(store, A, "cam-2", utc(20, 10), RESOLVED, model=b_model)
    for i, why in enumerate(reasons):
        incident(store, A, "cam-2", utc(20, 10, i + 1), dismissed(why), model=b_model)
    # cam-3 (station B), hour 08: 0 of 3, too few judged to flag.
    for i in range(3):
        incident(store, B, "cam-3", utc(21, 3, i), dismissed("not_a_person"))
    # cam-4 (station B), hour 08: 3 of 10, exactly at the floor: not flagged.
    for i in range(3):
        incident(store, B, "cam-4", utc(21, 3, 10 + i), REAL)
    for i in range(7):
        incident(store, B, "cam-4", utc(21, 3, 20 + i), dismissed("other"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IncidentStore]:
    s = IncidentStore.open(f"sqlite:///{tmp_path / 'raksha.db'}")
    populate(s)
    yield s
    s.close()


def _caller(name: str, role: Role, station: str | None) -> Caller:
    user = User(1, name, role, station, False, NOW, None)
    return Caller(user, "127.0.0.1")


def _figures(row: Any) -> tuple[int, int, int, dict[str, int]]:
    return (row.real, row.dismissed, row.pending, dict(row.reasons))


# ---- the counts ------------------------------------------------------------------------------


def test_counts_per_camera_station_hour_and_model(store: IncidentStore) -> None:
    since, until = utc(15, 0), utc(22, 18, 30)
    counts = precision_counts(store.engine, since=since, until=until, tz=KOLKATA)
    assert _figures(counts.overall) == (
        6,
        22,
        1,
        {
            "no_distress": 6,
            "not_a_person": 4,
            "unspecified": 1,
            "duplicate": 2,
            "other": 9,
        },
    )
    assert {c: _figures(t) for c, t in counts.cameras.items()} == {
        "cam-1": (2, 3, 1, {"no_distress": 1, "not_a_person": 1, "unspecified": 1}),
        "cam-2": (1, 9, 0, {"no_distress": 5, "duplicate": 2, "other": 2}),
        "cam-3": (0, 3, 0, {"not_a_person": 3}),
        "cam-4": (3, 7, 0, {"other": 7}),
    }
    assert counts.camera_stations == {"cam-1": A, "cam-2": A, "cam-3": B, "cam-4": B}
    stations = {s: _figures(t)[:3] for s, t in counts.stations.items()}
    assert stations == {B: (3, 10, 0), A: (3, 12, 1)}
    hours = {h: _figures(t)[:3] for h, t in counts.hours.items() if t.judged or t.pending}
    assert hours == {1: (2, 3, 1), 8: (3, 10, 0), 15: (1, 9, 0)}
    assert len(counts.hours) == 24
    assert {m: _figures(t)[:3] for m, t in counts.models.items()} == {
        ("fer-a", "a" * 64): (5, 13, 1),
        ("fer-b", "b" * 64): (1, 9, 0),
    }
    only_b = precision_counts(store.engine, since=since, until=until, tz=KOLKATA, station_ids=[B])
    assert list(only_b.cameras) == ["cam-3", "cam-4"]
    # In UTC the hours are the stored ones.
    in_utc = precision_counts(store.engine, since=since, until=until, tz="UTC")
    assert in_utc.hours[20].judged == 5 and in_utc.hours[3].judged == 13


def test_report_precision_interval_and_review_flag(store: IncidentStore) -> None:
    cr = _caller("cr", Role.CONTROL_ROOM, None)
    report = field_precision(
        cr, store, settings=SETTINGS, tz=KOLKATA, now=NOW, known_stations=[A, B]
    )
    assert report.days_back == 30
    # Flagged first, then the lowest precision.
    assert [(c.key, c.review) for c in report.cameras] == [
        ("cam-2", True),
        ("cam-3", False),
        ("cam-4", False),
        ("cam-1", False),
    ]
    cam2 = report.cameras[0]
    assert cam2.share.value == pytest.approx(0.1)
    # Wilson at 95 % by hand for 1 of 10: centre (p + z^2/2n) / (1 + z^2/n), half-width
    # z * sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n), with z = 1.96: about 1.8 % to 40.4 %.
    z, n, p = 1.959964, 10, 0.1
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    assert cam2.share.low == pytest.approx(centre - half, abs=1e-5)
    assert cam2.share.high == pytest.approx(centre + half, abs=1e-5)
    assert (round(cam2.share.low or 0, 4), round(cam2.share.high or 0, 4)) == (0.0179, 0.4042)
    # At the floor (3 of 10 = 0.3) is not below it; 0 of 3 has too few judged.
    cam4 = next(c for c in report.cameras if c.key == "cam-4")
    assert cam4.share.value == pytest.approx(0.3) and not cam4.review
    assert [c.key for c in report.flagged] == ["cam-2"]
    # A floor just above 0.3 flags cam-4 too; min_judged 3 flags cam-3.
    higher = PrecisionConfig(floor=0.31, min_judged=10)
    again = field_precision(cr, store, settings=higher, days=30, tz=KOLKATA, now=NOW)
    assert [c.key for c in again.flagged] == ["cam-2", "cam-4"]
    fewer = PrecisionConfig(floor=0.3, min_judged=3)
    again = field_precision(cr, store, settings=fewer, days=30, tz=KOLKATA, now=NOW)
    assert [c.key for c in again.flagged] == ["cam-3", "cam-2"]  # the lowest first
    assert report.overall.share.value == pytest.approx(6 / 28)
    assert [h.key for h in report.hours][:2] == ["00", "01"]
    assert [(m.key, m.real, m.judged) for m in report.models] == [
        ("fer-a", 5, 18),
        ("fer-b", 1, 10),
    ]
    body = json.loads(json.dumps(report.to_json()))
    assert body["cameras"][0]["key"] == "cam-2" and body["cameras"][0]["review"] is True
    assert body["cameras"][0]["station"] == A
    assert body["models"][1]["sha256"] == "b" * 64
    # A week back: only the incidents of 16..22 Nov (local), the same here.
    week = field_precision(cr, store, settings=SETTINGS, days=7, tz=KOLKATA, now=NOW)
    assert week.overall.judged == 28


def test_report_scoping_and_audit(store: IncidentStore) -> None:
    sup = _caller("sup_a", Role.SUPERVISOR, A)
    mine = field_precision(
        sup, store, settings=SETTINGS, tz=KOLKATA, now=NOW, known_stations=[A, B]
    )
    assert [s.key for s in mine.stations] == [A]
    assert sorted(c.key for c in mine.cameras) == ["cam-1", "cam-2"]
    from raksha.auth.access import Denied

    with pytest.raises(Denied):
        field_precision(sup, store, settings=SETTINGS, station=B, tz=KOLKATA, now=NOW)
    with pytest.raises(Denied):
        field_precision(_caller("op", Role.OPERATOR, A), store, settings=SETTINGS, now=NOW)
    entries = AuditLog(store.engine).entries(action="report.precision")
    assert [(e.actor, e.details["flagged"]) for e in entries] == [("sup_a", ["cam-2"])]
    op = field_precision_for_operator(
        store, actor="cli:test", settings=SETTINGS, tz=KOLKATA, now=NOW
    )
    assert op.overall.judged == 28


def test_cli_report_precision(tmp_path: Path) -> None:
    from raksha.cli import app

    store = IncidentStore.open(f"sqlite:///{tmp_path / 'cli.db'}")
    now = datetime.now(UTC) - timedelta(minutes=10)
    incident(store, A, "cam-2", now, REAL)
    for i in range(9):
        incident(store, A, "cam-2", now + timedelta(seconds=i), dismissed("duplicate"))
    store.close()
    config = tmp_path / "site.yaml"
    config.write_text(
        f"storage: {{url: 'sqlite:///{tmp_path / 'cli.db'}'}}\n"
        "timezone: Asia/Kolkata\n"
        "precision: {floor: 0.3, min_judged: 10, days: 30}\n"
        f"stations: [{{id: {A}, lat: 26.85, lon: 80.94}}, {{id: {B}, lat: 26.89, lon: 80.94}}]\n"
    )
    runner = CliRunner()
    r = runner.invoke(app, ["report", "precision", "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert re.search(r"camera cam-2 .*10\.0%.*duplicate 9\s+REVIEW", r.output)
    r = runner.invoke(app, ["report", "precision", "--config", str(config), "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["overall"]["judged"] == 10 and body["days_back"] == 30
    r = runner.invoke(app, ["report", "precision", "--config", str(config), "--days", "0"])
    # A user's error: a RakshaError, which `raksha` prints as one line.
    assert isinstance(r.exception, RakshaError)
    assert str(r.exception) == "days must be between 1 and 366"


# ---- a dismissal's reason ---------------------------------------------------------------------


def test_the_reasons_match_the_tables_check() -> None:
    assert tuple(r.value for r in DismissReason) == DISMISS_REASONS


def test_store_keeps_the_reason_and_refuses_a_wrong_one(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        a = store.create_incident(new_incident(A), [], {"kind": "distress"}, ["store"])
        with pytest.raises(InvalidReason, match="only a dismissal"):
            store.apply_action(a, "acknowledge", "op", reason="duplicate")
        with pytest.raises(InvalidReason, match="unknown dismissal reason 'bored'"):
            store.apply_action(a, "dismiss", "op", reason="bored")
        assert store.actions(a) == []
        rec = store.apply_action(a, "dismiss", "op", reason="duplicate")
        assert rec.reason is DismissReason.DUPLICATE
        assert store.actions(a)[0].reason is DismissReason.DUPLICATE
    finally:
        store.close()


def test_the_service_requires_a_reason_to_dismiss(tmp_path: Path) -> None:
    from raksha.auth.users import UserStore

    store = IncidentStore.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        users = UserStore(store.engine)
        caller = Caller(users.add("op_a", "operator", PASSWORD, station_id=A))
        service = IncidentService(store, AuditLog(store.engine), EvidenceWriter(tmp_path))
        iid = store.create_incident(new_incident(A), [], {"kind": "distress"}, ["store"])
        with pytest.raises(BadRequest, match="say why the incident is dismissed"):
            service.act(caller, iid, "dismiss")
        with pytest.raises(BadRequest, match="only a dismissal takes a reason"):
            service.act(caller, iid, "acknowledge", reason="other")
        refused = AuditLog(store.engine).entries(action="incident.action_refused")
        assert [e.details["action"] for e in refused] == ["dismiss", "acknowledge"]
        out = service.act(caller, iid, "dismiss", reason="not_a_person")
        assert out.record.reason is DismissReason.NOT_A_PERSON
        done = AuditLog(store.engine).entries(action="incident.action")
        assert done[-1].details["reason"] == "not_a_person"
    finally:
        store.close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[TestClient, IncidentStore]]:
    cfg = site_config(f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "evidence")
    store = IncidentStore.open(cfg.storage.url)
    app = create_app(cfg, store=store, settings=fast_settings(), web=web_for(cfg, WebSettings()))
    app.state.raksha.users.add("op_a", "operator", PASSWORD, station_id=A)
    app.state.raksha.users.add("sup_a", "supervisor", PASSWORD, station_id=A)
    with TestClient(app) as client:
        yield client, store
    store.close()


def _login(client: TestClient, who: str) -> None:
    r = client.post("/login", data={"username": who, "password": PASSWORD})
    assert r.status_code in (200, 303), r.text[:300]


def test_api_requires_a_reason_to_dismiss(web: tuple[TestClient, IncidentStore]) -> None:
    client, store = web
    iid = store.create_incident(new_incident(A), [], {"kind": "distress"}, ["store"])
    r = client.post("/api/login", json={"username": "op_a", "password": PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"X-CSRF-Token": r.json()["csrf_token"]}
    url = f"/api/incidents/{iid}/actions"
    r = client.post(url, json={"action": "dismiss"}, headers=headers)
    assert r.status_code == 400 and "say why the incident is dismissed" in r.text
    r = client.post(url, json={"action": "dismiss", "reason": "bored"}, headers=headers)
    assert r.status_code == 422
    r = client.post(url, json={"action": "dismiss", "reason": "no_distress"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["action"]["reason"] == "no_distress"
    history = client.get(f"/api/incidents/{iid}").json()["actions"]
    assert [(h["action"], h.get("reason")) for h in history] == [("dismiss", "no_distress")]


def test_web_form_requires_a_reason_to_dismiss(web: tuple[TestClient, IncidentStore]) -> None:
    client, store = web
    iid = store.create_incident(new_incident(A), [], {"kind": "distress"}, ["store"])
    old = store.create_incident(new_incident(A), [], {"kind": "distress"}, ["store"])
    store.apply_action(old, "dismiss", "op_a")  # before reasons: none recorded
    _login(client, "op_a")
    page = client.get(f"/incidents/{iid}").text
    assert '<select name="reason" id="dismiss-reason">' in page
    assert re.findall(r'<option value="(\w+)">', page.split('id="dismiss-reason"')[1])[:4] == [
        "no_distress",
        "not_a_person",
        "duplicate",
        "other",
    ]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    form = {"csrf_token": token.group(1), "action": "dismiss"}
    r = client.post(f"/incidents/{iid}/act", data=form)
    assert r.status_code == 400 and "Choose why the incident is dismissed." in r.text
    r = client.post(f"/incidents/{iid}/act", data={**form, "reason": "bored"})
    assert r.status_code == 400
    assert store.actions(iid) == []
    # Another action ignores the reason the form sends with it.
    r = client.post(
        f"/incidents/{iid}/act",
        data={**form, "action": "acknowledge", "reason": "duplicate"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and store.actions(iid)[0].reason is None
    r = client.post(
        f"/incidents/{iid}/act", data={**form, "reason": "duplicate"}, follow_redirects=False
    )
    assert r.status_code == 303
    page = client.get(f"/incidents/{iid}").text
    assert 'data-reason="duplicate">Duplicate of another incident<' in page
    assert 'data-reason="unspecified">reason not recorded<' in client.get(f"/incidents/{old}").text


def test_stats_page_shows_precision(
    web: tuple[TestClient, IncidentStore],
) -> None:
    client, store = web
    now = datetime.now(UTC) - timedelta(minutes=5)
    for i in range(10):
        steps: list[tuple[float, str]] = (
            [(1, "acknowledge"), (2, "confirm")] if i == 0 else [(1, "dismiss:no_distress")]
        )
        incident(store, A, "cam-7", now - timedelta(seconds=i), steps)
    incident(store, A, "cam-8", now, [(1, "acknowledge"), (2, "confirm")])
    _login(client, "sup_a")
    html = client.get("/stats", params={"days": 7}).text
    table = html.split('id="table-precision-cameras"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-camera="([^"]+)"( class="review")?>', table)
    assert rows == [("cam-7", ' class="review"'), ("cam-8", "")]
    assert "10.0\u00a0%" in table and "A person, but not in distress: 9" in table
    assert 'data-flag="review"' in table
    assert 'id="table-precision-hours"' in html and 'id="table-precision-models"' in html
