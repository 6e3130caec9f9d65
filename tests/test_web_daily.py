"""The dashboard's daily tools, rendered by the real app over a real SQLite store (FastAPI
TestClient): user administration for admins at /users (add, refuse a weak password or a
taken name, disable, set a new password, change a role; every change audited with the admin
as actor), the incident list's filters and id search, and the CSV export button for
supervisors and the control room carrying the list's filters.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard_support import PASSWORD, STATION_A, STATION_B, new_incident
from raksha.api.app import create_app
from raksha.api.settings import ApiSettings
from raksha.audit.log import AuditEntry
from raksha.auth.ratelimit import Limits
from raksha.config import RunConfig
from raksha.store import IncidentStore
from raksha.web import web_for
from raksha.web.settings import WebSettings

USERS = {
    "op_a": ("operator", STATION_A),
    "op_b": ("operator", STATION_B),
    "sup_a": ("supervisor", STATION_A),
    "cr": ("control_room", None),
    "aud": ("auditor", None),
    "adm": ("admin", None),
}
#: A password the policy accepts, and another for resets.
NEW_PASSWORD = "quiet river at dawn 4711"
OTHER_PASSWORD = "lanterns over the gomti 93"


def site(db_url: str, evidence: Path) -> RunConfig:
    return RunConfig.model_validate(
        {
            "storage": {"url": db_url},
            "evidence": {"dir": str(evidence)},
            "stations": [
                {"id": STATION_A, "lat": 26.85, "lon": 80.94},
                {"id": STATION_B, "lat": 26.89, "lon": 80.94},
            ],
            "hotspots": [
                {"id": f"{STATION_A}-crossing", "lat": 26.851, "lon": 80.945},
                {"id": f"{STATION_B}-crossing", "lat": 26.891, "lon": 80.941},
            ],
            "cameras": [
                {"id": "cam-a", "hotspot": f"{STATION_A}-crossing", "url": "file:///a.mp4"},
                {"id": "cam-a2", "hotspot": f"{STATION_A}-crossing", "url": "file:///a2.mp4"},
                {"id": "cam-b", "hotspot": f"{STATION_B}-crossing", "url": "file:///b.mp4"},
            ],
        }
    )


@dataclass
class Daily:
    app: FastAPI
    store: IncidentStore
    #: name -> incident id (see the fixture)
    inc: dict[str, str]
    logged_in: dict[str, TestClient] = field(default_factory=dict)

    def login(self, who: str, password: str = PASSWORD) -> TestClient:
        """A fresh client logged in as `who` through the login page."""
        c = TestClient(self.app)
        r = c.post("/login", data={"username": who, "password": password}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return c

    def client(self, who: str) -> TestClient:
        if who not in self.logged_in:
            self.logged_in[who] = self.login(who)
        return self.logged_in[who]

    def audit(self, action: str, target: str | None = None) -> list[AuditEntry]:
        """The audit entries of `action` (on `target`), oldest first."""
        found: list[AuditEntry] = self.app.state.raksha.audit.entries(
            action=action, target=target, limit=1000
        )
        return found


def csrf_of(page: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert m, "no CSRF token on the page"
    return m.group(1)


def ids_in(page: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', page)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daily]:
    folder = tmp_path_factory.mktemp("daily")
    cfg = site(f"sqlite:///{folder / 'raksha.db'}", folder / "evidence")
    store = IncidentStore.open(cfg.storage.url)
    settings = ApiSettings(
        events_poll_s=0.2,
        login_limits=Limits(per_account=50, per_address=1000, window_s=900),
        totp_roles=(),  # (tested in test_second_factor.py)
    )
    app = create_app(cfg, store=store, settings=settings, web=web_for(cfg, WebSettings()))
    for name, (role, station) in USERS.items():
        app.state.raksha.users.add(name, role, PASSWORD, station_id=station)

    def add(station: str, camera: str, opened: datetime, peak: float) -> str:
        inc = replace(new_incident(station, peak=peak), camera_id=camera, opened_at=opened)
        return store.create_incident(inc, [], {"kind": "distress"}, ["store"])

    inc = {
        # station A
        "a_new": add(STATION_A, "cam-a", at(10, 10), 0.9),
        "a_ack": add(STATION_A, "cam-a2", at(12, 10), 0.6),
        "a_closed": add(STATION_A, "cam-a", at(14, 20), 0.7),
        # 20:00 UTC on the 16th is 01:30 on the 17th in Lucknow (UTC+5:30).
        "a_late": add(STATION_A, "cam-a2", at(16, 20), 0.65),
        # station B
        "b_new": add(STATION_B, "cam-b", at(12, 11), 0.95),
    }
    store.apply_action(inc["a_ack"], "acknowledge", "op_a")
    store.apply_action(inc["a_closed"], "dismiss", "op_a", "a false alarm")
    with TestClient(app):
        yield Daily(app, store, inc)
    store.close()


# ---- user administration -------------------------------------------------------------------


def _users(d: Daily) -> tuple[TestClient, str]:
    c = d.client("adm")
    page = c.get("/users")
    assert page.status_code == 200, page.text
    return c, csrf_of(page.text)


def _add(
    d: Daily, username: str, role: str = "operator", station: str = STATION_A, **kw: str
) -> httpx.Response:
    c, token = _users(d)
    data = {
        "username": username,
        "role": role,
        "station": station,
        "password": kw.get("password", NEW_PASSWORD),
        "repeat_password": kw.get("repeat", kw.get("password", NEW_PASSWORD)),
        "csrf_token": token,
    }
    r: httpx.Response = c.post("/users", data=data, follow_redirects=False)
    return r


def test_admin_sees_the_users_and_adds_one_who_can_log_in(daily: Daily) -> None:
    c, _ = _users(daily)
    page = c.get("/users").text
    assert 'href="/users"' in page  # in the admin's navigation
    for name in USERS:
        assert f'data-user="{name}"' in page
    row = re.search(r'<tr data-user="sup_a".*?</tr>', page, re.S)
    assert row and "supervisor" in row.group(0) and STATION_A in row.group(0)
    assert "not set" in row.group(0)  # no second factor yet

    r = _add(daily, "op_new")
    assert r.status_code == 303 and r.headers["location"] == "/users?done=added&user=op_new"
    page = c.get(r.headers["location"]).text
    assert "Added op_new." in page and 'data-user="op_new"' in page
    user = daily.app.state.raksha.users.get("op_new")
    assert user is not None and user.role.value == "operator" and user.station_id == STATION_A

    new = daily.login("op_new", NEW_PASSWORD)
    assert new.get("/incidents").status_code == 200
    (entry,) = daily.audit("user.add", "user:op_new")
    assert entry.actor == "adm"
    assert NEW_PASSWORD not in str(entry.details)


def test_weak_password_taken_name_and_missing_station_are_refused(daily: Daily) -> None:
    r = _add(daily, "op_weak", password="short")
    assert r.status_code == 422 and "Weak password" in r.text and "12 characters" in r.text
    r = _add(daily, "op_weak2", password="password2026!")
    assert r.status_code == 422 and "common word" in r.text
    r = _add(daily, "op_a")
    assert r.status_code == 409 and "A user named &#39;op_a&#39; already exists." in r.text
    r = _add(daily, "op_nostation", station="")
    assert r.status_code == 422 and "An operator works for one station" in r.text
    r = _add(daily, "op_typo", repeat="something else entirely")
    assert r.status_code == 400 and "The two passwords differ." in r.text
    assert 'value="op_typo"' in r.text  # the form keeps what was typed, never the password
    assert NEW_PASSWORD not in r.text
    r = _add(daily, "bad name!")
    assert r.status_code == 422 and "User names have" in r.text
    for name in ("op_weak", "op_weak2", "op_nostation", "op_typo"):
        assert daily.app.state.raksha.users.get(name) is None
    # Without the CSRF token nothing happens.
    c, _ = _users(daily)
    r = c.post(
        "/users",
        data={"username": "op_forged", "role": "operator", "station": STATION_A},
        follow_redirects=False,
    )
    assert r.status_code == 403 and daily.app.state.raksha.users.get("op_forged") is None


def test_disabling_a_user_ends_their_access(daily: Daily) -> None:
    assert _add(daily, "op_gone").status_code == 303
    officer = daily.login("op_gone", NEW_PASSWORD)
    assert officer.get("/incidents").status_code == 200
    c, token = _users(daily)
    r = c.post("/users/op_gone/disable", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and "done=disabled" in r.headers["location"]
    page = c.get(r.headers["location"]).text
    assert "Disabled op_gone; their sessions have ended." in page
    assert re.search(r'<tr data-user="op_gone"[^>]*data-disabled="true"', page)
    # Their open session ends at once; they cannot log in again.
    r = officer.get("/incidents", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = TestClient(daily.app).post(
        "/login", data={"username": "op_gone", "password": NEW_PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 401
    (entry,) = daily.audit("user.disable", "user:op_gone")
    assert entry.actor == "adm" and entry.details["sessions_ended"] >= 1
    # Enabled again, they can.
    r = c.post("/users/op_gone/enable", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert daily.login("op_gone", NEW_PASSWORD).get("/incidents").status_code == 200
    assert [e.actor for e in daily.audit("user.enable", "user:op_gone")] == ["adm"]
    # An admin cannot lock themselves out; an unknown user is named.
    r = c.post("/users/adm/disable", data={"csrf_token": token})
    assert r.status_code == 400 and "You cannot disable your own account." in r.text
    r = c.post("/users/nobody/disable", data={"csrf_token": token})
    assert r.status_code == 404 and "No user named &#39;nobody&#39;." in r.text


def test_admin_sets_a_new_password_and_their_sessions_end(daily: Daily) -> None:
    assert _add(daily, "op_forgot").status_code == 303
    officer = daily.login("op_forgot", NEW_PASSWORD)
    c, token = _users(daily)
    url = "/users/op_forgot/password"
    weak = {"new_password": "qwerty123456", "repeat_password": "qwerty123456"}
    r = c.post(url, data={**weak, "csrf_token": token})
    assert r.status_code == 422 and "Weak password" in r.text
    r = c.post(
        url,
        data={"new_password": OTHER_PASSWORD, "repeat_password": "x", "csrf_token": token},
    )
    assert r.status_code == 400 and "The two passwords differ." in r.text
    r = c.post(
        url,
        data={
            "new_password": OTHER_PASSWORD,
            "repeat_password": OTHER_PASSWORD,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "New password set for op_forgot" in c.get(r.headers["location"]).text
    assert officer.get("/incidents", follow_redirects=False).status_code == 303  # logged out
    old = TestClient(daily.app).post(
        "/login", data={"username": "op_forgot", "password": NEW_PASSWORD}, follow_redirects=False
    )
    assert old.status_code == 401
    assert daily.login("op_forgot", OTHER_PASSWORD).get("/incidents").status_code == 200
    (entry,) = daily.audit("user.password_set", "user:op_forgot")
    assert entry.actor == "adm" and entry.details == {"sessions_ended": 1}
    assert OTHER_PASSWORD not in str(entry.details)


def test_admin_changes_a_role_and_station(daily: Daily) -> None:
    assert _add(daily, "op_moves").status_code == 303
    officer = daily.login("op_moves", NEW_PASSWORD)
    c, token = _users(daily)
    url = "/users/op_moves/role"
    r = c.post(url, data={"role": "supervisor", "station": "", "csrf_token": token})
    assert r.status_code == 422 and "A supervisor works for one station" in r.text
    r = c.post(url, data={"role": "supervisor", "station": "nowhere", "csrf_token": token})
    assert r.status_code == 422 and "Unknown station" in r.text
    r = c.post(
        url,
        data={"role": "supervisor", "station": STATION_B, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    user = daily.app.state.raksha.users.get("op_moves")
    assert user.role.value == "supervisor" and user.station_id == STATION_B
    assert officer.get("/incidents", follow_redirects=False).status_code == 303  # logged out
    b = daily.login("op_moves", NEW_PASSWORD).get("/incidents?view=all").text
    assert daily.inc["b_new"] in b and daily.inc["a_new"] not in b
    (entry,) = daily.audit("user.role_changed", "user:op_moves")
    assert entry.actor == "adm"
    assert entry.details["from_role"] == "operator" and entry.details["from_station"] == STATION_A
    assert entry.details["role"] == "supervisor" and entry.details["station"] == STATION_B
    # The control room is bound to no station: a station chosen with it is left out.
    r = c.post(
        url,
        data={"role": "control_room", "station": STATION_A, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    user = daily.app.state.raksha.users.get("op_moves")
    assert user.role.value == "control_room" and user.station_id is None
    r = c.post("/users/adm/role", data={"role": "auditor", "csrf_token": token})
    assert r.status_code == 400 and "You cannot change your own role." in r.text


@pytest.mark.parametrize("who", ["op_a", "sup_a", "cr", "aud"])
def test_only_admins_administer_users(daily: Daily, who: str) -> None:
    c = daily.client(who)
    r = c.get("/users")
    assert r.status_code == 403 and "<html" in r.text
    home = c.get("/", follow_redirects=True).text
    assert 'href="/users"' not in home
    token = csrf_of(home)
    r = c.post(
        "/users",
        data={
            "username": f"x_{who}",
            "role": "admin",
            "password": NEW_PASSWORD,
            "repeat_password": NEW_PASSWORD,
            "csrf_token": token,
        },
    )
    assert r.status_code == 403
    assert c.post("/users/op_b/disable", data={"csrf_token": token}).status_code == 403
    assert daily.app.state.raksha.users.get(f"x_{who}") is None
    assert not daily.app.state.raksha.users.get("op_b").disabled


# ---- the incident list's filters and search ------------------------------------------------


def test_filters_narrow_the_list(daily: Daily) -> None:
    i = daily.inc
    march = "view=all&from=2025-03-01&to=2025-03-31&tz=UTC"
    cr = daily.client("cr")

    def shown(query: str, who: TestClient = cr) -> set[str]:
        r = who.get(f"/incidents?{query}")
        assert r.status_code == 200, r.text
        return set(ids_in(r.text))

    assert shown(march) == set(i.values())
    assert shown(f"{march}&state=ACKNOWLEDGED") == {i["a_ack"]}
    assert shown(f"{march}&camera=cam-a") == {i["a_new"], i["a_closed"]}
    assert shown("view=all&from=2025-03-11&to=2025-03-13&tz=UTC") == {i["a_ack"], i["b_new"]}
    assert shown(f"{march}&score=80") == {i["a_new"], i["b_new"]}
    assert shown(f"{march}&station={STATION_B}") == {i["b_new"]}
    assert shown(f"{march}&camera=cam-a&score=80") == {i["a_new"]}
    # The tab and a state work together: closed ones only under "closed".
    assert shown("view=closed&from=2025-03-01&to=2025-03-31&tz=UTC") == {i["a_closed"]}
    # Dates are the browser's local days: 20:00 UTC on the 16th is the 17th in Lucknow.
    assert shown("view=all&from=2025-03-17&to=2025-03-17&tz=Asia/Kolkata") == {i["a_late"]}
    assert shown("view=all&from=2025-03-17&to=2025-03-17&tz=UTC") == set()
    assert shown("view=all&from=2025-03-16&to=2025-03-16&tz=UTC") == {i["a_late"]}
    # An operator never sees another station, whatever the query string says.
    op = daily.client("op_a")
    assert shown(f"{march}&station={STATION_B}", op) == {
        i["a_new"],
        i["a_ack"],
        i["a_closed"],
        i["a_late"],
    }
    assert 'name="station"' not in op.get("/incidents").text  # no station filter for them
    assert 'name="station"' in cr.get("/incidents").text


def test_filters_stay_in_the_page_and_the_live_refresh(daily: Daily) -> None:
    cr = daily.client("cr")
    query = "view=all&camera=cam-a&from=2025-03-01&to=2025-03-31&tz=UTC&score=65"
    page = cr.get(f"/incidents?{query}").text
    hx = re.search(r'<tbody id="incident-rows" hx-get="([^"]+)"', page)
    assert hx is not None
    refresh = html.unescape(hx.group(1))
    assert refresh.startswith("/incidents/rows?")
    assert parse_qs(urlsplit(refresh).query) == parse_qs(query)
    # The partial the live refresh fetches is filtered the same way and carries them on.
    rows = cr.get(refresh).text
    assert set(ids_in(rows)) == {daily.inc["a_new"], daily.inc["a_closed"]}
    assert 'hx-get="/incidents/rows?' in rows and "camera=cam-a" in rows
    # The form shows the values; the tabs keep the filters.
    assert 'name="camera" value="cam-a"' in page and 'value="2025-03-01"' in page
    assert 'name="score" min="0" max="100" step="1" size="4" value="65"' in page
    assert "/incidents?view=open&amp;camera=cam-a" in page
    # Nothing matches: said so.
    none = cr.get("/incidents?view=all&camera=cam-none").text
    assert "No incidents match these filters." in none
    # A bad value is a clear refusal, not a server error.
    assert cr.get("/incidents?from=yesterday").status_code == 422
    assert cr.get("/incidents?score=250").status_code == 422
    assert cr.get("/incidents?state=LOST").status_code == 422
    r = cr.get("/incidents?from=2025-03-10&to=2025-03-01")
    assert r.status_code == 422 and "The start date is after the end date." in r.text


def test_search_finds_an_incident_by_the_start_of_its_id(daily: Daily) -> None:
    target = daily.inc["a_ack"]
    op = daily.client("op_a")
    r = op.get(f"/incidents?q={target[:8]}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{target}"
    r = op.get(f"/incidents?q={target[:8].upper()}", follow_redirects=False)
    assert r.headers["location"] == f"/incidents/{target}"
    r = op.get(f"/incidents?q={target}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{target}"
    # Another station's incident is "not found", exactly like one that does not exist.
    other = daily.client("op_b").get(f"/incidents?q={target[:8]}", follow_redirects=False)
    assert other.status_code == 404 and "not found" in other.text
    assert target not in other.text
    missing = op.get("/incidents?q=ffffffff-nothing", follow_redirects=False)
    assert missing.status_code == 404 and "Incident ffffffff-nothing not found" in missing.text
    assert op.get("/incidents?q=ab").status_code == 422
    assert 'id="incident-search"' in op.get("/incidents").text
    # Several match the start typed: the list shows them (and the live refresh leaves it so).
    twins = [f"cafe{n:04d}-0000-4000-8000-000000000000" for n in (1, 2)]
    for iid in twins:
        inc = replace(new_incident(STATION_A), id=iid)
        daily.store.create_incident(inc, [], {"kind": "distress"}, ["store"])
    both = op.get("/incidents?q=cafe", follow_redirects=False)
    assert both.status_code == 200 and "2 incidents start with cafe" in both.text
    assert set(ids_in(both.text)) == set(twins) and "hx-get" not in both.text


# ---- the export button ---------------------------------------------------------------------


def _export_href(page: str) -> str | None:
    m = re.search(r'<a class="button" id="export-csv" href="([^"]+)"', page)
    return None if m is None else html.unescape(m.group(1))


def test_export_button_carries_the_filters_for_permitted_roles(daily: Daily) -> None:
    query = (
        f"view=all&from=2025-03-11&to=2025-03-13&tz=UTC&camera=cam-a2&score=50&station={STATION_A}"
    )
    for who in ("op_a", "op_b"):
        assert _export_href(daily.client(who).get(f"/incidents?{query}").text) is None
    cr_href = _export_href(daily.client("cr").get(f"/incidents?{query}").text)
    assert cr_href is not None
    params = parse_qs(urlsplit(cr_href).query)
    assert urlsplit(cr_href).path == "/api/export/incidents.csv"
    assert params["since"] == ["2025-03-11T00:00:00+00:00"]
    assert params["until"] == ["2025-03-14T00:00:00+00:00"]
    assert params["camera"] == ["cam-a2"] and params["min_score"] == ["0.5"]
    assert params["station"] == [STATION_A]

    sup = daily.client("sup_a")
    href = _export_href(sup.get(f"/incidents?{query}").text)
    assert href is not None and "station" not in parse_qs(urlsplit(href).query)  # theirs only
    r = sup.get(href)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    # The period narrows the CSV; the supervisor's station only (b_new is B's).
    assert {row["id"] for row in rows} == {daily.inc["a_ack"]}
    exports = daily.audit("incident.export")
    assert exports and exports[-1].actor == "sup_a"
    assert exports[-1].details["since"].startswith("2025-03-11")
    # Camera, score and state narrow the CSV as they narrow the list.
    for narrower in ("camera=no-such-camera", "min_score=1", "state=DISMISSED"):
        r = sup.get(f"{href}&{narrower}")
        assert r.status_code == 200 and list(csv.DictReader(io.StringIO(r.text))) == [], narrower
