"""The patrol unit's phone page and the live marks of open incidents, rendered by the real app
over a real SQLite store (FastAPI TestClient): /unit is public, holds no data and is served
with the pages' security headers; the incident list and page show each open incident's age,
its running deadline ("acknowledge within 0:42", overdue in red), escalation and SOS / high
priority marks; the dispatch form offers the nearest available units with their distances;
the map's data carries the open incidents and the units' live status. (The browser tests in
test_browser.py show the same things live.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard_support import (
    PASSWORD,
    STATION_A,
    STATION_B,
    fast_settings,
    new_incident,
    site_config,
)
from raksha.api.app import api_routes, create_app, route_rule
from raksha.auth.access import Rule
from raksha.config import RunConfig
from raksha.incidents.model import Origin, Priority
from raksha.store import IncidentStore
from raksha.web import STATIC_DIR, web_for
from raksha.web.render import age, clock, countdown, overdue
from raksha.web.settings import WebSettings

TOKEN_ENV = "RAKSHA_TEST_UNIT_PINK_A_TOKEN"
TOKEN = "pink-a-device-token-0123456789"
#: Just off pink-a's base (26.85, 80.94): about 15 m.
NEAR_A = (26.8501, 80.9401)
USERS = {
    "op_a": ("operator", STATION_A),
    "sup_a": ("supervisor", STATION_A),
    "cr": ("control_room", None),
    "adm": ("admin", None),
}


def config(db_url: str, evidence: Path) -> RunConfig:
    """The dashboard tests' site, with a device token for patrol unit pink-a."""
    raw: dict[str, Any] = site_config(db_url, evidence).model_dump(mode="json")
    for unit in raw["patrol_units"]:
        if unit["id"] == "pink-a":
            unit["token_env"] = TOKEN_ENV
    return RunConfig.model_validate(raw)


@dataclass
class Site:
    app: FastAPI
    store: IncidentStore
    clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, who: str | None = None) -> TestClient:
        if who is None:
            return TestClient(self.app)
        if who not in self.clients:
            c = TestClient(self.app)
            r = c.post("/login", data={"username": who, "password": PASSWORD, "next": "/"})
            assert r.status_code == 200, r.text
            self.clients[who] = c
        return self.clients[who]

    def device(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return self.client().request(method, f"/api/units/pink-a{path}", headers=headers, **kw)

    def act(self, who: str, iid: str, action: str, **form: str) -> Any:
        c = self.client(who)
        page = c.get(f"/incidents/{iid}").text
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        assert token
        return c.post(
            f"/incidents/{iid}/act", data={"action": action, "csrf_token": token.group(1), **form}
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("unit-page")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TOKEN_ENV, TOKEN)  # before the app is built: it reads the tokens then
        cfg = config(f"sqlite:///{folder / 'raksha.db'}", folder / "evidence")
        store = IncidentStore.open(cfg.storage.url)
        app = create_app(
            cfg, store=store, settings=fast_settings(), web=web_for(cfg, WebSettings())
        )
        for name, (role, station) in USERS.items():
            app.state.raksha.users.add(name, role, PASSWORD, station_id=station)
        with TestClient(app):  # the app's lifespan (event hub) runs for the module
            yield Site(app, store)
        store.close()


def add(site: Site, station: str = STATION_A, **changes: Any) -> str:
    inc = replace(new_incident(station), **changes)
    return site.store.create_incident(inc, [], {"kind": "distress"}, ["store"])


def row_of(html: str, iid: str) -> str:
    m = re.search(rf'<tr data-id="{iid}".*?</tr>', html, re.S)
    assert m, f"no row for {iid}"
    return m.group(0)


# ---- the phone page ----------------------------------------------------------------------


def test_unit_page_is_public_with_the_security_headers(site: Site) -> None:
    r = site.client().get("/unit", follow_redirects=False)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    h = r.headers
    csp = h["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert h["cache-control"] == "no-store"
    assert h["referrer-policy"] == "no-referrer"
    assert "geolocation=(self)" in h["permissions-policy"]
    assert "camera=()" in h["permissions-policy"]
    # Declared PUBLIC like the login page (every route declares exactly one rule).
    (route,) = [r for r in api_routes(site.app) if r.path == "/unit"]
    assert route_rule(route) is Rule.PUBLIC


def test_unit_page_holds_no_data_and_loads_only_this_site(site: Site) -> None:
    html = site.client().get("/unit").text
    # Nothing about units or incidents in the page itself; the script asks with the token.
    assert "pink-a" not in html and "hazratganj" not in html and "csrf-token" not in html
    assert "<script>" not in html  # no inline scripts
    assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", html)
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts[-2:] == ["/static/app.js", "/static/unit.js"]
    # The token field has no name: a form sent without the script never carries it.
    token_input = re.search(r'<input id="unit-token"[^>]*>', html)
    assert token_input and "name=" not in token_input.group(0)
    assert 'type="password"' in token_input.group(0)
    for needed in (
        'id="unit-id"',
        'id="job-ack"',
        'id="job-on-scene"',
        'id="duty-on"',
        'id="duty-off"',
        'id="job-directions"',
        'lang="hi"',
    ):
        assert needed in html, needed
    for asset in ("/static/unit.js", "/static/map.js", "/static/notify-sw.js"):
        assert site.client().get(asset).status_code == 200, asset
    js = (STATIC_DIR / "unit.js").read_text()
    # It talks to this site only, with the device token and without the officers' cookies.
    assert "Authorization" in js and 'credentials: "omit"' in js
    assert not re.search(r"https?://", js)
    assert "watchPosition" in js and "/position" in js and "10000" in js and "3000" in js


def test_a_logged_in_officer_still_gets_the_phone_page(site: Site) -> None:
    r = site.client("op_a").get("/unit")
    assert r.status_code == 200 and 'id="unit-setup"' in r.text
    # The phone page is not a live officer page: no event stream, no alert settings.
    assert 'data-events="live"' not in r.text and 'id="alert-prefs"' not in r.text


# ---- the clocks and marks ----------------------------------------------------------------


def test_clock_and_countdown_texts() -> None:
    now = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
    assert clock(42.9) == "0:42" and clock(725) == "12:05" and clock(3723) == "1:02:03"
    assert clock(-5) == "0:00"
    soon = (now + timedelta(seconds=42.5)).isoformat()
    assert countdown(soon, "acknowledge", now) == "acknowledge within 0:42"
    late = (now - timedelta(seconds=13)).isoformat().replace("+00:00", "Z")
    assert countdown(late, "dispatch", now) == "dispatch overdue 0:13"
    assert countdown(soon, "unit_ack", now) == "unit to acknowledge within 0:42"
    assert countdown(None, "acknowledge", now) == ""
    assert overdue(late, now) and not overdue(soon, now) and not overdue(None, now)
    assert age((now - timedelta(minutes=4, seconds=12)).isoformat(), now) == "4:12"
    assert age(None, now) == "—"


def test_list_shows_age_deadline_escalation_and_marks(site: Site) -> None:
    plain = add(site)
    sos = add(site, origin=Origin.SOS, priority=Priority.HIGH, place="Gate 2, Hazratganj")
    late = add(site, opened_at=datetime.now(UTC) - timedelta(minutes=5))
    escalated = add(site)
    site.store.apply_action(escalated, "escalate", "system:escalation", "test")

    html = site.client("op_a").get("/incidents").text
    assert "<th>Deadline</th>" in html
    row = row_of(html, plain)
    assert re.search(
        r'class="countdown" data-countdown data-deadline="[^"]+Z?" '
        r'data-kind="acknowledge">acknowledge within [01]:\d\d<',
        row,
    ), row
    assert re.search(r'<span class="age" data-since="[^"]+"[^>]*>0:0\d</span>', row), row
    assert re.search(r'data-escalated="0" hidden>', row)
    assert re.search(r'data-mark="sos" hidden>SOS<', row)
    assert re.search(r'data-mark="high" hidden>high priority<', row)

    row = row_of(html, sos)
    assert 'data-mark="sos">SOS</span>' in row
    assert 'data-mark="high">high priority</span>' in row
    assert "priority-high" in row and "Gate 2, Hazratganj" in row

    row = row_of(html, late)
    assert 'class="countdown overdue"' in row and "acknowledge overdue 4:" in row
    assert re.search(r">5:0\d</span>", row)  # five minutes old

    row = row_of(html, escalated)
    assert 'data-escalation="1"' in row
    assert re.search(r'data-escalated="1">escalated ×1</span>', row), row

    # The rows alone (htmx swaps them in on each live event) carry the same marks.
    rows = site.client("op_a").get("/incidents/rows").text
    assert "escalated ×1" in rows and "acknowledge within" in rows


def test_closed_incidents_show_no_clock(site: Site) -> None:
    iid = add(site)
    site.store.apply_action(iid, "dismiss", "op_a", "a false alarm")
    row = row_of(site.client("op_a").get("/incidents?view=closed").text, iid)
    assert "data-countdown" not in row and "data-since" not in row


def test_incident_page_shows_the_clock_and_marks(site: Site) -> None:
    iid = add(site, origin=Origin.SOS, priority=Priority.HIGH, place="Gate 2")
    site.store.apply_action(iid, "escalate", "system:escalation", "test")
    html = site.client("op_a").get(f"/incidents/{iid}").text
    assert 'data-escalation="1"' in html and 'data-events="live"' in html
    assert 'id="alert-prefs"' in html and 'id="pref-notify"' in html
    clock_ = re.search(r'<p class="clock" id="clock">.*?</p>', html, re.S)
    assert clock_ and "Open for" in clock_.group(0)
    assert 'id="deadline"' in clock_.group(0) and "acknowledge within" in clock_.group(0)
    assert "escalated ×1" in clock_.group(0)
    assert 'data-mark="sos">SOS</span>' in html and "Gate 2" in html
    assert re.search(r'<meta name="server-time" content="[^"]+">', html)
    # On a phone the evidence comes before the buttons: it does in the page's order.
    assert html.index('class="card evidence"') < html.index('id="actions"')


# ---- dispatch: the nearest available units -------------------------------------------------


def unit_options(html: str) -> list[tuple[str, str]]:
    """The dispatch form's unit choices, nearest first."""
    select = re.search(r'<select name="unit_id".*?</select>', html, re.S)
    assert select is not None, "no unit choice on the page"
    return re.findall(r'<option value="([^"]+)">([^<]*)</option>', select.group(0))


def test_dispatch_offers_the_nearest_units_then_the_unit_acknowledges(site: Site) -> None:
    iid = add(site, lat=NEAR_A[0], lon=NEAR_A[1], place="Near pink-a")
    assert site.act("op_a", iid, "acknowledge").status_code == 200
    assert site.act("op_a", iid, "confirm").status_code == 200
    html = site.client("op_a").get(f"/incidents/{iid}").text
    options = unit_options(html)
    assert options[0][0] == "pink-a", options
    assert re.fullmatch(r"pink-a \(scooter\) · \d+ m · base", options[0][1]), options
    assert f'data-suggest="/api/incidents/{iid}/units"' in html
    # The same list the page's script refreshes from.
    api = site.client("op_a").get(f"/api/incidents/{iid}/units").json()
    assert api["units"][0]["unit"]["id"] == "pink-a" and api["units"][0]["live"] is False

    # The unit's phone reports where it is: the distance is now from there, "live".
    r = site.device("POST", "/position", json={"lat": 26.8502, "lon": 80.9402, "accuracy_m": 8})
    assert r.status_code == 200, r.text
    html = site.client("op_a").get(f"/incidents/{iid}").text
    first = unit_options(html)[0]
    assert first[0] == "pink-a" and first[1].endswith(" · live"), first

    r = site.act("op_a", iid, "dispatch", unit_id="pink-a")
    assert r.status_code == 200 and 'data-state="DISPATCHED"' in r.text
    assert "unit to acknowledge within" in r.text and 'id="assigned-unit">pink-a<' in r.text
    # The phone's job card, then its acknowledgement in the incident's history.
    job = site.device("GET", "/job").json()["job"]
    assert job["incident_id"] == iid and job["text"]["hi"] and job["directions"].startswith("geo:")
    assert site.device("POST", "/job/ack", json={}).status_code == 200
    html = site.client("op_a").get(f"/incidents/{iid}").text
    history = re.search(r'<ol class="history" id="history">.*?</ol>', html, re.S)
    assert history is not None and "unit:pink-a</strong>: unit_ack" in history.group(0)
    # The busy unit is no longer offered for another incident; sending it anyway is refused.
    other = add(site, lat=NEAR_A[0], lon=NEAR_A[1])
    site.act("op_a", other, "acknowledge")
    site.act("op_a", other, "confirm")
    html = site.client("op_a").get(f"/incidents/{other}").text
    assert '<option value="pink-a">' not in html
    r = site.act("op_a", other, "dispatch", unit_id="pink-a")
    assert r.status_code == 409 and "pink-a" in r.text


# ---- the map's live data -----------------------------------------------------------------


def _map_data(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S)
    assert m
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def test_map_data_has_open_incidents_and_live_units(site: Site) -> None:
    iid = add(site, lat=26.8512, lon=80.9415)
    data = _map_data(site.client("op_a").get("/map").text)
    assert data["live"] is True and data["position_max_age_s"] > 0
    incidents = {i["id"]: i for i in data["incidents"]}
    assert incidents[iid]["lat"] == 26.8512 and incidents[iid]["state"] == "NEW"
    assert {i["station_id"] for i in data["incidents"]} == {STATION_A}  # own station only
    # No position of its own: drawn at its hotspot's.
    spot = add(site, hotspot_id="a-crossing")
    data = _map_data(site.client("op_a").get("/map").text)
    at = {i["id"]: (i["lat"], i["lon"]) for i in data["incidents"]}
    assert at[spot] == (26.851, 80.941)
    units = {u["id"]: u for u in data["units"]}
    assert set(units) == {"pink-a"} and units["pink-a"]["status"] in (
        "available",
        "dispatched",
        "on_scene",
        "off_duty",
    )
    assert "home_lat" in units["pink-a"]
    cr = _map_data(site.client("cr").get("/map").text)
    assert {u["id"] for u in cr["units"]} == {"pink-a", "pink-b"}
    # An admin sees cameras, not incidents: the configured units at their bases, no live data.
    adm = _map_data(site.client("adm").get("/map").text)
    assert adm["live"] is False and adm["incidents"] == []
    assert {u["id"] for u in adm["units"]} == {"pink-a", "pink-b"}
    assert 'data-events="live"' not in site.client("adm").get("/map").text


def test_other_station_incident_is_not_in_the_list(site: Site) -> None:
    iid = add(site, STATION_B)
    html = site.client("op_a").get("/incidents").text
    assert iid not in html


# ---- response times -----------------------------------------------------------------------


def test_response_times_page_for_supervisors(site: Site) -> None:
    iid = add(site, lat=NEAR_A[0], lon=NEAR_A[1])
    assert site.act("op_a", iid, "acknowledge").status_code == 200
    html = site.client("sup_a").get("/reports").text
    row = re.search(rf'<tr data-station="{STATION_A}">.*?</tr>', html, re.S)
    assert row is not None, html[:2000]
    cells = re.findall(r"<td>(.*?)</td>", row.group(0), re.S)
    assert int(cells[1]) >= 1  # incidents
    assert "(1)" in cells[4] or "(2)" in cells[4] or "(3)" in cells[4]  # acknowledged ones
    assert 'href="/reports"' in html  # in the supervisor's navigation
    assert f'data-station="{STATION_B}"' not in html  # another station's figures stay there
    assert site.client("op_a").get("/reports").status_code == 403


# ---- camera health, live ------------------------------------------------------------------


def test_camera_rows_refresh_and_compare_the_analysed_rate(site: Site) -> None:
    from datetime import UTC, datetime

    from raksha.incidents.model import CameraHealth

    site.store.set_camera_status(
        "cam-a",
        True,
        datetime.now(UTC),
        hotspot_id="a-crossing",
        station_id=STATION_A,
        health=CameraHealth(27.6, 0, 40.0),
    )
    page = site.client("op_a").get("/map").text
    assert 'hx-get="/map/cameras"' in page and 'hx-trigger="every 5s"' in page
    rows = site.client("op_a").get("/map/cameras")
    assert rows.status_code == 200 and rows.text.lstrip().startswith('<tbody id="camera-rows"')
    cell = re.search(r'<tr data-camera="cam-a">.*?</tr>', rows.text, re.S)
    assert cell is not None
    # Set to the site's 5 fps but analysed flat out: flagged.
    assert re.search(r'class="fps off-rate"[^>]*>27\.6 / 5<', cell.group(0)), cell.group(0)
    site.store.set_camera_status(
        "cam-a", True, datetime.now(UTC), health=CameraHealth(4.9, 0, 40.0)
    )
    cell = re.search(
        r'<tr data-camera="cam-a">.*?</tr>', site.client("op_a").get("/map/cameras").text, re.S
    )
    assert cell is not None and re.search(r'class="fps"[^>]*>4\.9 / 5<', cell.group(0))
    assert site.client("adm").get("/map/cameras").status_code == 200  # admins see cameras
