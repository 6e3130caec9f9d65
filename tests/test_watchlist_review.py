"""Two-person adjudication of watchlist matches (issue 20, stage 3): the API's rules.

A match is confirmed only when two different officers confirm it; either may reject it; the
same officer cannot decide twice (409); every view is audited with the viewer's name; roles
without `Rule.WATCHLIST` get 404, and so does another station's supervisor."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from dashboard_support import KEY_ENV, STATION_A, STATION_B, Dash, dashboard
from raksha.audit.log import AuditLog
from raksha.incidents.evidence import encrypt_bytes
from raksha.store import watchlist as wl

USERS = {
    "op_a": ("operator", STATION_A),
    "sup_a": ("supervisor", STATION_A),
    "sup_a2": ("supervisor", STATION_A),
    "sup_b": ("supervisor", STATION_B),
    "cr": ("control_room", None),
    "aud": ("auditor", None),
    "adm": ("admin", None),
}


def _jpeg(shade: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((64, 64, 3), shade, np.uint8))
    assert ok
    return bytes(buf.tobytes())


@pytest.fixture(params=["sqlite", "postgresql"])
def dash(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    faces_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Dash]:
    from cryptography.fernet import Fernet

    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    with dashboard(request.param, tmp_path, faces_dir, users=USERS, encrypt=True) as d:
        key = os.environ[KEY_ENV].encode()
        now = datetime.now(UTC)
        person = wl.Person(
            "P-1", "wanted", "warrant 1/2026", "case file", "SI Verma", now, now + timedelta(30)
        )
        with d.store.engine.begin() as c:
            wl.add_person(
                c, person, [(encrypt_bytes(b"\0" * 1024, key), encrypt_bytes(_jpeg(200), key))]
            )
        yield d


def _alert(d: Dash, station: str = STATION_A) -> str:
    key = os.environ[KEY_ENV].encode()
    alert_id = str(uuid.uuid4())
    alert = wl.WatchlistAlert(
        alert_id, "P-1", "cam-a", station, datetime.now(UTC), 0.61, encrypt_bytes(_jpeg(50), key)
    )
    with d.store.engine.begin() as c:
        wl.insert_alert(c, alert)
    return alert_id


def _decide(d: Dash, who: str, alert_id: str, decision: str) -> tuple[int, dict[str, object]]:
    r = d.post(who, f"/api/watchlist/alerts/{alert_id}/decision", json={"decision": decision})
    return r.status_code, r.json()


def test_two_different_officers_must_confirm(dash: Dash) -> None:
    a = _alert(dash)
    code, body = _decide(dash, "sup_a", a, "confirm")
    assert code == 200 and body["state"] == "pending" and body["confirmations"] == 1
    assert body["confirmations_needed"] == 2
    code, body = _decide(dash, "sup_a", a, "confirm")
    assert code == 409 and "a second officer must decide" in str(body["detail"])
    code, body = _decide(dash, "sup_a", a, "reject")
    assert code == 409, "nor may the same officer change their mind into a second decision"
    code, body = _decide(dash, "cr", a, "confirm")
    assert code == 200 and body["state"] == "confirmed" and body["closed_at"]
    assert [d["officer"] for d in body["decisions"]] == ["sup_a", "cr"]  # type: ignore[index]
    code, _ = _decide(dash, "sup_a2", a, "confirm")
    assert code == 409, "a closed alert takes no more decisions"
    entries = [e for e in AuditLog(dash.store.engine).entries() if e.action == "watchlist.decision"]
    assert [(e.actor, e.details["state"]) for e in entries] == [
        ("sup_a", "pending"),
        ("cr", "confirmed"),
    ]
    assert entries[-1].details["confirmed_by"] == ["cr", "sup_a"]


def test_either_officer_can_reject(dash: Dash) -> None:
    first = _alert(dash)
    code, body = _decide(dash, "sup_a", first, "reject")
    assert code == 200 and body["state"] == "rejected"
    second = _alert(dash)
    assert _decide(dash, "sup_a", second, "confirm")[1]["state"] == "pending"
    code, body = _decide(dash, "sup_a2", second, "reject")
    assert code == 200 and body["state"] == "rejected"
    listed = dash.client("sup_a").get("/api/watchlist/alerts").json()["alerts"]
    assert listed == [], "closed alerts leave the pending list"


def test_viewing_shows_both_faces_and_the_score_and_is_audited(dash: Dash) -> None:
    a = _alert(dash)
    for who in ("sup_a", "cr", "sup_a"):
        r = dash.client(who).get(f"/api/watchlist/alerts/{a}")
        assert r.status_code == 200
    body = r.json()
    assert body["score"] == pytest.approx(0.61) and body["person_id"] == "P-1"
    probe = base64.b64decode(body["probe_thumbnail_jpeg"])
    enrolled = base64.b64decode(body["enrolled_thumbnail_jpeg"])
    assert probe.startswith(b"\xff\xd8") and enrolled.startswith(b"\xff\xd8")
    assert probe != enrolled
    views = [e for e in AuditLog(dash.store.engine).entries() if e.action == "watchlist.view"]
    assert [e.actor for e in views] == ["sup_a", "cr", "sup_a"]
    assert all(e.target == f"watchlist_alert:{a}" for e in views)


def test_scope_and_roles_without_the_permission_get_404(dash: Dash) -> None:
    own, other = _alert(dash, STATION_A), _alert(dash, STATION_B)
    assert {
        x["id"] for x in dash.client("sup_a").get("/api/watchlist/alerts").json()["alerts"]
    } == {own}
    assert {x["id"] for x in dash.client("cr").get("/api/watchlist/alerts").json()["alerts"]} == {
        own,
        other,
    }
    for who in ("op_a", "aud", "adm"):
        assert dash.client(who).get("/api/watchlist/alerts").status_code == 404
        assert dash.client(who).get(f"/api/watchlist/alerts/{own}").status_code == 404
        assert _decide(dash, who, own, "confirm")[0] == 404
    # Another station's supervisor: as if it did not exist.
    assert dash.client("sup_b").get(f"/api/watchlist/alerts/{own}").status_code == 404
    assert _decide(dash, "sup_b", own, "confirm")[0] == 404
    assert dash.client("sup_a").get(f"/api/watchlist/alerts/{uuid.uuid4()}").status_code == 404
    # A permitted role without the CSRF token is refused as such, not hidden.
    r = dash.client("sup_a").post(
        f"/api/watchlist/alerts/{own}/decision", json={"decision": "confirm"}
    )
    assert r.status_code == 403
    # Nothing was decided by any of the refused calls.
    with dash.store.engine.connect() as c:
        assert wl.decisions(c, own) == [] and wl.decisions(c, other) == []
