"""One redaction module, every output path: a secret in any URL form never reaches the API
(`GET /api/map`, `/api/cameras`), `raksha config show`, a repr, a log line or an error."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from typer.testing import CliRunner

from dashboard_support import STATION_A, Dash, dashboard
from raksha.cli import app as cli_app
from raksha.redact import (
    MASK,
    RedactingFormatter,
    has_literal_secret,
    mask_url,
    redact,
    url_secrets,
)
from raksha.site.config import CameraConfig, StorageConfig, WebhookConfig
from raksha.store.engine import make_engine
from raksha.store.errors import StoreError

SECRET = "Zq7-k3y/vAl@ue"  # holds '/' and '@': the hard cases for a URL parser
PLAIN = "Zq7k3yvAlue9"

#: Every URL form a camera, a store or a webhook may come in, with the secret it carries.
URL_FORMS: list[tuple[str, str]] = [
    (f"rtsp://admin:{PLAIN}@10.0.0.7:554/stream1", PLAIN),
    (f"rtsp://admin:{quote(SECRET, safe='')}@10.0.0.7/stream1", SECRET),
    (f"rtsp://admin:{SECRET}@10.0.0.7/stream1", SECRET),  # written out, '/' and '@' in it
    (f"http://10.0.0.8/snap.jpg?user=admin&password={PLAIN}", PLAIN),
    (f"http://10.0.0.8/live?session={PLAIN}", PLAIN),
    (f"https://cams.example/live?channel=1&token={PLAIN}", PLAIN),
    (f"https://cams.example/live?api_key={PLAIN}&channel=2", PLAIN),
    (f"https://cams.example/live#access_token={PLAIN}", PLAIN),
    (f"https://cams.example/x.m3u8?X-Amz-Signature={PLAIN}&X-Amz-Expires=60", PLAIN),
    (f"http://10.0.0.9/AUTH?Auth={PLAIN}", PLAIN),
    (f"rtsp://10.0.0.9/user=admin_password={PLAIN}_channel=1_stream=0.sdp", PLAIN),
    (f"rtsp://admin:{PLAIN}@10.0.0.7/s?token={PLAIN}x", PLAIN),
]
IDS = [u.split("://")[0] + ":" + str(i) for i, (u, _) in enumerate(URL_FORMS)]


def spellings(secret: str) -> list[str]:
    return sorted({secret, quote(secret, safe=""), quote(secret)}, key=len, reverse=True)


def assert_hidden(text: str, secret: str) -> None:
    for form in spellings(secret):
        assert form not in text, f"secret {form!r} shown in: {text}"


@pytest.mark.parametrize(("url", "secret"), URL_FORMS, ids=IDS)
def test_mask_url_and_redact_hide_every_form(url: str, secret: str) -> None:
    shown = mask_url(url)
    assert_hidden(shown, secret)
    assert MASK in shown
    assert shown.split("://")[0] == url.split("://")[0]  # the scheme and host stay readable
    assert has_literal_secret(url)
    assert secret in url_secrets(url) or quote(secret, safe="") in url_secrets(url)
    assert_hidden(redact(f"cannot open {url}: connection refused"), secret)
    # A library error that echoes only the secret, decoded: scrubbed by the URL it came from.
    assert_hidden(redact(f"auth failed for {secret!s} at host", url), secret)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("password: hunter2", "password: ***"),
        ("Authorization: Bearer abc123", "Authorization: Bearer ***"),
        ('{"password": "hunter2"}', '{"password": "***"}'),
        ("{'token': 'abc123'}", "{'token': '***'}"),
        ("Cookie: raksha_session=abc", "Cookie: ***"),
        ("token=xyz&a=1", "token=***&a=1"),
        ("the signal: fear", "the signal: fear"),  # not a secret
        ("sessions: 3 open", "sessions: 3 open"),
        (  # a URL in prose keeps the sentence's punctuation
            "camera cam-1 (rtsp://a:pw@h/s?session=abc; move it).",
            "camera cam-1 (rtsp://a:***@h/s?session=***; move it).",
        ),
    ],
)
def test_secrets_in_key_value_text_of_every_form(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_placeholders_and_plain_urls_stay_readable() -> None:
    assert mask_url("rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.7/s") == (
        "rtsp://${CAM_USER}:***@10.0.0.7/s"
    )
    assert not has_literal_secret("rtsp://${U}:${P}@h/s?token=${T}")
    for url in ("/videos/a.mp4", "rtsp://10.0.0.7/stream1?channel=1", "file:///x/y.mp4"):
        assert mask_url(url) == url and redact(url) == url


@pytest.mark.parametrize(("url", "secret"), URL_FORMS, ids=IDS)
def test_config_reprs_hide_every_form(url: str, secret: str) -> None:
    cam = CameraConfig(id="c1", hotspot="h1", url=url)
    for text in (repr(cam), str(cam), cam.display_url, repr([cam])):
        assert_hidden(text, secret)
    if url.startswith(("http://", "https://")):
        hook = WebhookConfig(url=url, secret_env="T_HOOK")
        assert_hidden(repr(hook), secret)
        assert_hidden(str(hook), secret)


def test_storage_url_repr_and_store_errors_hide_the_password() -> None:
    url = f"postgresql+psycopg://raksha:{PLAIN}@127.0.0.1:1/raksha"
    store = StorageConfig(url=url)
    assert_hidden(repr(store), PLAIN)
    assert_hidden(store.display_url, PLAIN)
    with pytest.raises(StoreError) as err:
        make_engine(url)
    assert_hidden(str(err.value), PLAIN)


@pytest.mark.parametrize(("url", "secret"), URL_FORMS, ids=IDS)
def test_log_lines_hide_every_form(url: str, secret: str) -> None:
    fmt = RedactingFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord(
        "raksha.t", logging.ERROR, __file__, 1, "camera %s: %s", (url, "down"), None
    )
    assert_hidden(fmt.format(record), secret)
    try:
        raise OSError(f"cannot connect to {url}")
    except OSError:
        failed = logging.LogRecord(
            "raksha.t", logging.ERROR, __file__, 2, "failed", (), sys.exc_info()
        )
    text = fmt.format(failed)
    assert "Traceback" in text
    assert_hidden(text, secret)


def test_the_cli_logs_through_the_redacting_formatter(caplog: pytest.LogCaptureFixture) -> None:
    from raksha.cli import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        configure_logging()
        assert any(isinstance(h.formatter, RedactingFormatter) for h in root.handlers)
    finally:
        root.handlers = saved


def write_site(tmp_path: Path) -> Path:
    cameras = [
        {"id": f"cam-{i}", "hotspot": "h1", "url": url} for i, (url, _) in enumerate(URL_FORMS)
    ]
    doc = {
        "stations": [{"id": "s1", "lat": 26.85, "lon": 80.94}],
        "hotspots": [{"id": "h1", "lat": 26.851, "lon": 80.941}],
        "cameras": cameras,
        "storage": {"url": f"sqlite:///{tmp_path / 'r.db'}"},
        "alerts": {
            "webhook": {"url": f"https://hooks.example/in?token={PLAIN}", "secret_env": "T_HOOK"}
        },
    }
    path = tmp_path / "raksha.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_config_show_hides_every_form(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["config", "show", "--config", str(write_site(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "cam-0" in result.output and "10.0.0.7" in result.output
    for _url, secret in URL_FORMS:
        assert_hidden(result.output, secret)


@pytest.fixture(scope="module")
def map_dash(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[Dash]:
    cameras = [
        {"id": f"cam-{i}", "hotspot": "a-crossing", "url": url}
        for i, (url, _) in enumerate(URL_FORMS)
    ]
    users = {"cr": ("control_room", None), "op_a": ("operator", STATION_A)}
    folder = tmp_path_factory.mktemp("map")
    with dashboard("sqlite", folder, faces_dir, users=users, cameras=cameras) as d:
        yield d


def test_api_map_and_cameras_hide_every_form(map_dash: Dash) -> None:
    """Half the cameras have a status row (stored by a worker), half have none yet: the map
    takes the URL from the config for those, which is where the leak was."""
    for i, (url, _) in enumerate(URL_FORMS):
        if i % 2 == 0:
            map_dash.store.set_camera_status(
                f"cam-{i}",
                False,
                None,
                f"cannot open {url}",
                station_id=STATION_A,
                display_url=url,
            )
    everyone = {f"cam-{i}" for i in range(len(URL_FORMS))}
    with_rows = {f"cam-{i}" for i in range(0, len(URL_FORMS), 2)}
    for who, expected in (("cr", everyone), ("op_a", with_rows)):
        r = map_dash.client(who).get("/api/map")
        assert r.status_code == 200, r.text
        assert {c["camera_id"] for c in r.json()["cameras"]} == expected
        text = r.text
        for _url, secret in URL_FORMS:
            assert_hidden(text, secret)
    text = map_dash.client("cr").get("/api/cameras").text
    for _url, secret in URL_FORMS:
        assert_hidden(text, secret)
