"""The access matrix: every API route x every role (and anonymous) x own/other station.

Each route's expected status codes are written out here, independently of raksha.auth.access,
and a test checks that this table names exactly the routes the app has, so a new route
without a row fails. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dashboard_support import PASSWORD, STATION_A, STATION_B, Dash, add_incident, dashboard
from raksha.api.app import api_routes
from raksha.auth.access import POLICIES, Denied, Rule, check, check_station
from raksha.auth.roles import Role
from raksha.auth.users import User

WHO = ("anon", "op_a", "sup_a", "cr", "aud", "adm")
STAFF = {"op_a", "sup_a", "cr"}
STATION_BOUND = {"op_a", "sup_a"}


@dataclass
class World:
    dash: Dash
    own: str  # an incident of station A
    other: str  # an incident of station B
    counter: Iterator[int]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, faces_dir: Path
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp(f"matrix-{request.param}")
    with dashboard(request.param, folder, faces_dir) as dash:
        own = add_incident(dash.store, dash.writer, dash.image, STATION_A)
        other = add_incident(dash.store, dash.writer, dash.image, STATION_B)
        dash.store.set_camera_status(
            "cam-a",
            True,
            hotspot_id="a-crossing",
            station_id=STATION_A,
            display_url="rtsp://viewer:s3cret-pass@10.0.0.5/stream1",
        )
        dash.store.set_camera_status("cam-b", False, hotspot_id="b-gate", station_id=STATION_B)
        yield World(dash, own, other, itertools.count(1))


def _anon(w: World) -> TestClient:
    return TestClient(w.dash.app)


def _do(w: World, who: str, method: str, url: str, body: Any = None) -> int:
    # A login goes through a fresh client so it does not replace the caller's session cookie.
    fresh = who == "anon" or url == "/api/login"
    client = _anon(w) if fresh else w.dash.client(who)
    headers = {} if who == "anon" else {"X-CSRF-Token": w.dash.csrf[who]}
    if url == "/api/events":
        with client.stream("GET", url) as r:
            return r.status_code
    if method == "GET":
        return client.get(url).status_code
    return client.post(url, json=body, headers=headers).status_code


def _scoped(who: str, own: bool, ok: int = 200) -> int:
    """A station-scoped thing: staff of its station (and the control room) get `ok`, the
    other station's operator/supervisor 404, roles outside the rule 403."""
    if who not in STAFF:
        return 403
    if not own and who in STATION_BOUND:
        return 404
    return ok


# (method, route path) -> (request builder, expected status for (who, own))
Builder = Callable[[World, bool], tuple[str, Any]]
Expect = Callable[[str, bool], int]


def _inc(w: World, own: bool) -> str:
    return w.own if own else w.other


def _new_user(w: World, _own: bool) -> tuple[str, Any]:
    n = next(w.counter)
    return "/api/users", {"username": f"new{n}", "role": "auditor", "password": PASSWORD}


def _disable(w: World, _own: bool) -> tuple[str, Any]:
    n = next(w.counter)
    w.dash.app.state.raksha.users.add(f"gone{n}", "auditor", PASSWORD)
    return f"/api/users/gone{n}/disable", None


def _unlock(w: World, own: bool) -> tuple[str, Any]:
    """An officer of station A (own) or of station B to unlock."""
    n = next(w.counter)
    name = f"unl{n}"
    station = STATION_A if own else STATION_B
    w.dash.app.state.raksha.users.add(name, "operator", PASSWORD, station_id=station)
    return f"/api/users/{name}/unlock", None


def _unlock_expect(who: str, own: bool) -> int:
    if who == "anon":
        return 401
    if who not in ("sup_a", "cr", "adm"):
        return 403
    return 404 if who == "sup_a" and not own else 200


def _disable_nobody(w: World, _own: bool) -> tuple[str, Any]:
    return "/api/users/nobody/disable", None


def _holder(who: str, own: bool, ok: int = 200) -> int:
    """Legal holds and the signed case export: supervisors (own station) and the control
    room; another station's supervisor 404, every other role 403."""
    if who not in ("sup_a", "cr"):
        return 403
    return 404 if who == "sup_a" and not own else ok


def _new_hold(w: World, own: bool) -> tuple[str, Any]:
    n = next(w.counter)
    return f"/api/incidents/{_inc(w, own)}/holds", {"case_number": f"FIR {n}", "reason": "court"}


def _lift(w: World, own: bool) -> tuple[str, Any]:
    """A hold in force on the incident (placed through the store), to lift."""
    from datetime import UTC, datetime

    from raksha.store import holds

    n = next(w.counter)
    hold = holds.place(
        w.dash.store.engine,
        _inc(w, own),
        case_number=f"FIR {n}",
        reason="court",
        by="sup_a",
        at=datetime.now(UTC),
    )
    return f"/api/incidents/{_inc(w, own)}/holds/{hold.id}/lift", {"reason": "case closed"}


def _case_export(w: World, own: bool) -> tuple[str, Any]:
    """The signed export, with the deployment's signing key configured."""
    from raksha.services.case_signing import write_signing_key

    ctx = w.dash.app.state.raksha
    if ctx.evidence.signing_key_file is None:
        key = Path(ctx.evidence.dir).parent / "case-signing.pem"
        write_signing_key(key)
        ctx.evidence = ctx.evidence.model_copy(update={"signing_key_file": key})
    return f"/api/incidents/{_inc(w, own)}/export.zip", None


def _wl_alert(w: World, own: bool) -> str:
    """A pending watchlist alert of station A (own) or B, stored directly."""
    from datetime import UTC, datetime

    from raksha.store import watchlist as wl

    alert_id = f"00000000-0000-4000-8000-{next(w.counter):012d}"
    station = STATION_A if own else STATION_B
    alert = wl.WatchlistAlert(alert_id, "P-1", "cam-a", station, datetime.now(UTC), 0.6, None)
    with w.dash.store.engine.begin() as c:
        wl.insert_alert(c, alert)
    return alert_id


def _camera_alert(w: World, own: bool) -> tuple[str, Any]:
    """An open camera alert of station A (own) or B, stored directly (a fresh one each time:
    a second acknowledgement is a 409)."""
    from datetime import UTC, datetime

    from raksha.store import camera_alerts as ca

    alert_id = f"00000000-0000-4000-9000-{next(w.counter):012d}"
    now = datetime.now(UTC)
    station = STATION_A if own else STATION_B
    # A camera of its own: a camera has one open alert of a kind at most.
    camera = f"cam-a-{alert_id[-12:]}"
    alert = ca.CameraAlert(alert_id, camera, station, "frozen", now, now, "frozen")
    with w.dash.store.engine.begin() as c:
        ca.raise_alert(c, alert, None, ("store",))
    return f"/api/camera-alerts/{alert_id}/acknowledge", {}


def _watchlist(who: str, own: bool, ok: int = 200) -> int:
    """Watchlist matches: supervisors (own station) and the control room; every other role
    404, as if the routes did not exist."""
    if who not in ("sup_a", "cr"):
        return 404
    return 404 if who == "sup_a" and not own else ok


MATRIX: dict[tuple[str, str], tuple[Builder, Expect]] = {
    ("GET", "/healthz"): (lambda w, o: ("/healthz", None), lambda who, o: 200),
    # Changing one's password: any logged-in user (a wrong current password here: 401).
    ("POST", "/api/me/password"): (
        lambda w, o: ("/api/me/password", {"current_password": "not it", "new_password": "x"}),
        lambda who, o: 401,
    ),
    # A supervisor unlocks their own station's officers; the control room and admins anyone.
    ("POST", "/api/users/{username}/unlock"): (_unlock, _unlock_expect),
    # The schema maps the whole API: any logged-in user, nobody else.
    ("GET", "/openapi.json"): (
        lambda w, o: ("/openapi.json", None),
        lambda who, o: 401 if who == "anon" else 200,
    ),
    ("POST", "/api/login"): (
        lambda w, o: ("/api/login", {"username": "op_a", "password": PASSWORD}),
        lambda who, o: 200,
    ),
    ("GET", "/api/me"): (lambda w, o: ("/api/me", None), lambda who, o: 200),
    ("GET", "/metrics"): (
        lambda w, o: ("/metrics", None),
        lambda who, o: 200 if who == "adm" else 403,
    ),
    ("GET", "/api/incidents"): (
        lambda w, o: (f"/api/incidents?station={STATION_A if o else STATION_B}", None),
        _scoped,
    ),
    ("GET", "/api/export/incidents.csv"): (
        lambda w, o: ("/api/export/incidents.csv", None),
        lambda who, o: 200 if who in {"sup_a", "cr"} else 403,
    ),
    ("GET", "/api/incidents/{incident_id}"): (
        lambda w, o: (f"/api/incidents/{_inc(w, o)}", None),
        _scoped,
    ),
    ("GET", "/api/incidents/{incident_id}/evidence/{n}"): (
        lambda w, o: (f"/api/incidents/{_inc(w, o)}/evidence/2", None),
        _scoped,
    ),
    ("POST", "/api/incidents/{incident_id}/actions"): (
        lambda w, o: (f"/api/incidents/{_inc(w, o)}/actions", {"action": "escalate"}),
        _scoped,
    ),
    ("GET", "/api/cameras"): (
        lambda w, o: ("/api/cameras", None),
        lambda who, o: 200 if who in STAFF | {"adm"} else 403,
    ),
    ("GET", "/api/map"): (
        lambda w, o: ("/api/map", None),
        lambda who, o: 200 if who in STAFF | {"adm"} else 403,
    ),
    ("GET", "/api/audit"): (
        lambda w, o: ("/api/audit", None),
        lambda who, o: 200 if who == "aud" else 403,
    ),
    ("GET", "/api/audit/verify"): (
        lambda w, o: ("/api/audit/verify", None),
        lambda who, o: 200 if who == "aud" else 403,
    ),
    ("GET", "/api/users"): (
        lambda w, o: ("/api/users", None),
        lambda who, o: 200 if who == "adm" else 403,
    ),
    ("POST", "/api/users"): (_new_user, lambda who, o: 201 if who == "adm" else 403),
    ("POST", "/api/users/{username}/disable"): (
        _disable,
        lambda who, o: 200 if who == "adm" else 403,
    ),
    ("GET", "/api/events"): (lambda w, o: ("/api/events", None), lambda who, o: _scoped(who, True)),
    ("GET", "/api/units"): (
        lambda w, o: ("/api/units", None),
        lambda who, o: 200 if who in STAFF else 403,
    ),
    ("GET", "/api/incidents/{incident_id}/units"): (
        lambda w, o: (f"/api/incidents/{_inc(w, o)}/units", None),
        lambda who, o: _scoped(who, o),
    ),
    ("GET", "/api/reports/response-times"): (
        lambda w, o: (
            f"/api/reports/response-times?station={STATION_A if o else STATION_B}",
            None,
        ),
        lambda who, o: (
            403 if who not in {"sup_a", "cr"} else (404 if who == "sup_a" and not o else 200)
        ),
    ),
    # Web Push is not configured in this world: 404 for whoever may subscribe.
    ("GET", "/api/push/key"): (lambda w, o: ("/api/push/key", None), lambda who, o: 404),
    ("POST", "/api/push/subscriptions"): (
        lambda w, o: (
            "/api/push/subscriptions",
            {"endpoint": "https://push.example/x", "keys": {"p256dh": "B" * 87, "auth": "A" * 22}},
        ),
        lambda who, o: 404 if who in STAFF else 403,
    ),
    ("POST", "/api/push/subscriptions/delete"): (
        lambda w, o: ("/api/push/subscriptions/delete", {}),
        lambda who, o: 200,  # anyone may remove their own (none here)
    ),
    # A unit's and an SOS sender's routes take a device token, never a login: 401 for all.
    ("POST", "/api/units/{unit_id}/position"): (
        lambda w, o: ("/api/units/pink-a/position", {"lat": 26.85, "lon": 80.94}),
        lambda who, o: 401,
    ),
    ("POST", "/api/units/{unit_id}/duty"): (
        lambda w, o: ("/api/units/pink-a/duty", {"on_duty": False}),
        lambda who, o: 401,
    ),
    ("GET", "/api/units/{unit_id}/job"): (
        lambda w, o: ("/api/units/pink-a/job", None),
        lambda who, o: 401,
    ),
    ("POST", "/api/units/{unit_id}/job/ack"): (
        lambda w, o: ("/api/units/pink-a/job/ack", {}),
        lambda who, o: 401,
    ),
    ("POST", "/api/units/{unit_id}/job/on-scene"): (
        lambda w, o: ("/api/units/pink-a/job/on-scene", {}),
        lambda who, o: 401,
    ),
    ("POST", "/api/sos"): (
        lambda w, o: ("/api/sos", {"message_id": "m-1", "lat": 26.85, "lon": 80.94}),
        lambda who, o: 401,
    ),
    ("GET", "/api/incidents/{incident_id}/holds"): (
        lambda w, o: (f"/api/incidents/{_inc(w, o)}/holds", None),
        _holder,
    ),
    ("POST", "/api/incidents/{incident_id}/holds"): (
        _new_hold,
        lambda who, o: _holder(who, o, 201),
    ),
    ("POST", "/api/incidents/{incident_id}/holds/{hold_id}/lift"): (_lift, _holder),
    ("GET", "/api/incidents/{incident_id}/export.zip"): (_case_export, _holder),
    ("GET", "/api/watchlist/alerts"): (
        lambda w, o: ("/api/watchlist/alerts", None),
        lambda who, o: _watchlist(who, True),
    ),
    # The count the menu polls: in scope for the same roles, 404 for every other.
    ("GET", "/api/watchlist/pending"): (
        lambda w, o: ("/api/watchlist/pending", None),
        lambda who, o: _watchlist(who, True),
    ),
    ("GET", "/api/watchlist/alerts/{alert_id}"): (
        lambda w, o: (f"/api/watchlist/alerts/{_wl_alert(w, o)}", None),
        _watchlist,
    ),
    ("POST", "/api/watchlist/alerts/{alert_id}/decision"): (
        lambda w, o: (f"/api/watchlist/alerts/{_wl_alert(w, o)}/decision", {"decision": "confirm"}),
        _watchlist,
    ),
    # Station staff acknowledge their own station's camera alerts; the control room any.
    ("POST", "/api/camera-alerts/{alert_id}/acknowledge"): (_camera_alert, _scoped),
    # Last: it ends the sessions used above.
    ("POST", "/api/logout"): (lambda w, o: ("/api/logout", None), lambda who, o: 200),
}
PUBLIC = {("GET", "/healthz"), ("POST", "/api/login")}


def test_matrix_names_every_route(world: World) -> None:
    routes = {(m, r.path) for r in api_routes(world.dash.app) for m in r.methods or ()}
    assert routes == set(MATRIX), "a route without a row in the access matrix (or vice versa)"


def test_every_route_every_role_own_and_other_station(world: World) -> None:
    wrong = []
    for (method, path), (build, expect) in MATRIX.items():
        for who, own in itertools.product(WHO, (True, False)):
            build = MATRIX[(method, path)][0]
            if path == "/api/logout":
                continue  # test_logout_every_role, last
            if path == "/api/login" and who not in ("anon", "op_a"):
                continue  # public: who calls does not matter (a fresh client logs in)
            if path == "/api/users/{username}/disable" and who != "adm":
                build = _disable_nobody  # refused before the name is looked at
            url, body = build(world, own)
            want = (200 if (method, path) in PUBLIC else 401) if who == "anon" else expect(who, own)
            got = _do(world, who, method, url, body)
            if got != want:
                wrong.append(
                    f"{who:6} {'own' if own else 'other':5} {method} {url}: {got} != {want}"
                )
    assert not wrong, "access matrix mismatches:\n" + "\n".join(wrong)


def test_unblur_matrix(world: World) -> None:
    """Unblurred evidence: supervisor (own station) and control room only, with a reason."""
    wrong = []
    for who, own in itertools.product(WHO, (True, False)):
        url = f"/api/incidents/{_inc(world, own)}/evidence/1?unblur=true&reason=identify+person"
        if who == "anon":
            want = 401
        elif who not in STAFF:
            want = 403
        elif not own and who in STATION_BOUND:
            want = 404
        elif who == "op_a":
            want = 403
        else:
            want = 200
        got = _do(world, who, "GET", url) if who != "anon" else _anon(world).get(url).status_code
        if got != want:
            wrong.append(f"{who} {'own' if own else 'other'}: {got} != {want}")
    assert not wrong, "\n".join(wrong)


def test_scoped_lists_hold_only_own_station(world: World) -> None:
    fresh = {}
    for who in ("op_a", "cr"):
        t = TestClient(world.dash.app)
        r = t.post("/api/login", json={"username": who, "password": PASSWORD})
        assert r.status_code == 200
        fresh[who] = t
    ids = {i["id"] for i in fresh["op_a"].get("/api/incidents").json()["incidents"]}
    assert world.own in ids and world.other not in ids
    ids_cr = {i["id"] for i in fresh["cr"].get("/api/incidents").json()["incidents"]}
    assert {world.own, world.other} <= ids_cr
    cams = fresh["op_a"].get("/api/cameras").json()["cameras"]
    assert [c["camera_id"] for c in cams] == ["cam-a"]
    site = fresh["op_a"].get("/api/map").json()
    assert [s["id"] for s in site["stations"]] == [STATION_A]
    assert [c["camera_id"] for c in site["cameras"]] == ["cam-a"]
    assert [h["id"] for h in site["hotspots"]] == ["a-crossing"]
    assert [u["id"] for u in site["patrol_units"]] == ["pink-a"]
    assert site["cameras"][0]["lat"] == 26.851
    everything = fresh["cr"].get("/api/map").json()
    assert {c["camera_id"] for c in everything["cameras"]} == {"cam-a", "cam-b"}
    assert len(everything["stations"]) == len(everything["patrol_units"]) == 2
    assert "s3cret-pass" not in fresh["cr"].get("/api/cameras").text
    assert "***" in cams[0]["display_url"]


def _user(role: Any, station: str | None = "x") -> User:
    from datetime import UTC, datetime

    return User(1, "u", role, station, False, datetime.now(UTC), None)


def test_exception_inside_the_check_denies() -> None:
    # A role value that is not a Role: deciding raises inside, and that denies (403).
    broken = _user("operator")
    for rule in (Rule.INCIDENTS_READ, Rule.AUDIT_READ):
        with pytest.raises(Denied) as err:
            check_station(broken, rule, "x")
        assert err.value.status == 403
    with pytest.raises(Denied) as err2:
        check(_user(None), Rule.LOGGED_IN)
    assert err2.value.status == 403


def test_policy_table_is_complete_and_station_bound_roles_are_scoped() -> None:
    assert set(POLICIES) == set(Rule)
    op = _user(Role.OPERATOR, STATION_A)
    check_station(op, Rule.INCIDENTS_READ, STATION_A)
    with pytest.raises(Denied) as err:
        check_station(op, Rule.INCIDENTS_READ, STATION_B)
    assert err.value.status == 404
    with pytest.raises(Denied) as err:
        check_station(_user(Role.OPERATOR, None), Rule.INCIDENTS_READ, STATION_A)
    assert err.value.status == 404


def test_logout_every_role(world: World) -> None:
    """Last: ends the sessions. Logged-in roles get 200 and then 401; anonymous 401."""
    assert _do(world, "anon", "POST", "/api/logout") == 401
    for who in WHO[1:]:
        assert _do(world, who, "POST", "/api/logout") == 200, who
        assert world.dash.client(who).get("/api/me").status_code == 401, who
