"""The dashboard in a real browser: Debian's chromium driven by Playwright against a real
uvicorn server over a SQLite store.

An operator logs in; an incident the pipeline writes to the store appears in the open list
without a reload within 2 s (highlighted, counted in the title); the operator acknowledges,
confirms and dispatches it with a unit and the page shows each new state; an operator of
another station never sees it. Screenshots (desktop and a 390x844 phone) are kept under
artifacts/screenshots/.

Chromium comes from apt (`/usr/bin/chromium`); no browser is ever downloaded. Missing
chromium or playwright: skipped on a developer's machine, a failure in CI (CI=true).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from dashboard_support import PASSWORD, SUBJECT_BOX, face_image
from raksha.api.app import create_app
from raksha.api.settings import ApiSettings
from raksha.auth.ratelimit import Limits
from raksha.config import RunConfig
from raksha.domain.routing import Route, UnitRoute
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import NewIncident
from raksha.store import IncidentStore
from raksha.web import web_for

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("RAKSHA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
A, B = "hazratganj", "aliganj"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(msg: str) -> None:
    if _in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def site(db_url: str, evidence: Path) -> RunConfig:
    return RunConfig.model_validate(
        {
            "storage": {"url": db_url},
            "evidence": {"dir": str(evidence)},
            "timezone": "Asia/Kolkata",
            "stations": [
                {"id": A, "name": "Hazratganj", "lat": 26.8500, "lon": 80.9462},
                {"id": B, "name": "Aliganj", "lat": 26.8930, "lon": 80.9390},
            ],
            "hotspots": [
                {
                    "id": f"{A}-crossing",
                    "name": "Hazratganj crossing",
                    "lat": 26.8522,
                    "lon": 80.9480,
                },
                {"id": f"{B}-market", "name": "Aliganj market", "lat": 26.8905, "lon": 80.9420},
            ],
            "patrol_units": [
                {"id": "hz-bike-1", "kind": "bike", "station": A, "lat": 26.8530, "lon": 80.9500},
                {"id": "hz-van-2", "kind": "van", "station": A, "lat": 26.8470, "lon": 80.9400},
            ],
            "cameras": [
                {"id": "cam-hz-1", "hotspot": f"{A}-crossing", "url": "file:///cams/hz1.mp4"},
                {"id": "cam-ag-1", "hotspot": f"{B}-market", "url": "file:///cams/ag1.mp4"},
            ],
        }
    )


def incident_for(station: str, hotspot: str) -> NewIncident:
    return NewIncident(
        camera_id="cam-hz-1" if station == A else "cam-ag-1",
        hotspot_id=hotspot,
        station_id=station,
        peak_distress=0.83,
        expression_at_peak={"fear": 0.61, "sadness": 0.22, "neutral": 0.1, "anger": 0.07},
        model_name="ferplus-8",
        model_sha256="b" * 64,
        thresholds={"enter_threshold": 0.55},
        route=Route(
            station,
            "jurisdiction",
            380.0,
            (
                UnitRoute("hz-bike-1", "bike", station, 260.0),
                UnitRoute("hz-van-2", "van", station, 1240.0),
            ),
        ),
        track_id=3,
        source_id="cam-hz-1",
        event_start_s=12.4,
        event_end_s=19.8,
        opened_at=datetime.now(UTC),
    )


class Server:
    """The dashboard app under uvicorn in a thread, on a free port."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class World:
    url: str
    writer_store: IncidentStore
    evidence: EvidenceWriter
    image: Any
    browser: Any


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[World]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the browser tests need the playwright package (pip install playwright)")
    if not CHROMIUM.exists():
        _unavailable(
            f"the browser tests need Debian's chromium at {CHROMIUM} (apt install chromium)"
        )
    folder = tmp_path_factory.mktemp("browser")
    cfg = site(f"sqlite:///{folder / 'raksha.db'}", folder / "evidence")
    store = IncidentStore.open(cfg.storage.url)
    settings = ApiSettings(
        events_poll_s=0.25,
        events_keepalive_s=2.0,
        login_limits=Limits(per_account=20, per_address=1000, window_s=900),
        totp_roles=(),  # (tested in test_second_factor.py)
    )
    app = create_app(cfg, store=store, settings=settings, web=web_for(cfg))
    users = app.state.raksha.users
    users.add("op_a", "operator", PASSWORD, station_id=A)
    users.add("op_b", "operator", PASSWORD, station_id=B)
    users.add("sup_a", "supervisor", PASSWORD, station_id=A)
    users.add("aud", "auditor", PASSWORD)
    users.add("adm", "admin", PASSWORD)
    store.set_camera_status("cam-hz-1", True, hotspot_id=f"{A}-crossing", station_id=A)
    store.set_camera_status(
        "cam-ag-1", False, hotspot_id=f"{B}-market", station_id=B, last_error="connection refused"
    )
    # The pipeline's own store: another connection pool on the same database.
    writer_store = IncidentStore.open(cfg.storage.url)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with Server(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield World(
                url,
                writer_store,
                EvidenceWriter(folder / "evidence"),
                face_image(faces_dir),
                browser,
            )
        finally:
            browser.close()
            writer_store.close()
            store.close()


class Tab:
    """One user's browser context and page, collecting console errors."""

    def __init__(self, w: World, viewport: dict[str, int] | None = None) -> None:
        self.w = w
        self.context = w.browser.new_context(viewport=viewport or DESKTOP, base_url=w.url)
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def login(self, username: str) -> None:
        self.page.goto("/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()

    def shot(self, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


def add_incident(w: World, station: str, hotspot: str) -> str:
    inc = incident_for(station, hotspot)
    evidence = w.evidence.capture(inc.id, w.image, SUBJECT_BOX)
    return w.writer_store.create_incident(inc, evidence, {"kind": "distress"}, ["store"])


def test_new_incident_appears_live_then_acknowledge_confirm_dispatch(world: World) -> None:
    op_a, op_b = Tab(world), Tab(world)
    try:
        op_a.page.goto("/incidents")
        assert op_a.page.url.endswith("/login?next=/incidents")
        op_a.shot("login")
        op_a.login("op_a")
        op_b.login("op_b")
        for tab in (op_a, op_b):
            assert tab.page.url.endswith("/incidents")
            tab.page.wait_for_selector("#live[data-state=live]")
        title_before = op_a.page.title()
        assert not title_before.startswith("(")

        incident_id = add_incident(world, A, f"{A}-crossing")
        start = time.monotonic()
        row = op_a.page.locator(f"#incident-rows tr[data-id='{incident_id}']")
        row.wait_for(state="visible", timeout=2000)
        seen_after = time.monotonic() - start
        assert seen_after < 2.0
        print(f"new incident visible in the list {seen_after:.2f} s after it was stored")
        assert "is-new" in (row.get_attribute("class") or "")
        assert op_a.page.title().startswith("(1) ")
        assert op_a.page.locator("#new-banner").is_visible()
        assert "New" in row.inner_text()
        op_a.shot("incidents-live-new")

        # The other station's operator: the event never reaches them, nor the row, nor the page.
        time.sleep(0.8)
        assert op_b.page.locator(f"tr[data-id='{incident_id}']").count() == 0
        assert not op_b.page.title().startswith("(")
        op_b.page.reload()
        assert op_b.page.locator(f"tr[data-id='{incident_id}']").count() == 0
        resp = op_b.page.goto(f"/incidents/{incident_id}")
        assert resp is not None and resp.status == 404
        assert incident_id[:8] not in op_b.page.content()
        assert op_b.errors == [
            "Failed to load resource: the server responded with a status of 404 (Not Found)"
        ]
        op_b.errors.clear()

        # Act on it: acknowledge, confirm, dispatch the nearest unit.
        row.locator("a.open-incident").click()
        op_a.page.wait_for_selector("#incident-state[data-state=NEW]")
        img = op_a.page.locator(".evidence img").first
        img.wait_for()
        op_a.page.wait_for_function(
            "() => document.querySelector('.evidence img').naturalWidth > 0"
        )
        op_a.shot("incident-new")
        op_a.page.click("button.action-acknowledge")
        op_a.page.wait_for_selector("#incident-state[data-state=ACKNOWLEDGED]")
        assert "Done: Acknowledge" in op_a.page.inner_text("#done")
        op_a.page.fill("textarea[name=note]", "Caller on site <b>confirms</b>")
        op_a.page.click("button.action-confirm")
        op_a.page.wait_for_selector("#incident-state[data-state=CONFIRMED]")
        assert op_a.page.locator("#unit option").all_inner_texts()[0].startswith("hz-bike-1")
        op_a.page.select_option("#unit", "hz-bike-1")
        op_a.page.click("button.action-dispatch")
        op_a.page.wait_for_selector("#incident-state[data-state=DISPATCHED]")
        history = op_a.page.inner_text("#history")
        assert "op_a: acknowledge" in history and "op_a: dispatch" in history
        assert "unit hz-bike-1" in history
        # The note is shown as text, not markup.
        assert "<b>confirms</b>" in history
        assert op_a.page.locator("#history b").count() == 0
        allowed = op_a.page.locator("#actions button").all_inner_texts()
        # (An officer may also record the unit's arrival, e.g. when it radios in.)
        assert allowed == ["Resolve", "Escalate", "On scene"]
        op_a.shot("incident-dispatched")

        # Back on the list: the state changed there too.
        op_a.page.goto("/incidents")
        assert "Dispatched" in op_a.page.locator(f"tr[data-id='{incident_id}']").inner_text()
        assert op_a.errors == [] and op_b.errors == []
    finally:
        op_a.close()
        op_b.close()


def test_phone_screens_map_and_audit(world: World) -> None:
    incident_id = add_incident(world, A, f"{A}-crossing")
    phone = Tab(world, PHONE)
    aud = Tab(world)
    try:
        phone.login("sup_a")
        phone.page.wait_for_selector(f"tr[data-id='{incident_id}']")
        width = phone.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the list is wider than a phone: {width}px"
        phone.shot("phone-incidents")
        phone.page.goto(f"/incidents/{incident_id}")
        assert phone.page.locator("form.unblur").count() >= 1  # supervisors may unblur
        assert phone.page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        phone.shot("phone-incident")
        # A colleague acts meanwhile: the open page says so instead of going stale.
        assert phone.page.locator("#changed-banner").is_hidden()
        world.writer_store.apply_action(incident_id, "acknowledge", "op_a")
        phone.page.locator("#changed-banner").wait_for(state="visible", timeout=2000)
        phone.page.goto("/map")
        phone.page.wait_for_selector("#map .leaflet-interactive")
        # Offline: no tile layer, only this site's files.
        assert phone.page.locator(".leaflet-tile").count() == 0
        assert phone.page.locator("#camera-table").inner_text().count("cam-") == 1  # own station
        phone.shot("phone-map")
        assert phone.errors == []

        aud.login("aud")
        assert aud.page.url.endswith("/audit")
        aud.page.click("#verify")
        assert "The chain is intact" in aud.page.inner_text("#verify-result")
        table = aud.page.inner_text("#audit-table")
        assert "incident.action" in table and "login.success" in table
        aud.shot("audit-verify")
        aud.page.goto("/map")
        assert aud.page.title().startswith("Error") or "403" in aud.page.content()
    finally:
        phone.close()
        aud.close()


def test_control_room_map_shows_every_station(world: World) -> None:
    tab = Tab(world)
    try:
        from raksha.auth.users import UserStore

        UserStore(world.writer_store.engine).add("cr", "control_room", PASSWORD)
        tab.login("cr")
        tab.page.goto("/map")
        tab.page.wait_for_selector("#map .leaflet-interactive")
        cams = tab.page.locator("#camera-table").inner_text()
        assert "cam-hz-1" in cams and "cam-ag-1" in cams and "connection refused" in cams
        markers = tab.page.locator("#map path.leaflet-interactive").count()
        assert markers >= 2 + 2 + 2 + 2  # stations, hotspots, units, cameras
        tab.shot("map-control-room")
        assert tab.errors == []
    finally:
        tab.close()


# ---- live clocks, escalations and the patrol unit's phone ------------------------------------

UNIT_TOKEN_ENV = "RAKSHA_BROWSER_TEST_UNIT_TOKEN"
UNIT_TOKEN = "hz-bike-1-device-token-0123456789"
#: Where the unit's phone says it is (about 170 m from the hotspot).
PHONE_AT = {"latitude": 26.8530, "longitude": 80.9495}
RECORD_NOTIFICATIONS = """
window.__shown = [];
(function () {
  if (window.ServiceWorkerRegistration) {
    ServiceWorkerRegistration.prototype.showNotification = function (title) {
      window.__shown.push(title);
      return Promise.resolve();
    };
  }
  var Real = window.Notification;
  if (!Real) return;
  var Fake = function (title, options) {
    window.__shown.push(title);
    return new Real(title, options);
  };
  Object.defineProperty(Fake, "permission", { get: function () { return Real.permission; } });
  Fake.requestPermission = Real.requestPermission.bind(Real);
  window.Notification = Fake;
})();
"""


def _seconds(countdown: str) -> int:
    m = re.search(r"within (\d+):(\d\d)$", countdown.strip())
    assert m, countdown
    return int(m.group(1)) * 60 + int(m.group(2))


def test_incident_page_counts_down_to_its_deadline(world: World) -> None:
    incident_id = add_incident(world, A, f"{A}-crossing")
    tab = Tab(world)
    try:
        tab.login("op_a")
        row = tab.page.locator(f"tr[data-id='{incident_id}'] [data-countdown]")
        assert row.inner_text().startswith("acknowledge within 0:")
        tab.page.goto(f"/incidents/{incident_id}")
        clock = tab.page.locator("#deadline [data-countdown]")
        first = clock.inner_text()
        age_first = tab.page.locator("#clock .age").inner_text()
        time.sleep(2.2)
        second = clock.inner_text()
        assert _seconds(second) < _seconds(first), (first, second)
        assert 40 <= _seconds(second) <= 60
        assert tab.page.locator("#clock .age").inner_text() != age_first
        assert "overdue" not in (clock.get_attribute("class") or "")
        # The evidence comes before the buttons on a phone, after them on a desktop.
        ev = tab.page.locator(".evidence").bounding_box()
        actions = tab.page.locator("#actions").bounding_box()
        assert ev is not None and actions is not None and actions["y"] < ev["y"]
        tab.page.set_viewport_size(PHONE)
        ev = tab.page.locator(".evidence").bounding_box()
        actions = tab.page.locator("#actions").bounding_box()
        assert ev is not None and actions is not None and ev["y"] < actions["y"]
        assert tab.page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        tab.shot("phone-incident-clock")
        # The alert settings open inside a phone's screen.
        tab.page.click("#alert-prefs summary")
        panel = tab.page.locator("#alert-prefs .panel").bounding_box()
        assert panel is not None and panel["x"] >= 0
        assert panel["x"] + panel["width"] <= PHONE["width"]
        tab.page.screenshot(path=str(SHOTS / "phone-alert-settings.png"))
        assert tab.errors == []
    finally:
        tab.close()


def test_escalation_arrives_live_with_an_alert(world: World) -> None:
    incident_id = add_incident(world, A, f"{A}-crossing")
    tab = Tab(world)
    lst = Tab(world)
    try:
        tab.context.grant_permissions(["notifications"])
        tab.context.add_init_script(RECORD_NOTIFICATIONS)
        tab.login("op_a")
        lst.login("op_a")
        tab.page.goto(f"/incidents/{incident_id}")
        # The officer turns on system notifications (a click: the browser asks then).
        tab.page.click("#alert-prefs summary")
        tab.page.check("#pref-notify")
        assert tab.page.is_checked("#pref-sound") and tab.page.is_checked("#pref-notify")
        prefs = tab.page.evaluate("() => JSON.parse(localStorage.getItem('raksha.alerts'))")
        assert prefs == {"sound": True, "vibrate": True, "notify": True}
        tab.page.click("#alert-prefs summary")
        for t in (tab, lst):
            t.page.wait_for_selector("body[data-live=live]")
        badge = tab.page.locator("#deadline .badge.escalated")
        assert badge.is_hidden()

        world.writer_store.apply_action(incident_id, "escalate", "system:escalation", "test")
        badge.wait_for(state="visible", timeout=3000)
        assert badge.inner_text() == "escalated ×1"
        assert tab.page.url.endswith(f"/incidents/{incident_id}")  # no reload
        tab.page.wait_for_function(
            "() => window.Raksha.alerted.some(t => t.includes('escalated ×1'))", timeout=2000
        )
        tab.page.wait_for_function(
            "() => window.__shown.some(t => t.includes('escalated ×1'))", timeout=3000
        )
        # The open list shows it too, without a reload.
        lst.page.locator(
            f"tr[data-id='{incident_id}'] .badge.escalated:has-text('escalated ×1')"
        ).wait_for(state="visible", timeout=3000)
        tab.shot("incident-escalated-live")
        assert tab.errors == [] and lst.errors == []
    finally:
        tab.close()
        lst.close()


@pytest.fixture(scope="module")
def unit_world(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A second dashboard whose patrol unit hz-bike-1 has a device token (its phone)."""
    folder = tmp_path_factory.mktemp("browser-unit")
    raw = site(f"sqlite:///{folder / 'raksha.db'}", folder / "evidence").model_dump(mode="json")
    for unit in raw["patrol_units"]:
        if unit["id"] == "hz-bike-1":
            unit["token_env"] = UNIT_TOKEN_ENV
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(UNIT_TOKEN_ENV, UNIT_TOKEN)  # read when the app is built
        cfg = RunConfig.model_validate(raw)
        store = IncidentStore.open(cfg.storage.url)
        settings = ApiSettings(
            events_poll_s=0.25,
            events_keepalive_s=2.0,
            login_limits=Limits(per_account=20, per_address=1000, window_s=900),
            totp_roles=(),
        )
        app = create_app(cfg, store=store, settings=settings, web=web_for(cfg))
        app.state.raksha.users.add("op_a", "operator", PASSWORD, station_id=A)
        writer_store = IncidentStore.open(cfg.storage.url)
        try:
            with Server(app) as url:
                yield World(
                    url,
                    writer_store,
                    EvidenceWriter(folder / "evidence"),
                    world.image,
                    world.browser,
                )
        finally:
            writer_store.close()
            store.close()


class PhoneTab(Tab):
    """A patrol unit's phone: 390x844, its position shared."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.context = w.browser.new_context(
            viewport=PHONE,
            base_url=w.url,
            geolocation=PHONE_AT,
            permissions=["geolocation"],
            has_touch=True,
            is_mobile=True,
        )
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))


def test_unit_phone_acknowledges_the_job_an_officer_sent(unit_world: World) -> None:
    w = unit_world
    inc = replace(incident_for(A, f"{A}-crossing"), lat=26.8522, lon=80.9480, place="Gate 2")
    evidence = w.evidence.capture(inc.id, w.image, SUBJECT_BOX)
    incident_id = w.writer_store.create_incident(inc, evidence, {"kind": "distress"}, ["store"])
    phone, officer = PhoneTab(w), Tab(w)
    try:
        # The unit's officer sets the phone up once: unit id and device token.
        phone.page.goto("/unit")
        phone.page.fill("#unit-id", "hz-bike-1")
        phone.page.fill("#unit-token", UNIT_TOKEN)
        phone.page.click("#unit-start")
        phone.page.wait_for_selector("#unit-conn[data-state=live]")
        assert phone.page.locator("#no-job").is_visible()
        saved = phone.page.evaluate("() => JSON.parse(localStorage.getItem('raksha.unit'))")
        assert saved == {"id": "hz-bike-1", "token": UNIT_TOKEN}
        # Its position reaches the dashboard (sent at most every 10 s).
        phone.page.locator("#pos-state:has-text('sent')").wait_for(timeout=5000)
        assert phone.page.inner_text("#unit-status") == "available"
        phone.shot("phone-unit-waiting")

        officer.login("op_a")
        officer.page.goto(f"/incidents/{incident_id}")
        officer.page.click("button.action-acknowledge")
        officer.page.wait_for_selector("#incident-state[data-state=ACKNOWLEDGED]")
        officer.page.click("button.action-confirm")
        officer.page.wait_for_selector("#incident-state[data-state=CONFIRMED]")
        first = officer.page.locator("#unit option").all_inner_texts()[0]
        assert first.startswith("hz-bike-1 (bike) · ") and first.endswith(" · live"), first
        officer.page.select_option("#unit", "hz-bike-1")
        officer.page.click("button.action-dispatch")
        officer.page.wait_for_selector("#incident-state[data-state=DISPATCHED]")
        assert "unit to acknowledge within" in officer.page.inner_text("#deadline")

        # The job card on the phone within a poll (3 s): both languages, picture, directions.
        phone.page.locator("#job").wait_for(state="visible", timeout=8000)
        assert phone.page.inner_text("#job-place") == "Gate 2"
        assert "Go now" in phone.page.inner_text("#job-text-en")
        assert "तुरंत जाएँ" in phone.page.inner_text("#job-text-hi")
        assert (phone.page.get_attribute("#job-directions", "href") or "").startswith("geo:26.8522")
        assert phone.page.locator("#job-picture").is_visible()
        assert phone.page.evaluate("() => document.getElementById('job-picture').naturalWidth") > 0
        assert "from you" in phone.page.inner_text("#job-distance")
        assert phone.page.inner_text("#unit-status") == "dispatched"
        assert "Acknowledge within" in phone.page.inner_text("#job-ack-within")
        assert phone.page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        box = phone.page.locator("#job-ack").bounding_box()
        assert box is not None and box["height"] >= 48  # a big touch target
        phone.shot("phone-unit-job")

        phone.page.click("#job-ack")
        phone.page.locator("#job-ack:has-text('Acknowledged')").wait_for(timeout=5000)
        assert phone.page.is_disabled("#job-ack")
        # The officer's page is told, and the history has the unit's acknowledgement.
        officer.page.locator("#changed-banner").wait_for(state="visible", timeout=3000)
        officer.page.reload()
        history = officer.page.inner_text("#history")
        assert "unit:hz-bike-1: unit_ack" in history, history

        phone.page.click("#job-on-scene")
        phone.page.locator("#unit-status:has-text('on scene')").wait_for(timeout=5000)
        officer.page.reload()
        assert "on_scene" in officer.page.inner_text("#history")
        phone.shot("phone-unit-on-scene")
        assert phone.errors == [] and officer.errors == []
    finally:
        phone.close()
        officer.close()


def test_map_shows_open_incidents_and_units_live(world: World) -> None:
    tab = Tab(world, PHONE)
    try:
        tab.login("op_a")
        tab.page.goto("/map")
        tab.page.wait_for_selector("#map .leaflet-interactive")
        tab.page.wait_for_selector("body[data-live=live]")
        before = tab.page.locator("#map path.incident-marker").count()
        incident_id = add_incident(world, A, f"{A}-crossing")
        tab.page.wait_for_function(
            f"() => document.querySelectorAll('#map path.incident-marker').length > {before}",
            timeout=4000,
        )
        labels = tab.page.locator(".map-label:not(.label-hidden)")
        assert labels.filter(has_text=incident_id[:8]).count() == 1
        # The visible labels do not cover each other.
        boxes = [b for b in (labels.nth(i).bounding_box() for i in range(labels.count())) if b]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                apart = (
                    a["x"] + a["width"] <= b["x"] + 1
                    or b["x"] + b["width"] <= a["x"] + 1
                    or a["y"] + a["height"] <= b["y"] + 1
                    or b["y"] + b["height"] <= a["y"] + 1
                )
                assert apart, (a, b)
        assert "Unit hz-van-2" in tab.page.inner_text("#map")
        assert tab.page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        tab.shot("phone-map-live")
        assert tab.errors == []
    finally:
        tab.close()


def test_a_push_notice_is_shown_by_the_service_worker(world: World) -> None:
    """The notice the server pushes for a new incident (`raksha.alerts.webpush.notice`),
    delivered to the page's service worker as a push service would (Chromium's DevTools
    protocol stands in for the push service, which this machine cannot reach), is shown as a
    system notification with no Raksha tab needed; a click target is the incident."""
    import json

    from raksha.alerts.outbox import PendingDelivery
    from raksha.alerts.webpush import notice

    incident_id = add_incident(world, A, f"{A}-crossing")
    tab = Tab(world)
    try:
        tab.context.grant_permissions(["notifications"])
        tab.login("op_a")
        tab.page.goto("/incidents")
        tab.page.click("#alert-prefs summary")
        tab.page.check("#pref-notify")
        cdp = tab.context.new_cdp_session(tab.page)
        registrations: list[dict[str, Any]] = []
        cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda e: registrations.extend(e["registrations"]),
        )
        cdp.send("ServiceWorker.enable")
        tab.page.wait_for_function(
            "() => navigator.serviceWorker.getRegistration('/static/')"
            ".then(r => !!(r && r.active))",
            timeout=10_000,
        )
        # Push is not configured on this server: the page says so and asks nothing of it.
        assert tab.page.evaluate("() => window.Raksha.push") == "not offered"
        deadline = time.monotonic() + 5
        while not registrations and time.monotonic() < deadline:
            time.sleep(0.1)
        reg = next(r for r in registrations if r["scopeURL"].endswith("/static/"))
        delivery = PendingDelivery(
            1,
            "push",
            "0b6e4c52-2d0f-4f0e-9a5e-3c1f1a2b3c4d",
            incident_id,
            A,
            {
                "event": "new",
                "place": "Hazratganj crossing",
                "station_name": "Hazratganj",
                "priority": "high",
            },
            0,
        )
        data = json.dumps(notice(delivery))
        shown: list[Any] = []
        # Chromium now and then drops a message delivered while its worker is being woken:
        # a push service retries, so the test does too (the tag makes a repeat replace it).
        for _attempt in range(3):
            cdp.send(
                "ServiceWorker.deliverPushMessage",
                {"origin": world.url, "registrationId": reg["registrationId"], "data": data},
            )
            deadline = time.monotonic() + 3
            while not shown and time.monotonic() < deadline:
                shown = tab.page.evaluate(
                    """() => navigator.serviceWorker.getRegistration('/static/')
                         .then(r => r.getNotifications())
                         .then(ns => ns.map(n => [n.title, n.body, n.tag, n.data && n.data.url]))"""
                )
                time.sleep(0.1)
            if shown:
                break
        assert shown, ("the service worker showed no notification", registrations, tab.errors)
        title, body, tag, url = shown[0]
        assert title == "Raksha: a person may need help"
        assert body.startswith("HIGH PRIORITY. Hazratganj crossing")
        assert tag == delivery.alert_id and url == f"/incidents/{incident_id}"
        assert tab.errors == []
    finally:
        tab.close()


# ---- the list's keyboard shortcuts and dark mode ---------------------------------------------


def _rgb(css: str) -> tuple[float, float, float]:
    m = re.match(r"rgba?\((\d+), (\d+), (\d+)", css)
    assert m, css
    r, g, b = (int(x) for x in m.groups())
    return (r, g, b)


def _luminance(css: str) -> float:
    def channel(c: float) -> float:
        c = c / 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


#: [text colour, background colour] of an element.
COLOURS = "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }"


def test_list_keyboard_shortcuts_and_dark_mode(world: World) -> None:
    add_incident(world, A, f"{A}-crossing")
    add_incident(world, A, f"{A}-crossing")
    tab = Tab(world)
    try:
        tab.login("op_a")
        tab.page.wait_for_selector("#live[data-state=live]")
        ids = tab.page.locator("#incident-rows tr[data-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.id)"
        )
        assert len(ids) >= 2
        # '?' shows the shortcuts, Escape hides them.
        tab.page.keyboard.press("?")
        assert tab.page.locator("#shortcuts").is_visible()
        tab.page.keyboard.press("Escape")
        assert tab.page.locator("#shortcuts").is_hidden()
        # '/' goes to the search box; keys typed there are text, not shortcuts.
        tab.page.keyboard.press("/")
        assert tab.page.evaluate("() => document.activeElement.id") == "incident-search"
        tab.page.keyboard.type("jj")
        assert tab.page.input_value("#incident-search") == "jj"
        assert tab.page.locator("#incident-rows tr.selected").count() == 0
        tab.page.fill("#incident-search", "")
        tab.page.keyboard.press("Escape")
        # j, j, Enter: the second incident of the list opens.
        tab.page.keyboard.press("j")
        tab.page.keyboard.press("j")
        assert tab.page.locator("#incident-rows tr.selected").get_attribute("data-id") == ids[1]
        tab.page.keyboard.press("k")
        assert tab.page.locator("#incident-rows tr.selected").get_attribute("data-id") == ids[0]
        tab.page.keyboard.press("j")
        tab.page.keyboard.press("Enter")
        tab.page.wait_for_url(f"**/incidents/{ids[1]}")
        tab.page.wait_for_selector("#incident-state")

        # Dark mode follows the system setting: dark surfaces, readable text and badges.
        tab.page.emulate_media(color_scheme="dark")
        tab.page.goto("/incidents?view=all")
        body = tab.page.locator("body").evaluate(COLOURS)
        assert _luminance(body[1]) < 0.05, body
        assert _contrast(*body) >= 7, body
        badge = tab.page.locator("#incident-rows .badge").first.evaluate(COLOURS)
        assert _contrast(*badge) >= 4.5, badge
        table = tab.page.locator("table.incidents").evaluate(COLOURS)
        cell = tab.page.locator("#incident-rows td").first.evaluate(COLOURS)
        assert _luminance(table[1]) < 0.05 and _contrast(cell[0], table[1]) >= 7, (cell, table)
        field = tab.page.locator("#incident-search").evaluate(COLOURS)
        assert _luminance(field[1]) < 0.05 and _contrast(*field) >= 7, field
        tab.shot("incidents-dark")
        tab.page.goto("/map")
        tab.page.wait_for_selector("#map .leaflet-interactive")
        zoom = tab.page.locator(".leaflet-control-zoom-in").evaluate(COLOURS)
        assert _luminance(zoom[1]) < 0.05 and _contrast(*zoom) >= 4.5, zoom
        tab.shot("map-dark")
        tab.page.emulate_media(color_scheme="light")
        light = tab.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert _luminance(light) > 0.8
        assert tab.errors == []
    finally:
        tab.close()


DAILY_PAGES = {
    "sup_a": [
        "/incidents?view=all&state=NEW&from=2025-01-01&score=10",
        "/stats?days=30",
        "/reports?days=30",
    ],
    "adm": ["/users", "/users?done=added&user=op_a"],
}


@pytest.mark.parametrize("lang", ["en", "hi"])
def test_daily_pages_fit_a_phone_in_both_languages_and_dark(world: World, lang: str) -> None:
    """The daily tools (filtered list, statistics, reports, user administration) on a phone,
    in English and in Hindi, in dark mode: nothing wider than the screen, text readable
    against its background, no script error."""
    add_incident(world, A, f"{A}-crossing")
    for who, paths in DAILY_PAGES.items():
        tab = Tab(world, PHONE)
        try:
            tab.context.add_cookies([{"name": "lang", "value": lang, "url": world.url}])
            tab.page.emulate_media(color_scheme="dark")
            bad: list[str] = []
            tab.page.on(
                "response", lambda r, bad=bad: bad.append(r.url) if r.status >= 400 else None
            )
            tab.login(who)
            for path in paths:
                tab.page.goto(path)
                tab.page.wait_for_load_state()
                assert tab.page.locator("html").get_attribute("lang") == lang, path
                width = tab.page.evaluate("() => document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{path} ({lang}) is {width}px wide on a phone"
                body = tab.page.locator("body").evaluate(COLOURS)
                assert _luminance(body[1]) < 0.05 and _contrast(*body) >= 7, (path, body)
                heading = tab.page.locator("main h1, h1").first.evaluate(COLOURS)
                assert _contrast(heading[0], body[1]) >= 4.5, (path, heading)
                # Times in the deployment's zone, with the date and the zone's name (the
                # browser itself runs in UTC here).
                for text in tab.page.locator("time[datetime]").all_inner_texts():
                    assert "2026" in text or "2027" in text, (path, text)
                    assert "IST" in text or "GMT+5:30" in text, (path, text)
                tab.shot(f"phone-{lang}-{who}-{path.strip('/').split('?')[0]}")
            assert tab.errors == [] and bad == [], (tab.errors, bad)
        finally:
            tab.close()
