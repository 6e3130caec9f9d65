"""Settings of the web pages that the API settings do not cover (the map's tiles).

The map draws stations, hotspots and cameras on a plain background, so it works offline.
Tiles are added only when a tile URL template is configured:

    RAKSHA_MAP_TILE_URL="https://tiles.example.org/{z}/{x}/{y}.png"   (or "/tiles/{z}/{x}/{y}.png")
    RAKSHA_MAP_TILE_ATTRIBUTION="© OpenStreetMap contributors"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from raksha.errors import RakshaError

ENV_TILE_URL = "RAKSHA_MAP_TILE_URL"
ENV_TILE_ATTRIBUTION = "RAKSHA_MAP_TILE_ATTRIBUTION"


class BadTileUrl(RakshaError):
    """The configured map tile URL is not an http(s) or same-site template."""


@dataclass(frozen=True, slots=True)
class WebSettings:
    #: A Leaflet tile URL template with {z}/{x}/{y}; None draws on a plain background.
    tile_url: str | None = None
    tile_attribution: str = ""

    def __post_init__(self) -> None:
        if self.tile_url is not None:
            check_tile_url(self.tile_url)

    @property
    def tile_origin(self) -> str | None:
        """The origin the pages must be allowed to load images from (None: same site)."""
        if self.tile_url is None:
            return None
        parts = urlsplit(self.tile_url)
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebSettings:
        e = os.environ if env is None else env
        url = e.get(ENV_TILE_URL, "").strip() or None
        return cls(tile_url=url, tile_attribution=e.get(ENV_TILE_ATTRIBUTION, "").strip())


def check_tile_url(url: str) -> None:
    parts = urlsplit(url)
    same_site = not parts.scheme and not parts.netloc and url.startswith("/")
    remote = parts.scheme in ("http", "https") and bool(parts.netloc)
    if not (same_site or remote) or "{z}" not in url or any(c in url for c in "\"'<> \\"):
        raise BadTileUrl(
            f"{ENV_TILE_URL} must be an http(s) URL or a path starting with / that contains "
            "{z}, {x} and {y}"
        )
