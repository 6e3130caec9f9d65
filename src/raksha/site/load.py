"""The explicit I/O step after validation: read jurisdiction files, resolve relative paths.

    site = load_site(load_config(path, SiteConfig), base_dir=path.parent)

or simply `raksha.config.load_site_config(path)` (YAML loading lives in `raksha.config`, which
imports this module; this module imports nothing of it). Jurisdiction files and the secrets
file are relative to the config file's folder. A bad file raises `ConfigError` naming the
file and the station.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from raksha.errors import ConfigError
from raksha.geo.polygons import area_from_geojson, normalize_geojson
from raksha.site.config import Jurisdiction, SiteConfig, StationConfig
from raksha.site.secrets import SecretValues, has_literal_secret, load_secrets

log = logging.getLogger(__name__)

S = TypeVar("S", bound=SiteConfig)


def read_jurisdiction(path: Path, station_id: str = "") -> Jurisdiction:
    """Read and check one GeoJSON file (Polygon, MultiPolygon, Feature or FeatureCollection)."""
    who = f"station {station_id}: " if station_id else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{who}jurisdiction file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{who}cannot read jurisdiction file {path}: {exc}") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{who}jurisdiction file {path}:{exc.lineno}: not valid GeoJSON ({exc.msg})"
        ) from None
    try:
        geo = normalize_geojson(data)
        area_from_geojson(geo)
        return Jurisdiction.model_validate(geo)
    except (ValueError, ValidationError) as exc:
        msg = (
            str(exc).splitlines()[0]
            if not isinstance(exc, ValidationError)
            else ("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()))
        )
        raise ConfigError(f"{who}jurisdiction file {path}: {msg}") from None


def load_site(site: S, base_dir: Path, *, check_watchlist: bool = True) -> S:
    """`site` with every jurisdiction file read (relative to `base_dir`) and `secrets_file`
    made absolute. Warns when a camera URL holds a literal password. `check_watchlist`
    False skips the watchlist's measurement gate (only for commands that take data off)."""
    stations: list[StationConfig] = []
    for st in site.stations:
        if isinstance(st.jurisdiction, Path):
            path = st.jurisdiction if st.jurisdiction.is_absolute() else base_dir / st.jurisdiction
            st = st.model_copy(update={"jurisdiction": read_jurisdiction(path, st.id)})
        stations.append(st)
    update: dict[str, Any] = {"stations": tuple(stations)}
    if site.secrets_file is not None and not site.secrets_file.is_absolute():
        update["secrets_file"] = base_dir / site.secrets_file
    if site.watchlist is not None:
        from raksha.site.watchlist import check_eval

        wl = site.watchlist
        if wl.eval_json is not None and not wl.eval_json.is_absolute():
            wl = wl.model_copy(update={"eval_json": base_dir / wl.eval_json})
        if check_watchlist:
            check_eval(wl)  # ConfigError: no matching, so Raksha does not start
        update["watchlist"] = wl
    for cam in site.cameras:
        if has_literal_secret(cam.url):
            log.warning(
                "camera %s: the config file holds a credential (%s); move it to the "
                "environment or the secrets file as ${NAME} placeholders",
                cam.id,
                cam.display_url,
            )
    return site.model_copy(update=update)


def load_site_secrets(site: SiteConfig) -> SecretValues:
    """The values of `site.secrets_file` (after `load_site`), or none when it has none."""
    if site.secrets_file is None:
        return SecretValues({})
    return load_secrets(site.secrets_file)


def storage_url(
    site: SiteConfig, env: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None
) -> str:
    """`storage.url` with its `${NAME}` placeholders (e.g. the database password) filled from
    the environment, then the site's secrets file. Only for connecting: never log it."""
    from raksha.site.secrets import expand

    if secrets is None:
        secrets = load_site_secrets(site)
    return expand(site.storage.url, env, secrets, what="storage.url")


def unresolved_secrets(
    site: SiteConfig, env: Mapping[str, str] | None = None, *, cameras: bool = True
) -> list[str]:
    """What `raksha run` would fail on when filling in secrets, one message each (never a
    value): an unreadable secrets file, and every enabled camera (unless `cameras` is False:
    a cluster's coordinator opens none) or storage URL whose `${NAME}` placeholders or
    credentials name a variable set neither in `env` (default: the environment) nor in the
    secrets file."""
    from raksha.site.secrets import resolve_camera_url

    try:
        secrets = load_site_secrets(site)
    except ConfigError as err:
        return [str(err)]
    problems: list[str] = []
    for camera in site.cameras:
        if not camera.enabled or not cameras:
            continue
        try:
            resolve_camera_url(camera, env, secrets)
        except ConfigError as err:
            problems.append(str(err))
    try:
        storage_url(site, env, secrets)
    except ConfigError as err:
        problems.append(str(err))
    return problems
