"""The watchlist page (issue 20, stage 4): pending matches with both faces and the decision
buttons, for supervisors and the control room only, in English and Hindi."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard_support import (
    KEY_ENV,
    PASSWORD,
    STATION_A,
    STATION_B,
    fast_settings,
    site_config,
)
from raksha.api.app import create_app
from raksha.audit.log import AuditLog
from raksha.incidents.evidence import encrypt_bytes
from raksha.site.config import WatchlistConfig
from raksha.store import watchlist as wl
from raksha.store.repository import IncidentStore
from raksha.web import web_for
from raksha.web.settings import WebSettings

USERS = {
    "op_a": ("operator", STATION_A),
    "sup_a": ("supervisor", STATION_A),
    "sup_a2": ("supervisor", STATION_A),
    "sup_b": ("supervisor", STATION_B),
}


def _jpeg(shade: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((64, 64, 3), shade, np.uint8))
    assert ok
    return bytes(buf.tobytes())


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FastAPI, str]]:
    from cryptography.fernet import Fernet

    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    key = os.environ[KEY_ENV].encode()
    cfg = site_config(f"sqlite:///{tmp_path / 'raksha.db'}", tmp_path / "evidence", encrypt=True)
    cfg = cfg.model_copy(update={"watchlist": WatchlistConfig(threshold=0.45)})
    store = IncidentStore.open(cfg.storage.url)
    application = create_app(
        cfg, store=store, settings=fast_settings(web=True), web=web_for(cfg, WebSettings())
    )
    for name, (role, station) in USERS.items():
        application.state.raksha.users.add(name, role, PASSWORD, station_id=station)
    now = datetime.now(UTC)
    person = wl.Person("P-7", "wanted", "warrant", "case file", "SI Verma", now, now + timedelta(9))
    alert_id = str(uuid.uuid4())
    with store.engine.begin() as c:
        wl.add_person(c, person, [(encrypt_bytes(b"\0" * 1024, key), encrypt_bytes(_jpeg(9), key))])
        wl.insert_alert(
            c,
            wl.WatchlistAlert(
                alert_id, "P-7", "cam-a", STATION_A, now, 0.58, encrypt_bytes(_jpeg(99), key)
            ),
        )
    with TestClient(application):
        yield application, alert_id
    store.close()


def _login(app: FastAPI, who: str, lang: str = "en") -> TestClient:
    c = TestClient(app, headers={"Accept-Language": lang})
    r = c.post("/login", data={"username": who, "password": PASSWORD, "next": "/"})
    assert r.status_code == 200, r.text
    return c


def _csrf(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m is not None
    return m.group(1)


def test_the_page_shows_both_faces_and_two_officers_decide(app: tuple[FastAPI, str]) -> None:
    application, alert_id = app
    sup = _login(application, "sup_a")
    html = sup.get("/watchlist").text
    assert 'href="/watchlist"' in html, "the menu links the page"
    assert html.count('src="data:image/jpeg;base64,') == 2 and "0.580" in html
    assert f'action="/watchlist/{alert_id}/decide"' in html
    entries = AuditLog(application.state.raksha.store.engine).entries()
    views = [(e.actor, e.target) for e in entries if e.action == "watchlist.view"]
    assert views == [("sup_a", f"watchlist_alert:{alert_id}")]
    url = f"/watchlist/{alert_id}/decide"
    r = sup.post(
        url, data={"decision": "confirm", "csrf_token": _csrf(html)}, follow_redirects=False
    )
    assert r.status_code == 303
    html = sup.get("/watchlist").text
    assert "You have decided this match; another officer must decide." in html
    assert "sup_a" in html  # confirmed by
    again = sup.post(url, data={"decision": "confirm", "csrf_token": _csrf(html)})
    assert again.status_code == 409
    other = _login(application, "sup_a2")
    page = other.get("/watchlist").text
    r = other.post(url, data={"decision": "confirm", "csrf_token": _csrf(page)})
    assert r.status_code == 200 and "No pending matches." in r.text


def test_other_roles_get_404_and_the_page_speaks_hindi(app: tuple[FastAPI, str]) -> None:
    application, _ = app
    op = _login(application, "op_a")
    assert op.get("/watchlist").status_code == 404
    assert 'href="/watchlist"' not in op.get("/incidents").text
    html = _login(application, "sup_a", "hi").get("/watchlist").text
    assert "वॉचलिस्ट मिलान" in html and "पुष्टि करें: वही व्यक्ति है" in html
    assert "Confirm: same person" not in html


def test_no_csrf_is_403_and_another_stations_supervisor_gets_404(
    app: tuple[FastAPI, str],
) -> None:
    application, alert_id = app
    url = f"/watchlist/{alert_id}/decide"
    sup = _login(application, "sup_a")
    assert sup.post(url, data={"decision": "confirm"}).status_code == 403
    other = _login(application, "sup_b")
    page = other.get("/watchlist").text
    assert alert_id not in page
    r = other.post(url, data={"decision": "confirm", "csrf_token": _csrf(page)})
    assert r.status_code == 404 and "No such match." in r.text
    with application.state.raksha.store.engine.connect() as c:
        assert wl.decisions(c, alert_id) == [], "a refused post decided something"


def test_a_double_click_is_409_on_the_page_not_a_database_error(
    app: tuple[FastAPI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    application, alert_id = app
    url = f"/watchlist/{alert_id}/decide"
    sup = _login(application, "sup_a")
    html = sup.get("/watchlist").text
    data = {"decision": "confirm", "csrf_token": _csrf(html)}
    assert sup.post(url, data=data, follow_redirects=False).status_code == 303
    # The second click's check ran before the first click's decision was stored: the
    # UNIQUE constraint refuses it, and the page says so (409), not a 503 in JSON.
    monkeypatch.setattr(wl, "decisions", lambda c, alert_id: [])
    r = sup.post(url, data=data)
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
    assert "You have decided this match already" in r.text


def test_the_menu_counts_waiting_matches_and_confirmed_ones_stay_listed(
    app: tuple[FastAPI, str],
) -> None:
    """The count the menu polls: in scope, 404 for others, not audited (no name, no face).
    A match two officers confirmed leaves the count and is listed for a day, with who
    confirmed it and the reminder that it dispatches nobody; listing it is audited."""
    application, alert_id = app
    engine = application.state.raksha.store.engine
    sup = _login(application, "sup_a")
    assert sup.get("/api/watchlist/pending").json() == {"pending": 1}
    assert _login(application, "sup_b").get("/api/watchlist/pending").json() == {"pending": 0}
    assert _login(application, "op_a").get("/api/watchlist/pending").status_code == 404
    assert not [e for e in AuditLog(engine).entries() if e.action.startswith("watchlist.")]
    url = f"/watchlist/{alert_id}/decide"
    for name in ("sup_a", "sup_a2"):
        officer = _login(application, name)
        html = officer.get("/watchlist").text
        r = officer.post(url, data={"decision": "confirm", "csrf_token": _csrf(html)})
        assert r.status_code == 200
    assert sup.get("/api/watchlist/pending").json() == {"pending": 0}
    html = sup.get("/watchlist").text
    assert f'id="confirmed-{alert_id}"' in html and "sup_a, sup_a2" in html
    assert "dispatches nobody by itself" in html
    assert alert_id not in _login(application, "sup_b").get("/watchlist").text
    listed = [
        e
        for e in AuditLog(engine).entries()
        if e.action == "watchlist.list" and e.details.get("state") == "confirmed"
    ]
    assert any(e.actor == "sup_a" and e.details["alerts"] == [alert_id] for e in listed)
    hindi = _login(application, "sup_a", "hi").get("/watchlist").text
    assert "पिछले 24 घंटों में पुष्टि हुए" in hindi


def test_the_menu_badge_shows_a_new_match_in_the_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In Chromium: the supervisor's menu shows how many matches wait, and a new match
    raised while the page is open moves the count within one poll (15 s) and alerts."""
    from cryptography.fernet import Fernet

    from test_browser import CHROMIUM, CHROMIUM_ARGS, Server, _unavailable

    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the browser tests need the playwright package")
    if not CHROMIUM.exists():
        _unavailable(f"the browser tests need Debian's chromium at {CHROMIUM}")
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    key = os.environ[KEY_ENV].encode()
    cfg = site_config(f"sqlite:///{tmp_path / 'raksha.db'}", tmp_path / "evidence", encrypt=True)
    cfg = cfg.model_copy(update={"watchlist": WatchlistConfig(threshold=0.45)})
    store = IncidentStore.open(cfg.storage.url)
    application = create_app(
        cfg, store=store, settings=fast_settings(web=True), web=web_for(cfg, WebSettings())
    )
    application.state.raksha.users.add("sup_a", "supervisor", PASSWORD, station_id=STATION_A)
    now = datetime.now(UTC)
    person = wl.Person("P-7", "wanted", "warrant", "case file", "SI Verma", now, now + timedelta(9))

    def match() -> str:
        alert_id = str(uuid.uuid4())
        with store.engine.begin() as c:
            wl.insert_alert(
                c,
                wl.WatchlistAlert(
                    alert_id, "P-7", "cam-a", STATION_A, datetime.now(UTC), 0.6, None
                ),
            )
        return alert_id

    with store.engine.begin() as c:
        wl.add_person(c, person, [(encrypt_bytes(b"\0" * 1024, key), encrypt_bytes(_jpeg(9), key))])
    match()
    try:
        with Server(application) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(base_url=url).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto("/login")
                page.fill("input[name=username]", "sup_a")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state()
                badge = page.locator("#watchlist-pending")
                badge.wait_for(state="visible", timeout=10_000)
                assert badge.inner_text() == "1"
                assert "1 watchlist match waits for a decision" in (
                    badge.get_attribute("title") or ""
                )
                match()
                expect(badge).to_have_text("2", timeout=25_000)
                alerted = page.evaluate("window.Raksha.alerted.slice()")
                assert "Watchlist match to decide" in alerted
                assert errors == []
            finally:
                browser.close()
    finally:
        store.close()
