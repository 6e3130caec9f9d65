"""A second factor (TOTP) for the roles that see every station or may unblur evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dashboard_support import PASSWORD, STATION_A, Dash, dashboard, fast_settings
from raksha.audit.log import AuditLog
from raksha.auth.totp import matching_step
from raksha.cli import app as cli_app

USERS = {"op_a": ("operator", STATION_A), "sup_a": ("supervisor", STATION_A)}


@pytest.fixture
def dash(tmp_path: Path, faces_dir: Path) -> Iterator[Dash]:
    # The dashboard helper logs each user in; the supervisor's login is tried anew below.
    settings = fast_settings(totp_roles=("admin", "supervisor", "control_room"), web=True)
    with dashboard(
        "sqlite", tmp_path, faces_dir, users={"op_a": USERS["op_a"]}, settings=settings
    ) as d:
        d.app.state.raksha.users.add("sup_a", "supervisor", PASSWORD, station_id=STATION_A)
        yield d


def _login(dash: Dash, otp: str | None = None) -> int:
    body = {"username": "sup_a", "password": PASSWORD}
    if otp is not None:
        body["otp"] = otp
    return TestClient(dash.app).post("/api/login", json=body).status_code


def test_codes_match_their_step_and_its_neighbours_only() -> None:
    secret = pyotp.random_base32()
    now = 1_800_000_000.0
    code = pyotp.TOTP(secret).at(now)
    step = int(now // 30)
    assert matching_step(secret, code, now=now) == step
    assert matching_step(secret, code, now=now + 30) == step  # a slow phone
    assert matching_step(secret, code, now=now + 95) is None
    assert matching_step(secret, "12345", now=now) is None
    assert matching_step(secret, "abcdef", now=now) is None


def test_a_supervisor_needs_a_fresh_code(dash: Dash, tmp_path: Path) -> None:
    assert _login(dash) == 403  # no second factor set up yet: told to ask an admin
    config = tmp_path / "raksha.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": str(dash.store.engine.url)}}))
    made = CliRunner().invoke(cli_app, ["users", "totp", "sup_a", "--config", str(config)])
    assert made.exit_code == 0, made.output
    secret = made.output.split("secret: ")[1].split()[0]
    assert "otpauth://totp/Raksha:sup_a?secret=" in made.output
    assert _login(dash) == 401  # the password alone is not enough
    assert _login(dash, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111") == 401
    code = pyotp.TOTP(secret).now()
    assert _login(dash, code) == 200
    assert _login(dash, code) == 401  # a code works once
    # An operator logs in with a password alone.
    r = TestClient(dash.app).post("/api/login", json={"username": "op_a", "password": PASSWORD})
    assert r.status_code == 200
    log = AuditLog(dash.store.engine)
    assert [e.details.get("why") for e in log.entries(action="login.refused")] == [
        "no second factor"
    ]
    assert any(e.details.get("factor") == "code" for e in log.entries(action="login.failure"))
    assert [e.target for e in log.entries(action="user.totp_enrolled")] == ["user:sup_a"]


def test_the_web_login_form_takes_the_code(dash: Dash) -> None:
    secret = dash.app.state.raksha.users.enroll_totp("sup_a")
    c = TestClient(dash.app)
    page = c.get("/login").text
    assert 'name="otp"' in page and 'autocomplete="one-time-code"' in page
    r = c.post(
        "/login",
        data={"username": "sup_a", "password": PASSWORD, "otp": pyotp.TOTP(secret).now()},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
