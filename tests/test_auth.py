"""Users, Argon2 passwords, server-side sessions with expiry, CSRF, cookie flags, login
throttling per account and per address, and the `raksha users` commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dashboard_support import (
    PASSWORD,
    STATION_A,
    STATION_B,
    Dash,
    add_incident,
    dashboard,
    database,
    fast_settings,
)
from raksha.audit import AuditLog
from raksha.auth.errors import AuthError
from raksha.auth.passwords import hash_password, verify_password
from raksha.auth.ratelimit import Limits, LoginLimiter
from raksha.auth.sessions import SessionStore
from raksha.auth.users import UserStore
from raksha.cli import app as cli_app
from raksha.incidents.model import utcnow
from raksha.store import IncidentStore


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[Dash]:
    """One app for the module (Argon2 is slow on purpose); each test uses its own users and
    its own client address, so throttling in one test does not leak into another."""
    settings = fast_settings(login_limits=Limits(per_account=3, per_address=4, window_s=600))
    with dashboard(
        "sqlite",
        tmp_path_factory.mktemp("auth"),
        faces_dir,
        users={"op_a": ("operator", STATION_A), "adm": ("admin", None)},
        settings=settings,
    ) as d:
        for name in ("locked", "victim"):
            d.app.state.raksha.users.add(name, "operator", PASSWORD, station_id=STATION_A)
        yield d


_ADDR = iter(range(1, 250))


def _client(dash: Dash, **kw: object) -> TestClient:
    """A client from an address of its own."""
    return TestClient(dash.app, client=(f"10.9.0.{next(_ADDR)}", 40000), **kw)  # type: ignore[arg-type]


# ---- passwords and users ----------------------------------------------------------------------


def test_argon2id_hashes_and_policy() -> None:
    h = hash_password(PASSWORD)
    assert h.startswith("$argon2id$") and PASSWORD not in h
    assert verify_password(PASSWORD, h)
    assert not verify_password(PASSWORD + "x", h)
    assert not verify_password(PASSWORD, "not-a-hash")
    with pytest.raises(AuthError, match="at least 12"):
        hash_password("short")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_user_store_rules(kind: str, tmp_path: Path) -> None:
    with database(kind, tmp_path) as url:
        store = IncidentStore.open(url)
        users = UserStore(store.engine)
        assert users.list() == []  # no default or built-in accounts
        with pytest.raises(AuthError, match="give --station"):
            users.add("ann", "operator", PASSWORD)
        with pytest.raises(AuthError, match="not bound to a station"):
            users.add("ann", "auditor", PASSWORD, station_id=STATION_A)
        with pytest.raises(AuthError, match="unknown station"):
            users.add("ann", "supervisor", PASSWORD, station_id="x", known_stations=[STATION_A])
        with pytest.raises(AuthError, match="unknown role"):
            users.add("ann", "superuser", PASSWORD)
        ann = users.add("ann", "supervisor", PASSWORD, station_id=STATION_A)
        with pytest.raises(AuthError, match="already exists"):
            users.add("ann", "admin", PASSWORD)
        assert users.authenticate("ann", PASSWORD) == users.get("ann")
        assert users.authenticate("ann", "wrong password!") is None
        assert users.authenticate("nobody", PASSWORD) is None
        users.set_disabled("ann")
        assert users.authenticate("ann", PASSWORD) is None
        assert "password" not in str(ann.to_json())
        # Sessions: idle expiry and absolute expiry end them on the server.
        sessions = SessionStore(store.engine, idle_s=60, absolute_s=120)
        new = sessions.create(ann.id, address="10.0.0.1")
        now = utcnow()
        assert sessions.touch(new.token, now=now + timedelta(seconds=50)) is not None
        assert sessions.touch(new.token, now=now + timedelta(seconds=100)) is not None
        assert sessions.touch(new.token, now=now + timedelta(seconds=125)) is None  # absolute
        assert sessions.peek(new.token) is None  # the expired row was deleted
        idle = sessions.create(ann.id)
        assert sessions.touch(idle.token, now=utcnow() + timedelta(seconds=61)) is None
        assert sessions.touch("forged-token") is None
        store.close()


# ---- login, logout, cookies, CSRF ---------------------------------------------------------


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_the_session(dash: Dash) -> None:
    c = _client(dash)
    r = c.post("/api/login", json={"username": "op_a", "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    token = c.cookies.get("raksha_session")
    assert token and token not in r.text
    csrf = r.json()["csrf_token"]
    assert c.get("/api/me").json()["user"]["username"] == "op_a"
    assert c.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    # The old cookie replayed after logout is refused: the session ended on the server.
    replay = TestClient(dash.app, cookies={"raksha_session": token})
    assert replay.get("/api/me").status_code == 401


def test_cookie_is_secure_over_https(dash: Dash) -> None:
    c = _client(dash, base_url="https://testserver")
    r = c.post("/api/login", json={"username": "op_a", "password": PASSWORD})
    assert r.status_code == 200 and "Secure" in r.headers["set-cookie"]


def test_csrf_token_required_on_state_changes(dash: Dash) -> None:
    inc = add_incident(dash.store, dash.writer, dash.image, STATION_A)
    c = _client(dash)
    csrf = c.post("/api/login", json={"username": "op_a", "password": PASSWORD}).json()[
        "csrf_token"
    ]
    url = f"/api/incidents/{inc}/actions"
    assert c.post(url, json={"action": "acknowledge"}).status_code == 403
    bad = c.post(url, json={"action": "acknowledge"}, headers={"X-CSRF-Token": "guess"})
    assert bad.status_code == 403
    assert dash.store.get_incident(inc).state.value == "NEW"  # type: ignore[union-attr]
    ok = c.post(url, json={"action": "acknowledge"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["incident"]["state"] == "ACKNOWLEDGED"
    # A form post may carry the token as a field (the web pages do).
    form = c.post("/api/logout", data={"csrf_token": csrf})
    assert form.status_code == 200
    assert c.get("/api/me").status_code == 401


def test_wrong_password_and_unknown_user_look_the_same_and_are_audited(dash: Dash) -> None:
    c = _client(dash)
    a = c.post("/api/login", json={"username": "op_a", "password": "wrong password!"})
    b = c.post("/api/login", json={"username": "ghost", "password": "wrong password!"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()
    actions = [(e.actor, e.action) for e in AuditLog(dash.store.engine).entries(limit=100)]
    assert ("op_a", "login.success") in actions
    assert ("op_a", "login.failure") in actions and ("ghost", "login.failure") in actions
    assert "set-cookie" not in a.headers


def test_default_accounts_do_not_exist(dash: Dash) -> None:
    c = _client(dash)
    for name, pw in (("admin", "admin"), ("root", "root"), ("raksha", "raksha")):
        assert c.post("/api/login", json={"username": name, "password": pw}).status_code == 401


def test_login_throttled_per_account(dash: Dash) -> None:
    c = _client(dash)
    for _ in range(3):
        r = c.post("/api/login", json={"username": "locked", "password": "wrong password!"})
        assert r.status_code == 401
    # From the guessing address even the right password is refused now, with a Retry-After.
    r = c.post("/api/login", json={"username": "locked", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "account" in r.json()["detail"]
    assert AuditLog(dash.store.engine).entries(action="login.throttled")
    # The officer at another address is not locked out by someone else's guesses.
    r = _client(dash).post("/api/login", json={"username": "locked", "password": PASSWORD})
    assert r.status_code == 200
    # Another account from the guessing address still works.
    assert c.post("/api/login", json={"username": "adm", "password": PASSWORD}).status_code == 200


def test_login_throttled_per_address(dash: Dash) -> None:
    c = _client(dash)
    for i in range(4):
        r = c.post("/api/login", json={"username": f"spray{i}", "password": "wrong password!"})
        assert r.status_code == 401
    r = c.post("/api/login", json={"username": "adm", "password": PASSWORD})
    assert r.status_code == 429 and "address" in r.json()["detail"]


def test_limiter_window_slides() -> None:
    now = [1000.0]
    lim = LoginLimiter(Limits(per_account=2, per_address=10, window_s=60), clock=lambda: now[0])
    lim.begin("Ann", "1.2.3.4")  # counted before the check; a wrong password leaves it
    lim.begin("ann", "1.2.3.4")
    blocked = lim.blocked("ANN", "1.2.3.4")  # (names are not case-sensitive)
    assert blocked is not None and blocked[0] == "account" and 1 <= blocked[1] <= 60
    assert lim.blocked("ann", "5.6.7.8") is None  # another address is not
    now[0] += 61
    assert lim.blocked("ann", "1.2.3.4") is None
    lim.begin("ann", "1.2.3.4")
    lim.succeeded("ann", "1.2.3.4")
    lim.begin("ann", "1.2.3.4")
    assert lim.blocked("ann", "1.2.3.4") is None  # success cleared the account's count


def test_disabling_a_user_ends_their_sessions(dash: Dash) -> None:
    victim = _client(dash)
    victim.post("/api/login", json={"username": "victim", "password": PASSWORD})
    assert victim.get("/api/me").status_code == 200
    r = dash.post("adm", "/api/users/victim/disable")
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert victim.get("/api/me").status_code == 401
    again = _client(dash).post("/api/login", json={"username": "victim", "password": PASSWORD})
    assert again.status_code == 401
    entries = AuditLog(dash.store.engine).entries(action="user.disable")
    assert entries and entries[0].actor == "adm" and entries[0].target == "user:victim"


# ---- raksha users ---------------------------------------------------------------------------


def test_users_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "raksha.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"url": f"sqlite:///{tmp_path / 'r.db'}"},
                "stations": [
                    {"id": STATION_A, "lat": 26.85, "lon": 80.94},
                    {"id": STATION_B, "lat": 26.89, "lon": 80.94},
                ],
            }
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    cfg = ["--config", str(config)]
    monkeypatch.delenv("RAKSHA_PASSWORD", raising=False)
    no_pw = runner.invoke(cli_app, ["users", "add", *cfg, "--username", "a", "--role", "admin"])
    assert no_pw.exit_code != 0
    monkeypatch.setenv("RAKSHA_PASSWORD", PASSWORD)
    ok = runner.invoke(
        cli_app,
        ["users", "add", *cfg, "--username", "ravi", "--role", "operator", "--station", STATION_A],
    )
    assert ok.exit_code == 0, ok.output
    assert "added operator ravi at station hazratganj" in ok.output
    bad = runner.invoke(
        cli_app, ["users", "add", *cfg, "--username", "x1", "--role", "operator", "--station", "y"]
    )
    assert isinstance(bad.exception, AuthError) and "unknown station" in str(bad.exception)
    listed = runner.invoke(cli_app, ["users", "list", *cfg])
    assert "ravi\toperator\thazratganj\tactive" in listed.output
    assert "argon2" not in listed.output
    off = runner.invoke(cli_app, ["users", "disable", "ravi", *cfg])
    assert off.exit_code == 0
    assert "disabled" in runner.invoke(cli_app, ["users", "list", *cfg]).output
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        acts = [e.action for e in AuditLog(store.engine).entries(limit=10)]
        assert acts == ["user.add", "user.disable"]
        assert AuditLog(store.engine).verify().ok
    finally:
        store.close()


def test_a_failing_session_lookup_denies(tmp_path: Path, faces_dir: Path) -> None:
    """An exception while resolving the caller (here: the sessions table is gone) denies."""
    users = {"cr": ("control_room", None)}
    with dashboard("sqlite", tmp_path, faces_dir, users=users) as d:
        inc = add_incident(d.store, d.writer, d.image, STATION_A)
        c = d.client("cr")
        assert c.get(f"/api/incidents/{inc}").status_code == 200
        with d.store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE sessions RENAME TO sessions_gone")
        r = c.get(f"/api/incidents/{inc}")
        assert r.status_code == 503 and inc not in r.text
        assert "Traceback" not in r.text
        assert c.get("/api/audit").status_code == 503
