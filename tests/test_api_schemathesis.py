"""Property-based fuzzing of the dashboard API from its OpenAPI schema (schemathesis): every
operation, every role (and anonymous), no server error (5xx).

Bounded so it runs in well under a minute: a few examples per operation, each sent as every
role. Left out: GET /api/events (an endless stream; test_api covers it over a real server)
and POST /api/logout (it would end the sessions the other calls use; test_auth covers it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from dashboard_support import STATION_A, STATION_B, Dash, add_incident, dashboard

ROLES = ("op_a", "sup_a", "cr", "aud", "adm")


@pytest.fixture(scope="module")
def fuzz_dash(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[Dash]:
    with dashboard("sqlite", tmp_path_factory.mktemp("fuzz"), faces_dir) as d:
        add_incident(d.store, d.writer, d.image, STATION_A)
        add_incident(d.store, d.writer, d.image, STATION_B)
        d.store.set_camera_status("cam-a", True, station_id=STATION_A)
        yield d


SKIP = {("GET", "/api/events"), ("POST", "/api/logout")}


def _callers(d: Dash) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    callers: list[tuple[str, dict[str, str], dict[str, str]]] = [("anon", {}, {})]
    for name in ROLES:
        token = d.client(name).cookies.get("raksha_session")
        assert token, f"{name} is not logged in"
        callers.append((name, {"raksha_session": token}, {"X-CSRF-Token": d.csrf[name]}))
    return callers


@pytest.mark.slow
def test_no_server_error_for_any_role(fuzz_dash: Dash) -> None:
    callers = _callers(fuzz_dash)
    # The schema itself is behind login: fetched as a logged-in user.
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_dash.app, cookies=callers[1][1])
    failures: list[str] = []
    tried: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIP:
            continue
        tried.append(f"{key[0]} {key[1]}")

        # Logging in is public: who calls does not matter, and each try costs an Argon2.
        who = callers[:1] if key == ("POST", "/api/login") else callers

        @given(case=operation.as_strategy())
        @settings(
            max_examples=3,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            for name, cookies, headers in who:  # noqa: B023 - run() is called at once
                response = case.call(cookies=cookies, headers=headers)
                if response.status_code >= 500:
                    failures.append(
                        f"{name}: {case.method} {case.formatted_path} -> "
                        f"{response.status_code}: {response.text[:200]}"
                    )

        run()
    assert len(tried) >= 14, tried
    assert not failures, "server errors:\n" + "\n".join(failures[:20])
