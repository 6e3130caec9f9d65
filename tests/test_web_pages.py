"""The web pages rendered by the real app over a real SQLite store (FastAPI TestClient):
login and logout, station scope, action buttons with the CSRF token, escaping of user data,
the map's data and tiles setting, the audit view and its chain check, vendored static files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from dashboard_support import (
    PASSWORD,
    STATION_A,
    STATION_B,
    SUBJECT_BOX,
    allow_tampering,
    face_image,
    new_incident,
)
from raksha.api.app import api_routes, create_app
from raksha.api.settings import ApiSettings
from raksha.audit.tables import audit_log
from raksha.auth.ratelimit import Limits
from raksha.config import RunConfig
from raksha.incidents import CameraHealth
from raksha.incidents.evidence import EvidenceWriter
from raksha.store import IncidentStore
from raksha.web import STATIC_DIR, web_for
from raksha.web.errors import safe_next
from raksha.web.settings import BadTileUrl, WebSettings

USERS = {
    "op_a": ("operator", STATION_A),
    "op_b": ("operator", STATION_B),
    "sup_a": ("supervisor", STATION_A),
    "cr": ("control_room", None),
    "aud": ("auditor", None),
    "adm": ("admin", None),
}


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
            "patrol_units": [
                {
                    "id": "hz-bike-1",
                    "kind": "bike",
                    "station": STATION_A,
                    "lat": 26.852,
                    "lon": 80.95,
                }
            ],
            "cameras": [
                {"id": "cam-a", "hotspot": f"{STATION_A}-crossing", "url": "file:///a.mp4"},
                {"id": "cam-b", "hotspot": f"{STATION_B}-crossing", "url": "file:///b.mp4"},
                {"id": "cam-new", "hotspot": f"{STATION_A}-crossing", "url": "file:///n.mp4"},
            ],
        }
    )


@dataclass
class Web:
    app: FastAPI
    store: IncidentStore
    own: str  # an incident of station A
    other: str  # an incident of station B
    logged_in: dict[str, TestClient] = field(default_factory=dict)

    def client(self, who: str | None = None, *, fresh: bool = False) -> TestClient:
        """A client logged in as `who` through the login page (one per user unless `fresh`)."""
        if who is not None and not fresh and who in self.logged_in:
            return self.logged_in[who]
        c = TestClient(self.app)
        if who is not None:
            r = c.post(
                "/login",
                data={"username": who, "password": PASSWORD, "next": "/"},
                follow_redirects=False,
            )
            assert r.status_code == 303, r.text
            if not fresh:
                self.logged_in[who] = c
        return c


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[Web]:
    folder = tmp_path_factory.mktemp("web")
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
    writer = EvidenceWriter(folder / "evidence")
    image = face_image(faces_dir)
    ids = []
    for station in (STATION_A, STATION_B):
        inc = new_incident(station)
        if station == STATION_A:  # an incident the person-relative signal opened
            inc = replace(inc, peak_absolute=0.31, peak_relative=0.72, baseline_at_peak=0.06)
        ids.append(
            store.create_incident(
                inc, writer.capture(inc.id, image, SUBJECT_BOX), {"kind": "distress"}, ["store"]
            )
        )
    store.set_camera_status(
        "cam-a",
        True,
        hotspot_id=f"{STATION_A}-crossing",
        station_id=STATION_A,
        health=CameraHealth(analysed_fps=4.96, frames_dropped=7, p95_latency_ms=38.4),
    )
    store.set_camera_status(
        "cam-b",
        False,
        last_error='<img src=x onerror="alert(1)"></script>',
        hotspot_id=f"{STATION_B}-crossing",
        station_id=STATION_B,
    )
    with TestClient(app):  # the app's lifespan (event hub) runs for the module
        yield Web(app, store, ids[0], ids[1])
    store.close()


PAGES = ["/", "/incidents", "/incidents/rows", "/map", "/audit", "/audit/verify"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_anonymous_visitors_to_the_login_page(web: Web, path: str) -> None:
    r = web.client().get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
    # htmx asks for a redirect header instead of a login page swapped into the list.
    r = web.client().get(path, headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/login")


def test_api_routes_keep_json_errors_with_the_web_pages_on(web: Web) -> None:
    r = web.client().get("/api/incidents")
    assert r.status_code == 401 and r.json() == {"detail": "log in first"}
    assert web.client("op_a").get("/api/incidents/nope").json() == {"detail": "not found"}
    # Every page declares an access rule, like the API routes.
    paths = {r.path for r in api_routes(web.app)}
    assert {"/login", "/incidents", "/incidents/{incident_id}", "/map", "/audit"} <= paths


def test_login_page_logs_in_and_redirects_by_role(web: Web) -> None:
    c = web.client()
    page = c.get("/login?next=/map")
    assert page.status_code == 200 and 'name="password"' in page.text
    assert 'value="/map"' in page.text
    for who, home in (
        ("op_a", "/incidents"),
        ("aud", "/audit"),
        ("adm", "/map"),
        ("cr", "/incidents"),
    ):
        r = web.client().post(
            "/login", data={"username": who, "password": PASSWORD}, follow_redirects=False
        )
        assert r.status_code == 303 and r.headers["location"] == home, who
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
    r = web.client().post(
        "/login",
        data={"username": "op_a", "password": PASSWORD, "next": "/incidents?view=all"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/incidents?view=all"


def test_login_refusals(web: Web) -> None:
    c = web.client()
    r = c.post("/login", data={"username": "op_a", "password": "wrong password"})
    assert r.status_code == 401
    assert "wrong user name or password" in r.text and 'value="op_a"' in r.text
    r = c.post("/login", data={"username": "", "password": ""})
    assert r.status_code == 400
    r = c.post(
        "/login",
        data={"username": "op_a", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "raksha_session" not in r.headers.get("set-cookie", "")
    failures = web.app.state.raksha.audit.entries(action="login.failure", actor="op_a")
    assert failures, "a failed login through the page is audited"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/incidents", "/incidents"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_after_login_only_local_paths(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_incident_list_is_station_scoped(web: Web) -> None:
    a = web.client("op_a").get("/incidents")
    assert web.own in a.text and web.other not in a.text
    assert "hazratganj" in a.text and "data-live-list" in a.text
    b = web.client("op_b").get("/incidents/rows?view=all")
    assert web.other in b.text and web.own not in b.text
    cr = web.client("cr").get("/incidents?view=all")
    assert web.own in cr.text and web.other in cr.text
    r = web.client("aud").get("/incidents")
    assert r.status_code == 403 and "<html" in r.text


def test_incident_page_of_another_station_is_a_404_page(web: Web) -> None:
    r = web.client("op_a").get(f"/incidents/{web.other}")
    assert r.status_code == 404 and "not in your station" in r.text
    assert web.other not in r.text
    ok = web.client("op_b").get(f"/incidents/{web.other}")
    assert ok.status_code == 200
    html = ok.text
    assert f"/api/incidents/{web.other}/evidence/1" in html
    assert "fear" in html and "80%" in html  # top expression and score
    assert "View original" not in html  # operators cannot unblur
    assert "View original" in web.client("sup_a").get(f"/incidents/{web.own}").text


def test_actions_with_csrf_token_through_to_dispatch(web: Web, faces_dir: Path) -> None:
    inc = new_incident(STATION_A)
    iid = web.store.create_incident(inc, [], {"kind": "distress"}, ["store"])
    c = web.client("op_a")
    page = c.get(f"/incidents/{iid}")
    token = csrf_of(page.text)
    assert f'name="csrf_token" value="{token}"' in page.text
    buttons = re.findall(r'name="action" value="(\w+)"', page.text)
    assert buttons == ["acknowledge", "dismiss", "escalate"]

    url = f"/incidents/{iid}/act"
    r = c.post(url, data={"action": "acknowledge"}, follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = c.post(url, data={"action": "acknowledge", "csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    r = c.post(url, data={"action": "dispatch", "unit_id": "hz-bike-1", "csrf_token": token})
    assert r.status_code == 409 and "cannot dispatch an incident that is NEW" in r.text
    r = c.post(url, data={"action": "fly", "csrf_token": token})
    assert r.status_code == 400 and "Unknown action" in r.text

    note = '<script>alert("x")</script>'
    r = c.post(
        url,
        data={"action": "acknowledge", "note": note, "csrf_token": token, "expected_version": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{iid}?done=acknowledge"
    # A second click from a page loaded before the change is refused, not applied twice.
    r = c.post(url, data={"action": "confirm", "csrf_token": token, "expected_version": "1"})
    assert r.status_code == 409 and "changed" in r.text
    page = c.get(f"/incidents/{iid}?done=acknowledge").text
    assert "Done: Acknowledge" in page and 'data-state="ACKNOWLEDGED"' in page
    assert note not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page

    assert c.post(url, data={"action": "confirm", "csrf_token": token}).status_code == 200
    page = c.get(f"/incidents/{iid}").text
    assert '<option value="hz-bike-1">hz-bike-1 (bike)</option>' in page
    r = c.post(url, data={"action": "dispatch", "csrf_token": token})
    assert r.status_code == 400 and "Choose a unit" in r.text
    r = c.post(url, data={"action": "dispatch", "unit_id": "hz-bike-1", "csrf_token": token})
    assert r.status_code == 200 and 'data-state="DISPATCHED"' in r.text
    assert "unit <strong>hz-bike-1</strong>" in r.text
    # The other station's operator cannot act on it.
    b = web.client("op_b")
    token_b = csrf_of(b.get("/incidents").text)
    r = b.post(url, data={"action": "resolve", "csrf_token": token_b})
    assert r.status_code == 404
    actions = [a.action.value for a in web.store.actions(iid)]
    assert actions == ["acknowledge", "confirm", "dispatch"]
    audited = web.app.state.raksha.audit.entries(action="incident.action", target=f"incident:{iid}")
    assert len(audited) == 3 and {e.actor for e in audited} == {"op_a"}


def test_logout_ends_the_session(web: Web) -> None:
    c = web.client("op_a", fresh=True)
    token = csrf_of(c.get("/incidents").text)
    assert c.post("/logout", data={}, follow_redirects=False).status_code == 403
    r = c.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/incidents", follow_redirects=False).status_code == 303
    assert c.get("/api/me").status_code == 401


def _map_data(html: str) -> dict[str, object]:
    m = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S)
    assert m
    data: dict[str, object] = json.loads(m.group(1))
    return data


def test_map_scope_status_and_escaping(web: Web) -> None:
    a = web.client("op_a").get("/map")
    assert a.status_code == 200
    data = _map_data(a.text)
    cams = {c["id"]: c for c in data["cameras"]}  # type: ignore[attr-defined]
    assert set(cams) == {"cam-a"} and cams["cam-a"]["status"] == "online"
    assert cams["cam-a"]["lat"] == 26.851
    # How the camera's analysis keeps up, in the data and in the table.
    assert cams["cam-a"]["frames_dropped"] == 7 and cams["cam-a"]["p95_latency_ms"] == 38.4
    assert re.search(r'<td data-label="Analysed fps" class="fps"[^>]*>5\.0 / 5</td>', a.text)
    assert '<td data-label="Frames dropped">7</td>' in a.text
    assert '<td data-label="p95 latency">38 ms</td>' in a.text
    assert data["tiles"] is None
    assert "leaflet.js" in a.text and 'class="map plain"' in a.text

    cr = web.client("cr").get("/map").text
    cams = {c["id"]: c for c in _map_data(cr)["cameras"]}  # type: ignore[attr-defined]
    assert cams["cam-b"]["status"] == "offline"
    assert cams["cam-new"]["status"] == "unknown"  # configured, no status yet
    # The camera's error text is data: escaped in the table and inside the JSON block.
    assert "<img src=x" not in cr and cr.count("</script>") == cr.count("<script")
    assert "&lt;img src=x" in cr
    assert web.client("aud").get("/map").status_code == 403


def test_map_tiles_only_when_configured(web: Web, tmp_path: Path) -> None:
    assert WebSettings.from_env({}).tile_url is None
    tiles = WebSettings.from_env(
        {"RAKSHA_MAP_TILE_URL": "https://tiles.example.org/{z}/{x}/{y}.png"}
    )
    assert tiles.tile_origin == "https://tiles.example.org"
    assert WebSettings(tile_url="/tiles/{z}/{x}/{y}.png").tile_origin is None
    for bad in ("javascript:alert(1)//{z}", "tiles/{z}.png", "https://t.example/x.png"):
        with pytest.raises(BadTileUrl):
            WebSettings(tile_url=bad)
    cfg = site(f"sqlite:///{tmp_path / 'tiles.db'}", tmp_path / "ev")
    store = IncidentStore.open(cfg.storage.url)
    try:
        app = create_app(
            cfg, store=store, settings=ApiSettings(totp_roles=()), web=web_for(cfg, tiles)
        )
        app.state.raksha.users.add("cr2", "control_room", PASSWORD)
        c = TestClient(app)
        c.post("/login", data={"username": "cr2", "password": PASSWORD})
        r = c.get("/map")
        assert _map_data(r.text)["tiles"] == {
            "url": "https://tiles.example.org/{z}/{x}/{y}.png",
            "attribution": "",
        }
        assert (
            "img-src 'self' data: https://tiles.example.org;"
            in r.headers["content-security-policy"]
        )
    finally:
        store.close()


def test_pages_load_nothing_from_other_sites(web: Web) -> None:
    for who, path in (
        (None, "/login"),
        ("op_a", "/incidents"),
        ("op_a", f"/incidents/{web.own}"),
        ("sup_a", "/map"),
        ("aud", "/audit"),
    ):
        r = web.client(who).get(path)
        assert r.status_code == 200, path
        assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", r.text), path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "<script>" not in r.text  # no inline scripts
    for asset in (
        "/static/app.js",
        "/static/app.css",
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/leaflet/images/marker-icon.png",
    ):
        assert web.client().get(asset).status_code == 200, asset
    for lic in ("vendor/htmx/LICENSE", "vendor/leaflet/LICENSE"):
        assert (STATIC_DIR / lic).stat().st_size > 100


def test_audit_view_and_chain_check(web: Web) -> None:
    c = web.client("aud")
    r = c.get("/audit?action=login.success")
    assert r.status_code == 200
    rows = re.findall(r"<code>([a-z_.]+)</code>", r.text)
    assert rows and set(rows) == {"login.success"}
    ok = c.get("/audit/verify")
    assert "The chain is intact" in ok.text
    assert re.search(r"<code>login.success</code>: \d+", ok.text)
    assert web.client("op_a").get("/audit").status_code == 403

    entries = web.app.state.raksha.audit.entries(
        action="login.success", limit=1, newest_first=False
    )
    seq, actor = entries[0].seq, entries[0].actor
    allow_tampering(web.store.engine)  # an intruder with schema rights
    with web.store.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(actor="someone-else"))
    try:
        broken = c.get("/audit/verify")
        assert "The chain is broken" in broken.text
        assert f"entry #{seq}:" in broken.text
    finally:
        with web.store.engine.begin() as conn:
            conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(actor=actor))
    assert "The chain is intact" in c.get("/audit/verify").text


def test_default_registration_reads_the_site_from_the_served_config(tmp_path: Path) -> None:
    """`raksha serve` calls create_app without `web=`: the pages find the hotspots and cameras
    in the configuration file named in the API settings."""
    config = tmp_path / "raksha.yaml"
    config.write_text(
        "stations: [{id: hazratganj, lat: 26.85, lon: 80.94}]\n"
        "hotspots: [{id: hz-gate, name: Gate, lat: 26.851, lon: 80.945}]\n"
        "cameras: [{id: cam-gate, hotspot: hz-gate, url: 'file:///g.mp4'}]\n"
        f"storage: {{url: 'sqlite:///{tmp_path / 'd.db'}'}}\n"
    )
    cfg = RunConfig.model_validate(
        {"storage": {"url": f"sqlite:///{tmp_path / 'd.db'}"}, "stations": []}
    )
    store = IncidentStore.open(cfg.storage.url)
    try:
        app = create_app(
            cfg, store=store, settings=ApiSettings(config_path=str(config), totp_roles=())
        )
        app.state.raksha.users.add("adm2", "admin", PASSWORD)
        c = TestClient(app)
        c.post("/login", data={"username": "adm2", "password": PASSWORD})
        data = _map_data(c.get("/map").text)
        assert [h["id"] for h in data["hotspots"]] == ["hz-gate"]  # type: ignore[attr-defined]
        assert [x["status"] for x in data["cameras"]] == ["unknown"]  # type: ignore[attr-defined]
    finally:
        store.close()


def test_incident_page_shows_both_parts_of_the_score_when_recorded(web: Web) -> None:
    own = web.client("op_a").get(f"/incidents/{web.own}").text
    parts = re.search(r'<dd id="score-parts">([^<]*)</dd>', own)
    assert parts is not None, "the page does not show the parts of the score"
    assert "31%" in parts.group(1) and "72%" in parts.group(1) and "6%" in parts.group(1)
    # An incident stored without them (before the relative signal) shows no such row.
    other = web.client("op_b").get(f"/incidents/{web.other}").text
    assert 'id="score-parts"' not in other
