"""Login under attack: parallel guesses are counted before the slow hash, password checks
run two at a time, and oversized bodies are refused before they are read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboard_support import PASSWORD, STATION_A, Dash, dashboard, fast_settings
from raksha.audit.log import AuditLog
from raksha.auth import passwords
from raksha.auth.ratelimit import Limits, LoginLimiter


@pytest.fixture
def dash(tmp_path: Path, faces_dir: Path) -> Iterator[Dash]:
    users = {"op_a": ("operator", STATION_A)}
    settings = fast_settings(login_limits=Limits(per_account=5, per_address=1000, window_s=900))
    with dashboard("sqlite", tmp_path, faces_dir, users=users, settings=settings) as d:
        yield d


def test_parallel_guesses_get_no_more_checks_than_the_limit(
    dash: Dash, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = 0
    busy_peak = 0
    busy = 0
    lock = threading.Lock()
    real_verify = passwords._hasher().verify

    def counting_verify(password: str, password_hash: str) -> bool:
        nonlocal checks, busy, busy_peak
        with lock:
            checks += 1
            busy += 1
            busy_peak = max(busy_peak, busy)
        try:
            return bool(real_verify(password, password_hash))
        finally:
            with lock:
                busy -= 1

    monkeypatch.setattr(passwords._hasher(), "verify", counting_verify)
    statuses: list[int] = []

    def guess(i: int) -> None:
        with TestClient(dash.app) as c:
            r = c.post("/api/login", json={"username": "op_a", "password": f"guess number {i}"})
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(statuses)) == [401, 429], statuses
    assert statuses.count(401) <= 5 and checks <= 5, (checks, statuses)
    assert busy_peak <= passwords.MAX_CONCURRENT_HASHES
    failures = AuditLog(dash.store.engine).entries(action="login.failure", limit=1000)
    assert len(failures) == statuses.count(401)
    # The right password is refused too while the account is throttled.
    r = TestClient(dash.app).post("/api/login", json={"username": "op_a", "password": PASSWORD})
    assert r.status_code == 429


def test_a_success_takes_back_its_own_attempt() -> None:
    now = [0.0]
    lim = LoginLimiter(Limits(per_account=3, per_address=2, window_s=60), clock=lambda: now[0])
    for _ in range(5):  # five good logins from one address never throttle it
        at = lim.begin("ann", "1.2.3.4")
        assert isinstance(at, float)
        lim.succeeded("ann", "1.2.3.4", at)
        now[0] += 1
    assert lim.blocked("ann", "1.2.3.4") is None
    lim.begin("bob", "1.2.3.4")  # counted before its check, then failed: stays counted
    lim.begin("cat", "1.2.3.4")
    assert lim.begin("dan", "1.2.3.4") == ("address", 60)


@pytest.mark.parametrize("size", [300 * 1024, 50 * 1024 * 1024])
def test_oversized_bodies_are_refused_before_they_are_read(dash: Dash, size: int) -> None:
    c = TestClient(dash.app)
    r = c.post(
        "/api/login",
        content=b"{" + b" " * size + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_a_chunked_oversized_body_is_refused_too(dash: Dash) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 8192  # 800 KiB without a Content-Length

    r = TestClient(dash.app).post(
        "/api/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


def test_throttled_logins_are_summarised_not_chained_one_by_one(dash: Dash) -> None:
    c = TestClient(dash.app)
    for i in range(5):
        c.post("/api/login", json={"username": "op_a", "password": f"wrong guess {i}"})
    for _ in range(40):  # hammering a throttled account
        r = c.post("/api/login", json={"username": "op_a", "password": "still guessing"})
        assert r.status_code == 429
    entries = AuditLog(dash.store.engine).entries(action="login.throttled", limit=100)
    assert len(entries) == 1  # one entry a minute, not forty
    assert entries[0].details["by"] == "account"
    assert entries[0].details["refused_since_last_entry"] == 0


def test_refusal_summaries_count_what_they_cover() -> None:
    now = [0.0]
    lim = LoginLimiter(clock=lambda: now[0])
    assert lim.should_audit_refusal("account", "ann") == 0
    for _ in range(7):
        now[0] += 5
        assert lim.should_audit_refusal("account", "ann") is None
    assert lim.should_audit_refusal("address", "1.2.3.4") == 0  # its own key
    now[0] += 30  # 65 s after the first entry
    assert lim.should_audit_refusal("account", "ann") == 7


def test_an_attempt_never_checked_is_taken_back() -> None:
    now = [0.0]
    lim = LoginLimiter(Limits(per_account=2, per_address=10, window_s=60), clock=lambda: now[0])
    for _ in range(5):  # the server was busy each time: nobody guessed anything
        at = lim.begin("ann", "1.2.3.4")
        assert isinstance(at, float)
        lim.cancel("ann", "1.2.3.4", at)
        now[0] += 1
    assert lim.blocked("ann", "1.2.3.4") is None


def test_a_guesser_is_slowed_without_locking_the_officer_out() -> None:
    """Five wrong guesses from the attacker's address refuse that address for the account,
    not the officer's own; guesses from many addresses space attempts out (1, 2, 4 ... 60 s)
    instead of a quarter-hour lockout; a supervisor's unlock clears the account."""
    now = [1000.0]
    lim = LoginLimiter(
        Limits(per_account=5, per_address=20, window_s=900, account_slow_after=10),
        clock=lambda: now[0],
    )
    for _ in range(5):
        assert isinstance(lim.begin("asha", "10.9.9.9"), float)  # wrong each time
        now[0] += 0.1
    assert lim.begin("asha", "10.9.9.9") == ("account", 900)  # this address: refused
    officer = lim.begin("asha", "10.1.1.1")  # the officer at her own desk
    assert isinstance(officer, float)
    lim.succeeded("asha", "10.1.1.1", officer)
    # A distributed guesser: ten addresses, one try each.
    for i in range(10):
        assert isinstance(lim.begin("asha", f"10.8.0.{i}"), float)
    refused = lim.begin("asha", "10.8.1.1")
    assert isinstance(refused, tuple) and refused[1] <= 1  # 1 s after the last failure
    now[0] += 1.5
    assert isinstance(lim.begin("asha", "10.8.1.2"), float)  # the 11th: now 2 s apart
    refused = lim.begin("asha", "10.8.1.3")
    assert isinstance(refused, tuple) and refused[1] <= 2
    for i in range(20):  # however many more, the wait stays at most a minute
        now[0] += 61
        assert isinstance(lim.begin("asha", f"10.7.0.{i}"), float)
    refused = lim.begin("asha", "10.1.1.1")
    assert isinstance(refused, tuple) and refused[1] <= 60
    assert lim.unlock("asha") > 0
    assert isinstance(lim.begin("asha", "10.1.1.1"), float)  # the officer again, at once


def test_a_supervisor_unlocks_an_officer_of_their_station(dash: Dash) -> None:
    dash.app.state.raksha.users.add("sup_x", "supervisor", PASSWORD, station_id=STATION_A)
    sup = TestClient(dash.app)
    r = sup.post("/api/login", json={"username": "sup_x", "password": PASSWORD})
    csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
    c = TestClient(dash.app)
    for i in range(5):
        c.post("/api/login", json={"username": "op_a", "password": f"wrong guess {i}"})
    assert c.post("/api/login", json={"username": "op_a", "password": PASSWORD}).status_code == 429
    assert sup.post("/api/users/op_a/unlock", headers=csrf).status_code == 200
    assert c.post("/api/login", json={"username": "op_a", "password": PASSWORD}).status_code == 200
    (entry,) = AuditLog(dash.store.engine).entries(action="user.unlocked")
    assert entry.actor == "sup_x" and entry.details["failures_cleared"] == 5
