"""The password policy, changing one's own password, and `raksha users passwd`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dashboard_support import PASSWORD, STATION_A, Dash, dashboard
from raksha.audit.log import AuditLog
from raksha.auth.errors import AuthError
from raksha.auth.passwords import MIN_LENGTH, check_password_policy, password_problem
from raksha.cli import app as cli_app


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("password12", f"at least {MIN_LENGTH}"),  # the one an attacker found accepted
        ("Password@2026", "common word"),
        ("P@ssw0rd2026!", "common word"),
        ("adminadmin12", "common word"),
        ("Lucknow@1234", "common word"),
        ("qwertyuiop12", "common word"),
        ("lkjhgfdsa-123", "keyboard"),
        ("abcdefghijkl", "keyboard"),
        ("aaaaaaaaaaab", "too few different"),
        ("asha-kiran-2026", "user name"),
    ],
)
def test_weak_passwords_are_refused_with_the_rule(password: str, rule: str) -> None:
    problem = password_problem(password, "asha")
    assert problem is not None and rule in problem
    with pytest.raises(AuthError, match=rule):
        check_password_policy(password, "asha")


@pytest.mark.parametrize("password", [PASSWORD, "t9#Vq2!mLx0z", "raksha-station-7-north"])
def test_good_passwords_pass(password: str) -> None:
    assert password_problem(password, "asha") is None


@pytest.fixture
def dash(tmp_path: Path, faces_dir: Path) -> Iterator[Dash]:
    users = {"op_a": ("operator", STATION_A)}
    with dashboard("sqlite", tmp_path, faces_dir, users=users) as d:
        yield d


def test_an_officer_changes_their_password_and_other_sessions_end(dash: Dash) -> None:
    other = TestClient(dash.app)  # the same officer on another device
    assert (
        other.post("/api/login", json={"username": "op_a", "password": PASSWORD}).status_code == 200
    )
    url = "/api/me/password"
    wrong = dash.post("op_a", url, json={"current_password": "not it", "new_password": "x"})
    assert wrong.status_code == 401
    weak = dash.post("op_a", url, json={"current_password": PASSWORD, "new_password": "password12"})
    assert weak.status_code == 400 and "at least" in weak.json()["detail"]
    new = "t9#Vq2!mLx0z-station"
    ok = dash.post("op_a", url, json={"current_password": PASSWORD, "new_password": new})
    assert ok.status_code == 200, ok.text
    me = dash.client("op_a")
    assert me.get("/api/me").status_code == 200  # this browser got a new session
    assert other.get("/api/me").status_code == 401  # the other device's session ended
    fresh = TestClient(dash.app)
    assert (
        fresh.post("/api/login", json={"username": "op_a", "password": PASSWORD}).status_code == 401
    )
    assert fresh.post("/api/login", json={"username": "op_a", "password": new}).status_code == 200
    log = AuditLog(dash.store.engine)
    assert [e.actor for e in log.entries(action="user.password_changed")] == ["op_a"]
    assert len(log.entries(action="user.password_change_refused")) == 1


def test_cli_passwd_sets_a_password_and_ends_sessions(dash: Dash, tmp_path: Path) -> None:
    config = tmp_path / "raksha.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": str(dash.store.engine.url)}}))
    runner = CliRunner()
    weak = runner.invoke(
        cli_app,
        ["users", "passwd", "op_a", "--config", str(config)],
        env={"RAKSHA_PASSWORD": "short"},
    )
    assert weak.exit_code != 0
    new = "another-Good-pass-42"
    done = runner.invoke(
        cli_app, ["users", "passwd", "op_a", "--config", str(config)], env={"RAKSHA_PASSWORD": new}
    )
    assert done.exit_code == 0, done.output
    assert "1 session(s) ended" in done.output
    assert dash.client("op_a").get("/api/me").status_code == 401
    (entry,) = AuditLog(dash.store.engine).entries(action="user.password_set")
    assert entry.actor.startswith("cli:") and entry.target == "user:op_a"


def test_the_password_page_changes_it(tmp_path: Path, faces_dir: Path) -> None:
    from dashboard_support import fast_settings

    with dashboard(
        "sqlite",
        tmp_path,
        faces_dir,
        users={"op_a": ("operator", STATION_A)},
        settings=fast_settings(web=True),
    ) as d:
        c = d.client("op_a")
        page = c.get("/account/password")
        assert page.status_code == 200 and 'name="new_password"' in page.text
        form = {"csrf_token": d.csrf["op_a"], "current_password": PASSWORD}
        differ = c.post(
            "/account/password",
            data={**form, "new_password": "a" * 12, "repeat_password": "b" * 12},
        )
        assert differ.status_code == 400 and "differ" in differ.text
        weak = c.post(
            "/account/password",
            data={**form, "new_password": "password12", "repeat_password": "password12"},
        )
        assert weak.status_code == 400 and "at least 12" in weak.text
        new = "a-Fresh-station-pass-9"
        ok = c.post(
            "/account/password",
            data={**form, "new_password": new, "repeat_password": new},
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/account/password?done=1"
        assert "password-done" in c.get("/account/password?done=1").text  # still logged in
        fresh = TestClient(d.app)
        assert (
            fresh.post("/api/login", json={"username": "op_a", "password": new}).status_code == 200
        )
