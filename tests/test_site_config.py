"""City config: validation errors that name the field, jurisdiction files, camera secrets."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ConfigDict, ValidationError

from raksha.config import AnalysisConfig, load_config, load_run_config, load_site_config
from raksha.demo_site import demo_site_config, demo_site_yaml
from raksha.errors import ConfigError
from raksha.redact import has_literal_secret, scrub
from raksha.site.config import SiteConfig
from raksha.site.load import load_site, load_site_secrets, read_jurisdiction
from raksha.site.secrets import (
    SecretValues,
    camera_secrets,
    display_url,
    load_secrets,
    parse_secrets,
    resolve_camera_url,
)

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[80.9, 26.8], [81.0, 26.8], [81.0, 26.9], [80.9, 26.9], [80.9, 26.8]]],
}


def base() -> dict[str, Any]:
    return {
        "stations": [
            {"id": "hazratganj", "name": "Hazratganj PS", "lat": 26.85, "lon": 80.946},
            {"id": "aminabad", "name": "Aminabad PS", "lat": 26.845, "lon": 80.925},
        ],
        "patrol_units": [
            {
                "id": "pink-scooter-07",
                "kind": "scooter",
                "station": "hazratganj",
                "lat": 26.848,
                "lon": 80.943,
            },
            {
                "id": "pink-booth-1",
                "kind": "pink_booth",
                "station": "aminabad",
                "lat": 26.846,
                "lon": 80.927,
            },
        ],
        "hotspots": [
            {"id": "hz-market", "name": "Hazratganj Market", "lat": 26.847, "lon": 80.946},
            {"id": "am-market", "name": "Aminabad Market", "lat": 26.846, "lon": 80.927},
        ],
        "cameras": [
            {"id": "cam-1", "hotspot": "hz-market", "url": "file:///clips/a.mp4", "fps": 5},
            {
                "id": "cam-2",
                "hotspot": "am-market",
                "url": "rtsp://${CAM2_USER}:${CAM2_PASS}@10.0.0.7/s1",
            },
        ],
        "storage": {"url": "sqlite:///raksha.db"},
        "evidence": {"dir": "evidence/"},
        "alerts": {
            "webhook": {"url": "http://127.0.0.1:8080/hook", "secret_env": "RAKSHA_HOOK_SECRET"},
            "mqtt": {"host": "127.0.0.1", "port": 1883},
        },
    }


def write_yaml(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def error_of(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load_site_config(write_yaml(tmp_path, data))
    return str(info.value)


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    site = load_site_config(write_yaml(tmp_path, base()))
    assert [s.id for s in site.stations] == ["hazratganj", "aminabad"]
    assert site.camera("cam-2").hotspot == "am-market"
    assert site.cameras[1].fps is None and site.cameras[1].enabled  # unset: the site's
    assert site.storage.url == "sqlite:///raksha.db"
    assert site.evidence.dir == Path("evidence") and site.evidence.encrypt is True
    assert site.alerts.webhook is not None and site.alerts.webhook.timeout_s > 0
    assert site.alerts.mqtt is not None
    assert site.alerts.mqtt.qos == 1
    assert SiteConfig().storage.url == "sqlite:///raksha.db"
    with pytest.raises(ValidationError):
        site.stations[0].lat = 0.0  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["patrol_units"][1].update(station="nowhere"),
            "patrol_units.1.station: unknown station 'nowhere'",
        ),
        (
            lambda d: d["cameras"][0].update(hotspot="atlantis"),
            "cameras.0.hotspot: unknown hotspot 'atlantis'",
        ),
        (
            lambda d: d["stations"][1].update(id="hazratganj"),
            "stations.1.id: duplicate station id 'hazratganj'",
        ),
        (
            lambda d: d["hotspots"][1].update(id="hz-market"),
            "hotspots.1.id: duplicate hotspot id 'hz-market'",
        ),
        (lambda d: d["cameras"][1].update(id="cam-1"), "cameras.1.id: duplicate camera id 'cam-1'"),
        (
            lambda d: d["patrol_units"][1].update(id="pink-scooter-07"),
            "patrol_units.1.id: duplicate patrol_unit id",
        ),
        (
            lambda d: d["stations"][0].update(lat=126.85),
            "stations.0.lat: latitude must be between -90 and 90",
        ),
        (
            lambda d: d["hotspots"][1].update(lon=-180.5),
            "hotspots.1.lon: longitude must be between -180 and 180",
        ),
        (lambda d: d["patrol_units"][0].update(lat=float("nan")), "patrol_units.0.lat: latitude"),
        (lambda d: d["patrol_units"][0].update(kind="Pink Scooter!"), "patrol_units.0.kind"),
        (
            lambda d: d["stations"][0].update(phone="112"),
            "stations.0.phone: Extra inputs are not permitted",
        ),
        (lambda d: d["stations"][0].update(id="a/b"), "stations.0.id"),
        (lambda d: d["cameras"][0].update(fps=0), "cameras.0.fps"),
        (lambda d: d["alerts"]["mqtt"].update(qos=3), "alerts.mqtt.qos"),
        (
            lambda d: d["alerts"]["webhook"].update(url="ftp://x"),
            "alerts.webhook.url: webhook url must start",
        ),
        (
            lambda d: d.update(stations=[], patrol_units=[]),
            "stations: cameras are configured but no police",
        ),
    ],
    ids=[
        "unknown-station",
        "unknown-hotspot",
        "dup-station",
        "dup-hotspot",
        "dup-camera",
        "dup-unit",
        "lat-range",
        "lon-range",
        "lat-nan",
        "unit-kind",
        "extra-key",
        "id-chars",
        "fps",
        "qos",
        "webhook-scheme",
        "no-stations",
    ],
)
def test_validation_errors_name_the_field_and_line(
    tmp_path: Path, mutate: Any, expected: str
) -> None:
    data = base()
    mutate(data)
    msg = error_of(tmp_path, data)
    assert expected in msg
    assert msg.startswith("invalid config: ")
    assert f"{tmp_path / 'city.yaml'}:" in msg  # file and line
    assert "\n" not in msg


def test_error_line_points_at_the_bad_reference(tmp_path: Path) -> None:
    data = base()
    data["cameras"][1]["hotspot"] = "atlantis"
    path = write_yaml(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_site_config(path)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "atlantis" in t)
    assert f"city.yaml:{line}: cameras.1.hotspot" in str(info.value)
    assert "known hotspots: hz-market, am-market" in str(info.value)


def test_several_reference_errors_are_reported_together(tmp_path: Path) -> None:
    data = base()
    data["cameras"][0]["hotspot"] = "x1"
    data["patrol_units"][0]["station"] = "x2"
    msg = error_of(tmp_path, data)
    assert "cameras.0.hotspot" in msg and "patrol_units.0.station" in msg


@pytest.mark.parametrize(
    ("jurisdiction", "expected"),
    [
        (
            {"type": "Point", "coordinates": [80.9, 26.8]},
            "must be a GeoJSON Polygon or MultiPolygon",
        ),
        (
            {"type": "Polygon", "coordinates": [[[80.9, 26.8], [81.0, 26.8]]]},
            "at least 3 distinct positions",
        ),
        (
            {"type": "Polygon", "coordinates": [[[80.9, 26.8], [181.0, 26.8], [81.0, 26.9]]]},
            "longitude 181.0 is outside",
        ),
        (
            {"type": "Polygon", "coordinates": [[[80.9, 96.8], [81.0, 26.8], [81.0, 26.9]]]},
            "latitude 96.8 is outside",
        ),
        (
            {"type": "Polygon", "coordinates": [[[80.9, 26.8], [81.0, 26.8], [81.1, 26.8]]]},
            "encloses no area",
        ),
        (
            {"type": "Polygon", "coordinates": [[["a", 1], [2, 3], [4, 5]]]},
            "must be [longitude, latitude]",
        ),
        ({"type": "Polygon"}, "has no 'coordinates'"),
        ({"type": "MultiPolygon", "coordinates": []}, "non-empty list of polygons"),
        (42, "inline GeoJSON Polygon/MultiPolygon or the path"),
    ],
    ids=[
        "point",
        "two-points",
        "lon-range",
        "lat-range",
        "collinear",
        "not-numbers",
        "no-coords",
        "empty-multi",
        "number",
    ],
)
def test_invalid_inline_polygon(tmp_path: Path, jurisdiction: Any, expected: str) -> None:
    data = base()
    data["stations"][0]["jurisdiction"] = jurisdiction
    msg = error_of(tmp_path, data)
    assert "stations.0.jurisdiction" in msg
    assert expected in msg


def test_inline_polygon_feature_and_hole(tmp_path: Path) -> None:
    data = base()
    data["stations"][0]["jurisdiction"] = {
        "type": "Feature",
        "properties": {"name": "x"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[80.9, 26.8], [81.0, 26.8], [81.0, 26.9], [80.9, 26.9]],  # unclosed: accepted
                [[80.94, 26.84], [80.96, 26.84], [80.96, 26.86], [80.94, 26.86], [80.94, 26.84]],
            ],
        },
    }
    site = load_site_config(write_yaml(tmp_path, data))
    j = site.stations[0].jurisdiction
    assert j is not None and not isinstance(j, Path)
    area = j.area()
    assert area.contains(26.82, 80.92) and not area.contains(26.85, 80.95)


def test_jurisdiction_file_is_read_by_load_city_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "geo").mkdir()
    (tmp_path / "geo" / "hz.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": SQUARE}],
            }
        )
    )
    data = base()
    data["stations"][0]["jurisdiction"] = "geo/hz.geojson"
    path = write_yaml(tmp_path, data)
    raw = load_config(path, SiteConfig)  # validation alone reads no file
    assert raw.stations[0].jurisdiction == Path("geo/hz.geojson")
    site = load_site(raw, path.parent)
    j = site.stations[0].jurisdiction
    assert j is not None and not isinstance(j, Path)
    assert j.type == "MultiPolygon" and j.area().contains(26.85, 80.95)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "station hazratganj: jurisdiction file not found: "),
        ("{not json", "not valid GeoJSON"),
        (
            json.dumps({"type": "LineString", "coordinates": [[1, 2], [3, 4]]}),
            "got type 'LineString'",
        ),
        (
            json.dumps({"type": "Polygon", "coordinates": [[[1, 2], [1, 2], [1, 2]]]}),
            "at least 3 distinct",
        ),
    ],
    ids=["missing", "bad-json", "wrong-type", "degenerate"],
)
def test_bad_jurisdiction_file_names_the_file(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    target = tmp_path / "hz.geojson"
    if content is not None:
        target.write_text(content)
    data = base()
    data["stations"][0]["jurisdiction"] = "hz.geojson"
    msg = error_of(tmp_path, data)
    assert expected in msg
    assert str(target) in msg
    with pytest.raises(ConfigError):
        read_jurisdiction(target)


def test_run_config_can_embed_site_next_to_analysis() -> None:
    class RunConfig(AnalysisConfig, SiteConfig):
        model_config = ConfigDict(extra="forbid", frozen=True)

    data = base()
    data["detector"] = {"score_threshold": 0.7}
    cfg = RunConfig.model_validate(data)
    assert cfg.detector.score_threshold == 0.7 and cfg.cameras[0].id == "cam-1"
    data["cameras"][0]["hotspot"] = "nowhere"
    with pytest.raises(ValidationError) as info:
        RunConfig.model_validate(data)
    assert info.value.errors()[0]["loc"] == ("cameras", 0, "hotspot")


def test_demo_site_validates_and_uses_given_urls() -> None:
    urls = ["file:///clips/one.mp4", "file:///clips/two.mp4"]
    site = SiteConfig.model_validate(demo_site_config(urls))
    assert [c.url for c in site.cameras] == urls
    assert {
        "hazratganj",
        "gomti-nagar",
        "aliganj",
        "chowk",
        "aminabad",
        "mahanagar",
        "alambagh",
    } <= {s.id for s in site.stations}
    assert {u.kind for u in site.patrol_units} >= {"scooter", "car", "pink_booth"}
    for s in site.stations:  # all within Lucknow
        assert 26.7 < s.lat < 27.0 and 80.8 < s.lon < 81.1
    mapped = SiteConfig.model_validate(demo_site_config({"charbagh-station": "rtsp://cam/x"}))
    assert mapped.cameras[0].hotspot == "charbagh-station"
    again = SiteConfig.model_validate(yaml.safe_load(demo_site_yaml(urls)))
    assert again == site
    with pytest.raises(ValueError, match="unknown demo hotspot"):
        demo_site_config({"nowhere": "x"})


# --- camera credentials ---------------------------------------------------------------

PASSWORD = "s3cr3t:p@ss/w0rd"
USER = "operator"


def cam_site(url: str, credentials: dict[str, str] | None = None) -> SiteConfig:
    data = base()
    data["cameras"] = [{"id": "cam-9", "hotspot": "hz-market", "url": url}]
    if credentials:
        data["cameras"][0]["credentials"] = credentials
    return SiteConfig.model_validate(data)


def test_placeholders_filled_from_env_and_percent_encoded_in_userinfo() -> None:
    site = cam_site("rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.7:554/stream1?channel=${CH}")
    cam = site.cameras[0]
    env = {"CAM_USER": USER, "CAM_PASS": PASSWORD, "CH": "2"}
    real = resolve_camera_url(cam, env)
    assert real == "rtsp://operator:s3cr3t%3Ap%40ss%2Fw0rd@10.0.0.7:554/stream1?channel=2"
    shown = display_url(cam)
    assert shown == "rtsp://${CAM_USER}:***@10.0.0.7:554/stream1?channel=${CH}"
    assert cam.display_url == shown
    for text in (shown, repr(cam), str(cam), repr(site), str(site)):
        assert PASSWORD not in text and "s3cr3t" not in text


def test_secrets_file_used_when_env_lacks_it_env_wins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets_path = tmp_path / "cams.env"
    secrets_path.write_text(f"# cameras\nexport CAM_USER={USER}\nCAM_PASS='{PASSWORD}'\n\n")
    os.chmod(secrets_path, 0o600)
    with caplog.at_level(logging.WARNING):
        secrets = load_secrets(secrets_path)
    assert not caplog.records
    assert PASSWORD not in repr(secrets) and "CAM_PASS" in repr(secrets)
    cam = cam_site("rtsp://${CAM_USER}:${CAM_PASS}@h/s").cameras[0]
    assert resolve_camera_url(cam, {}, secrets) == "rtsp://operator:s3cr3t%3Ap%40ss%2Fw0rd@h/s"
    assert resolve_camera_url(cam, {"CAM_USER": "admin"}, secrets).startswith("rtsp://admin:")


def test_world_readable_secrets_file_warns_without_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets_path = tmp_path / "cams.env"
    secrets_path.write_text(f"CAM_PASS={PASSWORD}\n")
    os.chmod(secrets_path, 0o644)
    with caplog.at_level(logging.WARNING):
        load_secrets(secrets_path)
    assert any("readable by every user" in r.getMessage() for r in caplog.records)
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


def test_missing_variable_names_it_not_the_values() -> None:
    cam = cam_site("rtsp://${CAM_USER}:${CAM_PASS}@h/s").cameras[0]
    with pytest.raises(ConfigError) as info:
        resolve_camera_url(cam, {"CAM_USER": USER}, SecretValues({"OTHER": PASSWORD}))
    msg = str(info.value)
    assert "CAM_PASS" in msg and "cam-9" in msg
    assert USER not in msg and PASSWORD not in msg


def test_bad_secrets_line_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_secrets(f"CAM_USER=x\n{PASSWORD}\n", "cams.env")
    assert "cams.env:2" in str(info.value) and PASSWORD not in str(info.value)
    with pytest.raises(ConfigError, match="secrets file not found"):
        load_secrets(tmp_path / "absent.env")


def test_credentials_reference_inserts_user_and_password() -> None:
    cam = cam_site("rtsp://10.0.0.7/live", {"user_env": "C_U", "password_env": "C_P"}).cameras[0]
    env = {"C_U": USER, "C_P": PASSWORD}
    assert resolve_camera_url(cam, env) == "rtsp://operator:s3cr3t%3Ap%40ss%2Fw0rd@10.0.0.7/live"
    assert display_url(cam) == "rtsp://${C_U}:***@10.0.0.7/live"
    secrets = camera_secrets(cam, env)
    message = f"could not open rtsp://operator:s3cr3t%3Ap%40ss%2Fw0rd@10.0.0.7/live ({PASSWORD})"
    assert PASSWORD not in scrub(message, secrets) and "s3cr3t" not in scrub(message, secrets)


def test_literal_password_is_masked_everywhere(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    site = cam_site("rtsp://admin:hunter2@10.1.1.1/s?token=abc123&channel=1")
    cam = site.cameras[0]
    assert cam.display_url == "rtsp://admin:***@10.1.1.1/s?token=***&channel=1"
    for text in (repr(cam), str(site), display_url(cam)):
        assert "hunter2" not in text and "abc123" not in text
    assert resolve_camera_url(cam, {}) == "rtsp://admin:hunter2@10.1.1.1/s?token=abc123&channel=1"
    with caplog.at_level(logging.WARNING):
        load_site(site, tmp_path)
    assert any("cam-9" in r.getMessage() for r in caplog.records)
    assert all("hunter2" not in r.getMessage() for r in caplog.records)


def test_storage_and_webhook_urls_are_masked_in_repr() -> None:
    data = base()
    data["storage"] = {"url": "postgresql+psycopg://raksha:dbpass99@127.0.0.1/raksha"}
    data["alerts"]["webhook"]["url"] = "https://hooks.example/x?token=tok777"
    site = SiteConfig.model_validate(data)
    assert "dbpass99" not in repr(site) and "tok777" not in repr(site)
    assert site.storage.display_url == "postgresql+psycopg://raksha:***@127.0.0.1/raksha"


def test_password_with_slash_is_still_masked() -> None:
    cam = cam_site("rtsp://admin:pa/ss@10.1.1.1/s").cameras[0]
    assert cam.display_url == "rtsp://admin:***@10.1.1.1/s" and "pa/ss" not in repr(cam)
    assert has_literal_secret(cam.url)
    assert not has_literal_secret("rtsp://${U}:${P}@h/s?token=${T}")
    assert "pa/ss" in camera_secrets(cam, {})


def test_secrets_file_path_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "cams.env").write_text(f"CAM2_USER={USER}\nCAM2_PASS={PASSWORD}\n")
    os.chmod(tmp_path / "cams.env", 0o600)
    data = base()
    data["secrets_file"] = "cams.env"
    site = load_site_config(write_yaml(tmp_path, data))
    assert site.secrets_file == tmp_path / "cams.env"
    secrets = load_site_secrets(site)
    url = resolve_camera_url(site.camera("cam-2"), {}, secrets)
    assert url == "rtsp://operator:s3cr3t%3Ap%40ss%2Fw0rd@10.0.0.7/s1"
    assert len(load_site_secrets(SiteConfig())) == 0


def test_ids_may_be_words_but_not_topic_characters() -> None:
    data = base()
    data["stations"][0]["id"] = "Station B"
    data["patrol_units"][0]["station"] = "Station B"
    assert SiteConfig.model_validate(data).stations[0].id == "Station B"
    for bad in ("a+b", "a#b", " lead", "trail "):
        data["stations"][0]["id"] = bad
        with pytest.raises(ValidationError):
            SiteConfig.model_validate(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "stations: []\nhotspots: []\nstations: []\n",
            r":3: duplicate key 'stations' \(first at line 1\)",
        ),
        (
            "detector:\n  score_threshold: 0.5\n  score_threshold: 0.9\n",
            r":3: duplicate key 'score_threshold'",
        ),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        (
            "a:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(100)),
            "nested more than 64 levels",
        ),
    ],
)
def test_duplicate_keys_and_absurd_nesting_are_one_line_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "raksha.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        load_run_config(path)
    assert "\n" not in str(err.value)


def test_times_are_shown_in_the_deployment_zone_with_date_and_zone() -> None:
    from raksha.cli.run import local_time
    from raksha.config import RunConfig

    assert local_time("2026-12-06T23:15:01Z", "Asia/Kolkata") == "2026-12-07 04:45:01 IST"
    assert local_time("2026-12-06T23:15:01+00:00", "UTC") == "2026-12-06 23:15:01 UTC"
    assert RunConfig.model_validate({}).timezone == "UTC"
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        RunConfig.model_validate({"timezone": "Mars/Olympus"})


def test_analysis_reads_the_deployment_file(tmp_path: Path) -> None:
    """One YAML file: `raksha analyze --config site.yaml` takes its analysis sections."""
    from raksha.config import load_analysis_config

    site = tmp_path / "site.yaml"
    site.write_text(
        "source: {fps: 2}\n"
        "stations:\n  - {id: hz, lat: 26.85, lon: 80.94}\n"
        "hotspots:\n  - {id: x, lat: 26.85, lon: 80.94}\n"
        "cameras:\n  - {id: c, hotspot: x, url: rtsp://10.0.0.5/s}\n",
        encoding="utf-8",
    )
    assert load_analysis_config(site).source.fps == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {fps: 2}\nnot_a_key: 1\n", encoding="utf-8")
    from raksha.errors import RakshaError

    with pytest.raises(RakshaError, match="not_a_key"):
        load_analysis_config(bad)
