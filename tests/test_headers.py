"""Response headers and cookies that keep a dashboard's data where it belongs: no-store on
incidents and evidence, HSTS and a `__Host-` session cookie under TLS, the OpenAPI schema
behind login, and a warning before serving plain http beyond this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboard_support import PASSWORD, STATION_A, Dash, add_incident, dashboard
from raksha.cli.serve import plain_http_warning


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[Dash]:
    users = {"op_a": ("operator", STATION_A)}
    with dashboard("sqlite", tmp_path_factory.mktemp("headers"), faces_dir, users=users) as d:
        yield d


def test_incidents_and_evidence_are_never_cached(dash: Dash) -> None:
    iid = add_incident(dash.store, dash.writer, dash.image, STATION_A)
    op = dash.client("op_a")
    for url in ("/api/incidents", f"/api/incidents/{iid}", f"/api/incidents/{iid}/evidence/1"):
        r = op.get(url)
        assert r.status_code == 200, (url, r.text)
        assert r.headers["cache-control"] == "no-store", url
    assert "strict-transport-security" not in r.headers  # plain http: no HSTS


def test_under_tls_the_session_cookie_is_host_only_and_hsts_is_sent(dash: Dash) -> None:
    c = TestClient(dash.app, base_url="https://testserver")
    r = c.post("/api/login", json={"username": "op_a", "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-raksha_session=") and "Secure" in cookie
    assert "Path=/" in cookie and "Domain" not in cookie and "HttpOnly" in cookie
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert c.get("/api/me").status_code == 200  # the prefixed cookie is the session
    # A plain-named cookie planted over http is not a session under https.
    token = c.cookies.get("__Host-raksha_session")
    plain = TestClient(dash.app, base_url="https://testserver")
    plain.cookies.set("raksha_session", token or "")
    assert plain.get("/api/me").status_code == 401


def test_the_openapi_schema_is_behind_login(dash: Dash) -> None:
    assert TestClient(dash.app).get("/openapi.json").status_code == 401
    assert dash.client("op_a").get("/openapi.json").json()["info"]["title"]


@pytest.mark.parametrize(
    ("host", "tls", "warned"),
    [
        ("0.0.0.0", False, True),
        ("10.0.0.5", False, True),
        ("dashboard.station.local", False, True),
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", True, False),
    ],
)
def test_plain_http_beyond_this_machine_is_warned_about(host: str, tls: bool, warned: bool) -> None:
    message = plain_http_warning(host, tls)
    assert (message is not None) == warned
    if message:
        assert host in message and "--ssl-certfile" in message
