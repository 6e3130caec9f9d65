"""The site the map draws: stations, hotspots, patrol units and configured cameras.

The API context holds only the stations, so the web pages find the rest in the order:
a `site` attribute on the context (a SiteConfig), the configuration file named in the API
settings (`raksha serve` sets it), or the stations alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raksha.api.context import ApiContext
from raksha.errors import RakshaError
from raksha.site.config import (
    CameraConfig,
    HotspotConfig,
    Jurisdiction,
    PatrolUnitConfig,
    SiteConfig,
    StationConfig,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Site:
    stations: tuple[StationConfig, ...] = ()
    hotspots: tuple[HotspotConfig, ...] = ()
    patrol_units: tuple[PatrolUnitConfig, ...] = ()
    cameras: tuple[CameraConfig, ...] = ()
    #: Where the pages show times (the config's `timezone:`); stored times are UTC.
    timezone: str = "UTC"
    #: Whether the config has a face watchlist (its page is then in the menu).
    watchlist: bool = False

    @classmethod
    def of(cls, cfg: SiteConfig) -> Site:
        return cls(
            cfg.stations,
            cfg.hotspots,
            cfg.patrol_units,
            cfg.cameras,
            cfg.timezone,
            cfg.watchlist is not None,
        )

    def hotspot(self, hotspot_id: str | None) -> HotspotConfig | None:
        return next((h for h in self.hotspots if h.id == hotspot_id), None)

    def units_of(self, station_id: str) -> list[PatrolUnitConfig]:
        return [u for u in self.patrol_units if u.station == station_id]


def site_for(ctx: ApiContext) -> Site:
    attached = getattr(ctx, "site", None)
    if isinstance(attached, SiteConfig):
        return Site.of(attached)
    path = ctx.settings.config_path
    if path:
        from raksha.config import load_run_config
        from raksha.site.load import load_site

        try:
            cfg = load_run_config(Path(path))
            return Site.of(load_site(cfg, Path(path).resolve().parent))
        except (RakshaError, OSError) as exc:
            log.warning("web: map without hotspots and cameras: %s", exc)
    return Site(stations=tuple(ctx.stations))


def jurisdiction_json(station: StationConfig) -> dict[str, Any] | None:
    j = station.jurisdiction
    if isinstance(j, Jurisdiction):
        return {"type": j.type, "coordinates": j.coordinates}
    return None
