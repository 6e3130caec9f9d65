"""Bad input on the command line: one clear `raksha: error:` line, exit code 2, no traceback,
and no secret (database, camera or webhook password) in anything printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SECRET = "hunter2"


def _raksha(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "raksha", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        stdin=subprocess.DEVNULL,
    )


def _assert_clear_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out, out
    assert SECRET not in out, out
    assert proc.stderr.startswith("raksha: error: "), out
    for needle in needles:
        assert needle in proc.stderr, out


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    """A minimal valid deployment config with a SQLite store in tmp_path."""
    cfg = tmp_path / "raksha.yaml"
    cfg.write_text(
        "stations:\n- {id: s1, name: Station One, lat: 26.85, lon: 80.94}\n"
        "hotspots:\n- {id: h1, name: Market, lat: 26.85, lon: 80.95}\n"
        f"storage:\n  url: sqlite:///{tmp_path / 'raksha.db'}\n"
        f"evidence:\n  dir: {tmp_path / 'evidence'}\n"
    )
    return cfg


@pytest.fixture()
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield int(sock.getsockname()[1])


@pytest.mark.slow
def test_config_show_masks_the_webhook_password(site: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "hook.yaml"
    cfg.write_text(
        site.read_text()
        + f"alerts:\n  webhook:\n    url: https://admin:{SECRET}@127.0.0.1:1/hook\n"
        + "    secret_env: RAKSHA_T_HOOK_SECRET\n"
    )
    proc = _raksha("config", "show", "--config", cfg)
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert "https://admin:***@127.0.0.1:1/hook" in proc.stdout


@pytest.mark.slow
def test_unreachable_postgres_names_it_without_the_password(tmp_path: Path) -> None:
    cfg = tmp_path / "pg.yaml"
    cfg.write_text(f"storage:\n  url: postgresql+psycopg://u:{SECRET}@127.0.0.1:1/x\n")
    _assert_clear_error(_raksha("users", "list", "--config", cfg), "cannot open database")


@pytest.mark.parametrize(
    ("content", "needle"),
    [("a: [1,\n", "invalid config"), ("storage: 5\n", "storage"), ("- 1\n", "mapping")],
)
@pytest.mark.slow
def test_broken_config_files(tmp_path: Path, content: str, needle: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(content)
    _assert_clear_error(_raksha("config", "check", "--config", cfg), needle)


@pytest.mark.slow
def test_config_that_is_a_folder(tmp_path: Path) -> None:
    _assert_clear_error(_raksha("config", "check", "--config", tmp_path), "cannot read config")


@pytest.mark.slow
def test_serve_on_a_port_in_use(site: Path, busy_port: int) -> None:
    proc = _raksha("serve", "--config", site, "--host", "127.0.0.1", "--port", str(busy_port))
    _assert_clear_error(proc, f"cannot listen on 127.0.0.1:{busy_port}")


@pytest.mark.slow
def test_serve_with_a_certificate_that_is_not_pem(site: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate\n")
    proc = _raksha(
        "serve", "--config", site, "--port", "1", "--ssl-certfile", bad, "--ssl-keyfile", bad
    )
    _assert_clear_error(proc, "cannot load TLS certificate")


@pytest.mark.slow
def test_demo_dir_that_is_a_file(tmp_path: Path, videos_dir: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    proc = _raksha("demo", "--dir", target, "--assets", videos_dir)
    _assert_clear_error(proc, "cannot create demo folder")


@pytest.mark.slow
def test_users_add_unknown_role_and_short_password(site: Path) -> None:
    _assert_clear_error(
        _raksha("users", "add", "--username", "bob", "--role", "wizard", "--config", site),
        "unknown role 'wizard'",
    )
    proc = _raksha(
        "users",
        "add",
        "--username",
        "bob",
        "--role",
        "admin",
        "--config",
        site,
        env={"RAKSHA_PASSWORD": "short"},
    )
    _assert_clear_error(proc, "at least")
    assert "short" not in proc.stdout


@pytest.mark.slow
def test_users_disable_unknown_user(site: Path) -> None:
    _assert_clear_error(
        _raksha("users", "disable", "nobody", "--config", site), "no user named 'nobody'"
    )


@pytest.mark.slow
def test_eval_on_a_file_says_it_is_not_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "faces.txt"
    f.write_text("x")
    _assert_clear_error(_raksha("eval", "expression", "--dataset", f), "is not a folder")


@pytest.mark.slow
def test_analyze_jpeg_and_refused_url(tmp_path: Path) -> None:
    jpeg = tmp_path / "x.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"0" * 100)
    _assert_clear_error(_raksha("analyze", jpeg, "-q"), "still image")
    _assert_clear_error(
        _raksha("analyze", f"rtsp://u:{SECRET}@127.0.0.1:1/s", "-q"), "cannot connect"
    )


@pytest.mark.slow
def test_secrets_file_that_is_a_folder(site: Path, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    cfg = tmp_path / "with-secrets.yaml"
    camera = f"cameras:\n- {{id: c1, hotspot: h1, url: {tmp_path / 'none.mp4'}}}\n"
    cfg.write_text(site.read_text() + camera + "secrets_file: secrets\n")
    proc = _raksha("run", "--config", cfg, "--exit-at-end", "--no-table")
    _assert_clear_error(proc, "is a folder, not a file")


@pytest.mark.slow
def test_output_paths_that_are_folders_or_files(tmp_path: Path, videos_dir: Path) -> None:
    video = videos_dir / "fer__woman2.mp4"
    _assert_clear_error(
        _raksha("analyze", video, "-q", "--annotated", tmp_path), "--annotated", "directory"
    )
    _assert_clear_error(
        _raksha("eval", "expression", "--dataset", tmp_path, "--json", tmp_path), "--json"
    )
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    _assert_clear_error(
        _raksha("eval", "expression", "--dataset", tmp_path, "--report", a_file), "--report"
    )


def test_malformed_login_body_does_not_echo_the_password(site: Path) -> None:
    from fastapi.testclient import TestClient

    from raksha.api.app import create_app
    from raksha.config import load_run_config

    client = TestClient(create_app(load_run_config(site)))
    resp = client.post("/api/login", json={"password": SECRET + "-typed-here"})
    assert resp.status_code == 422
    assert SECRET not in resp.text
    assert resp.json()["detail"][0]["loc"] == ["body", "username"]


@pytest.mark.slow
def test_incidents_list_unknown_station(site: Path) -> None:
    _assert_clear_error(
        _raksha("incidents", "list", "--config", site, "--station", "bogus"),
        "unknown station 'bogus'",
        "s1",
    )
    ok = _raksha("incidents", "list", "--config", site, "--station", "s1", "--json")
    assert ok.returncode == 0 and ok.stdout.strip() == "[]", ok.stderr


@pytest.mark.slow
def test_config_check_names_unset_camera_and_database_variables(site: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "vars.yaml"
    cfg.write_text(
        site.read_text().replace(
            f"storage:\n  url: sqlite:///{tmp_path / 'raksha.db'}\n",
            "storage:\n  url: postgresql+psycopg://raksha:${T_DB_PASS}@127.0.0.1/test\n",
        )
        + "cameras:\n"
        "- {id: c1, hotspot: h1, url: 'rtsp://admin:${T_CAM_PASS}@10.0.0.5/s'}\n"
        "- {id: c2, hotspot: h1, url: 'rtsp://10.0.0.6/s', enabled: false,"
        " credentials: {user_env: T_OFF_USER, password_env: T_OFF_PASS}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("T_")}
    proc = subprocess.run(
        [sys.executable, "-m", "raksha", "config", "check", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    _assert_clear_error(proc, "camera c1: variable T_CAM_PASS is not set", "T_DB_PASS")
    assert "T_OFF" not in proc.stderr  # a disabled camera is not checked

    # Set (one in the environment, one in the secrets file): ok, and no value is printed.
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"T_DB_PASS={SECRET}\n")
    secrets.chmod(0o600)
    cfg.write_text(cfg.read_text() + f"secrets_file: {secrets}\n")
    proc = _raksha("config", "check", "--config", cfg, env={"T_CAM_PASS": SECRET})
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr and "2 cameras" in proc.stdout

    # A secrets file that is missing is named; --no-secrets checks the fields only.
    secrets.unlink()
    _assert_clear_error(_raksha("config", "check", "--config", cfg), "secrets file not found")
    assert _raksha("config", "check", "--config", cfg, "--no-secrets").returncode == 0
